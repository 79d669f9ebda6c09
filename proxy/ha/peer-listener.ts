/**
 * The peer listener: other replicas relay tunnel streams here for clusters
 * whose tunnels this replica holds. mTLS (TLS 1.3) with replica certificates
 * only (replica-cert.ts). A relayed stream is exactly the stream the first
 * replica would have opened on a local tunnel — identity, grants and audit
 * id are in its `kg-*` headers, set by that replica after it authenticated,
 * authorised and audited the request — so it is piped to a local tunnel
 * unchanged, both ways, with back-pressure: watches, chunked bodies and
 * upgraded exec/port-forward bytes alike. Those headers are trusted only
 * here, behind a verified replica certificate; the front never accepts them.
 */
import * as http2 from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { TunnelHealth } from '../tunnel/health.js';
import type { Logger } from '../../common/log.js';
import {
  hdrPeerCluster,
  hdrPeerHops,
  tunnelServeOptions,
  widenTunnelWindow,
} from '../../common/tunnel-protocol.js';
import type { Tunnel, TunnelRegistry } from '../tunnel/registry.js';
import { replicaOfCert } from './replica-cert.js';
import { listen, logFailedHandshakes } from '../../common/listen.js';

export interface PeerListenerDeps {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  /** The internal server CA: the only issuer of replica certificates. */
  caPem: string;
  registry: TunnelRegistry;
  /** A tunnel on another replica (one more relay at most), when this one holds none. */
  onward: (cluster: string, exclude: string[]) => Promise<Tunnel | undefined>;
  replicaId: string;
  log: Logger;
  /** While a relayed request waits for its answer, its tunnel is probed (tunnel/health.ts). */
  health?: TunnelHealth;
}

export interface Relayed {
  long: boolean;
  end(): void;
}

export interface PeerListener {
  server: http2.Http2SecureServer;
  port: number;
  /**
   * Relayed streams in flight; `long` ones are watches, follows and upgrades.
   * `end` finishes one cleanly (end of stream after what was relayed so far).
   */
  inFlight(): Relayed[];
  /** Stop accepting connections (drain); open sessions keep working. */
  stopAccepting(): void;
  close(): Promise<void>;
}

function status(stream: http2.ServerHttp2Stream, code: number, message: string): void {
  if (stream.destroyed || stream.headersSent) return;
  const body = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: code === 503 ? 'ServiceUnavailable' : 'InternalError',
    code,
  });
  stream.respond({ ':status': code, 'content-type': 'application/json' });
  stream.end(body);
}

/** Long-running: never waited for on drain, ended at the deadline instead. */
export function isLongRunning(path: string, upgrade: boolean): boolean {
  return upgrade || /[?&](watch=(true|1)|follow=(true|1))(&|$)/.test(path);
}

