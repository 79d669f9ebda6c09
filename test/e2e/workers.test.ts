/**
 * One proxy replica on several cores (KUBEGATE_WORKERS, common/workers.ts):
 * the real binary started with two workers, a real agent and apiserver,
 * real kubectl. Both workers serve the front and hold a tunnel each, the
 * primary's /metrics is the sum of both, a worker killed with SIGKILL is
 * started again while the other keeps serving, and SIGTERM stops them all.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { freePort } from '../support/ports.js';

let stack: Stack;
let metricsPort: number;
let kubeconfig: string;

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of one series (name and exact label text), 0 when absent. */
function value(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

function requestsTotal(text: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith('kubegate_http_requests_total{'))
    .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Worker pids by index, from the primary's "worker serving" lines. */
function workerPids(): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of stack.proxy.output().split('\n')) {
    if (!line.includes('"msg":"worker serving"')) continue;
    const l = JSON.parse(line) as { worker: number; workerPid: number };
    pids.set(l.worker, l.workerPid);
  }
  return pids;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('a proxy replica with two workers', { timeout: 300_000 }, () => {
  before(async () => {
    metricsPort = await freePort();
    stack = await startStack({
      proxyEnv: {
        KUBEGATE_WORKERS: '2',
        KUBEGATE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
        KUBEGATE_DRAIN_TIMEOUT: '3s',
      },
      agentEnv: { KUBEGATE_TUNNELS: '2', KUBEGATE_REBALANCE_INTERVAL: '1s' },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    await grant(stack, { users: ['alice'], role: 'view', clusters: ['dev'] });
    kubeconfig = await stack.kubeconfig('alice');
  });
  after(async () => {
    await stack?.stop();
  });

  test('both workers are replicas of their own, each holding one of the agent tunnels', async () => {
    await until('two worker replicas', async () => {
      const rows = await stack.sql<{ id: string }>(`SELECT id FROM replicas ORDER BY id`);
      return rows.length === 2 && rows.every((r) => /-w[01]$/.test(r.id)) ? rows : undefined;
    });
    const spread = await until('the agent on both workers', async () => {
      const rows = await stack.sql<{ replica_id: string }>(
        `SELECT DISTINCT replica_id FROM replica_tunnels WHERE cluster = 'dev'`,
      );
      return rows.length === 2 ? rows : undefined;
    });
    assert.equal(spread.length, 2);
    assert.equal(workerPids().size, 2);
  });

  test('requests are served by both workers, and /metrics is their sum', async () => {
    const before = await scrape();
    const n = 12;
    // A new connection per kubectl: the primary hands connections to the workers in turn.
    for (let i = 0; i < n; i++)
      await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig });
    const served = await until('audit events from both workers', async () => {
      const rows = await stack.sql<{ replica: string; n: number }>(
        `SELECT replica, count(*)::int AS n FROM audit_events
          WHERE username = 'alice' AND stage = 'ResponseComplete' GROUP BY replica`,
      );
      return rows.reduce((a, r) => a + r.n, 0) >= n ? rows : undefined;
    });
    assert.deepEqual(
      served.map((r) => r.replica.replace(/.*-(w\d)$/, '$1')).sort(),
      ['w0', 'w1'],
      `requests by worker: ${JSON.stringify(served)}`,
    );
    const after = await scrape();
    // Each worker counted what it served; the primary adds them up.
    assert.ok(
      requestsTotal(after) - requestsTotal(before) >= n,
      `kubegate_http_requests_total grew by ${requestsTotal(after) - requestsTotal(before)}, expected at least ${n}`,
    );
    // Said once, not once per worker.
    const build = after.split('\n').filter((l) => l.startsWith('kubegate_build_info{'));
    assert.equal(build.length, 1, build.join('\n'));
    assert.equal(Number(build[0]!.slice(build[0]!.lastIndexOf(' ') + 1)), 1);
    assert.equal(value(after, 'kubegate_tunnel_connected{cluster="dev"}'), 2);
  });

  test('a worker killed with SIGKILL is started again; the other keeps serving meanwhile', async () => {
    const pids = workerPids();
    const victim = pids.get(1)!;
    process.kill(victim, 'SIGKILL');
    // Served throughout: by the survivor, then by both again.
    for (let i = 0; i < 4; i++)
      await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig });
    const again = await until('worker 1 serving again', async () => {
      const p = workerPids().get(1);
      return p !== undefined && p !== victim ? p : undefined;
    });
    assert.ok(alive(again));
    assert.match(stack.proxy.output(), /"msg":"a worker died; starting it again"/);
    await until('the agent on both workers again', async () => {
      const rows = await stack.sql<{ replica_id: string }>(
        `SELECT DISTINCT replica_id FROM replica_tunnels WHERE cluster = 'dev'`,
      );
      return rows.length === 2 ? rows : undefined;
    });
    await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig });
  });

  test('SIGTERM to the primary drains and stops every worker, and it exits 0', async () => {
    const pids = [...workerPids().values()].filter(alive);
    assert.equal(pids.length, 2);
    // The killed worker's row is gone once it is stale (the survivors delete it).
    await until('two live replicas', async () => {
      const rows = await stack.sql<{ id: string }>(`SELECT id FROM replicas`);
      return rows.length === 2 ? rows : undefined;
    });
    const code = await stack.proxy.stop('SIGTERM');
    assert.equal(code, 0, stack.proxy.output().slice(-3000));
    for (const p of pids) assert.ok(!alive(p), `worker ${p} still running`);
    const rows = await stack.sql<{ id: string }>(`SELECT id FROM replicas`);
    assert.deepEqual(rows, [], 'both workers left the replica registry');
  });
});
