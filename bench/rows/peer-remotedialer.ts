/**
 * P2-rd and P3-rd: kubegate beside a peer users run, Rancher's remotedialer
 * (bench/remotedialer.ts: its example as shipped, and our main on the library
 * with TLS), with nginx 2-hop and direct in the same rounds. The example's
 * front speaks HTTP/1.1 only, so P2-rd and P3-rd drive every target over
 * HTTP/1.1 (h2load --h1): P2's 1 KiB GET on 32 connections, P3's 200 MiB
 * LIST on one. P2-rd-h2 and P3-rd-h2 repeat them over TLS + HTTP/2 as P2 and
 * P3 do, with the shape that speaks it. CPU seconds of each peer's own
 * processes are read around each run, as P2 does: kubegate's proxy and
 * agent, nginx's two hops, remotedialer's server and client.
 */
import { h2load, type H2loadResult } from '../h2load.js';
import { fmtSpread, median, ratioSpread } from '../stats.js';
import { cpuSeconds, rotate, url, type BenchContext, type Target } from '../context.js';
import type { Row } from '../table.js';

export type Who = 'kubegate' | 'remotedialer' | 'remotedialer-tls' | 'nginx' | 'direct';

/** What each shape lacks next to kubegate, said in the rows' label. */
export const lacks = {
  example: 'no TLS on its front or tunnel, no authentication, no audit',
  tls: 'our main on the library: TLS on front and tunnel, no caller authentication, no audit',
};

const names: Record<Who, string> = {
  kubegate: 'kubegate',
  remotedialer: "remotedialer's example",
  'remotedialer-tls': 'remotedialer with TLS',
  nginx: 'nginx',
  direct: 'direct',
};
const parts: Record<Who, string[]> = {
  kubegate: ['proxy', 'agent'],
  remotedialer: ['server', 'client'],
  'remotedialer-tls': ['server', 'client'],
  nginx: ['hops'],
  direct: [],
};

/** Per-round figures of one measurement, every target measured in every round. */
export interface PeerSamples {
  /** The targets, in the order the row names them. */
  who: Who[];
  /** req/s or MB/s, one per round. */
  rate: Partial<Record<Who, number[]>>;
  /** CPU per request of each of the target's processes (`parts`), over all rounds. */
  cpu: Partial<Record<Who, number[]>>;
  /** New upstream TLS connections per request. */
  conns: Partial<Record<Who, number>>;
  /** Requests that failed or came back short, per target. */
  failed: Partial<Record<Who, number>>;
}

export interface PeerRowSpec {
  id: string;
  what: string;
  /** 'req/s' or 'MB/s'. */
  unit: string;
  /** 'CPU µs/req' or 'CPU ms per LIST'. */
  cpuUnit: string;
}

const f0 = (x: number | undefined) =>
  x !== undefined && Number.isFinite(x) ? x.toFixed(0) : 'n/a';
const pct = (a: number[], b: number[]) => {
  const r = ratioSpread(a, b);
  return `${fmtSpread({ ...r, median: r.median * 100, min: r.min * 100, max: r.max * 100 }, 0)}%`;
};
const isRd = (w: Who) => w === 'remotedialer' || w === 'remotedialer-tls';

export function peerRow(spec: PeerRowSpec, s: PeerSamples): Row {
  const rds = s.who.filter(isRd);
  const of = (w: Who) => s.rate[w] ?? [];
  const vsRd = (w: Who) => rds.map((r) => `${pct(of(w), of(r))} of ${names[r]}`).join(', ');
  const result = [`kubegate ${vsRd('kubegate')}`];
  if (s.who.includes('nginx')) result.push(`nginx 2-hop ${vsRd('nginx')}`);
  const cpu = s.who
    .filter((w) => parts[w].length)
    .map((w) => {
      const xs = s.cpu[w] ?? [];
      if (parts[w].length === 1) return `${names[w]} ${parts[w][0]} ${f0(xs[0])}`;
      const sum = xs.reduce((a, x) => a + x, 0);
      return `${names[w]} ${f0(sum)} (${parts[w].map((p, i) => `${p} ${f0(xs[i])}`).join(' + ')})`;
    });
  const conns = s.who
    .filter((w) => w !== 'direct' && s.conns[w] !== undefined)
    .map((w) => `${names[w]} ${s.conns[w]!.toFixed(2)}`);
  const absolute = [
    `${spec.unit}: ${s.who.map((w) => `${names[w]} ${f0(median(of(w)))}`).join(', ')}`,
    `${spec.cpuUnit}: ${cpu.join(', ')}`,
    `new upstream TLS connections per request: ${conns.join(', ')}`,
  ];
  const failed = s.who.filter((w) => s.failed[w]).map((w) => `${names[w]} ${s.failed[w]}`);
  if (failed.length) absolute.push(`failed or short: ${failed.join(', ')}`);
  // The peer's own failures are part of what is measured; kubegate's or the references' are the bench's.
  const broken = s.who.some((w) => !isRd(w) && s.failed[w]);
  return {
    id: spec.id,
    what: spec.what,
    upstream: 'bench upstream',
    goal: '(reference: a peer users run)',
    result: result.join('; '),
    absolute: absolute.join('; '),
    verdict: broken ? 'error' : 'info',
  };
}