export async function startPeerListener(deps: PeerListenerDeps): Promise<PeerListener> {
  const { log } = deps;
  const open = new Map<http2.ServerHttp2Stream, Relayed>();
  const server = http2.createSecureServer({
    cert: deps.certPem,
    key: deps.keyPem,
    ca: deps.caPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    ALPNProtocols: ['h2'],
    ...tunnelServeOptions(),
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    // Chains to the server CA (checked by TLS) is not enough: it must name a replica.
    if (!replicaOfCert(socket.getPeerCertificate())) {
      log.warn('peer connection refused: the certificate names no replica');
      socket.destroy();
    }
  });
  server.on('session', (session) => {
    widenTunnelWindow(session);
    session.on('error', (err) => log.debug({ err: err.message }, 'peer session error'));
  });
  logFailedHandshakes(server, log, 'peer');
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    const socket = stream.session?.socket as TLSSocket | undefined;
    const from = replicaOfCert(socket?.getPeerCertificate());
    const cluster = String(headers[hdrPeerCluster] ?? '');
    if (!from || !cluster) return status(stream, 400, 'not a peer tunnel stream');
    const path = String(headers[':path'] ?? '');
    const entry: Relayed = {
      long: isLongRunning(path, headers['kg-upgrade'] !== undefined),
      end: () => stream.close(http2.constants.NGHTTP2_REFUSED_STREAM),
    };
    open.set(stream, entry);
    stream.once('close', () => open.delete(stream));
    void relay(stream, headers, cluster, from, entry);
  });

  async function relay(
    incoming: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    cluster: string,
    from: string,
    entry: Relayed,
  ): Promise<void> {
    const hops = Number(headers[hdrPeerHops] ?? 0);
    // The cluster's tunnels may have just moved (an agent left a draining
    // replica): pass the stream on once rather than fail it.
    const tunnel =
      deps.registry.pick(cluster) ??
      (hops < 1 ? await deps.onward(cluster, [from, deps.replicaId]) : undefined);
    if (!tunnel || incoming.destroyed) {
      return status(
        incoming,
        503,
        `cluster "${cluster}" is offline: no kubegate agent is connected for it`,
      );
    }
    const out: http2.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || (name.startsWith(':') && name !== ':method' && name !== ':path'))
        continue;
      out[name] = value;
    }
    if (tunnel.replica) out[hdrPeerHops] = String(hops + 1);
    else {
      delete out[hdrPeerCluster];
      delete out[hdrPeerHops];
    }
    let upstream: http2.ClientHttp2Stream;
    try {
      upstream = tunnel.session.request(out, { endStream: incoming.endAfterHeaders });
    } catch (err) {
      return status(
        incoming,
        503,
        `cluster "${cluster}" tunnel is closing: ${(err as Error).message}`,
      );
    }
    tunnel.active++;
    let done = false;
    // Waiting for the answer: a tunnel that stops answering is noticed within
    // seconds (the stream then fails with the reason, answered below).
    const health = deps.health;
    const probe = health
      ? setInterval(() => void health.suspect(tunnel), health.probeAfterMs)
      : undefined;
    upstream.once('response', () => clearInterval(probe));
    upstream.once('close', () => clearInterval(probe));
    const finish = () => {
      if (done) return;
      done = true;
      clearInterval(probe);
      tunnel.active--;
      if (!upstream.closed) upstream.close(http2.constants.NGHTTP2_CANCEL);
      // A stream we ended cleanly is left to close on its own: a reset could
      // overtake the end of stream the peer has still to read.
      if (!incoming.closed && !incoming.writableEnded)
        incoming.close(http2.constants.NGHTTP2_CANCEL);
    };
    entry.end = () => {
      upstream.unpipe(incoming);
      if (incoming.headersSent) incoming.end();
      else status(incoming, 503, 'the replica relaying this request is shutting down; retry');
      finish();
    };
    incoming.once('close', finish);
    upstream.on('error', (err) => {
      if (!incoming.headersSent)
        status(incoming, 502, `cluster "${cluster}": the tunnel stream failed (${err.message})`);
      else finish();
    });
    upstream.once('close', () => {
      if (!incoming.headersSent)
        status(incoming, 502, `cluster "${cluster}": the agent closed the stream`);
      // An ended upstream has already ended `incoming` through the pipe.
      setImmediate(finish);
    });
    upstream.on('response', (h) => {
      const back: http2.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(h)) {
        if (value !== undefined && (!name.startsWith(':') || name === ':status'))
          back[name] = value;
      }
      incoming.respond(back);
      upstream.pipe(incoming);
    });
    if (!incoming.endAfterHeaders) incoming.pipe(upstream);
  }

  // Exclusive: each worker of a replica (common/workers.ts) has a peer port of its own,
  // so a relay addressed to one worker reaches that worker and no other.
  const port = await listen(server, { port: deps.port, host: deps.host, exclusive: true });
  let accepting = true;
  const closed = new Promise<void>((resolve) => server.once('close', () => resolve()));
  return {
    server,
    port,
    inFlight: () => [...open.values()],
    stopAccepting: () => {
      if (accepting) server.close();
      accepting = false;
    },
    close: async () => {
      if (accepting) server.close();
      accepting = false;
      for (const r of open.values()) r.end();
      // Sessions with nothing in flight would otherwise keep `close` waiting.
      await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
    },
  };
}
