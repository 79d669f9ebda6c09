/**
 * Tunnels to the proxy. The agent dials out (nothing in the cluster
 * listens), checks the proxy against the CA pinned at enrollment, presents
 * its client certificate, and then serves HTTP/2 on that socket: roles
 * reversed, each proxied request is one stream. Lost tunnels are redialled
 * with full-jitter exponential back-off, so thousands of agents returning
 * after an outage spread out instead of stampeding.
 */
import { isIP } from 'node:net';
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import type { Logger } from '../../common/log.js';
import { parseHostPort } from '../../common/config.js';
import {
  alpnTunnel,
  tunnelRetireLingerMs,
  tunnelServeOptions,
  widenTunnelWindow,
} from '../../common/tunnel-protocol.js';
import type { AgentIdentity } from '../enroll/store.js';
import type { JitAccess } from '../jit/jit-manager.js';
import type { NamespaceReconciler } from '../namespaces/reconcile.js';
import { classifyStream, dispatchControl, type ControlContext } from './control.js';
import { replyStatus } from '../forward/forward.js';
import { agentMetrics } from '../metrics.js';

export interface TunnelClientDeps {
  cluster: string;
  agentId: string;
  agentVersion: string;
  tunnelAddress: string;
  serverName: string;
  proxyCaPem: string;
  identity: () => AgentIdentity;
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;
  /** JIT accounts, for the control messages that manage them; absent when impersonating. */
  jit: JitAccess | undefined;
  /** Managed namespaces, for the control message that keeps them. */
  namespaces?: NamespaceReconciler;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
  /**
   * The hello told us which replica this tunnel reached and how many live
   * replicas exist; return false to decline it and redial (spreading).
   */
  onHello?: (c: TunnelClient, replica: string, liveReplicas: number) => boolean;
  /** The replica this tunnel reaches is draining: open one elsewhere, then retire this. */
  onGoaway?: (c: TunnelClient) => void;
  log: Logger;
}

/** Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"). */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random = Math.random,
): number {
  return Math.floor(random() * Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30)));
}

export class TunnelClient {
  private readonly server: http2.Http2Server;
  private socket: tls.TLSSocket | undefined;
  private stopped = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private session: http2.ServerHttp2Session | undefined;
  private declined = false;
  /** When retire() was called: the tunnel takes no new streams and closes with its last one. */
  private retiredAt: number | undefined;
  /** Replica id of the proxy the tunnel currently reaches, from its hello. */
  replica: string | undefined;
  connected = false;
  /** Declined hellos in a row (spreading over replicas is tried a bounded number of times). */
  spreadTries = 0;
  /** The tunnel this one replaces once it is up (drain, rebalance). */
  replaces: TunnelClient | undefined;
  /** What this tunnel's control messages act on (control.ts). */
  private readonly controlContext: ControlContext;

  constructor(
    readonly index: number,
    private readonly deps: TunnelClientDeps,
  ) {
    this.controlContext = {
      hello: (replica, live) => {
        if (this.deps.onHello && !this.deps.onHello(this, replica, live)) {
          this.declined = true;
          this.deps.log.debug({ tunnel: this.index, replica }, 'tunnel declined: spreading');
          return undefined;
        }
        this.replica = replica;
        this.connected = true;
        this.attempt = 0;
        this.deps.log.info({ tunnel: this.index, replica: this.replica }, 'tunnel up');
        agentMetrics.observeTunnel('up');
        return {
          cluster: this.deps.cluster,
          agentVersion: this.deps.agentVersion,
          agentId: this.deps.agentId,
        };
      },
      goaway: () => {
        this.deps.log.info(
          { tunnel: this.index, replica: this.replica },
          'replica draining: moving',
        );
        this.deps.onGoaway?.(this);
      },
      jit: this.deps.jit,
      namespaces: this.deps.namespaces,
    };
    this.server = http2.createServer(tunnelServeOptions());
    this.server.on('session', (session) => {
      this.session = session;
      widenTunnelWindow(session);
      session.on('error', (err) => deps.log.debug({ err: err.message }, 'tunnel session error'));
    });
    this.server.on('stream', (stream, headers) => {
      stream.on('error', () => undefined);
      const c = classifyStream(headers);
      if (c.kind === 'request') return deps.onStream(stream, headers);
      if (c.kind === 'control')
        return dispatchControl(stream, headers, c, this.controlContext, deps.log);
      deps.log.warn(
        { tunnel: this.index, status: c.status, path: String(headers[':path']).slice(0, 100) },
        'tunnel stream refused: not a valid control message',
      );
      stream.resume();
      replyStatus(
        stream,
        c.status,
        c.status === 403 ? 'Forbidden' : c.status === 404 ? 'NotFound' : 'MethodNotAllowed',
        `kubegate agent refused the stream: ${c.message}`,
      );
    });
  }

