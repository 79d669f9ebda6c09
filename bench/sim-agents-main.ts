/**
 * Child-process entry for P11: many simulated agents in one process. Each
 * tunnel is what a real agent opens — TLS 1.3 with its own client
 * certificate (one cluster per certificate), ALPN h2, the agent as HTTP/2
 * server — and answers the proxy's hello and plain GETs with a small JSON.
 * Commands over IPC: `{ id, op: 'connect', … }` answers with the number of
 * tunnels whose hello arrived.
 */
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import {
  alpnTunnel,
  controlPrefix,
  helloPath,
  type HelloResponse,
} from '../common/tunnel-protocol.js';

export interface SimConnect {
  op: 'connect';
  host: string;
  port: number;
  caPem: string;
  keyPem: string;
  tunnels: { cluster: string; certPem: string }[];
  concurrency: number;
}

const sockets: tls.TLSSocket[] = [];
const body = JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'sim' } });

function open(c: SimConnect, t: { cluster: string; certPem: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const server = http2.createServer({ settings: { enablePush: false } });
    const timer = setTimeout(() => resolve(false), 30_000);
    server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      const path = String(headers[':path'] ?? '');
      if (path === helloPath) {
        const hello: HelloResponse = {
          cluster: t.cluster,
          agentVersion: 'sim',
          agentId: `sim-${t.cluster}`,
        };
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(JSON.stringify(hello));
        clearTimeout(timer);
        resolve(true);
        return;
      }
      if (path.startsWith(controlPrefix)) {
        stream.respond({ ':status': 200, 'content-type': 'application/json' });
        stream.end(path.endsWith('users') ? '[]' : '{"ok":true}');
        return;
      }
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(body);
    });
    server.on('session', (s) => s.on('error', () => undefined));
    const socket = tls.connect({
      host: c.host,
      port: c.port,
      ca: c.caPem,
      cert: t.certPem,
      key: c.keyPem,
      ALPNProtocols: [alpnTunnel],
      minVersion: 'TLSv1.3',
    });
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    socket.once('secureConnect', () => server.emit('connection', socket));
    sockets.push(socket);
  });
}

async function connect(c: SimConnect): Promise<number> {
  let ok = 0;
  let next = 0;
  const worker = async () => {
    while (next < c.tunnels.length) {
      const t = c.tunnels[next++]!;
      if (await open(c, t)) ok++;
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  return ok;
}

process.on('message', (m: { id: number } & SimConnect) => {
  void connect(m).then((result) => process.send?.({ id: m.id, result }));
});
process.on('disconnect', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
process.send?.({ ready: true });
