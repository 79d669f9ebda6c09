/**
 * P7: the first request of a user on a cluster (the agent creates the
 * just-in-time account and gets its token) against the same user's warm
 * requests. Users get access through one group binding made beforehand, so
 * the first request is nothing but that user's first request.
 */
import { H2Client } from '../h2-client.js';
import { diffSpread, fmtSpread, median } from '../stats.js';
import type { BenchContext, Target } from '../context.js';
import type { Row } from '../table.js';

export async function p7Jit(
  ctx: BenchContext,
  target: Target,
  cluster: string,
  path: string,
  upstreamName: string,
): Promise<Row> {
  const group = `jit-bench-${cluster}`;
  await ctx.stack.grant({ groups: [group], role: 'view', clusters: [cluster] });
  await new Promise((r) => setTimeout(r, 1500)); // the binding reaches every replica
  const first: number[] = [];
  const warm: number[] = [];
  const failed: number[] = [];
  for (let i = 0; i < 5; i++) {
    const token = await ctx.stack.token(`jit-${cluster}-${i}`, [group]);
    const c = new H2Client(target.base, target.ca, { authorization: `Bearer ${token}` });
    // Same connection for both, so the TLS handshake counts in neither.
    await c.get('/healthz');
    const f = await c.get(`${target.prefix}${path}`);
    const w: number[] = [];
    for (let k = 0; k < 5; k++) w.push((await c.get(`${target.prefix}${path}`)).totalMs);
    c.close();
    if (f.status !== 200) failed.push(f.status);
    first.push(f.totalMs);
    warm.push(median(w));
  }
  const d = diffSpread(first, warm);
  return {
    id: `P7${upstreamName === 'real test cluster' ? '-real' : ''}`,
    what: 'first request of a new user (JIT account) over a warm request',
    upstream: upstreamName,
    goal: '≤ 150 ms over a warm request',
    result: `+${fmtSpread(d, 1, ' ms')}`,
    absolute: `first ${median(first).toFixed(1)} ms, warm ${median(warm).toFixed(1)} ms${failed.length ? `; first requests answered ${failed.join(', ')}` : ''}`,
    verdict: failed.length ? 'error' : d.median <= 150 ? 'met' : 'not met',
  };
}
