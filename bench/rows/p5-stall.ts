/**
 * P5: one stalled watch reader. 50 watches receive 1,000 events/s; in the
 * stalled phase one more watch on the same path never reads while the
 * upstream writes to it as fast as back-pressure lets it. The others' p99 is
 * compared between the phases, and the bytes the stalled stream absorbed
 * (accepted by the upstream, never read by the client) are what the chain
 * holds for it. Direct is measured the same way as the baseline.
 */
import { H2Client, type Watch } from '../h2-client.js';
import { diffSpread, fmtSpread, median, percentile } from '../stats.js';
import { sleep, type BenchContext, type Target } from '../context.js';
import type { Row } from '../table.js';

const watchPath = (group: string) => `/api/v1/namespaces/${group}/configmaps?watch=true`;

interface Result {
  rise: number[];
  held: number[];
  p99calm: number[];
}

async function measure(ctx: BenchContext, t: Target, key: string, rounds: number): Promise<Result> {
  const client = new H2Client(t.base, t.ca, t.headers);
  const stallClient = new H2Client(t.base, t.ca, t.headers);
  const sink = { on: false, lat: [] as number[] };
  const group = `s-${key}`;
  const stallGroup = `stall-${key}`;
  const watches: Watch[] = await Promise.all(
    Array.from({ length: 50 }, () =>
      client.watch(t.prefix + watchPath(group), (ms) => sink.on && sink.lat.push(ms)),
    ),
  );
  const bad = watches.find((w) => w.status !== 200);
  if (bad) throw new Error(`a watch through ${t.name} answered ${bad.status}`);
  const phase = async () => {
    sink.lat = [];
    sink.on = true;
    await ctx.upstream.call({ op: 'emit', group, rate: 1000, ms: 2000 });
    await sleep(100);
    sink.on = false;
    return percentile(sink.lat, 99);
  };
  const out: Result = { rise: [], held: [], p99calm: [] };
  try {
    await phase();
    for (let r = 0; r < rounds; r++) {
      const calm = await phase();
      const stalled = await stallClient.watch(t.prefix + watchPath(stallGroup), undefined, {
        paused: true,
      });
      if (stalled.status !== 200)
        throw new Error(`the stalled watch through ${t.name} answered ${stalled.status}`);
      await ctx.upstream.call({ op: 'flood', group: stallGroup });
      await sleep(500);
      const busy = await phase();
      const bytes = await ctx.upstream.call<number>({ op: 'floodStop', group: stallGroup });
      stalled.close();
      await ctx.upstream.call({ op: 'closeWatches', group: stallGroup });
      out.p99calm.push(calm);
      out.rise.push(busy - calm);
      out.held.push(bytes - stalled.bytes);
      await sleep(200);
    }
  } finally {
    for (const w of watches) w.close();
    client.close();
    stallClient.close();
    await ctx.upstream.call({ op: 'closeWatches', group });
  }
  return out;
}

export async function p5Stall(ctx: BenchContext): Promise<Row[]> {
  const rounds = 3;
  const kg = await measure(ctx, ctx.targets.kubegate, 'kg', rounds);
  const d = await measure(ctx, ctx.targets.direct, 'direct', rounds);
  const heldKg = median(kg.held);
  const heldD = median(d.held);
  const extra = diffSpread(kg.held, d.held);
  const rise = diffSpread(
    kg.rise,
    kg.rise.map(() => 0),
  );
  const mib = (b: number) => (b / 1024 / 1024).toFixed(2);
  return [
    {
      id: 'P5',
      what: 'one stalled watch reader among 50 (1,000 events/s)',
      upstream: 'bench upstream',
      goal: "others' p99 rises ≤ 1 ms; stalled stream holds ≤ 1 MB",
      result: `p99 rise ${fmtSpread(rise, 2, ' ms')} (direct ${fmtSpread(
        diffSpread(
          d.rise,
          d.rise.map(() => 0),
        ),
        2,
        ' ms',
      )}); held by kubegate beyond direct ${mib(extra.median)} MiB`,
      absolute: `stalled stream absorbed: kubegate ${mib(heldKg)} MiB, direct ${mib(heldD)} MiB; calm p99 kubegate ${median(kg.p99calm).toFixed(2)} ms, direct ${median(d.p99calm).toFixed(2)} ms`,
      verdict: rise.median <= 1 && extra.median <= 1024 * 1024 ? 'met' : 'not met',
    },
  ];
}
