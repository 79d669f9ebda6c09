/**
 * HTTP/1.1 load with autocannon: a fixed overall rate (open loop while the
 * server keeps up: each of the connections fires on a timer, not on the
 * previous answer) or as fast as it goes (closed loop). Latencies are taken
 * per response with sub-millisecond precision; autocannon's own histogram
 * rounds to whole milliseconds, too coarse for a +0.5 ms goal.
 */
export interface Http1Result {
  latenciesMs: number[];
  reqPerSec: number;
  non2xx: number;
  errors: number;
}

export interface Http1Options {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  durationS: number;
  /** Requests per second over all connections; omit for closed loop. */
  rate?: number;
}

export async function http1Load(o: Http1Options): Promise<Http1Result> {
  const { default: autocannon } = await import('autocannon');
  const latenciesMs: number[] = [];
  let non2xx = 0;
  return new Promise((resolve, reject) => {
    const inst = autocannon(
      {
        url: o.url,
        connections: o.connections,
        duration: o.durationS,
        headers: o.headers ?? {},
        timeout: 10,
        ...(o.rate ? { overallRate: o.rate } : {}),
      },
      (err, result) => {
        if (err) return reject(err);
        resolve({
          latenciesMs,
          reqPerSec: result.requests.average,
          non2xx,
          errors: result.errors + result.timeouts,
        });
      },
    );
    inst.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) latenciesMs.push(ms);
      else non2xx++;
    });
  });
}
