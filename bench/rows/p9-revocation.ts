/**
 * P9: revocation to enforcement. A user with a binding on `bench` holds an
 * open watch on the main replica; the binding is deleted (or the token
 * revoked) in PostgreSQL, and both replicas are polled every 5 ms until
 * they refuse. Time from the committed change to the refusal on the slower
 * replica, and to the open watch being closed.
 */
import { H2Client } from '../h2-client.js';
import { median, percentile } from '../stats.js';
import { sleep, type BenchContext } from '../context.js';
import type { Replica } from '../stack.js';
import type { Row } from '../table.js';

const path = '/k8s/bench/api/v1/namespaces/default/configmaps/bench-1k';
const watch = '/k8s/bench/api/v1/namespaces/rv/configmaps?watch=true';

async function until(
  c: H2Client,
  want: (status: number) => boolean,
  timeoutMs: number,
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    const r = await c.get(path).catch(() => ({ status: 0 }));
    if (want(r.status)) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) return NaN;
    await sleep(5);
  }
}

export async function p9Revocation(ctx: BenchContext, replicas: Replica[]): Promise<Row[]> {
  const kinds = ['binding', 'token', 'binding', 'token', 'binding', 'token'] as const;
  const users = kinds.map((_, i) => `revoke-${i}`);
  const tokens = await Promise.all(users.map((u) => ctx.stack.token(u)));
  const times = { binding: [] as number[], token: [] as number[], watch: [] as number[] };
  let failures = 0;
  for (const [i, kind] of kinds.entries()) {
    const headers = { authorization: `Bearer ${tokens[i]}` };
    const clients = replicas.map((r) => new H2Client(r.publicUrl, ctx.stack.proxyCaPem, headers));
    try {
      const binding = await ctx.stack.grant({
        users: [users[i]!],
        role: 'view',
        clusters: ['bench'],
      });
      // Allowed everywhere first (a replica without a tunnel answers 503, not 403).
      for (const c of clients) await until(c, (s) => s !== 403 && s !== 401 && s !== 0, 5000);
      const w = await clients[0]!.watch(watch, undefined);
      const t0 = performance.now();
      if (kind === 'binding') await ctx.stack.sql('DELETE FROM bindings WHERE id = $1', [binding]);
      else
        await ctx.stack.sql('UPDATE api_tokens SET revoked_at = now() WHERE subject = $1', [
          users[i],
        ]);
      const refused = kind === 'binding' ? 403 : 401;
      const [each, closedAt] = await Promise.all([
        Promise.all(clients.map((c) => until(c, (s) => s === refused, 5000))),
        Promise.race([w.closed.then(() => performance.now() - t0), sleep(5000).then(() => NaN)]),
      ]);
      const worst = Math.max(...each);
      if (!Number.isFinite(worst) || !Number.isFinite(closedAt)) failures++;
      times[kind].push(worst);
      times.watch.push(closedAt);
      w.close();
      if (kind === 'token') await ctx.stack.sql('DELETE FROM bindings WHERE id = $1', [binding]);
    } finally {
      for (const c of clients) c.close();
    }
  }
  const all = [...times.binding, ...times.token, ...times.watch];
  const worst = Math.max(...all.filter(Number.isFinite));
  const f = (xs: number[]) =>
    `p50 ${median(xs).toFixed(0)} / max ${percentile(xs, 100).toFixed(0)} ms`;
  return [
    {
      id: 'P9',
      what: `revocation → refusal on ${replicas.length} replicas; open watch closed`,
      upstream: 'bench upstream',
      goal: '≤ 1 s, open watches closed',
      result: `binding deleted → 403: ${f(times.binding)}; token revoked → 401: ${f(times.token)}; watch closed: ${f(times.watch)}`,
      absolute: `${kinds.length} revocations, polled every 5 ms${failures ? `; ${failures} not enforced within 5 s` : ''}`,
      verdict: failures ? 'not met' : worst <= 1000 ? 'met' : 'not met',
    },
  ];
}
