/**
 * P3: a 200 MiB LIST streamed. MB/s by h2load (one request, one stream, C
 * client), kubegate against nginx 2-hop and direct; memory growth of proxy
 * and agent between a 20 MiB and a 200 MiB LIST (peak RSS, after a forced
 * GC); first byte on a warm connection against direct.
 */
import { h2load } from '../h2load.js';
import { H2Client } from '../h2-client.js';
import { diffSpread, fmtSpread, median, ratioSpread, spread } from '../stats.js';
import { rotate, url, type BenchContext, type Target } from '../context.js';
import { mb, peakOf, resetPeak, rssAfterGc } from '../memory.js';
import type { Row } from '../table.js';
import type { Proc } from '../../test/support/proc.js';

const listPath = (mib: number) => `/api/v1/namespaces/list-${mib}/configmaps`;

async function peakDuring(procs: Proc[], run: () => Promise<unknown>): Promise<number[]> {
  for (const p of procs) await rssAfterGc(p);
  for (const p of procs) resetPeak(p.child.pid!);
  await run();
  return procs.map((p) => peakOf(p.child.pid!));
}

export async function p3List(ctx: BenchContext): Promise<Row[]> {
  const t = ctx.targets;
  const order: Target[] = [t.kubegate, t.nginx, t.direct];
  const mbps = new Map<string, number[]>(order.map((x) => [x.name, []]));
  let failed = 0;
  const rounds = 3;
  for (const target of order)
    await h2load({
      url: url(target, listPath(20)),
      headers: target.headers,
      clients: 1,
      streams: 1,
    });
  for (let r = 0; r < rounds; r++) {
    for (const target of rotate(order, r)) {
      const res = await h2load({
        url: url(target, listPath(200)),
        headers: target.headers,
        clients: 1,
        streams: 1,
        requests: 1,
      });
      if (res.ok2xx !== 1 || res.bytes < 200 * 1024 * 1024) failed++;
      mbps.get(target.name)!.push(res.bytes / 1e6 / (res.requestMs / 1000));
    }
    ctx.log(`  P3 round ${r + 1}/${rounds}`);
  }
  const ratio = ratioSpread(mbps.get('kubegate')!, mbps.get('nginx')!);
  const med = (n: string) => median(mbps.get(n)!).toFixed(0);

  // Memory: peak RSS of proxy and agent during a 20 MiB and a 200 MiB LIST.
  const procs = [ctx.stack.main.proxy, ctx.agent];
  const growth: number[][] = [[], []];
  for (let r = 0; r < 1; r++) {
    const kg = (mib: number) => () =>
      h2load({
        url: url(t.kubegate, listPath(mib)),
        headers: t.kubegate.headers,
        clients: 1,
        streams: 1,
      });
    const p20 = await peakDuring(procs, kg(20));
    const p200 = await peakDuring(procs, kg(200));
    growth[0]!.push(mb(p200[0]! - p20[0]!));
    growth[1]!.push(mb(p200[1]! - p20[1]!));
  }
  const gProxy = spread(growth[0]!);
  const gAgent = spread(growth[1]!);

  // First byte on a warm connection: request sent → first body byte.
  const clients = new Map(
    [t.kubegate, t.direct, t.nginx].map((x) => [x.name, new H2Client(x.base, x.ca, x.headers)]),
  );
  const fb = new Map<string, number[]>([...clients.keys()].map((k) => [k, []]));
  for (const x of [t.kubegate, t.direct, t.nginx])
    await clients.get(x.name)!.get(x.prefix + listPath(20), { firstByteOnly: true });
  for (let r = 0; r < 3; r++) {
    for (const target of rotate([t.kubegate, t.direct, t.nginx], r)) {
      const c = clients.get(target.name)!;
      const samples: number[] = [];
      for (let i = 0; i < 3; i++)
        samples.push(
          (await c.get(target.prefix + listPath(200), { firstByteOnly: true })).firstByteMs,
        );
      fb.get(target.name)!.push(median(samples));
    }
  }
  for (const c of clients.values()) c.close();
  const fbDiff = diffSpread(fb.get('kubegate')!, fb.get('direct')!);

  return [
    {
      id: 'P3',
      what: '200 MiB LIST streamed, MB/s (h2load, one stream)',
      upstream: 'bench upstream',
      goal: '≥ 70% of nginx 2-hop MB/s',
      result: `${(ratio.median * 100).toFixed(0)}% (${(ratio.min * 100).toFixed(0)}–${(ratio.max * 100).toFixed(0)}%) of nginx 2-hop`,
      absolute: `MB/s: kubegate ${med('kubegate')}, nginx ${med('nginx')}, direct ${med('direct')}${failed ? `; ${failed} incomplete` : ''}`,
      verdict: failed ? 'error' : ratio.median >= 0.7 ? 'met' : 'not met',
    },
    {
      id: 'P3-mem',
      what: 'peak RSS growth, 200 MiB LIST vs 20 MiB LIST',
      upstream: 'bench upstream',
      goal: '< 16 MB per process',
      result: `proxy ${fmtSpread(gProxy, 1, ' MB')}, agent ${fmtSpread(gAgent, 1, ' MB')}`,
      absolute: `${growth[0]!.length} rounds, peak RSS (VmHWM) after forced GC`,
      verdict: gProxy.median < 16 && gAgent.median < 16 ? 'met' : 'not met',
    },
    {
      id: 'P3-ttfb',
      what: 'LIST first byte on a warm connection, over direct',
      upstream: 'bench upstream',
      goal: '≤ direct + 1 ms',
      result: `kubegate ${fmtSpread(fbDiff, 2, ' ms')}; nginx 2-hop ${fmtSpread(diffSpread(fb.get('nginx')!, fb.get('direct')!), 2, ' ms')}`,
      absolute: `first byte: direct ${median(fb.get('direct')!).toFixed(2)} ms, kubegate ${median(fb.get('kubegate')!).toFixed(2)} ms, nginx ${median(fb.get('nginx')!).toFixed(2)} ms`,
      verdict: fbDiff.median <= 1 ? 'met' : 'not met',
    },
  ];
}