interface Contestant {
  who: Who;
  target: Target;
  /** The target's processes, one group per entry of `parts`. */
  groups(): number[][];
}

interface Run {
  /** req/s or MB/s of this run. */
  rate: number;
  /** Requests the CPU read around the run is divided by. */
  requests: number;
  failed: number;
}

/** Interleaved rounds; CPU per request of each group of processes, × `scale` (1e6: µs). */
async function rounds(
  ctx: BenchContext,
  cs: Contestant[],
  n: number,
  scale: number,
  label: string,
  run: (t: Target) => Promise<Run>,
): Promise<PeerSamples> {
  const s: PeerSamples = { who: cs.map((c) => c.who), rate: {}, cpu: {}, conns: {}, failed: {} };
  const used = new Map<Who, number[]>(cs.map((c) => [c.who, parts[c.who].map(() => 0)]));
  const requests = new Map<Who, number>();
  const conns = new Map<Who, [number, number]>(cs.map((c) => [c.who, [0, 0]]));
  const cpuOf = (groups: number[][]) =>
    groups.map((g) => g.reduce((a, pid) => a + cpuSeconds(pid), 0));
  type Traffic = { connections: number; requests: number };
  for (let r = 0; r < n; r++) {
    for (const c of rotate(cs, r)) {
      const groups = c.groups();
      const before = cpuOf(groups);
      const t0 = await ctx.upstream.call<Traffic>({ op: 'traffic' });
      const res = await run(c.target);
      const t1 = await ctx.upstream.call<Traffic>({ op: 'traffic' });
      const after = cpuOf(groups);
      const u = used.get(c.who)!;
      after.forEach((x, i) => (u[i]! += x - before[i]!));
      const k = conns.get(c.who)!;
      k[0] += t1.connections - t0.connections;
      k[1] += t1.requests - t0.requests;
      (s.rate[c.who] ??= []).push(res.rate);
      requests.set(c.who, (requests.get(c.who) ?? 0) + res.requests);
      s.failed[c.who] = (s.failed[c.who] ?? 0) + res.failed;
    }
    ctx.log(`  ${label} round ${r + 1}/${n}`);
  }
  for (const c of cs) {
    const reqs = requests.get(c.who) ?? 0;
    s.cpu[c.who] = used.get(c.who)!.map((x) => (reqs ? (x / reqs) * scale : NaN));
    const [opened, answered] = conns.get(c.who)!;
    s.conns[c.who] = opened / Math.max(1, answered);
  }
  return s;
}

function contestants(ctx: BenchContext, who: Who[]): Contestant[] {
  const rd = ctx.remotedialer;
  if (!rd) throw new Error('remotedialer is not running');
  const t = ctx.targets;
  const all: Record<Who, Contestant> = {
    kubegate: {
      who: 'kubegate',
      target: t.kubegate,
      groups: () => [[ctx.stack.main.proxy.child.pid!], [ctx.agent.child.pid!]],
    },
    remotedialer: {
      who: 'remotedialer',
      target: rd.example.target,
      groups: () => rd.example.pids().map((p) => [p]),
    },
    'remotedialer-tls': {
      who: 'remotedialer-tls',
      target: rd.tls.target,
      groups: () => rd.tls.pids().map((p) => [p]),
    },
    nginx: { who: 'nginx', target: t.nginx, groups: () => [ctx.nginx.pids()] },
    direct: { who: 'direct', target: t.direct, groups: () => [] },
  };
  return who.map((w) => all[w]);
}

