/**
 * Rows whose feature is not there yet, found by looking at the built
 * program rather than by a flag someone must remember to flip.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../test/support/repo.js';

const dist = (p: string) => join(repoRoot(), 'dist', p);

/** Why exec/port-forward cannot be measured yet, or undefined when it can. */
export function execMissing(): string | undefined {
  const pipeline = dist('proxy/pipeline.js');
  if (
    existsSync(pipeline) &&
    readFileSync(pipeline, 'utf8').includes('does not carry connection upgrades')
  )
    return 'exec/port-forward not carried yet (the proxy refuses upgrades)';
  return undefined;
}

/** The proxy's audit switch, when the proxy has one. */
export async function auditSetting(): Promise<
  { env: string; on: string; off: string } | undefined
> {
  const { proxySchema } = (await import('../../proxy/config.js')) as unknown as {
    proxySchema: Record<string, { env?: string; type?: string }>;
  };
  const field = Object.values(proxySchema).find((f) => f.env === 'KUBEGATE_AUDIT');
  if (!field) return undefined;
  return field.type === 'bool'
    ? { env: 'KUBEGATE_AUDIT', on: 'true', off: 'false' }
    : { env: 'KUBEGATE_AUDIT', on: 'on', off: 'off' };
}

/** True when the agent runs requests as just-in-time service accounts. */
export async function jitAvailable(): Promise<boolean> {
  const { agentSchema } = (await import('../../agent/config.js')) as unknown as {
    agentSchema: Record<string, { env?: string }>;
  };
  return Object.values(agentSchema).some((f) => f.env === 'KUBEGATE_FORWARD_MODE');
}
