/**
 * Peer forwarding, the client side: when this replica holds no tunnel for a
 * cluster, find a live peer that does (the replica registry) and hand the
 * request path a Tunnel whose streams go to that peer's listener, which
 * pipes them into its own tunnel (peer-listener.ts). forward() and
 * forwardUpgrade() then run exactly as for a local tunnel, so streaming,
 * back-pressure, upgrades and audit are the same code. One HTTP/2 session per
 * peer, over mTLS with this replica's certificate; the peer must present a
 * certificate naming the replica the registry says lives at that address.
 */
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import type { Logger } from '../../common/log.js';
import { parseHostPort } from '../../common/config.js';
import {
  hdrPeerCluster,
  hdrPeerHops,
  tunnelConnectOptions,
  widenTunnelWindow,
} from '../../common/tunnel-protocol.js';
import type { Tunnel } from '../tunnel/registry.js';
import type { PeerRoute, ReplicaRegistry } from './replica-registry.js';
import { replicaOfCert } from './replica-cert.js';

export interface PeerRouterDeps {
  replicas: ReplicaRegistry;
  certPem: string;
  keyPem: string;
  caPem: string;
  connectTimeoutMs?: number;
  log: Logger;
}

/** After a failed connect, a peer is tried last for this long. */
const suspectMs = 3000;

export class PeerRouter {
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();
  private readonly suspect = new Map<string, number>();
  private closed = false;

  constructor(private readonly deps: PeerRouterDeps) {}

  /**
   * A tunnel to `cluster` through a peer, or undefined when no live peer
   * holds one. Peers that cannot be reached are skipped (a replica killed
   * with -9 stays in the registry until its heartbeat expires).
   */
  async pick(cluster: string, exclude: readonly string[] = []): Promise<Tunnel | undefined> {
    let routes = await this.candidates(cluster, exclude);
    if (!routes.length) {
      // A miss may be a tunnel that moved a moment ago: look once more, at most every 250 ms.
      routes = await this.candidates(cluster, exclude, 250);
    }
    for (const route of routes) {
      try {
        const session = await this.session(route);
        return peerTunnel(session, cluster, route.replica);
      } catch (err) {
        this.suspect.set(route.replica, Date.now() + suspectMs);
        this.deps.log.info(
          { peer: route.replica, address: route.peerAddress, err: (err as Error).message },
          'peer unreachable; trying the next',
        );
      }
    }
    return undefined;
  }

  private async candidates(
    cluster: string,
    exclude: readonly string[],
    maxAgeMs?: number,
  ): Promise<PeerRoute[]> {
    const routes = await this.deps.replicas
      .routesFor(cluster, maxAgeMs)
      .catch((): PeerRoute[] => []);
    const now = Date.now();
    const bad = (r: PeerRoute) => Number((this.suspect.get(r.replica) ?? 0) > now);
    return routes
      .filter((r) => !exclude.includes(r.replica))
      .sort((a, b) => bad(a) - bad(b) || Number(a.draining) - Number(b.draining));
  }

  private session(route: PeerRoute): Promise<http2.ClientHttp2Session> {
    const key = `${route.replica}@${route.peerAddress}`;
    let s = this.sessions.get(key);
    if (!s) {
      s = this.connect(route);
      this.sessions.set(key, s);
      const forget = () => {
        if (this.sessions.get(key) === s) this.sessions.delete(key);
      };
      s.then((session) => {
        session.once('close', forget);
        session.once('goaway', forget);
      }, forget);
    }
    return s.then((session) => {
      if (session.closed || session.destroyed) {
        this.sessions.delete(key);
        return this.session(route);
      }
      return session;
    });
  }

  private connect(route: PeerRoute): Promise<http2.ClientHttp2Session> {
    if (this.closed) return Promise.reject(new Error('shutting down'));
    const { host, port } = parseHostPort(route.peerAddress);
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host,
        port,
        ca: this.deps.caPem,
        cert: this.deps.certPem,
        key: this.deps.keyPem,
        ALPNProtocols: ['h2'],
        minVersion: 'TLSv1.3',
        // The peer is whoever the registry says lives there, by certificate, not by address.
        checkServerIdentity: (_host, cert) =>
          replicaOfCert(cert) === route.replica
            ? undefined
            : new Error(`peer at ${route.peerAddress} is not replica ${route.replica}`),
      });
      socket.setNoDelay(true);
      const timer = setTimeout(
        () => socket.destroy(new Error('peer connect timed out')),
        this.deps.connectTimeoutMs ?? 2000,
      );
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        const session = http2.connect(`https://${route.replica}.peer.kubegate`, {
          createConnection: () => socket,
          ...tunnelConnectOptions(),
        });
        session.on('error', (err) =>
          this.deps.log.debug({ peer: route.replica, err: err.message }, 'peer session error'),
        );
        widenTunnelWindow(session);
        session.once('connect', () => resolve(session));
        session.once('close', () => reject(new Error('peer session closed before it was ready')));
      });
    });
  }

  close(): void {
    this.closed = true;
    for (const s of this.sessions.values())
      s.then(
        (x) => x.close(),
        () => undefined,
      );
    this.sessions.clear();
  }
}

/**
 * A Tunnel whose streams go to a peer: the request path uses only
 * `session.request` and the closed/destroyed flags, so a thin view over the
 * peer session that adds the cluster header is enough.
 */
function peerTunnel(session: http2.ClientHttp2Session, cluster: string, replica: string): Tunnel {
  const view = {
    request: (headers: http2.OutgoingHttpHeaders, opts?: http2.ClientSessionRequestOptions) =>
      session.request({ [hdrPeerHops]: '0', ...headers, [hdrPeerCluster]: cluster }, opts),
    get closed() {
      return session.closed;
    },
    get destroyed() {
      return session.destroyed;
    },
  };
  return {
    id: `peer:${replica}`,
    cluster,
    agentId: '',
    agentVersion: '',
    certSerial: '',
    connectedAt: new Date(),
    session: view as unknown as http2.ClientHttp2Session,
    active: 0,
    replica,
  };
}
