/**
 * P1: added latency of a small GET at a fixed 200 req/s, open loop,
 * kubegate and nginx 2-hop each against direct, in interleaved rounds. Over
 * HTTP/2 (kubectl's protocol, h2-rate.ts) and over HTTP/1.1 (autocannon).
 * Also on the real test cluster (GET a namespace), where the apiserver's own
 * work is part of every figure.
 */
import { http1Load } from '../http1-load.js';
import { h2FixedRate } from '../h2-rate.js';
import { diffSpread, fmtSpread, median, percentile, signed } from '../stats.js';
import { rotate, url, type BenchContext, type Target } from '../context.js';
import type { Row } from '../table.js';

const rate = 200;
const goal = 'p50 ≤ +0.5 ms, p99 ≤ +2 ms over direct';

interface PerTarget {
  p50: number[];
  p99: number[];
  errors: number;
}

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
): Promise<Map<string, PerTarget>> {
  const out = new Map<string, PerTarget>(
    targets.map((t) => [t.name, { p50: [], p99: [], errors: 0 }]),
  );
  for (const t of targets) await load(proto, t, path, 1);
  for (let r = 0; r < rounds; r++) {
    for (const t of rotate(targets, r)) {
      const res = await load(proto, t, path, seconds);
      const o = out.get(t.name)!;
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

/** P1 on the bench upstream, or (`real`) P1-real on the real test cluster. */
export async function p1Latency(ctx: BenchContext, real: boolean): Promise<Row[]> {
  if (real) {
    if (!ctx.real) return [];
    const targets = [ctx.real.direct, ctx.real.kubegate];
    const mr = await measure(ctx, 'h2', targets, '/api/v1/namespaces/default', 3, 3);
    return [
      row(
        'P1-real',
        `GET a namespace at ${rate} req/s, HTTP/2, added latency`,
        'real test cluster',
        mr,
      ),
    ];
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
