/**
 * P2-workers: a proxy replica and an agent on more than one core
 * (KUBEGATE_WORKERS, common/workers.ts). The same 1 KiB GETs over the TLS +
 * HTTP/2 front (h2load 8×8) against the main replica and agent (one process
 * each) and a replica and agent with two workers each (one tunnel per agent
 * worker), interleaved rounds. CPU is read for each whole process tree (the
 * primaries and their workers), so the row can say req/s per core of
 * kubegate CPU used and how far two workers go beyond one on this machine,
 * where the load generator and the upstream share the same two cores.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

interface Shape {
  name: string;
  target: Target;
  pids: { proxy: number; agent: number };
}

/** A replica with `proxyWorkers` and its own agent with `agentWorkers` (one tunnel per agent worker). */
async function startShape(
  ctx: BenchContext,
  name: string,
  proxyWorkers: number,
  agentWorkers: number,
  stops: (() => Promise<unknown>)[],
): Promise<Shape> {
  const replica = await ctx.stack.startReplica(name, { KUBEGATE_WORKERS: String(proxyWorkers) });
  stops.push(() => replica.stop());
  const agent = await ctx.stack.startAgent('bench', {
    ...ctx.agentEnv,
    KUBEGATE_TUNNEL_ADDRESS: replica.tunnelAddress,
    KUBEGATE_WORKERS: String(agentWorkers),
    KUBEGATE_TUNNELS: String(Math.max(1, proxyWorkers / agentWorkers)),
    KUBEGATE_REBALANCE_INTERVAL: '1s',
  });
  stops.unshift(() => agent.stop());
  // Every proxy worker holds a tunnel, from every agent worker, before anything is measured.
  for (let i = 0; i < 100; i++) {
    const rows = await ctx.stack.sql<{ replicas: number; agents: number }>(
      `SELECT count(DISTINCT replica_id)::int AS replicas, count(DISTINCT agent_id)::int AS agents
         FROM replica_tunnels WHERE cluster = 'bench' AND replica_id LIKE $1`,
      [`${name}-w%`],
    );
    if (rows[0]!.replicas === proxyWorkers && rows[0]!.agents === agentWorkers) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    name: `proxy ${proxyWorkers} + agent ${agentWorkers}`,
    target: { ...ctx.targets.kubegate, base: replica.publicUrl },
    pids: { proxy: replica.proxy.child.pid!, agent: agent.child.pid! },
  };
}

export async function p2Workers(ctx: BenchContext): Promise<Row[]> {
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const shapes: Shape[] = [
      {
        name: 'proxy 1 + agent 1',
        target: ctx.targets.kubegate,
        pids: { proxy: ctx.stack.main.proxy.child.pid!, agent: ctx.agent.child.pid! },
      },
      await startShape(ctx, 'proxy-w2a1', 2, 1, stops),
      await startShape(ctx, 'proxy-w2a2', 2, 2, stops),
    ];
    const res = new Map<Shape, { rps: number[]; cores: number[]; perCore: number[]; us: number[] }>(
      shapes.map((x) => [x, { rps: [], cores: [], perCore: [], us: [] }]),
    );
    for (let r = 0; r < 3; r++) {
      for (const x of rotate(shapes, r)) {
        const c0 = treeCpu(x.pids.proxy) + treeCpu(x.pids.agent);
        const t0 = performance.now();
        const out = await h2load({
          url: url(x.target, path),
          headers: x.target.headers,
          clients: 8,
          streams: 8,
          durationS: 4,
          warmUpS: 1,
        });
        const wall = (performance.now() - t0) / 1000;
        const cpu = treeCpu(x.pids.proxy) + treeCpu(x.pids.agent) - c0;
        const reqs = out.reqPerSec * 5;
        const m = res.get(x)!;
        m.rps.push(out.reqPerSec);
        m.cores.push(cpu / wall);
        m.perCore.push(reqs / cpu);
        m.us.push((cpu * 1e6) / reqs);
      }
      ctx.log(`  P2-workers round ${r + 1}/3`);
    }
    const proxyOnly = await proxyAlone(ctx, shapes.slice(0, 2));
    const base = median(res.get(shapes[0]!)!.rps);
    const per = (x: Shape) => median(res.get(x)!.perCore);
    const best = shapes.slice(1).reduce((a, x) => (per(x) > per(a) ? x : a));
    return [
      {
        id: 'P2-workers',
        what: '1 KiB GET throughput (h2load 8×8): proxy replica and agent with 1 or 2 workers (KUBEGATE_WORKERS)',
        upstream: 'bench upstream',
        goal: '(reference) req/s per core of kubegate CPU',
        result:
          shapes
            .map(
              (x) =>
                `${x.name}: ${median(res.get(x)!.rps).toFixed(0)} req/s (${((median(res.get(x)!.rps) / base) * 100).toFixed(0)}%), ${per(x).toFixed(0)} per core`,
            )
            .join('; ') +
          `; projected at 4 cores (${best.name} per-core rate × 4): ${(per(best) * 4).toFixed(0)} req/s`,
        absolute: `kubegate cores busy ${shapes.map((x) => median(res.get(x)!.cores).toFixed(2)).join(' / ')}; proxy + agent CPU µs/req ${shapes.map((x) => median(res.get(x)!.us).toFixed(0)).join(' / ')}; h2load and the upstream share the same 2 cores, so more processes than cores cost context switches here`,
        verdict: 'info',
      },
      proxyOnly,
    ];
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
  }
}

