/**
 * Open-loop load over HTTP/2 at a fixed rate (wrt2-style): requests are
 * scheduled every 1/rate s whatever the previous ones are doing, and each
 * latency is measured from its *scheduled* time, so a stall shows up in the
 * percentiles instead of silently lowering the rate (coordinated omission).
 * kubectl speaks HTTP/2; this is P1 as kubectl users feel it.
 */
import { H2Client } from './h2-client.js';
import type { Target } from './context.js';

export interface RateResult {
  latenciesMs: number[];
  errors: number;
}

export async function h2FixedRate(
  t: Target,
  path: string,
  rate: number,
  seconds: number,
): Promise<RateResult> {
  const client = new H2Client(t.base, t.ca, t.headers);
  const latenciesMs: number[] = [];
  let errors = 0;
  const total = Math.round(rate * seconds);
  const interval = 1000 / rate;
  const t0 = performance.now();
  const inflight: Promise<void>[] = [];
  try {
    for (let i = 0; i < total; i++) {
      const due = t0 + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait - 0.5));
      while (performance.now() < due) {
        // spin the last half millisecond for an even schedule
      }
      inflight.push(
        client.get(t.prefix + path, { timeoutMs: 10_000 }).then(
          (r) => {
            if (r.status === 200) latenciesMs.push(performance.now() - due);
            else errors++;
          },
          () => {
            errors++;
          },
        ),
      );
    }
    await Promise.all(inflight);
  } finally {
    client.close();
  }
  return { latenciesMs, errors };
}
