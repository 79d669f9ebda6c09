/**
 * P4: many concurrent watches. Memory per watch of proxy and agent (RSS
 * after a forced GC at idle, at 1,000 and at as many watches as the time
 * budget allows toward 10,000), and event latency at 5,000 events/s spread
 * over all of them, kubegate against the same number of direct watches,
 * in alternating rounds.
 */
import { H2Client, type Watch } from '../h2-client.js';
import { diffSpread, fmtSpread, median, percentile } from '../stats.js';
import { cpuSeconds, sleep, type BenchContext, type Target } from '../context.js';
import { mb, rssAfterGc } from '../memory.js';
import type { Row } from '../table.js';

const watchPath = (group: string) =>
  `/api/v1/namespaces/${group}/configmaps?watch=true&allowWatchBookmarks=true`;

async function openWatches(
  client: H2Client,
  t: Target,
  group: string,
  n: number,
  sink: { on: boolean; lat: number[] },
  into: Watch[],
  deadline: number,
): Promise<void> {
  const batch = 200;
  for (let i = 0; i < n && Date.now() < deadline; i += batch) {
    const ws = await Promise.all(
      Array.from({ length: Math.min(batch, n - i) }, () =>
        client.watch(t.prefix + watchPath(group), (ms) => sink.on && sink.lat.push(ms)),
      ),
    );
    const bad = ws.find((w) => w.status !== 200);
    if (bad) throw new Error(`watch through ${t.name} answered ${bad.status}`);
    into.push(...ws);
  }
}