/**
 * The proxy's own share, scaled by its workers: SelfSubjectReviews (what
 * `kubectl auth whoami` sends), which a replica authenticates, authorizes,
 * audits and answers itself — no agent, no upstream — so with h2load (a
 * C client, far cheaper per request) the replica is what fills the cores.
 */
async function proxyAlone(ctx: BenchContext, shapes: Shape[]): Promise<Row> {
  const body = join(ctx.dir, 'selfsubjectreview.json');
  writeFileSync(
    body,
    JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }),
  );
  const review = '/apis/authentication.k8s.io/v1/selfsubjectreviews';
  const res = new Map<Shape, { rps: number[]; cores: number[] }>(
    shapes.map((x) => [x, { rps: [], cores: [] }]),
  );
  for (let r = 0; r < 3; r++) {
    for (const x of rotate(shapes, r)) {
      const c0 = treeCpu(x.pids.proxy);
      const t0 = performance.now();
      const out = await h2load({
        url: url(x.target, review),
        headers: { ...x.target.headers, 'content-type': 'application/json' },
        clients: 8,
        streams: 8,
        durationS: 4,
        warmUpS: 1,
        dataFile: body,
      });
      if (out.failed) throw new Error(`${out.failed} SelfSubjectReviews failed`);
      const m = res.get(x)!;
      m.rps.push(out.reqPerSec);
      m.cores.push((treeCpu(x.pids.proxy) - c0) / ((performance.now() - t0) / 1000));
    }
  }
  const one = res.get(shapes[0]!)!;
  const two = res.get(shapes[1]!)!;
  const perCore = (m: { rps: number[]; cores: number[] }) => median(m.rps) / median(m.cores);
  return {
    id: 'P2-workers-proxy',
    what: 'SelfSubjectReview throughput (h2load 8×8; answered by the proxy itself), replica with 1 and 2 workers',
    upstream: '— (the proxy answers)',
    goal: '(reference) req/s per core',
    result: `2 workers: ${((median(two.rps) / median(one.rps)) * 100).toFixed(0)}% of 1 worker's req/s; per core ${perCore(one).toFixed(0)} (1 worker) and ${perCore(two).toFixed(0)} (2); projected at 4 cores: ${(perCore(two) * 4).toFixed(0)} req/s`,
    absolute: `req/s: 1 worker ${median(one.rps).toFixed(0)}, 2 workers ${median(two.rps).toFixed(0)}; proxy cores busy ${median(one.cores).toFixed(2)} and ${median(two.cores).toFixed(2)} (h2load takes the rest of the machine's 2)`,
    verdict: 'info',
  };
}
