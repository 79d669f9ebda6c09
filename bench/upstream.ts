/**
 * The bench upstream: a minimal Node server that answers like kube-apiserver
 * where the benchmark needs it, so the apiserver itself is never the
 * bottleneck. TLS with HTTP/2 and HTTP/1.1 (the agent's undici pool speaks
 * 1.1, direct clients and h2load speak 2). It ignores Authorization and
 * Impersonate-* headers. Routes:
 *
 * - `GET /api/v1/namespaces/default/configmaps/bench-1k` — a fixed 1 KiB ConfigMap;
 * - `GET /api/v1/namespaces/list-<N>/configmaps` — a ConfigMapList of N MiB,
 *   streamed in 64 KiB chunks with back-pressure (no Content-Length, like the apiserver);
 * - `GET /api/v1/namespaces/<group>/configmaps?watch=true` — a watch; events go
 *   out when the benchmark asks (emit / flood, over IPC), each stamped with
 *   the time it was written, so clients measure event latency;
 * - WebSocket upgrades on `pods/stream-<N>/exec` and `…/portforward` that
 *   stream N MiB (upstream-stream.ts, P6);
 * - anything else: the in-memory object API of fake-api.ts (agent identity, JIT).
 */
import * as http2 from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { FakeApi } from './fake-api.js';
import { streamUpgrade } from './upstream-stream.js';

type Req = http2.Http2ServerRequest;
type Res = http2.Http2ServerResponse;

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

const small = (() => {
  const base = {
    kind: 'ConfigMap',
    apiVersion: 'v1',
    metadata: {
      name: 'bench-1k',
      namespace: 'default',
      uid: '6f1c3d1e-0000-4000-8000-000000000001',
      resourceVersion: '42',
      creationTimestamp: '2025-01-01T00:00:00Z',
    },
    data: { pad: '' },
  };
  const pad = 1024 - Buffer.byteLength(JSON.stringify(base));
  base.data.pad = 'x'.repeat(Math.max(0, pad));
  return Buffer.from(JSON.stringify(base));
})();

const listChunk = (() => {
  const items: string[] = [];
  let size = 0;
  for (let i = 0; size < 64 * 1024 - 1100; i++) {
    const item = JSON.stringify({
      metadata: { name: `cm-${i}`, namespace: 'list', resourceVersion: String(1000 + i) },
      data: { v: 'y'.repeat(900) },
    });
    items.push(item);
    size += item.length + 1;
  }
  return Buffer.from(items.join(',') + ',');
})();

interface Watch {
  group: string;
  res: Res;
  bytes: number;
  flooding: boolean;
}

export class BenchUpstream {
  readonly server: http2.Http2SecureServer;
  private readonly api = new FakeApi();
  private readonly watches = new Map<string, Set<Watch>>();
  private seq = 0;
  /** TLS connections accepted so far: shows whether clients keep them alive. */
  connections = 0;
  /** Requests answered so far. */
  requests = 0;

