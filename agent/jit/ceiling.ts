/**
 * The JIT ceiling file (KUBEGATE_JIT_CEILING_FILE): a JSON list of
 * PolicyRules beyond which the agent refuses grants. Read once at start and
 * checked field by field, so a broken file stops the agent with a message
 * naming the file and the field rather than failing later, grant by grant.
 */
import { readFileSync } from 'node:fs';
import { KgError } from '../../common/errors.js';
import { parseRules, type KubeRule } from './rules.js';

export function loadCeiling(file: string): KubeRule[] {
  const fail = (what: string, cause?: unknown) =>
    new KgError('KG_ERR_CONFIG', `JIT ceiling file ${file} (KUBEGATE_JIT_CEILING_FILE): ${what}`, {
      cause,
    });
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(`cannot be read: ${(err as Error).message}`, err);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw fail(`is not JSON: ${(err as Error).message}`, err);
  }
  const { rules, problem } = parseRules(value);
  if (problem !== undefined) throw fail(problem);
  return rules;
}
