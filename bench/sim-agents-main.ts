/**
 * Child-process entry for P11: many simulated agents in one process. Each
 * tunnel is what a real agent opens — TLS 1.3 with its own client
 * certificate (one cluster per certificate), ALPN h2, the agent as HTTP/2
 * server — and answers the proxy's hello and plain GETs with a small JSON.
 * Commands over IPC: `{ id, op: 'connect', … }` answers with the number of
 * tunnels whose hello arrived. With `failover`, a tunnel the proxy drops
 * (its replica killed) is dialled again at the failover address with the
 * agent's discipline — full-jitter exponential back-off, 250 ms doubling,
 * capped at 30 s — and `{ id, op: 'reconnects' }` answers with the time
 * from each drop to the hello on the new replica.
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
  /** host:port to dial again when the proxy drops a tunnel. */
  failover?: { host: string; port: number };
}

export interface SimReconnects {
  op: 'reconnects';
}

export interface SimReconnected {
  /** Time from each drop to the hello on the failover replica. */
  ms: number[];
  dials: number;
}

const reconnectMs: number[] = [];
/** Dials made to bring dropped tunnels back (the first included): a stampede shows here. */
let redials = 0;
let closing = false;

/** The agent's back-off (agent/tunnel/tunnel-client.ts defaults): full jitter, 250 ms doubling, 30 s cap. */
function redial(c: SimConnect, t: { cluster: string; certPem: string }, since: number, n = 0) {
  const delay = Math.random() * Math.min(30_000, 250 * 2 ** n);
  setTimeout(() => {
    if (closing) return;
    redials++;
    void open({ ...c, ...c.failover! }, t).then((up) => {
      if (up) reconnectMs.push(performance.now() - since);
      else redial(c, t, since, n + 1);
    });
  }, delay);
}

const sockets = new Set<tls.TLSSocket>();
/**
 * One TLS context per simulated agent, made at its first dial. A real agent
 * builds its context in its own process; here thousands share one core, and
 * rebuilding it per dial (parsing the CA, certificate and key) was most of
 * this process's CPU (profiled: ~50% in secure-context setup) and capped the
 * reconnect rate the row measures below what the proxy accepts.
 */
const contexts = new Map<string, tls.SecureContext>();
function contextOf(c: SimConnect, t: { cluster: string; certPem: string }): tls.SecureContext {
  let ctx = contexts.get(t.cluster);
  if (!ctx) {
    ctx = tls.createSecureContext({
      ca: c.caPem,
      cert: t.certPem,
      key: c.keyPem,
      minVersion: 'TLSv1.3',
    });
    contexts.set(t.cluster, ctx);
  }
  return ctx;
}
const body = JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'sim' } });

function open(c: SimConnect, t: { cluster: string; certPem: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const server = http2.createServer({ settings: { enablePush: false } });
    // Not up within 30 s: give up on this socket (so a late hello cannot leave a
    // tunnel up that this side counts as failed and dials again).
    const timer = setTimeout(() => {
      resolve(false);
      socket.destroy();
    }, 30_000);
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
      secureContext: contextOf(c, t),
      ALPNProtocols: [alpnTunnel],
      minVersion: 'TLSv1.3',
    });
    let up = false;
    socket.on('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    socket.once('secureConnect', () => server.emit('connection', socket));
    server.once('stream', () => (up = true));
    // Dropped by the proxy after it was up: dial the failover replica.
    socket.once('close', () => {
      sockets.delete(socket);
      if (up && c.failover && !closing) redial(c, t, performance.now());
    });
    sockets.add(socket);
  });
}

async function connect(c: SimConnect): Promise<number> {
  let ok = 0;
  let next = 0;
  const worker = async () => {
    while (next < c.tunnels.length) {
      const t = c.tunnels[next++]!;
      // Refused (the proxy admits a bounded number of handshakes at once):
      // back off as the agent does, a bounded number of times.
      for (let n = 0; n < 8; n++) {
        if (await open(c, t)) {
          ok++;
          break;
        }
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(30_000, 250 * 2 ** n)));
      }
    }
  };
  await Promise.all(Array.from({ length: c.concurrency }, worker));
  return ok;
}

process.on('message', (m: { id: number } & (SimConnect | SimReconnects)) => {
  if (m.op === 'reconnects') {
    const result: SimReconnected = { ms: [...reconnectMs], dials: redials };
    process.send?.({ id: m.id, result });
    return;
  }
  void connect(m).then((result) => process.send?.({ id: m.id, result }));
});
process.on('disconnect', () => {
  closing = true;
  for (const s of sockets) s.destroy();
  process.exit(0);
});
process.send?.({ ready: true });
