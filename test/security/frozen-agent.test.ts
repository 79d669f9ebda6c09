/**
 * Attack/fault: a silently dead tunnel (issue #17, item 5). An agent frozen
 * with SIGSTOP (as a partitioned cluster network would leave it) keeps its
 * TCP connections open and answers nothing. Before the fix the next request
 * through its tunnel hung 19–24 s (the periodic tunnel ping) before a 502.
 *
 * On the real stack (PostgreSQL, the real apiserver, proxy and agents as
 * processes, the real kubectl):
 * - a quiet watch on a live agent is not ended by the probing;
 * - with a second agent process for the same cluster, every kubectl request
 *   in flight at the freeze or sent after it succeeds within 5 s (failed over);
 * - with only the frozen agent, every request ends within 5 s: reads with a
 *   Status saying the tunnel stopped answering, a create with one saying it
 *   may have reached the cluster and was not sent again;
 * - after SIGCONT kubectl works again.
 * The latency distributions are printed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startStack, type Stack } from '../support/stack.js';
import type { Proc } from '../support/proc.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { until } from '../support/http.js';
import { percentile } from '../../bench/stats.js';

const NS = 'frozen';
const log = (m: string) => process.stderr.write(`# ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: Stack;
let kubeconfig: string;
const frozen = new Set<Proc>();

function freeze(p: Proc): void {
  p.child.kill('SIGSTOP');
  frozen.add(p);
}
function thaw(p: Proc): void {
  p.child.kill('SIGCONT');
  frozen.delete(p);
}

interface Timed {
  /** Start, ms relative to the freeze (negative: before it). */
  at: number;
  ms: number;
  code: number | null;
  stderr: string;
  what: string;
}

/**
 * kubectl workers running `args` back to back from now until `untilMs` after
 * the freeze, which happens `freezeAfterMs` from now.
 */
async function loadAcrossFreeze(
  agent: Proc,
  workers: { what: string; args: (i: number) => string[] }[],
  freezeAfterMs: number,
  untilMs: number,
): Promise<Timed[]> {
  const out: Timed[] = [];
  let freezeAt = Number.POSITIVE_INFINITY;
  const stopAt = () => freezeAt + untilMs;
  let n = 0;
  const run = async (w: (typeof workers)[number]) => {
    while (performance.now() < stopAt()) {
      const t0 = performance.now();
      const r = await kubectl([...w.args(n++), '--request-timeout=60s'], {
        kubeconfig,
        timeoutMs: 90_000,
      });
      out.push({
        at: Math.round(t0 - freezeAt),
        ms: Math.round(performance.now() - t0),
        code: r.code,
        stderr: r.stderr.trim(),
        what: w.what,
      });
    }
  };
  const running = Promise.all(workers.map(run));
  await sleep(freezeAfterMs);
  freeze(agent);
  freezeAt = performance.now();
  log(`agent ${agent.child.pid} frozen (SIGSTOP)`);
  await running;
  return out;
}

function distribution(label: string, rs: Timed[]): void {
  const ms = rs.map((r) => r.ms);
  log(
    `${label}: ${rs.length} requests, latency ms p50 ${Math.round(percentile(ms, 50))}, p90 ${Math.round(percentile(ms, 90))}, p99 ${Math.round(percentile(ms, 99))}, max ${Math.max(...ms)}; ` +
      `ok ${rs.filter((r) => r.code === 0).length}, failed ${rs.filter((r) => r.code !== 0).length}`,
  );
  const hist = new Map<number, number>();
  for (const v of ms)
    hist.set(Math.floor(v / 500) * 500, (hist.get(Math.floor(v / 500) * 500) ?? 0) + 1);
  log(
    `${label}: histogram (500 ms buckets) ` +
      [...hist.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([b, c]) => `${b}–${b + 500}: ${c}`)
        .join(', '),
  );
}

/** Requests that were in flight at the freeze or started after it. */
const touched = (rs: Timed[]) => rs.filter((r) => r.at + r.ms > 0);

