/**
 * The tunnel listener: agents dial in with mTLS (TLS 1.3) and ALPN `h2`; the
 * connection carries HTTP/2 with roles reversed, the proxy being the client.
 * The handshake itself refuses a client without a certificate chaining to
 * the internal agent CA (or with an expired one), so nothing unauthenticated
 * ever reaches an HTTP parser here; the certificate's serial must then be
 * known and unrevoked, and it fixes the one cluster the tunnel may carry.
 * Renewal (ALPN `alpnRenew`) is authenticated by the same handshake and
 * handed to renew-server.ts; first enrollment, with no certificate yet, has
 * its own listener (enroll-listener.ts).
 */
import { randomUUID } from 'node:crypto';
import * as http2 from 'node:http2';
import { createServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../../common/log.js';
import {
  alpnRenew,
  alpnTunnel,
  goawayPath,
  hdrControl,
  hdrControlValue,
  helloDeclinedStatus,
  helloPath,
  hdrReplica,
  hdrReplicas,
  tunnelPingIntervalMs,
  tunnelPingTimeoutMs,
  tunnelRetireLingerMs,
  type HelloResponse,
  tunnelConnectOptions,
  widenTunnelWindow,
} from '../../common/tunnel-protocol.js';
import type { ClusterStore } from '../clusters/cluster-store.js';
import type { Tunnel, TunnelRegistry } from './registry.js';
import { agentCertCluster } from './peer-cert.js';
import { startAdmission } from './admission.js';
import { SerialCheck } from './serial-check.js';
import { controlRequest } from './control-request.js';

/**
 * Connections admitted at once between TCP accept and tunnel up
 * (admission.ts): TLS handshake, serial check, hello and role push.
 */
const maxAccepting = 32;
/** Connections waiting, unread, for a slot, and how long one may wait. */
const maxWaiting = 8192;
const maxWaitMs = 20_000;

export interface TunnelListenerDeps {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  agentCaPem: string;
  clusters: ClusterStore;
  registry: TunnelRegistry;
  replicaId: string;
  /** Runs before a new tunnel takes requests (role definitions for JIT accounts). */
  onTunnelReady?: (t: Tunnel) => Promise<void>;
  /** A tunnel started or stopped taking requests (the replica registry). */
  onTunnelUp?: (t: Tunnel) => void;
  onTunnelDown?: (t: Tunnel) => void;
  /** Live, non-draining replicas, told to agents in the hello so they spread over them. */
  liveReplicas?: () => number;
  /** Takes connections that negotiated `alpnRenew` (renew-server.ts); absent: not offered. */
  onRenewal?: (socket: TLSSocket) => void;
  log: Logger;
}

export interface TunnelListener {
  port: number;
  /** Refuse new tunnels (drain); tunnels already up keep working. */
  stopAccepting(): void;
  /**
   * Ask every agent with a tunnel here to open one to another replica first
   * and then close this one (drain). Resolves when each agent has answered.
   */
  goaway(deadlineMs: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTunnelListener(deps: TunnelListenerDeps): Promise<TunnelListener> {
  const { log } = deps;
  const server = createServer({
    cert: deps.certPem,
    key: deps.keyPem,
    ca: deps.agentCaPem,
    minVersion: 'TLSv1.3',
    // docs/security.md "Tunnel identity": no certificate, a foreign CA or an
    // expired certificate fails the handshake with a TLS alert, before any
    // application byte is read. Only `h2` and renewal are offered: any other
    // ALPN is a `no_application_protocol` alert.
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: deps.onRenewal ? [alpnTunnel, alpnRenew] : [alpnTunnel],
    handshakeTimeout: 10_000,
  });

  // Admission (issue #9, reconnect discipline): at most maxAccepting
  // connections between TCP accept and the tunnel being up (TLS handshake,
  // serial check, hello, role push); the others wait unread, in arrival
  // order (admission.ts). Measured (bench P11): 2,250 agents redialling one
  // replica at once, all handshaking together, timed out each other's
  // handshakes and exhausted its database pool, and the policy check then
  // failed closed (503) for every cluster. The hello stays inside a slot:
  // released after the serial check instead (window 64), an overloaded
  // replica piled up hellos that timed out, their agents redialled, and the
  // loop fed itself (docs/adr/0016-tunnel-admission-queue.md).
  const serials = new SerialCheck(deps.clusters);
  const admittedAt = new Map<string, { at: number; waited: number }>();
  const keyOf = (s: { remoteAddress?: string; remotePort?: number }) =>
    `${s.remoteAddress ?? ''}:${s.remotePort ?? ''}`;
  const admission = await startAdmission({
    host: deps.host,
    port: deps.port,
    maxActive: maxAccepting,
    maxWaiting,
    maxWaitMs,
    admit: (raw, waited) => {
      const key = keyOf(raw);
      admittedAt.set(key, { at: performance.now(), waited });
      raw.once('close', () => admittedAt.delete(key));
      server.emit('connection', raw);
    },
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    socket.setNoDelay(true);
    if (socket.alpnProtocol === alpnRenew && deps.onRenewal) {
      // One short HTTP/1.1 exchange, certificate already verified by the handshake.
      admittedAt.delete(keyOf(socket));
      admission.release(socket);
      deps.onRenewal(socket);
      return;
    }
    if (socket.alpnProtocol !== alpnTunnel) {
      socket.destroy();
      return;
    }
    const key = keyOf(socket);
    const peer = { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort };
    const admitted = admittedAt.get(key) ?? { at: performance.now(), waited: 0 };
    admittedAt.delete(key);
    acceptTunnel(socket, admitted)
      .catch((err: unknown) => {
        log.warn({ err: (err as Error).message }, 'tunnel refused');
        socket.destroy();
      })
      .finally(() => admission.release(peer));
  });
  // A refused agent certificate is worth an operator's eye; load-balancer
  // probes that connect and go away are not. No certificate ends in OpenSSL
  // with a `certificate_required` alert; a certificate that does not verify
  // (foreign CA, expired) is dropped by Node right after the handshake,
  // before a byte of application data is read, with the reason in
  // `authorizationError`.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const reason = socket.authorizationError ? String(socket.authorizationError) : undefined;
    const certificate = !!reason || /cert/i.test(`${err.code ?? ''} ${err.message}`);
    log[certificate ? 'info' : 'debug'](
      { err: reason ?? err.message },
      'tunnel TLS handshake refused',
    );
  });

  async function acceptTunnel(
    socket: TLSSocket,
    admitted: { at: number; waited: number },
  ): Promise<void> {
    // Where an accept's time goes (logged with "tunnel up"): TLS, serial check, hello, role push.
    const t1 = performance.now();
    // Already enforced by the handshake; checked again so a change of TLS
    // options can never open the tunnel to an unauthenticated client.
    if (!socket.authorized) {
      throw new Error(
        `agent certificate not accepted: ${String(socket.authorizationError ?? 'no certificate')}`,
      );
    }
    const who = agentCertCluster(socket.getPeerCertificate());
    if (!who) throw new Error('agent certificate does not name exactly one cluster');
    if (!(await serials.valid(who.cluster, who.serial))) {
      throw new Error(
        `agent certificate ${who.serial} for cluster ${who.cluster} is revoked, unknown or its cluster is disabled`,
      );
    }
    const t2 = performance.now();
    const session = http2.connect(`https://${who.cluster}.agent.kubegate`, {
      createConnection: () => socket,
      ...tunnelConnectOptions(),
    });
    session.on('error', (err) =>
      log.debug({ err: err.message, cluster: who.cluster }, 'tunnel session error'),
    );
    widenTunnelWindow(session);

    const hello = await helloOverTunnel(session, deps.replicaId, deps.liveReplicas?.() ?? 1);
    const t3 = performance.now();
    if (hello === 'declined') {
      // The agent already has a tunnel to this replica and wants another one.
      log.debug({ cluster: who.cluster }, 'agent declined a second tunnel to this replica');
      session.close();
      return;
    }
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
    const t4 = performance.now();
    deps.registry.add(tunnel);
    // The agent was revoked, or its cluster disabled or deleted, while this
    // tunnel was being accepted (after its serial check): the replica-wide
    // close missed it, so it closes itself.
    if (deps.registry.closedSince(who.cluster, t1)) {
      deps.registry.remove(tunnel);
      session.destroy();
      throw new Error(
        `cluster ${who.cluster} was revoked or disabled while its tunnel was accepted`,
      );
    }
    deps.onTunnelUp?.(tunnel);
    let down = false;
    const markDown = () => {
      if (down) return;
      down = true;
      deps.registry.remove(tunnel);
      deps.onTunnelDown?.(tunnel);
    };
    // GOAWAY from the agent: it has a tunnel elsewhere now. No new streams go
    // here; the open ones (watches, logs -f, exec) finish on it. Node marks the
    // session closed on a GOAWAY, and a ping on a closed session is cancelled at
    // once, so the ping below skips it (that cancel used to destroy the session
    // and end every watch on a moved tunnel; see
    // docs/adr/0021-a-retired-tunnel-lingers-with-its-streams.md). TCP keepalive
    // watches the agent instead, and a backstop past the agent's own linger
    // bound ends it.
    let linger: NodeJS.Timeout | undefined;
    session.once('goaway', () => {
      markDown();
      socket.setKeepAlive(true, tunnelPingIntervalMs);
      linger = setTimeout(() => session.destroy(), tunnelRetireLingerMs + 60_000);
    });
    log.info(
      {
        cluster: tunnel.cluster,
        tunnel: tunnel.id,
        agent: tunnel.agentId,
        ms: {
          queued: Math.round(admitted.waited),
          tls: Math.round(t1 - admitted.at),
          serial: Math.round(t2 - t1),
          hello: Math.round(t3 - t2),
          ready: Math.round(t4 - t3),
        },
      },
      'tunnel up',
    );

    // A tunnel never outlives the certificate that opened it: destroyed, not
    // closed, since a close would let its open streams run on (and the agent
    // redials with its renewed certificate only once this socket is gone).
    const expiry = setTimeout(
      () => session.destroy(),
      Math.max(0, who.notAfter.getTime() - Date.now()),
    );
    const ping = setInterval(() => {
      // The session can be destroyed before its 'close' clears this interval:
      // with the event loop stalled > 5 s (bench P11 at load average 17) the
      // ping timeout below and the next tick ran in one timer pass, and
      // ping() on the destroyed session threw and ended the replica.
      if (session.destroyed) return clearInterval(ping);
      // A session closed by the agent's GOAWAY (a moved tunnel) cancels pings at once; see above.
      if (session.closed) return;
      const timer = setTimeout(
        () => session.destroy(new Error('ping timeout')),
        tunnelPingTimeoutMs,
      );
      try {
        session.ping((err) => {
          clearTimeout(timer);
          if (err) session.destroy(err);
        });
      } catch (err) {
        clearTimeout(timer);
        session.destroy(err as Error);
      }
    }, tunnelPingIntervalMs);
    session.once('close', () => {
      clearTimeout(expiry);
      clearTimeout(linger);
      clearInterval(ping);
      markDown();
      log.info({ cluster: tunnel.cluster, tunnel: tunnel.id }, 'tunnel down');
    });
  }

  return {
    port: admission.port,
    stopAccepting: () => void admission.close(),
    goaway: async (deadlineMs) => {
      await Promise.all(
        deps.registry.tunnels().map((t) => tellGoaway(t, deps.replicaId, deadlineMs, log)),
      );
    },
    close: async () => {
      // Resolves once every connection has ended, so the tunnels are closed meanwhile.
      const closed = admission.close();
      deps.registry.closeAll();
      await closed;
    },
  };
}

/** One control message, answered or not within 2 s; failures only logged (the tunnel ends anyway). */
function tellGoaway(t: Tunnel, replicaId: string, deadlineMs: number, log: Logger): Promise<void> {
  return new Promise((resolve) => {
    if (t.session.closed || t.session.destroyed) return resolve();
    let req: http2.ClientHttp2Stream;
    try {
      req = t.session.request({
        ':method': 'POST',
        ':path': goawayPath,
        [hdrReplica]: replicaId,
        [hdrControl]: hdrControlValue,
      });
    } catch {
      return resolve();
    }
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      resolve();
    }, 2000);
    req.on('error', () => undefined);
    req.on('close', () => {
      clearTimeout(timer);
      resolve();
    });
    req.on('response', (h) =>
      log.debug({ cluster: t.cluster, status: h[':status'] }, 'agent told to move'),
    );
    req.resume();
    req.end(JSON.stringify({ replica: replicaId, deadlineMs }));
  });
}

async function helloOverTunnel(
  session: http2.ClientHttp2Session,
  replicaId: string,
  liveReplicas: number,
): Promise<HelloResponse | 'declined'> {
  const answer = await controlRequest(
    session,
    {
      ':method': 'GET',
      ':path': helloPath,
      [hdrReplica]: replicaId,
      [hdrReplicas]: String(liveReplicas),
    },
    { timeoutMs: 10_000, what: 'hello' },
  );
  if (answer.status === helloDeclinedStatus) return 'declined';
  return JSON.parse(answer.body.toString('utf8')) as HelloResponse;
}
