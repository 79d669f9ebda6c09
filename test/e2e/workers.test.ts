/**
 * One proxy replica and one agent on several cores (KUBEGATE_WORKERS,
 * common/workers.ts): the real binaries started with two workers each, a
 * real apiserver, real kubectl. Both proxy workers serve the front and hold
 * a tunnel each, the primary's /metrics is the sum of both; the agent's two
 * workers each carry their own tunnels while its primary keeps the one identity and
 * the one set of just-in-time accounts (one ServiceAccount per user however
 * many workers served them; a revoked grant deletes it); a worker killed
 * with SIGKILL is started again while the other keeps serving, and SIGTERM
 * stops them all.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk } from '../support/kubectl.js';
import { grant, ungrant } from '../support/grants.js';
import { freePort } from '../support/ports.js';
import { isAlive as alive, type Proc } from '../support/proc.js';
import { serviceAccountName } from '../../agent/jit/names.js';

let stack: Stack;
let metricsPort: number;
let agentMetricsPort: number;
let kubeconfig: string;
let agent: Proc;

async function scrape(port = metricsPort): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
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
function workerPids(proc: Proc = stack.proxy): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of proc.output().split('\n')) {
    if (!line.includes('"msg":"worker serving"')) continue;
    const l = JSON.parse(line) as { worker: number; workerPid: number };
    pids.set(l.worker, l.workerPid);
  }
  return pids;
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

  test('an agent with two workers: tunnels from each, one identity, one JIT account per user', async () => {
    agentMetricsPort = await freePort();
    const env = stack.agentEnv.get('dev')!;
    stack.agentEnv.set('dev', {
      ...env,
      // Each agent worker keeps its two tunnels (the default) on distinct proxy workers.
      KUBEGATE_WORKERS: '2',
      KUBEGATE_METRICS_LISTEN: `127.0.0.1:${agentMetricsPort}`,
    });
    await stack.agents.get('dev')!.stop();
    agent = await stack.startAgent('dev');
    // Two agent processes (two tunnels each) that only the primary's certificate lets in.
    await until('tunnels from both agent workers', async () => {
      const rows = await stack.sql<{ agent_id: string }>(
        `SELECT DISTINCT agent_id FROM replica_tunnels WHERE cluster = 'dev'`,
      );
      return rows.length === 2 ? rows : undefined;
    });
    assert.equal(workerPids(agent).size, 2);
    // Several users at once, many requests each, over both workers' tunnels.
    const users = ['ada', 'bo', 'cy'];
    for (const u of users) await grant(stack, { users: [u], role: 'view', clusters: ['dev'] });
    const configs = await Promise.all(users.map((u) => stack.kubeconfig(u)));
    await Promise.all(
      configs.flatMap((k) =>
        Array.from({ length: 4 }, () =>
          kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig: k }),
        ),
      ),
    );
    const accounts = JSON.parse(
      await kubectlOk(
        [
          'get',
          'serviceaccounts',
          '-n',
          'kubegate-system',
          '-l',
          'kubegate.dev/user',
          '-o',
          'json',
        ],
        {
          kubeconfig: stack.cluster.kubeconfig,
        },
      ),
    ) as { items: { metadata: { name: string } }[] };
    for (const u of users)
      assert.equal(
        accounts.items.filter((a) => a.metadata.name === serviceAccountName('user', u)).length,
        1,
        `one account for ${u}`,
      );
    // The agent primary's /metrics: both workers' requests, its own accounts and certificate.
    const text = await scrape(agentMetricsPort);
    const answered = text
      .split('\n')
      .filter((l) => l.startsWith('kubegate_agent_requests_total{'))
      .reduce((a, l) => a + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    assert.ok(answered >= 12, `kubegate_agent_requests_total ${answered}`);
    assert.ok(value(text, 'kubegate_jit_service_accounts') >= 3, 'accounts counted by the primary');
    assert.equal(value(text, 'kubegate_agent_tunnels_connected'), 4);
    assert.ok(
      value(text, 'kubegate_agent_certificate_expiry_timestamp_seconds') > Date.now() / 1000,
      'the certificate expiry, from the primary',
    );
  });

  test("a revoked grant deletes the user's account, whichever agent worker was told", async () => {
    const id = await grant(stack, { users: ['dee'], role: 'view', clusters: ['dev'] });
    const dee = await stack.kubeconfig('dee');
    for (let i = 0; i < 4; i++)
      await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig: dee });
    const exists = async () =>
      (
        await kubectlOk(['get', 'serviceaccounts', '-n', 'kubegate-system', '-o', 'name'], {
          kubeconfig: stack.cluster.kubeconfig,
        })
      ).includes(`serviceaccount/${serviceAccountName('user', 'dee')}`);
    assert.ok(await exists());
    await ungrant(stack, id);
    await until('the account deleted', async () => ((await exists()) ? undefined : true), 15_000);
  });

  test('an agent worker killed with SIGKILL is started again; requests keep working', async () => {
    const agentIds = async () =>
      (
        await stack.sql<{ agent_id: string }>(
          `SELECT DISTINCT agent_id FROM replica_tunnels WHERE cluster = 'dev'`,
        )
      ).map((r) => r.agent_id);
    const before = new Set(await agentIds());
    const victim = workerPids(agent).get(0)!;
    process.kill(victim, 'SIGKILL');
    for (let i = 0; i < 4; i++)
      await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig });
    await until('agent worker 0 serving again', async () => {
      const p = workerPids(agent).get(0);
      return p !== undefined && p !== victim ? p : undefined;
    });
    await until(
      'tunnels from both agent workers again',
      async () => {
        // The killed worker's tunnels go when their proxy notices; its successor's come.
        const ids = await agentIds();
        return ids.length === 2 && ids.some((id) => !before.has(id)) ? ids : undefined;
      },
      60_000,
    );
    await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig });
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
    // Tunnels on both live workers (a dead worker's rows stay until they are stale: not counted).
    await until(
      'the agent on both workers again',
      async () => {
        const rows = await stack.sql<{ replica_id: string }>(
          `SELECT DISTINCT t.replica_id FROM replica_tunnels t JOIN replicas r ON r.id = t.replica_id
            WHERE t.cluster = 'dev' AND r.heartbeat_at > now() - interval '2 seconds'`,
        );
        return rows.length === 2 ? rows : undefined;
      },
      60_000,
    );
    await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig });
  });

  test('SIGTERM to the primaries drains and stops every worker, and they exit 0', async () => {
    const agentPids = [...workerPids(agent).values()].filter(alive);
    assert.equal(agentPids.length, 2);
    assert.equal(await agent.stop('SIGTERM'), 0, agent.output().slice(-3000));
    for (const p of agentPids) assert.ok(!alive(p), `agent worker ${p} still running`);
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
