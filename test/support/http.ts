/**
 * A direct HTTPS client for tests that need status codes and headers rather
 * than kubectl's rendering (latency loops, fail-closed checks).
 */
import * as https from 'node:https';

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function httpGet(
  url: string,
  opts: {
    token?: string;
    ca: string;
    method?: string;
    body?: string;
    timeoutMs?: number;
    headers?: Record<string, string>;
  },
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method: opts.method ?? 'GET',
        ca: opts.ca,
        agent: false,
        timeout: opts.timeoutMs ?? 10_000,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        let body = '';
        // Decoded as a stream: a UTF-8 character split between two chunks stays whole.
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Poll `probe` until it returns true; resolves with the elapsed ms, rejects after `timeoutMs`. */
export async function until(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    // A probe that throws (a connection cut mid-request) counts as "not yet".
    if (await probe().catch(() => false)) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