export async function p4Watches(ctx: BenchContext, budgetMs: number): Promise<Row[]> {
  const t = ctx.targets;
  const t0 = Date.now();
  const procs = [ctx.stack.main.proxy, ctx.agent];
  const idle = [await rssAfterGc(procs[0]!), await rssAfterGc(procs[1]!)];
  const kgClient = new H2Client(t.kubegate.base, t.kubegate.ca, t.kubegate.headers);
  const dClient = new H2Client(t.direct.base, t.direct.ca, t.direct.headers);
  const kgSink = { on: false, lat: [] as number[] };
  const dSink = { on: false, lat: [] as number[] };
  const kg: Watch[] = [];
  const direct: Watch[] = [];
  try {
    // Opening watches takes most of the budget; latency rounds need ~15 s.
    const openUntil = t0 + budgetMs - 20_000;
    await openWatches(kgClient, t.kubegate, 'w-kg', 1000, kgSink, kg, openUntil);
    const n1 = kg.length;
    const at1 = [await rssAfterGc(procs[0]!), await rssAfterGc(procs[1]!)];
    const o0 = Date.now();
    await openWatches(kgClient, t.kubegate, 'w-kg', 10_000 - n1, kgSink, kg, openUntil);
    const openRate = (kg.length - n1) / ((Date.now() - o0) / 1000);
    const n2 = kg.length;
    const at2 = [await rssAfterGc(procs[0]!), await rssAfterGc(procs[1]!)];
    ctx.log(`  P4: ${n2} watches through kubegate (${openRate.toFixed(0)}/s to open)`);
    await openWatches(dClient, t.direct, 'w-direct', n2, dSink, direct, Date.now() + 60_000);

    // Event latency at 5,000 events/s, kubegate and direct alternating.
    const p99 = { kg: [] as number[], d: [] as number[] };
    const p50 = { kg: [] as number[], d: [] as number[] };
    for (let r = 0; r < 3; r++) {
      for (const [sink, group, key] of [
        [kgSink, 'w-kg', 'kg'],
        [dSink, 'w-direct', 'd'],
      ] as const) {
        sink.lat = [];
        sink.on = true;
        await ctx.upstream.call({ op: 'emit', group, rate: 5000, ms: 2000 });
        await new Promise((res) => setTimeout(res, 200));
        sink.on = false;
        p99[key].push(percentile(sink.lat, 99));
        p50[key].push(percentile(sink.lat, 50));
      }
    }
    const per = (i: number) => (n2 > n1 ? (at2[i]! - at1[i]!) / (n2 - n1) : NaN);
    const above = (i: number) => at2[i]! - idle[i]!;
    const at10k = (i: number) => above(i) + per(i) * Math.max(0, 10_000 - n2);
    const d99 = diffSpread(p99.kg, p99.d);

    // Every watch cancelled at once (a controller restarting): how long until
    // kubegate serves again, and what the agent's CPU does meanwhile.
    const agentPid = ctx.agent.child.pid!;
    const cpu0 = cpuSeconds(agentPid);
    const c0 = performance.now();
    for (const w of [...kg, ...direct]) w.close();
    let recoveredMs = NaN;
    let lastStatus = '';
    const probe = new H2Client(t.kubegate.base, t.kubegate.ca, t.kubegate.headers);
    while (performance.now() - c0 < 45_000) {
      const r = await probe
        .get(t.kubegate.prefix + '/api/v1/namespaces/default/configmaps/bench-1k', {
          timeoutMs: 2000,
        })
        .catch((err: Error) => ({ status: 0, error: err.message }));
      if (r.status === 200) {
        recoveredMs = performance.now() - c0;
        break;
      }
      lastStatus = `${r.status}`;
      await sleep(200);
    }
    probe.close();
    const agentCpu = cpuSeconds(agentPid) - cpu0;
    const agentExited = ctx.agent.child.exitCode !== null || ctx.agent.child.signalCode !== null;
    const teardown = Number.isFinite(recoveredMs)
      ? `after cancelling all ${n2} at once kubegate answered again in ${(recoveredMs / 1000).toFixed(1)} s (agent CPU ${agentCpu.toFixed(1)} s)`
      : agentExited
        ? `after cancelling all ${n2} at once the agent process ended: its event loop drained (beforeExit, exit code ${ctx.agent.child.exitCode}, no tunnel left and no reconnect pending); kubegate answered ${lastStatus} (cluster offline)`
        : `after cancelling all ${n2} at once kubegate did not answer 200 within 45 s (last ${lastStatus}; agent used ${agentCpu.toFixed(1)} s of CPU meanwhile)`;
    ctx.log(`  P4: ${teardown}`);
    const memMet = mb(at10k(0)) <= 250 && mb(at10k(1)) <= 200;
    return [
      {
        id: 'P4-mem',
        what: `concurrent watches: memory above idle (measured at ${n2}, projected to 10,000)`,
        upstream: 'bench upstream',
        goal: '≤ 250 MB proxy, ≤ 200 MB agent at 10,000',
        result: `10k: proxy ${mb(at10k(0)).toFixed(0)} MB, agent ${mb(at10k(1)).toFixed(0)} MB`,
        absolute: `at ${n2}: proxy +${mb(above(0)).toFixed(0)} MB, agent +${mb(above(1)).toFixed(0)} MB; per watch proxy ${(per(0) / 1024).toFixed(1)} KiB, agent ${(per(1) / 1024).toFixed(1)} KiB; idle RSS proxy ${mb(idle[0]!).toFixed(0)} MB, agent ${mb(idle[1]!).toFixed(0)} MB`,
        verdict: n2 < 2 * n1 ? 'error' : memMet ? 'met' : 'not met',
      },
      {
        id: 'P4-lat',
        what: `watch event latency at 5,000 events/s over ${n2} watches, over direct`,
        upstream: 'bench upstream',
        goal: 'p99 ≤ direct + 2 ms',
        result: `kubegate p99 ${fmtSpread(d99, 2, ' ms')}, p50 ${fmtSpread(diffSpread(p50.kg, p50.d), 2, ' ms')}`,
        absolute: `p50/p99: direct ${median(p50.d).toFixed(2)}/${median(p99.d).toFixed(2)} ms, kubegate ${median(p50.kg).toFixed(2)}/${median(p99.kg).toFixed(2)} ms`,
        verdict: d99.median <= 2 ? 'met' : 'not met',
      },
      {
        id: 'P4-teardown',
        what: `all ${n2} watches cancelled at once (a controller restarting)`,
        upstream: 'bench upstream',
        goal: 'kubegate keeps serving (no goal number for this row)',
        result: teardown,
        absolute: 'polled every 200 ms for 45 s',
        verdict: agentExited ? 'error' : Number.isFinite(recoveredMs) ? 'info' : 'not met',
      },
    ];
  } finally {
    for (const w of [...kg, ...direct]) w.close();
    kgClient.close();
    dClient.close();
    await ctx.upstream.call({ op: 'closeWatches', group: 'w-kg' });
    await ctx.upstream.call({ op: 'closeWatches', group: 'w-direct' });
  }
}
