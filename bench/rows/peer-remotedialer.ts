/**
 * P2-rd and P3-rd: kubegate beside a peer users run, Rancher's remotedialer
 * example (bench/remotedialer.ts), with nginx 2-hop and direct in the same
 * rounds. The example's front speaks HTTP/1.1 only, so every target is
 * driven over HTTP/1.1 here (h2load --h1): the 1 KiB GET of P2 on 32
 * connections, the 200 MiB LIST of P3 on one. CPU seconds of each peer's own
 * processes are read around each run, as P2 does: kubegate's proxy and
 * agent, nginx's two hops, remotedialer's server and client.
 */
import { h2load } from '../h2load.js';
import { fmtSpread, median, ratioSpread } from '../stats.js';
import { cpuSeconds, rotate, url, type BenchContext, type Target } from '../context.js';
import type { Row } from '../table.js';
import type { Remotedialer } from '../remotedialer.js';

export type Who = 'kubegate' | 'remotedialer' | 'nginx' | 'direct';

/** What remotedialer's example lacks next to kubegate, said in its rows' label. */
export const rdLacks = 'no TLS on its front or tunnel, no authentication, no audit';

/** Per-round figures of one measurement, each target measured in every round. */
export interface PeerSamples {
  /** req/s (P2-rd) or MB/s (P3-rd), one per round. */
  rate: Record<Who, number[]>;
  /** CPU µs per request (P2-rd) or CPU ms per LIST (P3-rd), each process group over all rounds. */
  cpu: { kubegate: [number, number]; remotedialer: [number, number]; nginx: number };
  /** New upstream TLS connections per request. */
  conns: Record<Who, number>;
  /** Requests that failed or came back short. */
  failed: number;
}

const path1k = '/api/v1/namespaces/default/configmaps/bench-1k';
const listPath = (mib: number) => `/api/v1/namespaces/list-${mib}/configmaps`;

/** The example's HTTP client gives up after 15 s unless the query asks for more. */
const at = (t: Target, path: string) =>
  url(t, path) + (t.name === 'remotedialer' ? '?timeout=120' : '');

const pct = (a: number[], b: number[]) => {
  const r = ratioSpread(a, b);
  return `${fmtSpread({ ...r, median: r.median * 100, min: r.min * 100, max: r.max * 100 }, 0)}%`;
};
const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');

export function rdThroughputRow(s: PeerSamples): Row {
  const m = (w: Who) => f0(median(s.rate[w]));
  const [kp, ka] = s.cpu.kubegate;
  const [rs, rc] = s.cpu.remotedialer;
  const c = (w: Who) => s.conns[w].toFixed(2);
  return {
    id: 'P2-rd',
    what: `1 KiB GET throughput, HTTP/1.1 (h2load --h1, 32 connections), against remotedialer's example (${rdLacks})`,
    upstream: 'bench upstream',
    goal: '(reference: a peer users run)',
    result: `kubegate ${pct(s.rate.kubegate, s.rate.remotedialer)} of remotedialer; nginx 2-hop ${pct(s.rate.nginx, s.rate.remotedialer)}`,
    absolute: `req/s: kubegate ${m('kubegate')}, remotedialer ${m('remotedialer')}, nginx ${m('nginx')}, direct ${m('direct')}; CPU µs/req: kubegate ${f0(kp + ka)} (proxy ${f0(kp)} + agent ${f0(ka)}), remotedialer ${f0(rs + rc)} (server ${f0(rs)} + client ${f0(rc)}), nginx hops ${f0(s.cpu.nginx)}; new upstream TLS connections per request: kubegate ${c('kubegate')}, remotedialer ${c('remotedialer')}, nginx ${c('nginx')}${s.failed ? `; ${s.failed} failed` : ''}`,
    verdict: s.failed ? 'error' : 'info',
  };
}

export function rdListRow(s: PeerSamples): Row {
  const m = (w: Who) => f0(median(s.rate[w]));
  const [kp, ka] = s.cpu.kubegate;
  const [rs, rc] = s.cpu.remotedialer;
  return {
    id: 'P3-rd',
    what: `200 MiB LIST streamed, MB/s, HTTP/1.1 (h2load --h1, one connection), against remotedialer's example (${rdLacks})`,
    upstream: 'bench upstream',
    goal: '(reference: a peer users run)',
    result: `kubegate ${pct(s.rate.kubegate, s.rate.remotedialer)} of remotedialer; nginx 2-hop ${pct(s.rate.nginx, s.rate.remotedialer)}`,
    absolute: `MB/s: kubegate ${m('kubegate')}, remotedialer ${m('remotedialer')}, nginx ${m('nginx')}, direct ${m('direct')}; CPU ms per LIST: kubegate ${f0(kp + ka)} (proxy ${f0(kp)} + agent ${f0(ka)}), remotedialer ${f0(rs + rc)} (server ${f0(rs)} + client ${f0(rc)}), nginx hops ${f0(s.cpu.nginx)}${s.failed ? `; ${s.failed} incomplete` : ''}`,
    verdict: s.failed ? 'error' : 'info',
  };
}

