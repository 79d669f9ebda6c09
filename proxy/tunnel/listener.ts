/**
 * The tunnel listener: agents dial in with mTLS (TLS 1.3). ALPN `h2` opens a
 * tunnel — HTTP/2 with roles reversed, the proxy being the client — and is
 * accepted only for a valid, unrevoked agent certificate, which fixes the one
 * cluster the tunnel may carry. ALPN `http/1.1` is enrollment and renewal.
 */
import { randomUUID } from 'node:crypto';
import * as http2 from 'node:http2';
import { createServer, type TLSSocket } from 'node:tls';
import type { Server } from 'node:tls';
import type { Logger } from '../../common/log.js';
import {
  alpnEnroll,
  alpnTunnel,
  helloPath,
  hdrReplica,
  tunnelMaxSessionMemoryMb,
  tunnelMaxStreams,
  tunnelPingIntervalMs,
  tunnelPingTimeoutMs,
  tunnelSessionWindow,
  tunnelStreamWindow,
  type HelloResponse,
} from '../../common/tunnel-protocol.js';
import type { ClusterStore } from '../clusters/cluster-store.js';
import type { Tunnel, TunnelRegistry } from './registry.js';
import { agentCertCluster } from './peer-cert.js';
import type { Server as HttpServer } from 'node:http';

export interface TunnelListenerDeps {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  agentCaPem: string;
  clusters: ClusterStore;
  registry: TunnelRegistry;
  enrollServer: HttpServer;
  replicaId: string;
  /** Runs before a new tunnel takes requests (role definitions for JIT accounts). */
  onTunnelReady?: (t: Tunnel) => Promise<void>;
  log: Logger;
}

export interface TunnelListener {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startTunnelListener(deps: TunnelListenerDeps): Promise<TunnelListener> {
  const { log } = deps;
  const server = createServer({
    cert: deps.certPem,
    key: deps.keyPem,
    ca: deps.agentCaPem,
    minVersion: 'TLSv1.3',
    requestCert: true,
    // Enrollment arrives without a client certificate, so the handshake must
    // not fail on its absence; tunnels check `socket.authorized` below.
    rejectUnauthorized: false,
    ALPNProtocols: [alpnTunnel, alpnEnroll],
    handshakeTimeout: 10_000,
  });

  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    if (socket.alpnProtocol === alpnEnroll) {
      deps.enrollServer.emit('connection', socket);
      return;
    }
    if (socket.alpnProtocol !== alpnTunnel) {
      socket.destroy();
      return;
    }
    acceptTunnel(socket).catch((err: unknown) => {
      log.warn({ err: (err as Error).message }, 'tunnel refused');
      socket.destroy();
    });
  });
  server.on('tlsClientError', (err) =>
    log.debug({ err: err.message }, 'tunnel TLS handshake failed'),
  );

  async function acceptTunnel(socket: TLSSocket): Promise<void> {
    if (!socket.authorized) {
      throw new Error(
        `agent certificate not accepted: ${String(socket.authorizationError ?? 'no certificate')}`,
      );
    }
    const who = agentCertCluster(socket.getPeerCertificate());
    if (!who) throw new Error('agent certificate does not name exactly one cluster');
    if (!(await deps.clusters.agentCertValid(who.cluster, who.serial))) {
      throw new Error(
        `agent certificate ${who.serial} for cluster ${who.cluster} is revoked, unknown or its cluster is disabled`,
      );
    }
    const session = http2.connect(`https://${who.cluster}.agent.kubegate`, {
      createConnection: () => socket,
      settings: { initialWindowSize: tunnelStreamWindow, enablePush: false },
      peerMaxConcurrentStreams: tunnelMaxStreams,
      maxSessionMemory: tunnelMaxSessionMemoryMb,
    });
    session.on('error', (err) =>
      log.debug({ err: err.message, cluster: who.cluster }, 'tunnel session error'),
    );
    session.on('localSettings', () => session.setLocalWindowSize(tunnelSessionWindow));

    const hello = await helloOverTunnel(session, deps.replicaId);
    if (hello.cluster !== who.cluster) {
      session.destroy();
      throw new Error(
        `agent says it serves "${hello.cluster}" but its certificate names "${who.cluster}"`,
      );
    }
    const tunnel: Tunnel = {
      id: randomUUID(),
      cluster: who.cluster,
      agentId: hello.agentId,
      agentVersion: hello.agentVersion,
      certSerial: who.serial,
      connectedAt: new Date(),
      session,
      active: 0,
    };
    await deps.onTunnelReady?.(tunnel);
    deps.registry.add(tunnel);
    log.info({ cluster: tunnel.cluster, tunnel: tunnel.id, agent: tunnel.agentId }, 'tunnel up');

    // A tunnel never outlives the certificate that opened it.
    const expiry = setTimeout(
      () => session.close(),
      Math.max(0, who.notAfter.getTime() - Date.now()),
    );
    const ping = setInterval(() => {
      const timer = setTimeout(
        () => session.destroy(new Error('ping timeout')),
        tunnelPingTimeoutMs,
      );
      session.ping((err) => {
        clearTimeout(timer);
        if (err) session.destroy(err);
      });
    }, tunnelPingIntervalMs);
    session.once('close', () => {
      clearTimeout(expiry);
      clearInterval(ping);
      deps.registry.remove(tunnel);
      log.info({ cluster: tunnel.cluster, tunnel: tunnel.id }, 'tunnel down');
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(deps.port, deps.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : deps.port;
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        deps.registry.closeAll();
      }),
  };
}

function helloOverTunnel(
  session: http2.ClientHttp2Session,
  replicaId: string,
): Promise<HelloResponse> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error('agent did not answer hello within 10 s'));
    }, 10_000);
    const req = session.request(
      { ':method': 'GET', ':path': helloPath, [hdrReplica]: replicaId },
      { endStream: true },
    );
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as HelloResponse);
      } catch (err) {
        reject(err as Error);
      }
    });
  });
}
