/**
 * Noticing a silently dead tunnel while requests wait on it (issue #17,
 * item 5). An agent that stops answering without closing its connection (its
 * process frozen, its cluster's network partitioned) leaves the TCP socket
 * open: without this, a request sent over it waited for the periodic tunnel
 * ping (listener.ts: every 15 s, 10 s to answer), 19–24 s, before it failed.
 *
 * A request that has waited `probeAfterMs` for its response headers asks for
 * a probe: one HTTP/2 PING on its tunnel and on every other tunnel of the
 * same agent process (they share its fate), coalesced per tunnel (one PING in
 * flight; a tunnel that answered within `freshMs` is not pinged again). An
 * agent whose event loop turns answers a PING at once, however long the
 * apiserver takes, so watches, exec sessions and slow LISTs of a live agent
 * are never disturbed; a PING is only ever sent for a request that is waiting
 * for its first answer. Nothing at all from the agent within `timeoutMs` (no
 * PING answer, and not a byte of anything else: a busy agent still sends window
 * updates for what it reads): the tunnel is retired
 * from the registry at once (new requests go to another tunnel, or get an
 * immediate 503) and its session destroyed with a `TunnelDeadError`, which
 * the streams still open on it see (forward.ts fails them over or answers).
 */
import type { Logger } from '../../common/log.js';
import type { Tunnel, TunnelRegistry } from './registry.js';

export interface TunnelHealthOptions {
  /** A request waiting this long for response headers asks for a probe. */
  probeAfterMs: number;
  /** How long a probe PING may take before the tunnel is declared dead. */
  timeoutMs: number;
  /** A tunnel that answered within this long is not pinged again. */
  freshMs?: number;
  log?: Logger;
  /** A probe's verdict (metrics). */
  onProbe?: (alive: boolean) => void;
}

/** The error a dead tunnel's session is destroyed with; its streams see it. */
export class TunnelDeadError extends Error {
  constructor(
    readonly cluster: string,
    readonly timeoutMs: number,
  ) {
    super(
      `the tunnel to cluster "${cluster}" stopped answering (no reply to a ping within ${(timeoutMs / 1000).toFixed(1)} s)`,
    );
    this.name = 'TunnelDeadError';
  }
}

interface State {
  inFlight?: Promise<boolean>;
  aliveAt: number;
}

export class TunnelHealth {
  readonly probeAfterMs: number;
  readonly timeoutMs: number;
  private readonly freshMs: number;
  private readonly state = new WeakMap<Tunnel, State>();
  private readonly dead = new WeakSet<Tunnel>();

  constructor(
    private readonly registry: TunnelRegistry,
    private readonly opts: TunnelHealthOptions,
  ) {
    this.probeAfterMs = opts.probeAfterMs;
    this.timeoutMs = opts.timeoutMs;
    this.freshMs = opts.freshMs ?? Math.max(250, Math.min(1000, opts.timeoutMs / 2));
  }

  /** Declared dead by a probe (its session is destroyed, it is out of the registry). */
  isDead(t: Tunnel): boolean {
    return this.dead.has(t);
  }

  /** The tunnel answered something (response headers): no probe needed for a while. */
  sawLife(t: Tunnel): void {
    const s = this.state.get(t);
    if (s) s.aliveAt = performance.now();
    else this.state.set(t, { aliveAt: performance.now() });
  }

  /**
   * A request on `t` is waiting for its answer: probe `t` and the other
   * tunnels of the same agent process. Resolves whether `t` is alive.
   */
  suspect(t: Tunnel): Promise<boolean> {
    if (t.replica === undefined && t.agentId) {
      for (const sibling of this.registry.tunnels(t.cluster)) {
        if (sibling !== t && sibling.agentId === t.agentId && sibling.replica === undefined)
          void this.probe(sibling);
      }
    }
    return this.probe(t);
  }

  /** One PING (coalesced); false, and the tunnel retired, when it goes unanswered. */
  probe(t: Tunnel): Promise<boolean> {
    if (this.dead.has(t)) return Promise.resolve(false);
    const session = t.session;
    // A relayed tunnel (a peer replica's session view) has no PING of its own:
    // the peer probes its agent tunnel itself. A session closed by GOAWAY (a
    // moved tunnel) cancels pings at once, so it is not probed either.
    if (t.replica !== undefined || session.destroyed) return Promise.resolve(!session.destroyed);
    if (session.closed) return Promise.resolve(true);
    let s = this.state.get(t);
    if (!s) this.state.set(t, (s = { aliveAt: 0 }));
    if (s.inFlight) return s.inFlight;
    if (performance.now() - s.aliveAt < this.freshMs) return Promise.resolve(true);
    const st = s;
    const p = new Promise<boolean>((resolve) => {
      let settled = false;
      const finish = (alive: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(half);
        clearTimeout(timer);
        st.inFlight = undefined;
        this.opts.onProbe?.(alive);
        if (alive) st.aliveAt = performance.now();
        else this.kill(t);
        resolve(alive);
      };
      // An agent that is busy but alive (its socket full of request bodies
      // ahead of the PING) still sends frames: window updates for what it
      // read, answers. Bytes read from it in the second half of the wait
      // count as an answer (the first half may still bring what it sent
      // just before it stopped).
      let readAtHalf = Number.POSITIVE_INFINITY;
      const half = setTimeout(() => (readAtHalf = bytesRead(session)), this.timeoutMs / 2);
      const timer = setTimeout(() => finish(bytesRead(session) > readAtHalf), this.timeoutMs);
      try {
        const sent = session.ping((err) => {
          // A ping cancelled because the session closed meanwhile is not a verdict on the agent.
          if (err && (session.closed || session.destroyed)) finish(!session.destroyed);
          else finish(!err);
        });
        if (!sent) finish(true); // too many pings outstanding: the periodic one will judge
      } catch {
        finish(!session.destroyed);
      }
    });
    st.inFlight = p;
    return p;
  }

  private kill(t: Tunnel): void {
    if (this.dead.has(t)) return;
    this.dead.add(t);
    this.opts.log?.warn(
      { cluster: t.cluster, tunnel: t.id, agent: t.agentId, timeoutMs: this.timeoutMs },
      'tunnel stopped answering: retiring it',
    );
    this.registry.remove(t);
    if (!t.session.destroyed) t.session.destroy(new TunnelDeadError(t.cluster, this.timeoutMs));
  }
}

/** Bytes read from the agent on this session's socket so far. */
function bytesRead(session: Tunnel['session']): number {
  return (session.socket as { bytesRead?: number } | undefined)?.bytesRead ?? 0;
}
