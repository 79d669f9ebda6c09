/**
 * The `kubegate` command: `proxy`, `migrate` and `admin …` (the agent and the
 * dev stack have their own entry points, dispatched by bin/kubegate.js).
 */
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../../common/config.js';
import { isKgError, KgError } from '../../common/errors.js';
import { parseDuration } from '../../common/config.js';
import { enrollAddressOf, proxySchema, proxyDefaults } from '../config.js';
import { createPool, type Pool } from '../db/pool.js';
import { migrate } from '../db/migrate.js';
import { parseMasterKey } from '../pki/master-key.js';
import { loadCas } from '../pki/ca-store.js';
import { ClusterStore } from '../clusters/cluster-store.js';
import { reEnrollHint, revokeAgent } from '../clusters/revoke.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import { renderBootstrapYaml, type ForwardMode } from '../clusters/bootstrap-yaml.js';
import { renderKubeconfig } from '../clusters/kubeconfig.js';
import { TokenStore } from '../authn/token-store.js';
import { parseHostPort } from '../../common/config.js';
import { loadPolicy } from '../authz/policy-store.js';
import { bindingsFor } from '../authz/authorizer.js';
import { adminRbac, rbacUsage } from './admin-rbac.js';
import { adminIdentity, identityUsage } from './admin-identity.js';
import { adminAudit, auditUsage } from './admin-audit.js';
import { adminApproval, requestCommand, requestUsage } from './approvals.js';
import { cliActor, flag, flagList, labelsOf, parseArgs, type Parsed } from './args.js';

const usage = `kubegate — zero-trust access to a fleet of Kubernetes clusters

Usage:
  kubegate proxy                              run a proxy replica (config from KUBEGATE_* env)
  kubegate agent                              run the cluster agent
  kubegate dev                                run the whole stack locally (see README)
  kubegate migrate                            apply database migrations (DATABASE_URL)
  kubegate admin cluster add NAME [--label k=v]... [--forward-mode jit|impersonate] [--out FILE]
                                              register a cluster and write its bootstrap YAML
  kubegate admin cluster bootstrap NAME [--forward-mode jit|impersonate] [--out FILE]
                                              a fresh one-time bootstrap YAML for NAME
                                              (the agent's mode decides its RBAC; default jit)
  kubegate admin cluster list                 list registered clusters
  kubegate admin cluster revoke-agent NAME    revoke NAME's agent certificates: its tunnels close on
                                              every replica; it must enroll again with a new bootstrap token
  kubegate admin token create --user NAME [--group G]... [--ttl 8h] [--robot]
                                              mint a bearer token (printed once)
  kubegate admin kubeconfig --user NAME [--group G]... [--ttl 8h] [--out FILE]
                                              write a fleet kubeconfig with a fresh token
${rbacUsage}${identityUsage}${auditUsage}${requestUsage}`;

const revokeAgentHelp = `Usage: kubegate admin cluster revoke-agent NAME

Revoke every certificate held by cluster NAME's agent, at once:
  - every tunnel of NAME closes on every proxy replica within a second, and
    requests to NAME get 503 "cluster is offline" until an agent is back;
  - the agent's certificate (and any earlier one) is refused for new tunnels
    and for renewal; unspent bootstrap tokens of NAME are voided too;
  - the revocation is recorded in the audit log (verb revoke, resource
    agentcertificates) with who ran it.
The cluster stays registered, with its labels and bindings. To attach it
again, enroll a fresh agent with a new one-time bootstrap token:
  kubegate admin cluster bootstrap NAME --out bootstrap.yaml
  kubectl delete secret -n kubegate-system kubegate-agent-identity
  kubectl apply -f bootstrap.yaml
  kubectl rollout restart -n kubegate-system deployment/kubegate-agent
Use it when an agent's key may be compromised, or a cluster must be cut off
now. Needs DATABASE_URL. REST: POST /api/v1/clusters/NAME/revoke-agent.
`;

type Fields = keyof typeof proxySchema;

function configFor<K extends Fields>(keys: K[]) {
  const schema = Object.fromEntries(keys.map((k) => [k, proxySchema[k]])) as Pick<
    typeof proxySchema,
    K
  >;
  return loadConfig(schema, proxyDefaults as Partial<Record<K, unknown>>);
}

