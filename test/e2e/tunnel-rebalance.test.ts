/**
 * The agent's rebalance probe never cuts open watches. With one proxy replica
 * the agent's two tunnels must share it; the periodic probe (which looks for
 * replicas that came since the last hello) then reaches that same replica
 * again. It used to accept the probe and retire a tunnel carrying watches, so
 * a watch held through kubegate stopped receiving events about two minutes in
 * (the 6-minute test in test/long caught it). Here the rebalance interval is
 * shortened so probes come every few seconds, and both kinds of watch must see
 * every change throughout.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { startWatchers } from '../support/watchers.js';

const NS = 'rebalance';
/** Probes run every fourth check; with 1 s checks that is every ~4 s. */
const REBALANCE = '1s';
const HOLD_MS = 30_000;
const TICK_MS = 3_000;
/** Budget for one event to reach a watcher on a loaded 2-core machine. */
const EVENT_BUDGET_MS = 8_000;

let stack: Stack;
let kubeconfig: string;

describe('agent rebalance probes with one replica', { timeout: 300_000 }, () => {
  before(async () => {
    stack = await startStack({
      log: (m) => process.stderr.write(`# ${m}\n`),
      agentEnv: { KUBEGATE_REBALANCE_INTERVAL: REBALANCE },
    });
    await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, { users: ['rhea'], role: 'view', clusters: ['dev'], namespaces: [NS] });
    kubeconfig = await stack.kubeconfig('rhea');
  });
  after(async () => {
    await stack?.stop();
  });

  test('watches keep receiving every event while the agent probes', async () => {
    const w = startWatchers({
      kubeconfig,
      publicUrl: stack.publicUrl,
      cluster: 'dev',
      namespace: NS,
      prefix: 'probe-',
    });
    const agent = stack.agents.get('dev')!;
    const probesBefore = countProbes(agent.output());
    const created = new Map<string, number>();
    try {
      // Both watches are open and delivering before the clock starts.
      await kubectlOk(['create', 'configmap', 'probe-start', '-n', NS], {
        kubeconfig: stack.cluster.kubeconfig,
      });
      await waitUntil(() => w.seen.kubectl.has('probe-start') && w.seen.http1.has('probe-start'));
      const t0 = Date.now();
      for (let i = 0; Date.now() - t0 < HOLD_MS; i++) {
        const name = `probe-${i}`;
        await kubectlOk(['create', 'configmap', name, '-n', NS], {
          kubeconfig: stack.cluster.kubeconfig,
        });
        created.set(name, Date.now());
        await new Promise((r) => setTimeout(r, TICK_MS));
      }
      await waitUntil(() =>
        [...created.keys()].every((n) => w.seen.kubectl.has(n) && w.seen.http1.has(n)),
      );
      for (const [name, at] of created) {
        for (const [who, map] of Object.entries(w.seen)) {
          const got = map.get(name);
          assert.ok(got !== undefined, `${who} watch never saw ${name} (${w.ended() ?? 'open'})`);
          assert.ok(got - at < EVENT_BUDGET_MS, `${who} saw ${name} ${got - at} ms late`);
        }
      }
      assert.equal(w.ended(), undefined, 'both watches are still open');
      // The probes really ran meanwhile, so this test exercises them.
      const probes = countProbes(agent.output()) - probesBefore;
      assert.ok(probes >= 3, `the agent probed ${probes} times during the watch`);
    } finally {
      w.stop();
    }
  });
});

function countProbes(log: string): number {
  return log.match(/"msg":"rebalancing: probing for another replica"/g)?.length ?? 0;
}

async function waitUntil(ok: () => boolean, budgetMs = 20_000): Promise<void> {
  const end = Date.now() + budgetMs;
  while (!ok()) {
    if (Date.now() > end) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}
