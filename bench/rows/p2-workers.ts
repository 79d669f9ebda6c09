/**
 * P2-workers: one proxy replica on more than one core (KUBEGATE_WORKERS,
 * common/workers.ts). The same 1 KiB GETs over the TLS + HTTP/2 front
 * (h2load 8×8) against a replica with one worker and a replica with two
 * (each with its own agent keeping one tunnel per worker), interleaved
 * rounds. CPU is read for the replica's whole process tree (the primary and
 * its workers), so the row can say req/s per core of proxy CPU used and how
 * far two workers go beyond one on this machine, where the load generator,
 * the agent and the upstream share the same two cores.
 */
import { readFileSync } from 'node:fs';
import { h2load } from '../h2load.js';
import { median } from '../stats.js';
import { cpuSeconds, rotate, url, type BenchContext, type Target } from '../context.js';
import type { Row } from '../table.js';

const path = '/api/v1/namespaces/default/configmaps/bench-1k';

/** `pid` and its descendants (the primary's workers). */
function tree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      for (const t of readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').split(' '))
        if (t.trim()) out.push(Number(t));
    } catch {
      // gone
    }
  }
  return out;
}

const treeCpu = (pid: number) => tree(pid).reduce((a, p) => a + cpuSeconds(p), 0);

export async function p2Workers(ctx: BenchContext): Promise<Row[]> {
  const one: Target = ctx.targets.kubegate;
  const replica = await ctx.stack.startReplica('proxy-2w', { KUBEGATE_WORKERS: '2' });
  const agent = await ctx.stack.startAgent('bench', {
    ...ctx.agentEnv,
    KUBEGATE_TUNNEL_ADDRESS: replica.tunnelAddress,
    KUBEGATE_TUNNELS: '2',
    KUBEGATE_REBALANCE_INTERVAL: '1s',
  });
  const two: Target = { ...one, base: replica.publicUrl };
  // Both workers serving and each holding a tunnel before anything is measured.
  for (let i = 0; i < 100; i++) {
    const rows = await ctx.stack.sql<{ n: number }>(
      `SELECT count(DISTINCT t.replica_id)::int AS n FROM replica_tunnels t
         WHERE t.cluster = 'bench' AND t.replica_id LIKE 'proxy-2w-w%'`,
    );
    if (rows[0]!.n === 2) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const pid = new Map<Target, { proxy: number; agent: number }>([
    [one, { proxy: ctx.stack.main.proxy.child.pid!, agent: ctx.agent.child.pid! }],
    [two, { proxy: replica.proxy.child.pid!, agent: agent.child.pid! }],
  ]);
  const res = new Map<
    Target,
    { rps: number[]; proxyCores: number[]; perCore: number[]; us: number[] }
  >([one, two].map((t) => [t, { rps: [], proxyCores: [], perCore: [], us: [] }]));
  for (let r = 0; r < 3; r++) {
    for (const t of rotate([one, two], r)) {
      const p = pid.get(t)!;
      const c0 = { proxy: treeCpu(p.proxy), agent: cpuSeconds(p.agent) };
      const t0 = performance.now();
      const out = await h2load({
        url: url(t, path),
        headers: t.headers,
        clients: 8,
        streams: 8,
        durationS: 4,
        warmUpS: 1,
      });
      const wall = (performance.now() - t0) / 1000;
      const proxy = treeCpu(p.proxy) - c0.proxy;
      const agentCpu = cpuSeconds(p.agent) - c0.agent;
      const reqs = out.reqPerSec * 5;
      const m = res.get(t)!;
      m.rps.push(out.reqPerSec);
      m.proxyCores.push(proxy / wall);
      m.perCore.push(reqs / proxy);
      m.us.push(((proxy + agentCpu) * 1e6) / reqs);
    }
    ctx.log(`  P2-workers round ${r + 1}/3`);
  }
  await agent.stop();
  await replica.stop();
  const a = res.get(one)!;
  const b = res.get(two)!;
  const scale = median(b.rps) / median(a.rps);
  const perCore2 = median(b.perCore);
  return [
    {
      id: 'P2-workers',
      what: '1 KiB GET throughput (h2load 8×8) on one replica with 1 and 2 workers (KUBEGATE_WORKERS)',
      upstream: 'bench upstream',
      goal: '(reference) req/s per core of proxy CPU',
      result: `2 workers: ${(scale * 100).toFixed(0)}% of 1 worker's req/s; per core of proxy CPU ${median(a.perCore).toFixed(0)} (1 worker) and ${perCore2.toFixed(0)} req/s (2); projected at 4 cores: ${(perCore2 * 4).toFixed(0)} req/s of proxy capacity if per-core rate holds`,
      absolute: `req/s: 1 worker ${median(a.rps).toFixed(0)}, 2 workers ${median(b.rps).toFixed(0)}; proxy cores busy ${median(a.proxyCores).toFixed(2)} and ${median(b.proxyCores).toFixed(2)}; proxy + agent CPU µs/req ${median(a.us).toFixed(0)} and ${median(b.us).toFixed(0)}; the agent, upstream and h2load share the same 2 cores`,
      verdict: 'info',
    },
  ];
}
