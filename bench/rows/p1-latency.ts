/**
 * P1: added latency of a small GET at a fixed 200 req/s, open loop,
 * kubegate and nginx 2-hop each against direct, in interleaved rounds. Over
 * HTTP/2 (kubectl's protocol, h2-rate.ts) and over HTTP/1.1 (autocannon).
 * Also on the real test cluster (GET a namespace), where the apiserver's own
 * work is part of every figure.
 */
import { loadavg } from 'node:os';
import { http1Load } from '../http1-load.js';
import { h2FixedRate } from '../h2-rate.js';
import { diffSpread, fmtSpread, median, percentile, signed } from '../stats.js';
import { cpuSeconds, rotate, url, type BenchContext, type Target } from '../context.js';
import type { Row } from '../table.js';

const rate = 200;
const goal = 'p50 ≤ +0.5 ms, p99 ≤ +2 ms over direct';

interface PerTarget {
  p50: number[];
  p99: number[];
  errors: number;
  /** CPU seconds per process over this target's measured loads, and their answered requests. */
  cpu: Record<string, number>;
  requests: number;
}

/** Cumulative CPU seconds of each process that serves a request (what P1-real accounts). */
type CpuSnapshot = () => Record<string, number>;

type Proto = 'h2' | 'h1';

const load = async (proto: Proto, t: Target, path: string, seconds: number) =>
  proto === 'h2'
    ? { non2xx: 0, ...(await h2FixedRate(t, path, rate, seconds)) }
    : await http1Load({
        url: url(t, path),
        headers: t.headers,
        connections: 8,
        durationS: seconds,
        rate,
      });

async function measure(
  ctx: BenchContext,
  proto: Proto,
  targets: Target[],
  path: string,
  rounds: number,
  seconds: number,
  snapshot?: CpuSnapshot,
): Promise<Map<string, PerTarget>> {
  const out = new Map<string, PerTarget>(
    targets.map((t) => [t.name, { p50: [], p99: [], errors: 0, cpu: {}, requests: 0 }]),
  );
  for (const t of targets) await load(proto, t, path, 1);
  for (let r = 0; r < rounds; r++) {
    for (const t of rotate(targets, r)) {
      const before = snapshot?.();
      const res = await load(proto, t, path, seconds);
      const o = out.get(t.name)!;
      if (before && snapshot) {
        for (const [name, s] of Object.entries(snapshot()))
          o.cpu[name] = (o.cpu[name] ?? 0) + s - (before[name] ?? s);
        o.requests += res.latenciesMs.length;
      }
      o.p50.push(percentile(res.latenciesMs, 50));
      o.p99.push(percentile(res.latenciesMs, 99));
      o.errors += res.errors + res.non2xx;
    }
    ctx.log(`  P1 ${proto} round ${r + 1}/${rounds}`);
  }
  return out;
}

function row(id: string, what: string, upstream: string, m: Map<string, PerTarget>): Row {
  const d = m.get('direct')!;
  const k = m.get('kubegate')!;
  const n = m.get('nginx');
  const add50 = diffSpread(k.p50, d.p50);
  const add99 = diffSpread(k.p99, d.p99);
  const errors = [...m.values()].reduce((a, x) => a + x.errors, 0);
  const abs = (name: string, x: PerTarget) =>
    `${name} ${median(x.p50).toFixed(2)}/${median(x.p99).toFixed(2)} ms`;
  const nginx = n
    ? `; nginx 2-hop p50 ${signed(diffSpread(n.p50, d.p50).median)}, p99 ${signed(diffSpread(n.p99, d.p99).median)} ms`
    : '';
  const met = add50.median <= 0.5 && add99.median <= 2;
  return {
    id,
    what,
    upstream,
    goal,
    result: `kubegate p50 ${fmtSpread(add50, 2)} ms, p99 ${fmtSpread(add99, 2)} ms${nginx}`,
    absolute: `p50/p99: ${abs('direct', d)}; ${abs('kubegate', k)}${n ? '; ' + abs('nginx', n) : ''}${errors ? `; ${errors} failed requests` : ''}`,
    verdict: errors ? 'error' : met ? 'met' : 'not met',
  };
}

/**
 * Where the cores went in P1-real: CPU per answered request of each process
 * in kubegate's rounds, and the cores the whole path needs at the row's rate
 * against those of direct rounds. The rate is open loop: once the path needs
 * more of the machine than it gets, requests queue and latency grows with
 * the backlog (docs/performance-log.md, "P1-real: the path needs the cores").
 */
export function cpuNote(m: Map<string, PerTarget>, load1: number): string {
  const k = m.get('kubegate')!;
  const d = m.get('direct')!;
  const per = (x: PerTarget, name: string) => ((x.cpu[name] ?? 0) * 1e6) / Math.max(1, x.requests);
  const cores = (x: PerTarget) =>
    (Object.keys(x.cpu).reduce((a, n) => a + per(x, n), 0) * rate) / 1e6;
  const names = Object.keys(k.cpu);
  return (
    `CPU per request in kubegate rounds: ${names.map((n) => `${n} ${per(k, n).toFixed(0)} µs`).join(', ')}` +
    ` → ${cores(k).toFixed(2)} cores at ${rate} req/s (direct rounds ${cores(d).toFixed(2)}); load average ${load1.toFixed(1)} on this 2-core machine`
  );
}

/** P1 on the bench upstream, or (`real`) P1-real on the real test cluster. */
export async function p1Latency(ctx: BenchContext, real: boolean): Promise<Row[]> {
  if (real) {
    if (!ctx.real) return [];
    const targets = [ctx.real.direct, ctx.real.kubegate];
    const { agent, cluster } = ctx.real.pids;
    const proxy = ctx.stack.main.proxy.child.pid!;
    const snapshot: CpuSnapshot = () => {
      const self = process.cpuUsage();
      return {
        proxy: cpuSeconds(proxy),
        agent: cpuSeconds(agent),
        'apiserver+etcd': cpuSeconds(cluster),
        'load generator': (self.user + self.system) / 1e6,
      };
    };
    const mr = await measure(ctx, 'h2', targets, '/api/v1/namespaces/default', 3, 3, snapshot);
    const r = row(
      'P1-real',
      `GET a namespace at ${rate} req/s, HTTP/2, added latency`,
      'real test cluster',
      mr,
    );
    return [{ ...r, absolute: `${r.absolute}; ${cpuNote(mr, loadavg()[0]!)}` }];
  }
  const t = ctx.targets;
  const targets = [t.direct, t.kubegate, t.nginx];
  const small = '/api/v1/namespaces/default/configmaps/bench-1k';
  const m2 = await measure(ctx, 'h2', targets, small, 5, 3);
  const m1 = await measure(ctx, 'h1', targets, small, 3, 3);
  return [
    row('P1', `1 KiB GET at ${rate} req/s, HTTP/2, added latency`, 'bench upstream', m2),
    row('P1-h1', `1 KiB GET at ${rate} req/s, HTTP/1.1, added latency`, 'bench upstream', m1),
  ];
}