  start(): void {
    this.dial();
    // Watchdog: a tunnel with no socket and no redial pending is stranded (seen
    // after 10,000 watches were cancelled at once: the process then exited 0 with
    // nothing left to do). Redial it; the interval also keeps the agent alive.
    this.watchdog = setInterval(() => {
      if (!this.stopped && !this.socket && !this.timer) this.dial();
    }, 5_000);
  }

  private dial(): void {
    if (this.stopped) return;
    const { host, port } = parseHostPort(this.deps.tunnelAddress);
    const id = this.deps.identity();
    const socket = tls.connect({
      host,
      port,
      servername: isIP(this.deps.serverName) ? undefined : this.deps.serverName,
      ca: this.deps.proxyCaPem,
      cert: id.certPem,
      key: id.keyPem,
      ALPNProtocols: [alpnTunnel],
      minVersion: 'TLSv1.3',
    });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== alpnTunnel) {
        socket.destroy(new Error(`proxy did not agree to ALPN ${alpnTunnel}`));
        return;
      }
      this.server.emit('connection', socket);
    });
    socket.on('error', (err) => {
      agentMetrics.observeTunnel('failed');
      this.deps.log.warn({ tunnel: this.index, err: err.message }, 'tunnel connection failed');
    });
    socket.once('close', () => {
      if (this.connected && this.retiredAt !== undefined) {
        const lingeredMs = Date.now() - this.retiredAt;
        this.deps.log.info(
          { tunnel: this.index, replica: this.replica, lingeredMs },
          'retired tunnel closed',
        );
      } else if (this.connected) {
        this.deps.log.warn({ tunnel: this.index, replica: this.replica }, 'tunnel down');
        agentMetrics.observeTunnel('down');
      }
      this.connected = false;
      this.socket = undefined;
      if (this.stopped) return;
      // A declined tunnel (spreading) redials at once, a little jittered; a
      // failure backs off exponentially with full jitter.
      const delay = this.declined
        ? 20 + Math.floor(Math.random() * 100)
        : backoffDelay(this.attempt++, this.deps.reconnectBaseMs, this.deps.reconnectMaxMs);
      this.declined = false;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.dial();
      }, delay);
    });
  }

  /**
   * Stop redialling and close gracefully: GOAWAY to the proxy, which sends no
   * new streams here; the ones open (watches, logs -f, exec) carry on until they
   * end, and the socket closes with the last of them, or after
   * tunnelRetireLingerMs at the latest. Resolves when the socket has closed.
   */
  retire(): Promise<void> {
    this.stopped = true;
    this.retiredAt = Date.now();
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    const socket = this.socket;
    if (!socket) {
      this.server.close();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const linger = setTimeout(() => {
        this.deps.log.info(
          { tunnel: this.index, replica: this.replica, lingerMs: tunnelRetireLingerMs },
          'retired tunnel still carries streams at its linger bound: closing it',
        );
        socket.destroy();
      }, tunnelRetireLingerMs);
      socket.once('close', () => {
        clearTimeout(linger);
        resolve();
      });
      const session = this.session;
      // The session of an earlier socket is destroyed already; one not yet up has none.
      if (session && !session.closed && !session.destroyed) session.close(() => socket.destroy());
      else socket.destroy();
      // After the session's own close: in Node 24 (not 20), server.close() closes
      // every session of the server too, and a session closed that way would
      // skip the callback above (close() on a closed session is a no-op), so
      // the socket, and every watch on it, would be destroyed at once.
      this.server.close();
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.watchdog);
    this.socket?.destroy();
    this.server.close();
  }
}