interface Run {
  /** req/s or MB/s of this run. */
  rate: number;
  /** Requests the CPU read around the run is divided by. */
  requests: number;
  failed: number;
}

/**
 * Interleaved rounds over the four targets; CPU per request of each peer's
 * processes (`scale`: 1e6 for µs, 1e3 for ms).
 */
async function rounds(
  ctx: BenchContext,
  rd: Remotedialer,
  n: number,
  scale: number,
  label: string,
  run: (t: Target) => Promise<Run>,
): Promise<PeerSamples> {
  const t = ctx.targets;
  const order: Target[] = [t.kubegate, rd.target, t.nginx, t.direct];
  const procs = (w: Who): number[][] => {
    if (w === 'kubegate') return [[ctx.stack.main.proxy.child.pid!], [ctx.agent.child.pid!]];
    if (w === 'remotedialer') return rd.pids().map((p) => [p]);
    if (w === 'nginx') return [ctx.nginx.pids()];
    return [];
  };
  const cpuOf = (groups: number[][]) =>
    groups.map((g) => g.reduce((a, pid) => a + cpuSeconds(pid), 0));
  const rate = { kubegate: [], remotedialer: [], nginx: [], direct: [] } as Record<Who, number[]>;
  const used = { kubegate: [0, 0], remotedialer: [0, 0], nginx: [0], direct: [] } as Record<
    Who,
    number[]
  >;
  const requests = { kubegate: 0, remotedialer: 0, nginx: 0, direct: 0 } as Record<Who, number>;
  const conns = { kubegate: [0, 0], remotedialer: [0, 0], nginx: [0, 0], direct: [0, 0] };
  let failed = 0;
  type Traffic = { connections: number; requests: number };
  for (let r = 0; r < n; r++) {
    for (const target of rotate(order, r)) {
      const w = target.name as Who;
      const groups = procs(w);
      const before = cpuOf(groups);
      const t0 = await ctx.upstream.call<Traffic>({ op: 'traffic' });
      const res = await run(target);
      const t1 = await ctx.upstream.call<Traffic>({ op: 'traffic' });
      cpuOf(groups).forEach((x, i) => (used[w][i]! += x - before[i]!));
      conns[w][0] += t1.connections - t0.connections;
      conns[w][1] += t1.requests - t0.requests;
      rate[w].push(res.rate);
      requests[w] += res.requests;
      failed += res.failed;
    }
    ctx.log(`  ${label} round ${r + 1}/${n}`);
  }
  const per = (w: Who, i: number) => (requests[w] ? (used[w][i]! / requests[w]) * scale : NaN);
  const perConn = (w: Who) => conns[w][0] / Math.max(1, conns[w][1]);
  return {
    rate,
    cpu: {
      kubegate: [per('kubegate', 0), per('kubegate', 1)],
      remotedialer: [per('remotedialer', 0), per('remotedialer', 1)],
      nginx: per('nginx', 0),
    },
    conns: {
      kubegate: perConn('kubegate'),
      remotedialer: perConn('remotedialer'),
      nginx: perConn('nginx'),
      direct: perConn('direct'),
    },
    failed,
  };
}

export async function rdThroughput(ctx: BenchContext, rd: Remotedialer): Promise<Row[]> {
  const s = await rounds(ctx, rd, 3, 1e6, 'P2-rd', async (target) => {
    const res = await h2load({
      url: at(target, path1k),
      headers: target.headers,
      clients: 32,
      streams: 1,
      durationS: 3,
      warmUpS: 1,
      h1: true,
    });
    // CPU is read over warm-up + measurement: ≈ rate × 4 s requests.
    return { rate: res.reqPerSec, requests: res.reqPerSec * 4, failed: res.failed };
  });
  return [rdThroughputRow(s)];
}

export async function rdList(ctx: BenchContext, rd: Remotedialer): Promise<Row[]> {
  const list = (target: Target, mib: number) =>
    h2load({
      url: at(target, listPath(mib)),
      headers: target.headers,
      clients: 1,
      streams: 1,
      requests: 1,
      h1: true,
    });
  for (const target of [ctx.targets.kubegate, rd.target, ctx.targets.nginx, ctx.targets.direct])
    await list(target, 20);
  const s = await rounds(ctx, rd, 3, 1e3, 'P3-rd', async (target) => {
    const res = await list(target, 200);
    const short = res.ok2xx !== 1 || res.bytes < 200 * 1024 * 1024;
    return { rate: res.bytes / 1e6 / (res.requestMs / 1000), requests: 1, failed: short ? 1 : 0 };
  });
  return [rdListRow(s)];
}