const path1k = '/api/v1/namespaces/default/configmaps/bench-1k';
const listPath = (mib: number) => `/api/v1/namespaces/list-${mib}/configmaps`;
/** The example's HTTP client gives up after 15 s unless the query asks for more. */
const at = (t: Target, path: string) =>
  url(t, path) + (t.name === 'remotedialer' ? '?timeout=120' : '');

/** P2-rd (HTTP/1.1, every shape) and P2-rd-h2 (HTTP/2, the TLS shape). */
export async function rdThroughput(ctx: BenchContext): Promise<Row[]> {
  const get = (h1: boolean) => async (target: Target) => {
    const res = await h2load({
      url: at(target, path1k),
      headers: target.headers,
      clients: h1 ? 32 : 8,
      streams: h1 ? 1 : 8,
      durationS: 3,
      warmUpS: 1,
      h1,
    });
    // CPU is read over warm-up + measurement: ≈ rate × 4 s requests.
    return { rate: res.reqPerSec, requests: res.reqPerSec * 4, failed: res.failed };
  };
  const h1 = await rounds(
    ctx,
    contestants(ctx, ['kubegate', 'remotedialer', 'remotedialer-tls', 'nginx', 'direct']),
    3,
    1e6,
    'P2-rd',
    get(true),
  );
  const h2 = await rounds(
    ctx,
    contestants(ctx, ['kubegate', 'remotedialer-tls', 'nginx']),
    3,
    1e6,
    'P2-rd-h2',
    get(false),
  );
  return [
    peerRow(
      {
        id: 'P2-rd',
        what: `1 KiB GET throughput, HTTP/1.1 (h2load --h1, 32 connections), against remotedialer's example (${lacks.example}) and remotedialer with TLS (${lacks.tls})`,
        unit: 'req/s',
        cpuUnit: 'CPU µs/req',
      },
      h1,
    ),
    peerRow(
      {
        id: 'P2-rd-h2',
        what: `1 KiB GET throughput, TLS + HTTP/2 front (h2load 8×8), against remotedialer with TLS (${lacks.tls})`,
        unit: 'req/s',
        cpuUnit: 'CPU µs/req',
      },
      h2,
    ),
  ];
}

/** P3-rd (HTTP/1.1, every shape) and P3-rd-h2 (HTTP/2, the TLS shape). */
export async function rdList(ctx: BenchContext): Promise<Row[]> {
  const list = (target: Target, mib: number, h1: boolean): Promise<H2loadResult> =>
    h2load({
      url: at(target, listPath(mib)),
      headers: target.headers,
      clients: 1,
      streams: 1,
      requests: 1,
      h1,
    });
  const once = (h1: boolean) => async (target: Target) => {
    const res = await list(target, 200, h1);
    const short = res.ok2xx !== 1 || res.bytes < 200 * 1024 * 1024;
    return { rate: res.bytes / 1e6 / (res.requestMs / 1000), requests: 1, failed: short ? 1 : 0 };
  };
  const h1Who: Who[] = ['kubegate', 'remotedialer', 'remotedialer-tls', 'nginx', 'direct'];
  for (const c of contestants(ctx, h1Who)) await list(c.target, 20, true);
  const h1 = await rounds(ctx, contestants(ctx, h1Who), 3, 1e3, 'P3-rd', once(true));
  const h2 = await rounds(
    ctx,
    contestants(ctx, ['kubegate', 'remotedialer-tls', 'nginx']),
    3,
    1e3,
    'P3-rd-h2',
    once(false),
  );
  return [
    peerRow(
      {
        id: 'P3-rd',
        what: `200 MiB LIST streamed, MB/s, HTTP/1.1 (h2load --h1, one connection), against remotedialer's example (${lacks.example}) and remotedialer with TLS (${lacks.tls})`,
        unit: 'MB/s',
        cpuUnit: 'CPU ms per LIST',
      },
      h1,
    ),
    peerRow(
      {
        id: 'P3-rd-h2',
        what: `200 MiB LIST streamed, MB/s, TLS + HTTP/2 (h2load, one stream), against remotedialer with TLS (${lacks.tls})`,
        unit: 'MB/s',
        cpuUnit: 'CPU ms per LIST',
      },
      h2,
    ),
  ];
}
