/**
 * LONG-RUNNING (about 7 minutes): a watch held through kubegate for longer than six minutes
 * keeps receiving events the whole time. Six minutes is past every default cut-off on the path
 * (Node's 300 s requestTimeout, idle timeouts of HTTP/2 sessions and of the tunnel), so a
 * watch that survives it is cut only by the client's timeoutSeconds or the apiserver. Two
 * watches run side by side: kubectl's (HTTP/2) and a plain HTTP/1.1 one. A ConfigMap is
 * created every 15 s directly on the cluster; each watch must print every one of them,
 * promptly, and still be open at the end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk } from '../support/kubectl.js';
import { startWatchers } from '../support/watchers.js';
import { grant } from '../support/grants.js';

const NS = 'long-watch';
const HOLD_MS = 6.5 * 60_000;
const TICK_MS = 15_000;
/** Budget for one event to reach a watcher on a loaded 2-core machine. */
const EVENT_BUDGET_MS = 10_000;

let stack: Stack;
let kubeconfig: string;

describe('LONG: a watch held for more than 6 minutes', { timeout: 15 * 60_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, { users: ['wanda'], role: 'view', clusters: ['dev'], namespaces: [NS] });
    kubeconfig = await stack.kubeconfig('wanda', [], '2h');
  });
  after(async () => {
    await stack?.stop();
  });

  test('kubectl (h2) and HTTP/1.1 watches receive every event for 6.5 minutes', async () => {
    const w = startWatchers({
      kubeconfig,
      publicUrl: stack.publicUrl,
      cluster: 'dev',
      namespace: NS,
      prefix: 'tick-',
    });
    const { seen } = w;
    const created = new Map<string, number>();
    const t0 = Date.now();
    try {
      for (let i = 0; Date.now() - t0 < HOLD_MS; i++) {
        const name = `tick-${i}`;
        await kubectlOk(['create', 'configmap', name, '-n', NS], {
          kubeconfig: stack.cluster.kubeconfig,
        });
        created.set(name, Date.now());
        await new Promise((r) => setTimeout(r, TICK_MS));
        for (const [who, map] of Object.entries(seen)) {
          assert.ok(
            map.has(name),
            `${who} watch saw ${name} within ${TICK_MS} ms, ${Math.round((Date.now() - t0) / 1000)} s in (${w.ended() ?? 'both watches open'})`,
          );
        }
      }
      const heldMs = Date.now() - t0;
      assert.ok(heldMs > 6 * 60_000, `held ${heldMs} ms`);
      assert.equal(w.ended(), undefined, 'both watches are still open');
      const lags: number[] = [];
      for (const [name, at] of created) {
        for (const map of Object.values(seen)) {
          const lag = map.get(name)! - at;
          assert.ok(lag < EVENT_BUDGET_MS, `${name} arrived ${lag} ms after it was created`);
          lags.push(lag);
        }
      }
      lags.sort((a, b) => a - b);
      process.stderr.write(
        `# long watch: held ${Math.round(heldMs / 1000)} s, ${created.size} events per watch, lag p50 ${lags[Math.floor(lags.length / 2)]} ms, max ${lags[lags.length - 1]} ms\n`,
      );
    } finally {
      w.stop();
    }
  });
});
