/**
 * P2: 1 KiB GET throughput, closed loop, over the TLS + HTTP/2 front
 * (h2load: 8 connections × 8 streams, as a few kubectl-like clients), kubegate
 * against nginx 2-hop, interleaved rounds. CPU seconds per process are read
 * around each run, so the row can say where the cycles go. An HTTP/1.1
 * companion row (autocannon) is reported for reference.
 */
import { h2load } from '../h2load.js';
import { http1Load } from '../http1-load.js';
import { fmtSpread, median, ratioSpread } from '../stats.js';
import { cpuSeconds, rotate, url, type BenchContext, type Target } from '../context.js';
import type { Row } from '../table.js';

const path = '/api/v1/namespaces/default/configmaps/bench-1k';

/** CPU µs per request of each process group, for the limit line. */
export interface CpuPerRequest {
  kubegate: { proxy: number; agent: number };
  nginx: { hops: number };
  upstream: number;
  /** New TLS connections the upstream accepted per request it answered. */
  connsPerRequest: { kubegate: number; nginx: number };
}

export interface P2Result {
  rows: Row[];
  cpu: CpuPerRequest;
}

export async function p2Throughput(ctx: BenchContext): Promise<P2Result> {
  const t = ctx.targets;
  const order: Target[] = [t.kubegate, t.nginx, t.direct];
  const rps = new Map<string, number[]>(order.map((x) => [x.name, []]));
  let failed = 0;
  const cpu = { proxy: 0, agent: 0, hops: 0, upKg: 0, reqKg: 0, reqNginx: 0 };
  // New upstream TLS connections per request: does the hop before the upstream keep them alive?
  const conns = { kubegate: [0, 0], nginx: [0, 0], direct: [0, 0] } as Record<
    string,
    [number, number]
  >;
  type Traffic = { connections: number; requests: number };
  const pids = () => ({
    proxy: ctx.stack.main.proxy.child.pid!,
    agent: ctx.agent.child.pid!,
    nginx: ctx.nginx.pids(),
    upstream: ctx.upstream.pid,
  });
  const rounds = 4;
  for (let r = 0; r < rounds; r++) {
    for (const target of rotate(order, r)) {
      const p = pids();
      const before = {
        proxy: cpuSeconds(p.proxy),
        agent: cpuSeconds(p.agent),
        nginx: p.nginx.reduce((a, x) => a + cpuSeconds(x), 0),
      };
      const t0 = await ctx.upstream.call<Traffic>({ op: 'traffic' });
      const res = await h2load({
        url: url(target, path),
        headers: target.headers,
        clients: 8,
        streams: 8,
        durationS: 3,
        warmUpS: 1,
      });
      const t1 = await ctx.upstream.call<Traffic>({ op: 'traffic' });
      conns[target.name]![0] += t1.connections - t0.connections;
      conns[target.name]![1] += t1.requests - t0.requests;
      failed += res.failed;
      rps.get(target.name)!.push(res.reqPerSec);
      // CPU over warm-up + measurement, divided by the requests of both (≈ rate × 4 s).
      const reqs = res.reqPerSec * 4;
      if (target.name === 'kubegate') {
        cpu.proxy += cpuSeconds(p.proxy) - before.proxy;
        cpu.agent += cpuSeconds(p.agent) - before.agent;
        cpu.reqKg += reqs;
      } else if (target.name === 'nginx') {
        cpu.hops += p.nginx.reduce((a, x) => a + cpuSeconds(x), 0) - before.nginx;
        cpu.reqNginx += reqs;
      }
    }
    ctx.log(`  P2 round ${r + 1}/${rounds}`);
  }
  const ratio = ratioSpread(rps.get('kubegate')!, rps.get('nginx')!);
  const us = (s: number, n: number) => (n ? (s / n) * 1e6 : NaN);
  const cpuPer: CpuPerRequest = {
    kubegate: { proxy: us(cpu.proxy, cpu.reqKg), agent: us(cpu.agent, cpu.reqKg) },
    nginx: { hops: us(cpu.hops, cpu.reqNginx) },
    upstream: NaN,
    connsPerRequest: {
      kubegate: conns.kubegate![0] / Math.max(1, conns.kubegate![1]),
      nginx: conns.nginx![0] / Math.max(1, conns.nginx![1]),
    },
  };
  const rows: Row[] = [
    {
      id: 'P2',
      what: '1 KiB GET throughput, TLS + HTTP/2 front (h2load 8×8)',
      upstream: 'bench upstream',
      goal: '≥ 50% of nginx 2-hop req/s',
      result: `${fmtSpread({ ...ratio, median: ratio.median * 100, min: ratio.min * 100, max: ratio.max * 100 }, 0)}% of nginx 2-hop`,
      absolute: `req/s: kubegate ${median(rps.get('kubegate')!).toFixed(0)}, nginx ${median(rps.get('nginx')!).toFixed(0)}, direct ${median(rps.get('direct')!).toFixed(0)}; CPU µs/req: proxy ${cpuPer.kubegate.proxy.toFixed(0)} + agent ${cpuPer.kubegate.agent.toFixed(0)} vs nginx hops ${cpuPer.nginx.hops.toFixed(0)}; new upstream TLS connections per request: kubegate ${cpuPer.connsPerRequest.kubegate.toFixed(2)}, nginx ${cpuPer.connsPerRequest.nginx.toFixed(2)}${failed ? `; ${failed} failed` : ''}`,
      verdict: failed ? 'error' : ratio.median >= 0.5 ? 'met' : 'not met',
    },
  ];

  // HTTP/1.1 closed loop, for reference (browsers, older tools).
  const h1 = new Map<string, number[]>([
    ['kubegate', []],
    ['nginx', []],
  ]);
  for (let r = 0; r < 2; r++) {
    for (const target of rotate([t.kubegate, t.nginx], r)) {
      const res = await http1Load({
        url: url(target, path),
        headers: target.headers,
        connections: 32,
        durationS: 3,
      });
      h1.get(target.name)!.push(res.reqPerSec);
    }
  }
  const r1 = ratioSpread(h1.get('kubegate')!, h1.get('nginx')!);
  rows.push({
    id: 'P2-h1',
    what: '1 KiB GET throughput, HTTP/1.1 (autocannon, 32 connections)',
    upstream: 'bench upstream',
    goal: '(reference)',
    result: `${(r1.median * 100).toFixed(0)}% (${(r1.min * 100).toFixed(0)}–${(r1.max * 100).toFixed(0)}%) of nginx 2-hop`,
    absolute: `req/s: kubegate ${median(h1.get('kubegate')!).toFixed(0)}, nginx ${median(h1.get('nginx')!).toFixed(0)}`,
    verdict: 'info',
  });
  return { rows, cpu: cpuPer };
}
