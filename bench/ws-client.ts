/**
 * A bench client for one exec or port-forward session, as kubectl opens it:
 * HTTP/1.1 over TLS (WebSocket upgrades are HTTP/1.1), `Upgrade: websocket`
 * with a Kubernetes channel subprotocol, then frames read until the close
 * frame. It counts the bulk channel's bytes and checks the session ended
 * cleanly (exec: Status Success on channel 3; both: close code 1000).
 */
import * as https from 'node:https';
import { performance } from 'node:perf_hooks';
import type { Socket } from 'node:net';
import type { Target } from './context.js';
import { FrameReader, acceptKey, closeFrame, newKey } from './ws.js';

export type StreamKind = 'exec' | 'portforward';

export interface StreamResult {
  /** Bulk bytes received (stdout, or the forwarded port's data). */
  bytes: number;
  /** Request sent → close frame received. */
  ms: number;
  /** Request sent → 101. */
  handshakeMs: number;
  /** True when every byte came and the session closed as the upstream closes it. */
  clean: boolean;
  detail: string;
}

export const streamPath = (kind: StreamKind, mib: number, namespace = 'default'): string =>
  kind === 'exec'
    ? `/api/v1/namespaces/${namespace}/pods/stream-${mib}/exec?command=cat&command=%2Fdev%2Fzero&stdout=true`
    : `/api/v1/namespaces/${namespace}/pods/stream-${mib}/portforward?ports=8080`;

export function openStream(
  t: Target,
  kind: StreamKind,
  mib: number,
  timeoutMs = 120_000,
  namespace = 'default',
): Promise<StreamResult> {
  const base = new URL(t.base);
  const key = newKey();
  const protocol = kind === 'exec' ? 'v5.channel.k8s.io, v4.channel.k8s.io' : 'v4.channel.k8s.io';
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    let socket: Socket | undefined;
    const timer = setTimeout(() => {
      req.destroy();
      socket?.destroy();
      reject(new Error(`${t.name} ${kind}: no end within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const options: https.RequestOptions & { ALPNProtocols: string[] } = {
      host: base.hostname,
      port: base.port,
      path: t.prefix + streamPath(kind, mib, namespace),
      ca: t.ca,
      agent: false,
      ALPNProtocols: ['http/1.1'],
      headers: {
        ...t.headers,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': key,
        'sec-websocket-version': '13',
        'sec-websocket-protocol': protocol,
      },
    };
    const req = https.request(options);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`${t.name} ${kind}: ${err.message}`));
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => {
        clearTimeout(timer);
        reject(
          new Error(`${t.name} ${kind}: ${res.statusCode} instead of 101: ${body.slice(0, 200)}`),
        );
      });
    });
    req.on('upgrade', (res, s: Socket, head: Buffer) => {
      socket = s;
      const handshakeMs = performance.now() - t0;
      if (res.headers['sec-websocket-accept'] !== acceptKey(key)) {
        clearTimeout(timer);
        s.destroy();
        reject(new Error(`${t.name} ${kind}: wrong Sec-WebSocket-Accept`));
        return;
      }
      const bulk = kind === 'exec' ? 1 : 0;
      let bytes = 0;
      let status = '';
      let done = false;
      const finish = (clean: boolean, detail: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ bytes, ms: performance.now() - t0, handshakeMs, clean, detail });
      };
      const reader = new FrameReader(bulk, {
        onData: (channel, n) => {
          if (channel === bulk) bytes += n;
        },
        onMessage: (channel, payload) => {
          if (kind === 'exec' && channel === 3) status = payload.toString();
        },
        onClose: (code) => {
          // Answer the close (RFC 6455 §5.5.1), then let the server end the TCP side.
          s.end(closeFrame(1000, true));
          const want = mib * 1024 * 1024;
          const ok =
            code === 1000 &&
            bytes === want &&
            (kind === 'exec' ? status.includes('"Success"') : true);
          finish(
            ok,
            `close ${code}, ${bytes} of ${want} bytes${status ? `, status ${status}` : ''}`,
          );
        },
      });
      // Port-forward's data channel opens with a 2-byte port header the reader counts as data.
      if (kind === 'portforward') bytes -= 2;
      s.on('data', (b: Buffer) => {
        try {
          reader.push(b);
        } catch (err) {
          s.destroy();
          finish(false, (err as Error).message);
        }
      });
      s.on('error', (err) => finish(false, err.message));
      s.on('close', () =>
        finish(false, `connection closed before the close frame (${bytes} bytes)`),
      );
      if (head.length) s.emit('data', head);
    });
    req.end();
  });
}
