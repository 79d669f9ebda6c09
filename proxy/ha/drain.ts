/**
 * Drain on SIGTERM (issue #9): turn unready, tell the others we are
 * draining, take no new connections (front and tunnel listeners closed,
 * HTTP/2 GOAWAY on open front sessions), ask our agents to open tunnels to
 * other replicas first, let in-flight requests finish up to a deadline, then
 * end what is still open — watches end *cleanly* (end of stream, so kubectl
 * and informers simply re-watch elsewhere), exec and port-forward sessions
 * are closed. Audit records complete as their responses close, before the
 * audit log flushes (app.ts closes it after this).
 */
import type { Http2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import type { Front } from '../front/server.js';
import type { AnyResponse } from '../http/response.js';
import type { TunnelListener } from '../tunnel/listener.js';
import type { TunnelRegistry } from '../tunnel/registry.js';
import { isLongRunning, type PeerListener } from './peer-listener.js';
import type { ReplicaRegistry } from './replica-registry.js';

export interface DrainDeps {
  front: Front;
  tunnel: TunnelListener;
  peer: PeerListener;
  replicas: ReplicaRegistry;
  registry: TunnelRegistry;
  /** readyz answers 503 from now on. */
  setUnready: () => void;
  deadlineMs: number;
  /** Peers learn of the drain within one heartbeat; stay useful that long at least. */
  minWaitMs: number;
  log: Logger;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class Drainer {
  private readonly requests = new Map<AnyResponse, boolean>();
  private readonly upgrades = new Set<Duplex>();
  private readonly sessions = new Set<Http2Session>();
  private started: Promise<void> | undefined;

  constructor(private readonly deps: DrainDeps) {
    const server = deps.front.server;
    server.on('request', (req, res) => {
      this.requests.set(res, isLongRunning(req.url ?? '', false));
      res.once('close', () => this.requests.delete(res));
    });
    server.on('upgrade', (_req: unknown, socket: Duplex) => {
      this.upgrades.add(socket);
      socket.once('close', () => this.upgrades.delete(socket));
    });
    server.on('session', (s: Http2Session) => {
      this.sessions.add(s);
      s.once('close', () => this.sessions.delete(s));
    });
  }

  get draining(): boolean {
    return this.started !== undefined;
  }

  /** Idempotent: the second call waits for the first. */
  drain(): Promise<void> {
    this.started ??= this.run();
    return this.started;
  }

  private shortInFlight(): number {
    let n = 0;
    for (const long of this.requests.values()) if (!long) n++;
    for (const r of this.deps.peer.inFlight()) if (!r.long) n++;
    return n;
  }

  private async run(): Promise<void> {
    const { deps } = this;
    const t0 = Date.now();
    const until = t0 + deps.deadlineMs;
    deps.setUnready();
    deps.log.info({ deadlineMs: deps.deadlineMs }, 'draining');
    await deps.replicas
      .setDraining()
      .catch((err: unknown) =>
        deps.log.warn({ err: (err as Error).message }, 'could not mark the replica draining'),
      );
    // No new connections; open HTTP/2 clients get GOAWAY and send new requests elsewhere.
    deps.front.server.close();
    for (const s of this.sessions) if (!s.closed) s.close();
    deps.tunnel.stopAccepting();
    // With no other live replica the agents have nowhere to go: do not wait for them.
    await deps.replicas.refresh().catch(() => undefined);
    const elsewhere = !deps.replicas.alone;
    await deps.tunnel.goaway(deps.deadlineMs);
    // In-flight requests finish; agents move (their tunnels here close with GOAWAY).
    while (Date.now() < until) {
      const agentsHere = deps.registry.tunnels().filter((t) => !t.session.closed).length;
      if (
        Date.now() - t0 >= deps.minWaitMs &&
        this.shortInFlight() === 0 &&
        (agentsHere === 0 || !elsewhere)
      )
        break;
      await sleep(50);
    }
    const ended = this.endLongRunning();
    deps.log.info(
      { ms: Date.now() - t0, ended, left: this.shortInFlight() },
      'drained: ending what is still open',
    );
    // Let the ended responses close, so their audit records complete before the log flushes.
    const settle = Date.now() + 2000;
    while ((this.requests.size || this.upgrades.size) && Date.now() < settle) await sleep(20);
  }

  /** End watches cleanly, close upgraded connections; returns how many. */
  private endLongRunning(): number {
    let n = 0;
    for (const res of this.requests.keys()) {
      n++;
      res.on('error', () => undefined);
      if (res.headersSent) res.end();
      else res.destroy();
    }
    for (const socket of this.upgrades) {
      n++;
      socket.destroy();
    }
    for (const relayed of this.deps.peer.inFlight()) {
      n++;
      relayed.end();
    }
    return n;
  }
}