  constructor(cert: string, key: string) {
    this.server = http2.createSecureServer(
      {
        cert,
        key,
        allowHTTP1: true,
        settings: { maxConcurrentStreams: 100_000, initialWindowSize: 1 << 20 },
        maxSessionMemory: 1024,
      },
      (req, res) => this.route(req, res),
    );
    this.server.on('sessionError', () => undefined);
    // HTTP/1.1 upgrades (exec, port-forward) reach the server, not the handler.
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      this.requests++;
      if (!streamUpgrade(req, socket)) socket.destroy();
    });
    // Go's net/http (kube-apiserver) disables Nagle on every connection; Node's
    // HTTP/1.1 fallback of an HTTP/2 server does not, and Nagle plus delayed
    // ACKs would cost its clients 40 ms per response.
    this.server.on('secureConnection', (socket: TLSSocket) => {
      this.connections++;
      socket.setNoDelay(true);
    });
  }

  listen(): Promise<number> {
    return new Promise((resolve) =>
      this.server.listen(0, '127.0.0.1', () =>
        resolve((this.server.address() as AddressInfo).port),
      ),
    );
  }

  private route(req: Req, res: Res): void {
    this.requests++;
    res.on('error', () => undefined);
    const url = new URL(req.url, 'https://upstream');
    const p = url.pathname;
    if (req.method === 'GET') {
      if (p === '/api/v1/namespaces/default/configmaps/bench-1k') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': small.length });
        res.end(small);
        return;
      }
      const list = /^\/api\/v1\/namespaces\/list-(\d+)\/configmaps$/.exec(p);
      if (list && url.searchParams.get('watch') !== 'true') {
        void this.streamList(res, Number(list[1]) * 1024 * 1024);
        return;
      }
      const watch = /^\/api\/v1\/namespaces\/([^/]+)\/configmaps$/.exec(p);
      if (watch && url.searchParams.get('watch') === 'true') {
        this.openWatch(watch[1]!, res);
        return;
      }
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let answer;
      try {
        answer = this.api.handle(req.method, url, Buffer.concat(chunks));
      } catch (err) {
        answer = { status: 400, body: { kind: 'Status', code: 400, message: String(err) } };
      }
      const text = JSON.stringify(answer.body);
      res.writeHead(answer.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    });
  }

  private async streamList(res: Res, bytes: number): Promise<void> {
    res.writeHead(200, { 'content-type': 'application/json' });
    const head = Buffer.from(
      '{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"1000"},"items":[',
    );
    let sent = 0;
    const write = (b: Buffer) =>
      new Promise<boolean>((resolve) => {
        if (res.destroyed || res.writableEnded) return resolve(false);
        sent += b.length;
        if (res.write(b)) return resolve(true);
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve(!res.destroyed);
        };
        res.once('drain', done);
        res.once('close', done);
      });
    if (!(await write(head))) return;
    while (sent + listChunk.length < bytes) if (!(await write(listChunk))) return;
    res.end(Buffer.from('{"metadata":{"name":"last"}}]}'));
  }

  private openWatch(group: string, res: Res): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    // Headers now: a watch may not see its first event for a long time.
    (res as unknown as { flushHeaders?: () => void }).flushHeaders?.();
    const w: Watch = { group, res, bytes: 0, flooding: false };
    let set = this.watches.get(group);
    if (!set) this.watches.set(group, (set = new Set()));
    set.add(w);
    res.on('close', () => {
      w.flooding = false;
      set.delete(w);
    });
  }

  private event(group: string, padBytes: number): Buffer {
    const n = ++this.seq;
    return Buffer.from(
      `{"type":"MODIFIED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ev-${n}","namespace":"${group}","resourceVersion":"${n}"},"data":{"t":"${nowMs().toFixed(3)}","pad":"${'z'.repeat(padBytes)}"}}}\n`,
    );
  }

  counts(): Record<string, number> {
    return Object.fromEntries([...this.watches].map(([g, s]) => [g, s.size]));
  }

  /** Events to the watches of `group`, round robin, at `rate` per second for `ms`. */
  emit(group: string, rate: number, ms: number, padBytes = 200): Promise<number> {
    const list = [...(this.watches.get(group) ?? [])];
    if (!list.length) return Promise.resolve(0);
    let sent = 0;
    let next = 0;
    const t0 = performance.now();
    return new Promise((resolve) => {
      const tick = setInterval(() => {
        const elapsed = performance.now() - t0;
        const due = Math.min(Math.floor((elapsed * rate) / 1000), Math.floor((ms * rate) / 1000));
        for (; sent < due; sent++) {
          // Stalled watches are flooded separately; never queue more on them.
          const w = list[next++ % list.length]!;
          if (w.res.destroyed || w.flooding) continue;
          w.res.write(this.event(group, padBytes));
        }
        if (elapsed >= ms) {
          clearInterval(tick);
          resolve(sent);
        }
      }, 1);
    });
  }

  /**
   * Write 16 KiB events to every watch of `group` as fast as back-pressure
   * allows, until `floodStop`. Counts the bytes each watch accepted.
   */
  flood(group: string): void {
    for (const w of this.watches.get(group) ?? []) {
      if (w.flooding) continue;
      w.flooding = true;
      const pump = () => {
        while (w.flooding && !w.res.destroyed) {
          const ev = this.event(group, 16 * 1024);
          w.bytes += ev.length;
          if (!w.res.write(ev)) {
            w.res.once('drain', pump);
            return;
          }
        }
      };
      pump();
    }
  }

  /** Stop flooding `group`; returns the bytes its watches accepted so far. */
  floodStop(group: string): number {
    let bytes = 0;
    for (const w of this.watches.get(group) ?? []) {
      w.flooding = false;
      bytes += w.bytes;
    }
    return bytes;
  }

  closeWatches(group: string): void {
    for (const w of this.watches.get(group) ?? []) w.res.end();
    this.watches.delete(group);
  }
}
