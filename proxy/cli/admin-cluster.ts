/**
 * `kubegate admin cluster …`: register clusters, write their bootstrap YAML,
 * list them, revoke an agent.
 */
import { KgError } from '../../common/errors.js';
import { parseHostPort } from '../../common/config.js';
import { enrollAddressOf } from '../config.js';
import type { Pool } from '../db/pool.js';
import { parseMasterKey } from '../pki/master-key.js';
import { loadCas } from '../pki/ca-store.js';
import { ClusterStore } from '../clusters/cluster-store.js';
import { reEnrollHint, revokeAgent } from '../clusters/revoke.js';
import { renderBootstrapYaml, type ForwardMode } from '../clusters/bootstrap-yaml.js';
import { cliActor, cliConfig, flag, labelsOf, output, withPool, type Invocation } from './args.js';

/** `--forward-mode`: the agent's mode, which decides the RBAC the bootstrap YAML grants it. */
function forwardModeOf(p: Invocation): ForwardMode {
  const m = flag(p, 'forward-mode') ?? 'jit';
  if (m !== 'jit' && m !== 'impersonate')
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `--forward-mode must be jit or impersonate, not "${m}"`,
    );
  return m;
}

/** What a bootstrap YAML is made from, besides the database. */
const bootstrapFields = [
  'masterKey',
  'tunnelAddress',
  'enrollListen',
  'enrollAddress',
  'bootstrapTokenTtl',
  'agentImage',
] as const;

async function bootstrap(
  p: Invocation,
  pool: Pool,
  clusterId: string,
  name: string,
  forwardMode: ForwardMode,
): Promise<string> {
  const cfg = cliConfig(bootstrapFields, p.io.env);
  const cas = await loadCas(pool, parseMasterKey(cfg.masterKey));
  const { token } = await new ClusterStore(pool).createBootstrapToken(
    clusterId,
    cfg.bootstrapTokenTtl,
    'cli',
  );
  return renderBootstrapYaml({
    cluster: name,
    token,
    tunnelAddress: cfg.tunnelAddress,
    tunnelServerName: parseHostPort(cfg.tunnelAddress).host,
    enrollAddress: enrollAddressOf(cfg),
    proxyCaPem: cas.server.certPem,
    image: cfg.agentImage,
    forwardMode,
  });
}

export async function clusterAdd(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  const mode = forwardModeOf(p);
  // Checked before the cluster is stored, so a missing setting leaves nothing half done.
  cliConfig(bootstrapFields, p.io.env);
  await withPool(p, async (pool) => {
    const c = await new ClusterStore(pool).add(name, labelsOf(p));
    output(p, await bootstrap(p, pool, c.id, c.name, mode), `bootstrap YAML for cluster "${name}"`);
    p.io.stderr.write(
      `cluster "${name}" registered; apply the bootstrap YAML on it: kubectl apply -f <file>\n`,
    );
  });
}

export async function clusterBootstrap(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  const mode = forwardModeOf(p);
  await withPool(p, async (pool) => {
    const c = await new ClusterStore(pool).get(name);
    if (!c)
      throw new KgError(
        'KG_ERR_CLUSTER_NOT_FOUND',
        `cluster "${name}" is not registered; add it with: kubegate admin cluster add ${name}`,
      );
    output(p, await bootstrap(p, pool, c.id, c.name, mode), `bootstrap YAML for cluster "${name}"`);
  });
}

export async function clusterList(p: Invocation): Promise<void> {
  await withPool(p, async (pool) => {
    for (const c of await new ClusterStore(pool).list()) {
      const labels = Object.entries(c.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      p.io.stdout.write(`${c.name}\t${labels || '-'}\t${c.disabled ? 'disabled' : 'enabled'}\n`);
    }
  });
}

export async function clusterRevokeAgent(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  const r = await withPool(p, (pool) =>
    revokeAgent(pool, name, { actor: cliActor(), userAgent: 'kubegate-cli' }),
  );
  p.io.stdout.write(
    `${r.cluster}\trevoked ${r.revokedCertificates} certificate(s)\tvoided ${r.voidedBootstrapTokens} bootstrap token(s)\n`,
  );
  p.io.stderr.write(
    `agent of cluster "${r.cluster}" revoked; its tunnels close on every replica. Next: ${reEnrollHint(r.cluster)}\n`,
  );
}
