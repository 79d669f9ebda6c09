/**
 * The JIT ceiling file (KUBEGATE_JIT_CEILING_FILE): a JSON list of
 * PolicyRules beyond which the agent refuses grants. Read once at start and
 * checked field by field, so a broken file stops the agent with a message
 * naming the file and the field rather than failing later, grant by grant.
 */
import { configFileError, readConfigFile } from '../config.js';
import { parseRules, type KubeRule } from './rules.js';

export function loadCeiling(file: string): KubeRule[] {
  const text = readConfigFile('jitCeilingFile', file);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw configFileError('jitCeilingFile', file, `is not JSON: ${(err as Error).message}`, err);
  }
  const { rules, problem } = parseRules(value);
  if (problem !== undefined) throw configFileError('jitCeilingFile', file, problem);
  return rules;
}
