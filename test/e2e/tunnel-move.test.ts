/**
 * A tunnel moved to a new replica keeps the watches it carries. The agent's
 * two tunnels start on replica A (the only one its load-balanced tunnel
 * address reaches); watches are opened through A, so both tunnels carry some.
 * Replica B then starts and the balancer sends new tunnel connections to B
 * only, so the agent's rebalance probe reaches B and the agent moves one
 * tunnel there, make before break, retiring the old one on A with a graceful
 * GOAWAY. Every watch — kubectl's own and plain HTTP/1.1 ones — must keep
 * receiving events for 20 s after the move; new requests meanwhile must all
 * succeed (a request sent on the retired tunnel would fail: its session
 * refuses new streams), and the retired tunnel must close once its last
 * stream has ended.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { startStack, type Stack } from '../support/stack.js';
import { startLoadBalancer, type LoadBalancer } from '../support/lb.js';
import { kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { startWatchers, type Watchers } from '../support/watchers.js';
import { httpGet, until } from '../support/http.js';
import type { Proc } from '../support/proc.js';

const NS = 'moving';
/** Plain HTTP/1.1 watches besides the two in watchers.ts, so both tunnels carry several. */
const EXTRA_WATCHES = 6;
const HOLD_MS = 20_000;
const TICK_MS = 2_000;
/** Budget for one event to reach a watcher on a loaded 2-core machine. */
const EVENT_BUDGET_MS = 8_000;
const log = (m: string) => process.stderr.write(`# ${m}\n`);

let stack: Stack;
let lb: LoadBalancer;
let agent: Proc;
let kubeconfig: string;
let token: string;
let ca: string;

/** Tunnels each replica holds for `dev`, from the replica registry. */
async function tunnelsByReplica(): Promise<Map<string, number>> {
  const rows = await stack.sql<{ replica_id: string; n: string }>(
    `SELECT replica_id, count(*) AS n FROM replica_tunnels WHERE cluster = 'dev' GROUP BY replica_id`,
  );
  return new Map(rows.map((r) => [r.replica_id, Number(r.n)]));
}

const replicaOf = (p: Proc) =>
  p.waitFor(/kubegate proxy listening/).then((l) => (JSON.parse(l) as { replica: string }).replica);

interface PlainWatch {
  seen: Map<string, number>;
  ended: () => string | undefined;
  stop: () => void;
}

/** One HTTP/1.1 ConfigMap watch through the front, noting when it first saw each object. */
function plainWatch(url: string, prefix: string): PlainWatch {
  const seen = new Map<string, number>();
  let ended: string | undefined;
  const u = new URL(url);
  const req = https.request(
    {
      host: u.hostname,
      port: u.port,
      path: `/k8s/dev/api/v1/namespaces/${NS}/configmaps?watch=1`,
      ca,
      agent: false,
      headers: { authorization: `Bearer ${token}` },
    },
    (res) => {
      if (res.statusCode !== 200) ended = `answered ${res.statusCode}`;
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        const lines = buf.split('\n');
        buf = lines.pop()!;
        for (const l of lines) {
          const name = (JSON.parse(l) as { object: { metadata: { name: string } } }).object.metadata
            .name;
          if (name.startsWith(prefix) && !seen.has(name)) seen.set(name, Date.now());
        }
      });
      res.on('close', () => (ended ??= 'closed'));
    },
  );
  req.on('error', (err) => (ended ??= `failed: ${err.message}`));
  req.end();
  return { seen, ended: () => ended, stop: () => req.destroy() };
}

const createConfigMap = (name: string) =>
  kubectlOk(['create', 'configmap', name, '-n', NS], { kubeconfig: stack.cluster.kubeconfig });

