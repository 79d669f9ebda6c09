/**
 * h2load (Debian nghttp2-client), the HTTP/2 load generator: written in C,
 * so the client's own cost stays small next to the servers it measures.
 */
import { spawn } from 'node:child_process';

export interface H2loadResult {
  reqPerSec: number;
  succeeded: number;
  /** Answers with a 2xx status (h2load counts any answer as succeeded). */
  ok2xx: number;
  failed: number;
  /** Response bytes, headers included. */
  bytes: number;
  /** Mean time per request, ms (excludes connecting). */
  requestMs: number;
  raw: string;
}

const unitMs: Record<string, number> = { us: 0.001, ms: 1, s: 1000 };

export function parseH2load(out: string): H2loadResult {
  const fin = /finished in [\d.]+m?s, ([\d.]+) req\/s/.exec(out);
  const req = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed/.exec(out);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(out);
  const traffic = /traffic: [^(]*\((\d+)\) total/.exec(out);
  const tfr = /time for request:\s+[\d.]+(?:us|ms|s)\s+[\d.]+(?:us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(
    out,
  );
  if (!fin || !req) throw new Error(`cannot parse h2load output:\n${out}`);
  return {
    reqPerSec: Number(fin[1]),
    succeeded: Number(req[1]),
    ok2xx: codes ? Number(codes[1]) : 0,
    // A non-2xx answer is a failure here: the bench only asks for things that exist.
    failed: Number(req[2]) + (codes ? Number(codes[2]) + Number(codes[3]) + Number(codes[4]) : 0),
    bytes: traffic ? Number(traffic[1]) : 0,
    requestMs: tfr ? Number(tfr[1]) * unitMs[tfr[2]!]! : NaN,
    raw: out,
  };
}

export interface H2loadOptions {
  url: string;
  headers?: Record<string, string>;
  clients: number;
  streams: number;
  /** Either a request count … */
  requests?: number;
  /** … or a measured duration in seconds, after `warmUpS`. */
  durationS?: number;
  warmUpS?: number;
  /** HTTP/1.1 instead of HTTP/2 (plain or over TLS), for peers that speak nothing else. */
  h1?: boolean;
  /** POST this file's content as each request's body (h2load -d). */
  dataFile?: string;
}

export function h2load(o: H2loadOptions): Promise<H2loadResult> {
  const args = [
    `-c${o.clients}`,
    `-m${o.streams}`,
    '-t1',
    ...(o.h1 ? ['--h1'] : []),
    ...(o.dataFile ? [`-d${o.dataFile}`] : []),
    ...Object.entries(o.headers ?? {}).map(([k, v]) => `-H${k}: ${v}`),
    ...(o.durationS
      ? [`-D${o.durationS}`, `--warm-up-time=${o.warmUpS ?? 1}`]
      : [`-n${o.requests ?? 1}`]),
    o.url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('h2load', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', reject);
    child.once('close', () => {
      try {
        resolve(parseH2load(out));
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}