describe(
  'a frozen agent: requests fail over or end with a clear Status within 5 s',
  { timeout: 600_000 },
  () => {
    before(async () => {
      stack = await startStack({ log });
      await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
      await grant(stack, { users: ['fay'], role: 'edit', clusters: ['dev'], namespaces: [NS] });
      kubeconfig = await stack.kubeconfig('fay');
      // The JIT account exists before the clock starts.
      await kubectlOk(['get', 'configmaps', '-n', NS], { kubeconfig });
    });
    after(async () => {
      for (const p of frozen) thaw(p);
      await stack?.stop();
    });

    test('a quiet watch on a live agent is not ended by the probing', async () => {
      const watch = spawn(
        kubectlPath(),
        ['--kubeconfig', kubeconfig, 'get', 'configmaps', '-n', NS, '-w', '-o', 'name'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      watch.stdout.on('data', (b: Buffer) => (out += b.toString()));
      try {
        // Quiet for several probe timeouts, while other requests wait and probe.
        for (let i = 0; i < 4; i++) {
          await kubectlOk(['get', 'configmaps', '-n', NS], { kubeconfig });
          await sleep(1500);
        }
        assert.equal(watch.exitCode, null, 'the watch is still open');
        await kubectlOk(['create', 'configmap', 'quiet-watch', '-n', NS], {
          kubeconfig: stack.cluster.kubeconfig,
        });
        await until(
          async () => out.includes('configmap/quiet-watch'),
          10_000,
          'the watch sees the event',
        );
      } finally {
        watch.kill();
      }
    });

    test('two agents: requests in flight at the freeze and after it fail over to the other agent', async () => {
      const first = stack.agents.get('dev')!;
      const second = await stack.startAgent('dev', stack.env.KUBEGATE_TUNNEL_ADDRESS);
      await sleep(1000); // both of its tunnels up
      await kubectlOk(['get', 'configmaps', '-n', NS], { kubeconfig });
      const rs = await loadAcrossFreeze(
        first,
        [0, 1, 2, 3].map(() => ({
          what: 'get',
          args: () => ['get', 'configmaps', '-n', NS, '-o', 'name'],
        })),
        1500,
        8000,
      );
      const hit = touched(rs);
      distribution('two agents, one frozen', hit);
      assert.ok(hit.length >= 8, `${hit.length} requests overlapped the freeze`);
      for (const r of hit) {
        assert.equal(r.code, 0, `a ${r.what} at ${r.at} ms failed after failover: ${r.stderr}`);
        assert.ok(r.ms < 5000, `a ${r.what} at ${r.at} ms took ${r.ms} ms`);
      }
      assert.match(stack.proxy.output(), /tunnel stopped answering: retiring it/);
      assert.match(stack.proxy.output(), /request sent again over another tunnel/);

      // Back to one agent: the second goes, the first thaws and serves again.
      await second.stop();
      stack.agents.delete(`dev@${stack.env.KUBEGATE_TUNNEL_ADDRESS}`);
      thaw(first);
      const back = await until(
        async () => (await kubectl(['get', 'configmaps', '-n', NS], { kubeconfig })).code === 0,
        60_000,
        'kubectl works through the thawed agent',
      );
      log(`thawed agent serving again after ${back} ms`);
    });

    test('one agent frozen: every request ends within 5 s with a Status that says why; after SIGCONT it works', async () => {
      const agent = stack.agents.get('dev')!;
      const rs = await loadAcrossFreeze(
        agent,
        [
          ...[0, 1, 2].map(() => ({
            what: 'get',
            args: () => ['get', 'configmaps', '-n', NS, '-o', 'name'],
          })),
          {
            what: 'create',
            args: (i: number) => ['create', 'configmap', `during-freeze-${i}`, '-n', NS],
          },
        ],
        1500,
        6000,
      );
      const hit = touched(rs);
      distribution('one agent, frozen', hit);
      assert.ok(hit.length >= 6, `${hit.length} requests overlapped the freeze`);
      for (const r of hit) {
        assert.ok(r.ms < 5000, `a ${r.what} at ${r.at} ms took ${r.ms} ms: ${r.stderr}`);
        if (r.code === 0) continue; // answered before the agent froze
        assert.match(
          r.stderr,
          /stopped answering|is offline: no kubegate agent is connected/,
          `a ${r.what} at ${r.at} ms (exit ${r.code}, ${r.ms} ms): ${r.stderr}`,
        );
      }
      const failed = hit.filter((r) => r.code !== 0);
      assert.ok(failed.length >= 4, 'requests after the freeze failed');
      assert.ok(
        failed.some((r) => /stopped answering/.test(r.stderr)),
        'at least one says the tunnel stopped answering',
      );
      const creates = failed.filter(
        (r) => r.what === 'create' && /stopped answering/.test(r.stderr),
      );
      for (const c of creates) assert.match(c.stderr, /may have reached the cluster/);
      log(`sample Status: ${failed.find((r) => /stopped answering/.test(r.stderr))?.stderr ?? ''}`);

      thaw(agent);
      const back = await until(
        async () => (await kubectl(['get', 'configmaps', '-n', NS], { kubeconfig })).code === 0,
        60_000,
        'kubectl works after SIGCONT',
      );
      log(`service back ${back} ms after SIGCONT`);
      assert.equal(agent.child.exitCode, null, 'the agent process did not exit');
      assert.equal(stack.proxy.child.exitCode, null, 'the proxy did not exit');
    });
  },
);