async function withPool<T>(fn: (pool: Pool) => Promise<T>): Promise<T> {
  const { databaseUrl } = configFor(['databaseUrl']);
  const pool = createPool({ url: databaseUrl, max: 2, applicationName: 'kubegate-cli' });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

function output(p: Parsed, text: string, what: string): void {
  const out = flag(p, 'out');
  if (out && out !== '-') {
    writeFileSync(out, text, { mode: 0o600 });
    process.stderr.write(`wrote ${what} to ${out}\n`);
  } else {
    process.stdout.write(text);
  }
}

/** `--forward-mode`: the agent's mode, which decides the RBAC the bootstrap YAML grants it. */
function forwardModeOf(p: Parsed): ForwardMode {
  const m = flag(p, 'forward-mode') ?? 'jit';
  if (m !== 'jit' && m !== 'impersonate')
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `--forward-mode must be jit or impersonate, not "${m}"`,
    );
  return m;
}

async function bootstrap(
  pool: Pool,
  clusterId: string,
  name: string,
  forwardMode: ForwardMode = 'jit',
): Promise<string> {
  const cfg = configFor([
    'masterKey',
    'tunnelAddress',
    'enrollListen',
    'enrollAddress',
    'bootstrapTokenTtl',
    'agentImage',
  ]);
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

function ttlOf(p: Parsed, fallback: number): number {
  const t = flag(p, 'ttl');
  if (t === undefined) return fallback;
  const ms = parseDuration(t);
  if (!ms)
    throw new KgError('KG_ERR_BAD_REQUEST', `--ttl "${t}" must be a duration like 30m, 8h or 7d`);
  return ms;
}

async function admin(args: string[]): Promise<void> {
  // Before this function's own parsing: the RBAC commands take --robot NAME.
  if (args[0] === 'role' || args[0] === 'binding') return adminRbac(args);
  if (args[0] === 'user' || args[0] === 'robot') return adminIdentity(args);
  if (args[0] === 'audit') return adminAudit(args.slice(1));
  if (args[0] === 'approval') return adminApproval(args.slice(1));
  const p = parseArgs(args, new Set(['robot', 'help']));
  const [area, verb, name] = p.positionals;
  if (area === 'cluster' && verb === 'add' && name) {
    await withPool(async (pool) => {
      const mode = forwardModeOf(p);
      const c = await new ClusterStore(pool).add(name, labelsOf(p));
      output(p, await bootstrap(pool, c.id, c.name, mode), `bootstrap YAML for cluster "${name}"`);
      process.stderr.write(
        `cluster "${name}" registered; apply the bootstrap YAML on it: kubectl apply -f <file>\n`,
      );
    });
    return;
  }
  if (area === 'cluster' && verb === 'bootstrap' && name) {
    await withPool(async (pool) => {
      const c = await new ClusterStore(pool).get(name);
      if (!c)
        throw new KgError(
          'KG_ERR_CLUSTER_NOT_FOUND',
          `cluster "${name}" is not registered; add it with: kubegate admin cluster add ${name}`,
        );
      output(
        p,
        await bootstrap(pool, c.id, c.name, forwardModeOf(p)),
        `bootstrap YAML for cluster "${name}"`,
      );
    });
    return;
  }
  if (area === 'cluster' && verb === 'revoke-agent') {
    if (p.flags.has('help')) {
      process.stdout.write(revokeAgentHelp);
      return;
    }
    if (!name)
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        `revoke-agent needs the cluster NAME\n\n${revokeAgentHelp}`,
      );
    const extra = [...p.flags.keys()];
    if (extra.length || p.positionals.length > 3)
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        `unexpected argument(s); usage: kubegate admin cluster revoke-agent NAME`,
      );
    const r = await withPool((pool) =>
      revokeAgent(pool, name, { actor: cliActor(), userAgent: 'kubegate-cli' }),
    );
    process.stdout.write(
      `${r.cluster}\trevoked ${r.revokedCertificates} certificate(s)\tvoided ${r.voidedBootstrapTokens} bootstrap token(s)\n`,
    );
    process.stderr.write(
      `agent of cluster "${r.cluster}" revoked; its tunnels close on every replica. Next: ${reEnrollHint(r.cluster)}\n`,
    );
    return;
  }
  if (area === 'cluster' && verb === 'list') {
    await withPool(async (pool) => {
      for (const c of await new ClusterStore(pool).list()) {
        const labels = Object.entries(c.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        process.stdout.write(
          `${c.name}\t${labels || '-'}\t${c.disabled ? 'disabled' : 'enabled'}\n`,
        );
      }
    });
    return;
  }
  if ((area === 'token' && verb === 'create') || area === 'kubeconfig') {
    const user = flag(p, 'user');
    if (!user) throw new KgError('KG_ERR_BAD_REQUEST', '--user is required');
    const cfg = configFor(['tokenTtl', 'publicUrl', 'masterKey']);
    await withPool(async (pool) => {
      const t = await new TokenStore(pool).create({
        subject: user,
        kind: flag(p, 'robot') === 'true' ? 'robot' : 'user',
        groups: flagList(p, 'group'),
        ttlMs: ttlOf(p, cfg.tokenTtl),
        description: area === 'kubeconfig' ? 'kubeconfig (cli)' : 'cli',
        createdBy: 'cli',
      });
      await recordAdminEvent(pool, {
        actor: cliActor(),
        verb: 'create',
        resource: area === 'kubeconfig' ? 'kubeconfigs' : 'tokens',
        name: user,
        detail: {
          tokenId: t.id,
          expiresAt: t.expiresAt.toISOString(),
          groups: flagList(p, 'group'),
        },
        userAgent: 'kubegate-cli',
      });
      if (area === 'token') {
        output(p, t.token + '\n', 'token');
        process.stderr.write(`token ${t.id} for ${user} expires ${t.expiresAt.toISOString()}\n`);
        return;
      }
      const cas = await loadCas(pool, parseMasterKey(cfg.masterKey));
      // One context per cluster the identity's bindings reach right now.
      const policy = await loadPolicy(pool);
      const who = {
        user,
        groups: flagList(p, 'group'),
        kind: flag(p, 'robot') === 'true' ? ('robot' as const) : ('user' as const),
      };
      const clusters = [...policy.clusters.values()]
        .filter((c) => !c.disabled && bindingsFor(policy.snapshot, who, c, new Date()).length > 0)
        .map((c) => c.name)
        .sort();
      if (!clusters.length)
        process.stderr.write(
          `warning: ${user} has no binding on any cluster yet; the kubeconfig has no contexts\n`,
        );
      output(
        p,
        renderKubeconfig({
          publicUrl: cfg.publicUrl,
          clusters,
          user,
          token: t.token,
          caPem: cas.server.certPem,
        }),
        `kubeconfig for ${user}`,
      );
    });
    return;
  }
  throw new KgError('KG_ERR_BAD_REQUEST', `unknown admin command: ${args.join(' ')}\n\n${usage}`);
}

/** Entry point for everything but `agent` and `dev`. Returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'proxy': {
        const { runProxy } = await import('../main.js');
        await runProxy();
        return -1; // keeps running
      }
      case 'migrate': {
        const r = await withPool((pool) =>
          migrate(pool, undefined, (m) => process.stderr.write(m + '\n')),
        );
        process.stderr.write(
          r.applied.length
            ? `applied ${r.applied.length} migration(s); schema at ${r.current}\n`
            : `schema up to date at ${r.current}\n`,
        );
        return 0;
      }
      case 'admin':
        await admin(rest);
        return 0;
      case 'request':
        await requestCommand(rest);
        return 0;
      case 'config-reference': {
        const { configReference } = await import('./config-reference.js');
        process.stdout.write(configReference());
        return 0;
      }
      case 'agent-chart-data': {
        const { agentChartData } = await import('./agent-chart-data.js');
        process.stdout.write(agentChartData());
        return 0;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(usage);
        return 0;
      default:
        process.stderr.write(`unknown command "${cmd}"\n\n${usage}`);
        return 2;
    }
  } catch (err) {
    process.stderr.write(
      `kubegate: ${isKgError(err) ? err.message : String((err as Error).stack ?? err)}\n`,
    );
    return 1;
  }
}
