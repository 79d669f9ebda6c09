/**
 * FakeApiserver — a stand-in, named as such, for the one thing the real test
 * cluster cannot do without a kubelet: answer an exec upgrade with 101 and
 * carry bytes. It speaks just enough of the API for an agent in impersonation
 * mode (its identity Secret) and echoes upgraded bytes back in upper case.
 * Every request it receives is recorded for assertions.
 */
import * as http2 from 'node:http2';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, createCa } from '../../common/pki.js';

export interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface FakeApiserver {
  url: string;
  caPem: string;
  received: Received[];
  /** Bytes that arrived on upgraded connections. */
  upgradedBytes: () => string;
  /** Watches (`watch=true`) held open now: answered 200, no events. */
  openWatches: () => number;
  close(): Promise<void>;
}

export interface FakeApiserverOptions {
  /**
   * Headers added to every answer it gives: ordinary responses, 101s and
   * refused upgrades alike — what a pod behind pods/proxy, or an aggregated
   * API server, could send (e.g. forged `kg-…` headers).
   */
  responseHeaders?: Record<string, string>;
}

export async function startFakeApiserver(opts: FakeApiserverOptions = {}): Promise<FakeApiserver> {
  const extra = opts.responseHeaders ?? {};
  const extraRaw = Object.entries(extra)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const caPair = await createCa('fake apiserver CA', 3_600_000);
  const ca = await CertificateAuthority.load(caPair);
  const serving = await ca.issueKeyAndCert({
    commonName: 'fake-apiserver',
    usage: 'server',
    ttlMs: 3_600_000,
    ips: ['127.0.0.1'],
  });
  const received: Received[] = [];
  const secrets = new Map<string, string>();
  let upgraded = '';
  const watches = new Set<unknown>();
  // HTTP/2 and HTTP/1.1, as kube-apiserver: the agent sends watches over HTTP/2.
  const server = http2.createSecureServer(
    { cert: serving.certPem, key: serving.keyPem, allowHTTP1: true },
    (req, res) => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
      if (/[?&]watch=(1|true)(&|$)/.test(req.url ?? '')) {
        res.writeHead(200, { ...extra, 'content-type': 'application/json' });
        // (HTTP/2's writeHead sends the headers; HTTP/1.1 needs a flush.)
        if ('flushHeaders' in res) (res as { flushHeaders(): void }).flushHeaders();
        watches.add(res);
        res.once('close', () => watches.delete(res));
        return;
      }
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const m = /^\/api\/v1\/namespaces\/([^/]+)\/secrets(?:\/([^/?]+))?/.exec(req.url ?? '');
        const send = (code: number, obj: unknown) => {
          res.writeHead(code, { ...extra, 'content-type': 'application/json' });
          res.end(JSON.stringify(obj));
        };
        if (m) {
          const key = `${m[1]}/${m[2] ?? (JSON.parse(body || '{}') as { metadata?: { name?: string } }).metadata?.name}`;
          if (req.method === 'GET')
            return secrets.has(key)
              ? send(200, JSON.parse(secrets.get(key)!))
              : send(404, { kind: 'Status', code: 404, reason: 'NotFound' });
          if (req.method === 'PUT' && !secrets.has(key))
            return send(404, { kind: 'Status', code: 404, reason: 'NotFound' });
          secrets.set(key, body);
          return send(req.method === 'POST' ? 201 : 200, JSON.parse(body));
        }
        send(200, { kind: 'Status', code: 200, message: 'fake' });
      });
    },
  );
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (!/\/pods\/echo\/(exec|attach|portforward)/.test(req.url ?? '')) {
      socket.end(
        `HTTP/1.1 400 Bad Request\r\n${extraRaw}content-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`,
      );
      return;
    }
    const accept = createHash('sha1')
      .update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\n${extraRaw}Upgrade: ${String(req.headers.upgrade)}\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${String(req.headers['sec-websocket-protocol'] ?? '')}\r\n\r\n`,
    );
    socket.on('data', (b: Buffer) => {
      upgraded += b.toString('latin1');
      socket.write(b.toString('latin1').toUpperCase());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    caPem: caPair.certPem,
    received,
    upgradedBytes: () => upgraded,
    openWatches: () => watches.size,
    close: () =>
      new Promise((r) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => r());
      }),
  };
}