describe('a tunnel moved to a new replica keeps its open watches', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({
      log,
      proxyEnv: {
        KUBEGATE_REPLICA_HEARTBEAT: '500ms',
        KUBEGATE_REPLICA_STALE_AFTER: '3s',
      },
      // Checks every ~1 s; a probe for new replicas every fourth.
      agentEnv: { KUBEGATE_REBALANCE_INTERVAL: '1s' },
    });
    // The agent dials a balanced address that reaches replica A only, for now.
    lb = await startLoadBalancer([stack.env.KUBEGATE_TUNNEL_LISTEN!]);
    await stack.agents.get('dev')!.stop();
    agent = await stack.startAgent('dev', lb.address);
    await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, { users: ['mira'], role: 'view', clusters: ['dev'], namespaces: [NS] });
    kubeconfig = await stack.kubeconfig('mira');
    const cfg = readFileSync(kubeconfig, 'utf8');
    token = /token: (kg_\S+)/.exec(cfg)![1]!;
    ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(cfg)![1]!, 'base64').toString();
    const a = await replicaOf(stack.proxy);
    await until(
      async () => (await tunnelsByReplica()).get(a) === 2,
      60_000,
      'both agent tunnels are on replica A',
    );
  });
  after(async () => {
    await lb?.close();
    await stack?.stop();
  });

  test('every watch keeps receiving events for 20 s after the move', async () => {
    const w: Watchers = startWatchers({
      kubeconfig,
      publicUrl: stack.publicUrl,
      cluster: 'dev',
      namespace: NS,
      prefix: 'mv-',
    });
    const plain: PlainWatch[] = [];
    const all = () => [
      { name: 'kubectl', seen: w.seen.kubectl },
      { name: 'http1', seen: w.seen.http1 },
      ...plain.map((p, i) => ({ name: `http1-${i}`, seen: p.seen })),
    ];
    const ended = () =>
      w.ended() ??
      plain.map((p, i) => p.ended() && `http1-${i}: ${p.ended()}`).find(Boolean) ??
      undefined;
    try {
      for (let i = 0; i < EXTRA_WATCHES; i++) plain.push(plainWatch(stack.publicUrl, 'mv-'));
      // Every watch is open and delivering before anything moves.
      await createConfigMap('mv-start');
      await until(
        async () => all().every((x) => x.seen.has('mv-start')),
        30_000,
        'every watch saw mv-start',
      );
      // The proxy spreads requests over the least-loaded tunnel: both carry watches.
      const a = await replicaOf(stack.proxy);
      assert.equal((await tunnelsByReplica()).get(a), 2, 'both tunnels on A before the move');

      // Closes of a retired tunnel (a probe that found no new replica also
      // retires one, carrying nothing) and tunnels lost: counted from here.
      const count = (re: RegExp) => agent.output().match(re)?.length ?? 0;
      const closes = () => count(/"msg":"retired tunnel closed"/g) + count(/"msg":"tunnel down"/g);
      const closesBefore = closes();
      // Replica B comes; new tunnel connections reach B only.
      const b = await stack.startReplica();
      const bId = await replicaOf(b.proxy);
      lb.setBackends([b.env.KUBEGATE_TUNNEL_LISTEN!]);
      const moved = await agent.waitFor(/"msg":"tunnel moved; retiring the old one"/, 90_000);
      const movedAt = Date.now();
      log(`moved: ${moved}`);
      await until(
        async () => (await tunnelsByReplica()).get(bId) === 1,
        20_000,
        'one tunnel now on replica B',
      );

      const created = new Map<string, number>();
      for (let i = 0; Date.now() - movedAt < HOLD_MS; i++) {
        const name = `mv-${i}`;
        await createConfigMap(name);
        created.set(name, Date.now());
        await new Promise((r) => setTimeout(r, TICK_MS));
      }
      await until(
        async () => [...created.keys()].every((n) => all().every((x) => x.seen.has(n))),
        EVENT_BUDGET_MS,
        'every watch saw every ConfigMap',
      ).catch(() => undefined);
      let worst = 0;
      for (const [name, at] of created) {
        for (const x of all()) {
          worst = Math.max(worst, (x.seen.get(name) ?? Infinity) - at);
          const got = x.seen.get(name);
          assert.ok(got !== undefined, `${x.name} watch never saw ${name} (${ended() ?? 'open'})`);
          assert.ok(got - at < EVENT_BUDGET_MS, `${x.name} saw ${name} ${got - at} ms late`);
        }
      }
      assert.equal(ended(), undefined, 'every watch is still open');
      log(
        `${all().length} watches saw ${created.size} ConfigMaps after the move, worst lag ${worst} ms`,
      );
      assert.equal(closes(), closesBefore, 'the retired tunnel stays up while it carries watches');

      // New requests go to A's remaining tunnel (or through B), never the retired one.
      for (let i = 0; i < 10; i++) {
        const r = await httpGet(
          `${stack.publicUrl}/k8s/dev/api/v1/namespaces/${NS}/configmaps?limit=1`,
          { token, ca },
        );
        assert.equal(r.status, 200, r.body);
      }
      // With its last stream gone, the retired tunnel closes (it does not linger).
      w.stop();
      for (const p of plain) p.stop();
      await until(
        async () => closes() > closesBefore,
        30_000,
        'the retired tunnel closed after its watches',
      );
      const closed = await agent.waitFor(/"msg":"retired tunnel closed"/);
      const { lingeredMs } = JSON.parse(closed) as { lingeredMs: number };
      log(`retired tunnel closed after ${lingeredMs} ms`);
      // It carried watches the whole hold (one carrying nothing closes at once).
      assert.ok(lingeredMs >= HOLD_MS, `the retired tunnel lingered ${lingeredMs} ms`);
    } finally {
      w.stop();
      for (const p of plain) p.stop();
    }
  });
});
