/**
 * Scale-out wiring in one place, so app.ts only plugs it in: this replica's
 * peer certificate (from the internal server CA), its peer listener, the
 * replica registry and the peer router; then, once the front and tunnel
 * listeners exist, the drainer.
 */
import type { Logger } from '../../common/log.js';
import { parseHostPort } from '../../common/config.js';
import type { CertificateAuthority } from '../../common/pki.js';
import type { Pool } from '../db/pool.js';
import type { Front } from '../front/server.js';
import type { TunnelListener } from '../tunnel/listener.js';
import type { Tunnel, TunnelRegistry } from '../tunnel/registry.js';
import { Drainer } from './drain.js';
import { startPeerListener, type PeerListener } from './peer-listener.js';
import type { TunnelHealth } from '../tunnel/health.js';
import { PeerRouter } from './peer-router.js';
import { issueReplicaCert } from './replica-cert.js';
import { ReplicaRegistry } from './replica-registry.js';

export interface ScaleOutOptions {
  pool: Pool;
  serverCa: CertificateAuthority;
  registry: TunnelRegistry;
  replicaId: string;
  peerListen: string;
  peerAddress?: string;
  heartbeatMs: number;
  staleAfterMs: number;
  log: Logger;
  /** Relayed requests probe the local tunnel they wait on too (tunnel/health.ts). */
  health?: TunnelHealth;
}

export interface ScaleOut {
  replicas: ReplicaRegistry;
  peers: PeerRouter;
  peer: PeerListener;
  peerAddress: string;
  /** For the tunnel listener: keep the registry in step with local tunnels. */
  tunnelUp(t: Tunnel): void;
  tunnelDown(t: Tunnel): void;
  /** Create the drainer once front and tunnel listeners are up. */
  drainer(d: {
    front: Front;
    tunnel: TunnelListener;
    setUnready: () => void;
    deadlineMs: number;
  }): Drainer;
  close(): Promise<void>;
}

export async function startScaleOut(o: ScaleOutOptions): Promise<ScaleOut> {
  const listen = parseHostPort(o.peerListen);
  const advertisedHost = o.peerAddress ? parseHostPort(o.peerAddress).host : listen.host;
  const cert = await issueReplicaCert(o.serverCa, o.replicaId, advertisedHost);
  const log = o.log.child({ part: 'peer' });
  // The listener relays onward through the router, which needs the registry, which needs the listener's port.
  const late: { peers?: PeerRouter } = {};
  const peer = await startPeerListener({
    host: listen.host,
    port: listen.port,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    caPem: o.serverCa.certPem,
    registry: o.registry,
    onward: (cluster, exclude) => late.peers!.pick(cluster, exclude),
    replicaId: o.replicaId,
    log,
    health: o.health,
  });
  const peerAddress = o.peerAddress ?? `${listen.host}:${peer.port}`;
  const replicas = new ReplicaRegistry({
    pool: o.pool,
    replicaId: o.replicaId,
    peerAddress,
    heartbeatMs: o.heartbeatMs,
    staleAfterMs: o.staleAfterMs,
    log: o.log.child({ part: 'replicas' }),
  });
  try {
    await replicas.start();
  } catch (err) {
    await peer.close();
    throw err;
  }
  const peers = (late.peers = new PeerRouter({
    replicas,
    certPem: cert.certPem,
    keyPem: cert.keyPem,
    caPem: o.serverCa.certPem,
    log,
  }));
  return {
    replicas,
    peers,
    peer,
    peerAddress,
    tunnelUp: (t) =>
      replicas.tunnelUp({
        id: t.id,
        cluster: t.cluster,
        agentId: t.agentId,
        agentVersion: t.agentVersion,
        since: t.connectedAt,
      }),
    tunnelDown: (t) => replicas.tunnelDown(t.id),
    drainer: (d) =>
      new Drainer({
        ...d,
        peer,
        replicas,
        registry: o.registry,
        minWaitMs: Math.min(d.deadlineMs, o.heartbeatMs + 250),
        log: o.log.child({ part: 'drain' }),
      }),
    close: async () => {
      peers.close();
      await peer.close();
      await replicas
        .stop()
        .catch((err: unknown) =>
          log.warn({ err: (err as Error).message }, 'could not remove the replica row'),
        );
    },
  };
}
