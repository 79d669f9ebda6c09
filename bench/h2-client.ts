/**
 * An HTTP/2 client for the rows h2load cannot do: many long-lived watches
 * with per-event latency, a stalled reader, first-byte timing, and single
 * requests for polling. Spreads streams over sessions so none exceeds the
 * server's concurrent-stream limit (kubegate's front allows 1000).
 */
import * as http2 from 'node:http2';
import { nowMs } from './upstream.js';

export interface GetResult {
  status: number;
  /** The first 300 bytes of a non-2xx answer (to say why). */
  error?: string;
  bytes: number;
  /** Request sent → first body byte, ms. */
  firstByteMs: number;
  totalMs: number;
}

export interface Watch {
  stream: http2.ClientHttp2Stream;
  /** Body bytes received so far. */
  bytes: number;
  status: number;
  /** Resolves when the stream ends or is reset (by either side). */
  closed: Promise<void>;
  close(): void;
}

export class H2Client {
  private readonly sessions: { s: http2.ClientHttp2Session; open: number }[] = [];

  constructor(
    private readonly base: string,
    private readonly ca: string,
    private readonly headers: Record<string, string> = {},
    private readonly maxStreams = 900,
  ) {}

  private session(): { s: http2.ClientHttp2Session; open: number } {
    let e = this.sessions.find((x) => x.open < this.maxStreams && !x.s.closed && !x.s.destroyed);
    if (!e) {
      const s = http2.connect(this.base, { ca: this.ca, peerMaxConcurrentStreams: 100_000 });
      s.on('error', () => undefined);
      s.unref();
      e = { s, open: 0 };
      this.sessions.push(e);
    }
    return e;
  }

  private request(path: string, extra: Record<string, string> = {}) {
    const e = this.session();
    e.open++;
    const stream = e.s.request({ ':path': path, ...this.headers, ...extra }, { endStream: true });
    stream.once('close', () => e.open--);
    stream.on('error', () => undefined);
    return stream;
  }

  /** One GET; with `firstByteOnly` the stream is cancelled at the first body byte. */
  get(
    path: string,
    opts: { firstByteOnly?: boolean; timeoutMs?: number } = {},
  ): Promise<GetResult> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      const stream = this.request(path);
      let status = 0;
      let bytes = 0;
      let first = NaN;
      const timer = setTimeout(() => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(new Error(`GET ${path}: no answer within ${opts.timeoutMs ?? 10_000} ms`));
      }, opts.timeoutMs ?? 10_000);
      let error = '';
      const finish = () => {
        clearTimeout(timer);
        const r: GetResult = { status, bytes, firstByteMs: first, totalMs: performance.now() - t0 };
        if (error) r.error = error;
        resolve(r);
      };
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('data', (c: Buffer) => {
        if (!bytes) first = performance.now() - t0;
        bytes += c.length;
        if ((status < 200 || status > 299) && error.length < 300)
          error += c.toString('utf8', 0, Math.min(c.length, 300 - error.length));
        if (opts.firstByteOnly) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          finish();
        }
      });
      stream.on('end', finish);
      stream.on('close', finish);
      stream.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /**
   * Open a watch; resolves once response headers arrived. Each event line
   * carrying the upstream's `"t"` stamp reports its latency to `onLatency`.
   * A `paused` watch never reads: the stalled client of P5.
   */
  watch(
    path: string,
    onLatency: ((ms: number) => void) | undefined,
    opts: { paused?: boolean } = {},
  ): Promise<Watch> {
    const stream = this.request(path);
    let carry = '';
    const w: Watch = {
      stream,
      bytes: 0,
      status: 0,
      closed: new Promise((r) => stream.once('close', () => r())),
      close: () => {
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      },
    };
    if (opts.paused) stream.pause();
    else
      stream.on('data', (c: Buffer) => {
        w.bytes += c.length;
        if (!onLatency) return;
        const now = nowMs();
        const lines = (carry + c.toString('latin1')).split('\n');
        carry = lines.pop() ?? '';
        for (const line of lines) {
          const m = /"t":"([\d.]+)"/.exec(line);
          if (m) onLatency(now - Number(m[1]));
        }
      });
    return new Promise((resolve, reject) => {
      stream.once('response', (h) => {
        w.status = Number(h[':status']);
        resolve(w);
      });
      stream.once('error', reject);
      stream.once('close', () => reject(new Error(`watch ${path} closed before headers`)));
    });
  }

  close(): void {
    for (const e of this.sessions) e.s.destroy();
    this.sessions.length = 0;
  }
}
