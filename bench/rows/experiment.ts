/**
 * A/B of a proposed change before it is made: the main replica (as built)
 * against a replica started with KG_BENCH_EXPERIMENT=<name> (gc-hook.ts
 * applies the change from outside the program), each with its own agent,
 * same upstream, interleaved rounds. `make bench` runs it when KG_BENCH_AB
 * names an experiment; the result is an "X-<name>" row.
 *
 * `KG_BENCH_AB=baseline` with KG_BENCH_BASELINE=<checkout> (another commit,
 * built: `git worktree add <dir> <commit>`, then tsc there) compares whole
 * builds instead: a replica and an agent of that checkout are "before", the
 * main ones "after" — a change to the proxy or agent measured in one
 * sitting. CPU per request of proxy + agent is read for both.
 */
import { http1Load } from '../http1-load.js';
import { h2load } from '../h2load.js';
import { fmtSpread, median, percentile, ratioSpread, spread } from '../stats.js';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { cpuSeconds, rotate, url, type BenchContext, type Target } from '../context.js';
import type { Row } from '../table.js';

const path = '/api/v1/namespaces/default/configmaps/bench-1k';

export async function experimentRow(ctx: BenchContext, name: string): Promise<Row[]> {
  const baseline = name === 'baseline' ? process.env.KG_BENCH_BASELINE : undefined;
  if (name === 'baseline' && !baseline)
    throw new Error(
      'KG_BENCH_AB=baseline needs KG_BENCH_BASELINE=<a built checkout of the commit to compare with>',
    );
  const other = baseline
    ? { KG_KUBEGATE_BIN: join(baseline, 'bin', 'kubegate.js') }
    : { KG_BENCH_EXPERIMENT: name };
  const replica = await ctx.stack.startReplica(`proxy-x-${name}`, other);
  const agent = await ctx.stack.startAgent(
    'bench',
    { ...ctx.agentEnv, ...other, KUBEGATE_TUNNEL_ADDRESS: replica.tunnelAddress },
    baseline !== undefined, // the baseline's agent is measured as the main one is
  );
  const main: Target = ctx.targets.kubegate;
  const x: Target = { ...main, base: replica.publicUrl };
  // The baseline is "before"; an experiment is "after".
  const [a, b] = baseline ? [x, main] : [main, x];
  const pids = new Map<Target, number[]>([
    [main, [ctx.stack.main.proxy.child.pid!, ctx.agent.child.pid!]],
    [x, [replica.proxy.child.pid!, agent.child.pid!]],
  ]);
  const cpu = { before: [] as number[], after: [] as number[] };
  for (let i = 0; i < 50; i++) {
    const r = await http1Load({
      url: url(x, path),
      headers: x.headers,
      connections: 1,
      durationS: 1,
    });
    if (r.latenciesMs.length) break;
  }
  // The main replica and agent have run every row before this one; the new ones get the same
  // load first (JIT-compiled code, connections, the JIT account), or "before" and "after"
  // would differ by warmth as much as by the change.
  for (const t of [x, main, x])
    await h2load({
      url: url(t, path),
      headers: t.headers,
      clients: 8,
      streams: 8,
      durationS: 4,
      warmUpS: 1,
    });
  const key = (t: Target) => (t === a ? 'before' : 'after');
  const p50 = { before: [] as number[], after: [] as number[] };
  const h1 = { before: [] as number[], after: [] as number[] };
  const h2 = { before: [] as number[], after: [] as number[] };
  const rounds = Number(process.env.KG_BENCH_AB_ROUNDS ?? (baseline ? 5 : 3));
  for (let r = 0; r < rounds; r++) {
    for (const t of rotate([a, b], r)) {
      const lat = await http1Load({
        url: url(t, path),
        headers: t.headers,
        connections: 8,
        durationS: 3,
        rate: 200,
      });
      p50[key(t)].push(percentile(lat.latenciesMs, 50));
      const thr = await http1Load({
        url: url(t, path),
        headers: t.headers,
        connections: 32,
        durationS: 3,
      });
      h1[key(t)].push(thr.reqPerSec);
      const [proxyPid, agentPid] = pids.get(t)!;
      const c0 = cpuSeconds(proxyPid!) + cpuSeconds(agentPid!);
      const t2 = await h2load({
        url: url(t, path),
        headers: t.headers,
        clients: 8,
        streams: 8,
        durationS: 3,
        warmUpS: 1,
      });
      h2[key(t)].push(t2.reqPerSec);
      // Over warm-up + measurement (≈ rate × 4 s requests), as P2 counts it.
      cpu[key(t)].push(
        ((cpuSeconds(proxyPid!) + cpuSeconds(agentPid!) - c0) * 1e6) / (t2.reqPerSec * 4),
      );
    }
  }
  await replica.stop();
  await agent.stop();
  const pct = (s: ReturnType<typeof spread>) =>
    fmtSpread({ ...s, median: s.median * 100, min: s.min * 100, max: s.max * 100 }, 0);
  return [
    {
      id: `X-${name}`,
      what: baseline
        ? `this build against commit ${commitOf(baseline)}'s (before), same run`
        : `experiment "${name}": after / before, same run`,
      upstream: 'bench upstream',
      goal: '(proposed change)',
      result: `HTTP/1.1 p50 at 200 req/s ${median(p50.before).toFixed(2)} → ${median(p50.after).toFixed(2)} ms; HTTP/1.1 throughput ${pct(ratioSpread(h1.after, h1.before))}%; h2 throughput ${pct(ratioSpread(h2.after, h2.before))}%`,
      absolute: `req/s HTTP/1.1 ${median(h1.before).toFixed(0)} → ${median(h1.after).toFixed(0)}, h2 ${median(h2.before).toFixed(0)} → ${median(h2.after).toFixed(0)}; proxy + agent CPU µs per h2 request ${median(cpu.before).toFixed(0)} → ${median(cpu.after).toFixed(0)} (${pct(ratioSpread(cpu.after, cpu.before))}%)`,
      verdict: 'info',
    },
  ];
}

/** The short commit of a checkout (the row names the baseline by it, not by a local path). */
function commitOf(dir: string): string {
  const r = spawnSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'an unknown commit';
}
