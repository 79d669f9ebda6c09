/**
 * Micro-benchmark: what the approval gate (stage 4b, proxy/approvals/gate.ts)
 * costs a request that is NOT gated — the price every request pays once
 * gate policies exist. In-process, no network: `ApprovalGate.check` with 50
 * gate policies in its cache, against a baseline of awaiting an empty async
 * function (the pipeline awaits the gate either way).
 *
 *   npx tsc -p tsconfig.json && node dist/bench/gate-check.js
 *
 * The policies are loaded once through a fake pool (the real cache then
 * answers for 10 s, longer than a round), so only the check is timed.
 * Prints ns per request, median of 7 rounds, and the spread.
 */
import { ApprovalGate } from '../proxy/approvals/gate.js';
import { gatesFor } from '../proxy/approvals/policy-match.js';
import { validatePolicy, type GatePolicy } from '../proxy/approvals/policy-spec.js';
import { requestInfo } from '../proxy/authz/request-info.js';
import { newContext, type RequestContext } from '../proxy/context.js';
import type { Pool } from '../proxy/db/pool.js';
import type { AnyRequest } from '../proxy/forward/forward.js';
import type { TunnelRegistry } from '../proxy/tunnel/registry.js';
import { createLogger } from '../common/log.js';

const resources = [
  'ingresses.networking.k8s.io',
  'secrets',
  'deployments.apps',
  'statefulsets.apps',
  'networkpolicies.networking.k8s.io',
  'clusterrolebindings.rbac.authorization.k8s.io',
  'services',
  'pods/exec',
  'configmaps',
  'persistentvolumeclaims',
];
const envs = ['prod', 'staging', 'dev', 'perf', 'dr'];

/** 50 policies of the shapes docs/approvals.md shows, over several clusters and namespaces. */
function policies(n: number): GatePolicy[] {
  const out: GatePolicy[] = [];
  for (let i = 0; i < n; i++) {
    const resource = resources[i % resources.length]!;
    const { policy, problems } = validatePolicy({
      name: `gate-${i}`,
      kind: 'gate',
      approvers: { groups: ['platform-leads'] },
      clusters:
        i % 4 === 0
          ? { names: [`cluster-${i}`] }
          : { selector: { matchLabels: { env: envs[i % envs.length]!, tier: 'core' } } },
      namespaces: i % 3 === 0 ? [] : [`team-${i}`, 'shop'],
      resources: [resource],
      ...(resource === 'pods/exec' ? { verbs: ['create'] } : {}),
    });
    if (!policy) throw new Error(`bench policy ${i}: ${problems.join('; ')}`);
    out.push(policy as GatePolicy);
  }
  return out;
}

/** Stands in for PostgreSQL: answers the gate's one policy query from memory. */
function fakePolicyPool(list: GatePolicy[]): Pool {
  const rows = list.map((p) => ({
    name: p.name,
    kind: 'gate',
    spec: p,
    version: 1,
    created_by: 'bench',
    created_at: new Date(),
    updated_at: new Date(),
  }));
  return { query: async () => ({ rows, rowCount: rows.length }) } as unknown as Pool;
}

const log = createLogger({ name: 'bench', level: 'silent' });

function gateWith(list: GatePolicy[]): ApprovalGate {
  return new ApprovalGate({
    pool: fakePolicyPool(list),
    registry: {} as TunnelRegistry,
    publicUrl: 'https://kg.example.test',
    maxBody: 1 << 20,
    notice: () => {
      throw new Error('not gated: no notice');
    },
    queued: () => undefined,
    sweep: async () => 0,
    log,
  });
}

function context(method: string, path: string, query = ''): RequestContext {
  const ctx = newContext(method, `/k8s/prod-1${path}`, '127.0.0.1', 'bench', log);
  ctx.route = {
    cluster: 'prod-1',
    kubePath: path,
    rawQuery: query,
  } as RequestContext['route'];
  ctx.identity = {
    user: 'dev@example.com',
    groups: ['developers'],
    kind: 'user',
  } as RequestContext['identity'];
  ctx.info = requestInfo(method, path, query);
  return ctx;
}

const cluster = { name: 'prod-1', labels: { env: 'prod', tier: 'core', region: 'eu' } };
const req = { headers: {} } as AnyRequest;

async function time(n: number, fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / n;
}

async function measure(name: string, fn: () => Promise<unknown> | unknown): Promise<string> {
  const n = 200_000;
  await time(n, fn); // warm up: JIT, caches
  const rounds: number[] = [];
  for (let r = 0; r < 7; r++) rounds.push(await time(n, fn));
  rounds.sort((a, b) => a - b);
  const med = rounds[3]!;
  return `${name.padEnd(58)} ${med.toFixed(0).padStart(6)} ns   (${rounds[0]!.toFixed(0)}–${rounds[6]!.toFixed(0)})`;
}

async function main(): Promise<void> {
  const fifty = policies(50);
  const get = context('GET', '/api/v1/namespaces/shop/pods/web-1');
  const list = context('GET', '/api/v1/namespaces/shop/pods', 'limit=500');
  const patch = context('PATCH', '/api/v1/namespaces/shop/pods/web-1');
  for (const c of [get, list, patch]) {
    const hits = gatesFor(fifty, cluster, c.info!, c.route!.rawQuery);
    if (hits.length)
      throw new Error(`bench request ${c.info!.verb} is gated: not the case measured`);
  }
  const none = gateWith([]);
  const gate = gateWith(fifty);
  const opts = { readBody: true };
  // Fill both caches before timing.
  await none.check(get, req, cluster, opts);
  await gate.check(get, req, cluster, opts);
  const noop = async () => ({});

  const lines = [
    `approval gate on requests that are not gated (Node ${process.version}, ns per request, median of 7 × 200k)`,
    await measure('baseline: await an empty async function', () => noop()),
    await measure('check(), no gate policies', () => none.check(get, req, cluster, opts)),
    await measure('check(), 50 policies, get pod', () => gate.check(get, req, cluster, opts)),
    await measure('check(), 50 policies, list pods', () => gate.check(list, req, cluster, opts)),
    await measure('check(), 50 policies, patch pod (mutating, not gated)', () =>
      gate.check(patch, req, cluster, opts),
    ),
    await measure('gatesFor() alone, 50 policies, get pod', () =>
      gatesFor(fifty, cluster, get.info!, ''),
    ),
    await measure('gatesFor() alone, 50 policies, patch pod', () =>
      gatesFor(fifty, cluster, patch.info!, ''),
    ),
  ];
  console.log(lines.join('\n'));
}

await main();
