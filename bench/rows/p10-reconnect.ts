/**
 * P10: a proxy replica is killed (SIGKILL) and started again on the same
 * ports; its agent (two tunnels) must come back. Measured per tunnel from the
 * moment the new replica listens to its "tunnel up", over several restarts;
 * the time from the kill is reported beside it.
 */
import { percentile } from '../stats.js';
import { sleep, type BenchContext } from '../context.js';
import type { Replica } from '../stack.js';
import type { Row } from '../table.js';

const count = (text: string) => (text.match(/"msg":"tunnel up"/g) ?? []).length;

export async function p10Reconnect(
  ctx: BenchContext,
  replica: Replica,
  tunnels: number,
): Promise<Row[]> {
  const fromListen: number[] = [];
  const fromKill: number[] = [];
  const rounds = 5;
  let lost = 0;
  for (let r = 0; r < rounds; r++) {
    const kill = performance.now();
    await replica.restart();
    const listening = performance.now();
    let seen = 0;
    while (seen < tunnels && performance.now() - listening < 20_000) {
      const now = count(replica.proxy.output());
      for (; seen < now && seen < tunnels; seen++) {
        fromListen.push(performance.now() - listening);
        fromKill.push(performance.now() - kill);
      }
      await sleep(5);
    }
    lost += tunnels - seen;
    ctx.log(`  P10 restart ${r + 1}/${rounds}: ${seen}/${tunnels} tunnels back`);
    await sleep(300);
  }
  const p = (xs: number[], q: number) => percentile(xs, q).toFixed(0);
  return [
    {
      id: 'P10',
      what: `replica killed and restarted → agent tunnels back (${rounds} restarts × ${tunnels} tunnels)`,
      upstream: 'bench upstream',
      goal: 'p99 ≤ 2 s',
      result: `from replica listening: p50 ${p(fromListen, 50)} ms, p99 ${p(fromListen, 99)} ms`,
      absolute: `from kill: p50 ${p(fromKill, 50)} ms, p99 ${p(fromKill, 99)} ms${lost ? `; ${lost} tunnels not back within 20 s` : ''}`,
      verdict: !lost && percentile(fromListen, 99) <= 2000 ? 'met' : 'not met',
    },
  ];
}
