/**
 * P8: audit on against audit off — the main replica (audit on) and a replica
 * with audit off, each with its own agent, same upstream, interleaved.
 * Throughput closed loop over h2 (h2load), p99 at 2,000 req/s (HTTP/1.1).
 */
import { h2load } from '../h2load.js';
import { http1Load } from '../http1-load.js';
import { diffSpread, fmtSpread, percentile, ratioSpread } from '../stats.js';
import { rotate, url, type BenchContext, type Target } from '../context.js';
import type { Replica } from '../stack.js';
import type { Row } from '../table.js';

const path = '/api/v1/namespaces/default/configmaps/bench-1k';

export async function p8Audit(ctx: BenchContext, off: Replica): Promise<Row[]> {
  const on: Target = ctx.targets.kubegate;
  const offT: Target = { ...on, base: off.publicUrl };
  const rps = { on: [] as number[], off: [] as number[] };
  const p99 = { on: [] as number[], off: [] as number[] };
  const key = (t: Target) => (t === on ? 'on' : 'off');
  for (let r = 0; r < 2; r++) {
    for (const t of rotate([on, offT], r)) {
      const res = await h2load({
        url: url(t, path),
        headers: t.headers,
        clients: 8,
        streams: 8,
        durationS: 3,
        warmUpS: 1,
      });
      rps[key(t)].push(res.reqPerSec);
      const lat = await http1Load({
        url: url(t, path),
        headers: t.headers,
        connections: 16,
        durationS: 3,
        rate: 2000,
      });
      p99[key(t)].push(percentile(lat.latenciesMs, 99));
    }
  }
  const loss = await eventsLost(ctx, on);
  const ratio = ratioSpread(rps.on, rps.off);
  const d99 = diffSpread(p99.on, p99.off);
  return [
    {
      id: 'P8',
      what: 'audit on vs off: h2 throughput, p99 at 2,000 req/s',
      upstream: 'bench upstream',
      goal: '≤ 10% throughput, ≤ +1 ms p99; zero events lost',
      result: `throughput ${fmtSpread({ ...ratio, median: ratio.median * 100, min: ratio.min * 100, max: ratio.max * 100 }, 0)}% of audit off; p99 ${fmtSpread(d99, 2, ' ms')}`,
      absolute: `events: ${loss.sent} requests sent at full speed (${loss.answered} answered), ${loss.events} complete events (${loss.lost} lost, ${loss.duplicates} twice)`,
      verdict:
        ratio.median >= 0.9 && d99.median <= 1 && loss.lost === 0 && loss.duplicates === 0
          ? 'met'
          : 'not met',
    },
  ];
}

/**
 * Zero events lost: a fixed burst at full speed, marked by its user agent,
 * then one ResponseComplete per answered request must reach the database.
 */
async function eventsLost(
  ctx: BenchContext,
  on: Target,
): Promise<{ sent: number; answered: number; events: number; lost: number; duplicates: number }> {
  const agent = `kubegate-bench-p8-${Date.now()}`;
  const sent = 20_000;
  const res = await h2load({
    url: url(on, path),
    headers: { ...on.headers, 'user-agent': agent },
    clients: 8,
    streams: 8,
    requests: sent,
  });
  const count = async () =>
    (
      await ctx.stack.sql<{ n: number; ids: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT audit_id)::int AS ids FROM audit_events
          WHERE stage = 'ResponseComplete' AND event->>'userAgent' = $1`,
        [agent],
      )
    )[0]!;
  // The audit writer flushes in batches: wait until the count stops growing.
  let last = await count();
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    const now = await count();
    if (now.n === last.n && now.n >= sent) break;
    last = now;
  }
  return {
    sent,
    answered: res.succeeded,
    events: last.n,
    lost: Math.max(0, sent - last.ids),
    duplicates: last.n - last.ids,
  };
}
