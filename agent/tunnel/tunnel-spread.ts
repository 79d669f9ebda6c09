/**
 * Spreading an agent's tunnels over proxy replicas (issue #9). Every hello
 * names the replica reached and how many live replicas exist; behind one
 * load-balanced address the agent redials (a bounded number of times) until
 * its tunnels reach as many distinct replicas as it has tunnels, or as exist.
 * A draining replica's GOAWAY makes the agent open a replacement first and
 * retire the old tunnel only when the new one is up (make before break), and
 * a periodic check moves a doubled-up tunnel when new replicas have come.
 */
import type { Logger } from '../../common/log.js';
import type { TunnelClient } from './tunnel-client.js';

/** Declined hellos in a row before a tunnel settles for a replica it already has. */
export const maxSpreadTries = 8;
/** A replica that sent GOAWAY is avoided this long. */
const avoidMs = 30_000;

export interface SpreadHooks {
  onHello: (c: TunnelClient, replica: string, liveReplicas: number) => boolean;
  onGoaway: (c: TunnelClient) => void;
}

export class TunnelSpread {
  /** The active tunnels (one per slot); the array is kept in place for metrics. */
  readonly tunnels: TunnelClient[] = [];
  private readonly retiring = new Set<TunnelClient>();
  /** Retired tunnels still carrying the streams they had (closed when those end). */
  private readonly lingering = new Set<TunnelClient>();
  /** Replacements started by a rebalance probe rather than a drain. */
  private readonly probes = new Set<TunnelClient>();
  private readonly avoid = new Map<string, number>();
  private liveReplicas = 1;
  private next = 0;
  private ticks = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly count: number,
    private readonly make: (index: number, hooks: SpreadHooks) => TunnelClient,
    private readonly rebalanceMs: number,
    private readonly log: Logger,
  ) {}

  private readonly hooks: SpreadHooks = {
    onHello: (c, replica, live) => this.hello(c, replica, live),
    onGoaway: (c) => this.goaway(c),
  };

  start(): void {
    for (let i = 0; i < this.count; i++) {
      const c = this.make(this.next++, this.hooks);
      this.tunnels.push(c);
      c.start();
    }
    const tick = () => {
      this.rebalance();
      // Jittered, so a fleet of agents does not probe in step.
      this.timer = setTimeout(tick, this.rebalanceMs * (0.75 + Math.random() / 2));
    };
    this.timer = setTimeout(tick, this.rebalanceMs);
  }

  /** Replicas the other up tunnels reach (the one being replaced does not count). */
  private heldBy(except: TunnelClient): Set<string> {
    return new Set(
      this.tunnels
        .filter((t) => t !== except && t !== except.replaces && t.connected && t.replica)
        .map((t) => t.replica!),
    );
  }

  private hello(c: TunnelClient, replica: string, live: number): boolean {
    this.liveReplicas = live;
    const now = Date.now();
    const avoided = (this.avoid.get(replica) ?? 0) > now;
    const held = this.heldBy(c);
    if (this.probes.has(c)) return this.probeHello(c, replica, avoided, held);
    const want = Math.min(this.count, live);
    const doubled = held.has(replica) && held.size < want;
    if ((avoided || doubled) && c.spreadTries < maxSpreadTries) {
      c.spreadTries++;
      return false;
    }
    c.spreadTries = 0;
    this.moved(c, replica);
    return true;
  }

  /** `c` is up in its slot: the tunnel it replaces (if any) is retired. */
  private moved(c: TunnelClient, replica: string): void {
    const old = c.replaces;
    if (!old) return;
    c.replaces = undefined;
    this.log.info(
      { from: old.replica, to: replica, tunnel: c.index },
      'tunnel moved; retiring the old one',
    );
    this.retire(old);
  }

  /**
   * A rebalance probe is worth keeping only if it reached a replica no other
   * tunnel holds. Otherwise it redials a bounded number of times (behind a
   * load balancer the next dial may land elsewhere) and then gives up: the
   * probe goes and the tunnel it would have replaced stays, with the watches
   * and sessions it carries. Retiring it for no gain cut every open watch.
   */
  private probeHello(
    c: TunnelClient,
    replica: string,
    avoided: boolean,
    held: Set<string>,
  ): boolean {
    const gain = !avoided && !held.has(replica);
    if (gain) {
      this.probes.delete(c);
      c.spreadTries = 0;
      this.moved(c, replica);
      return true;
    }
    if (held.size < this.liveReplicas && c.spreadTries < maxSpreadTries) {
      c.spreadTries++;
      return false;
    }
    this.probes.delete(c);
    const old = c.replaces!;
    c.replaces = undefined;
    const slot = this.tunnels.indexOf(c);
    if (slot >= 0) this.tunnels[slot] = old;
    this.retiring.delete(old);
    this.log.debug(
      { replica, tunnel: c.index, kept: old.index },
      'rebalance probe found no other replica; keeping the tunnel',
    );
    // The declined answer is sent first; then the probe closes without redialling.
    queueMicrotask(() => void c.retire());
    return false;
  }

  /** The old tunnel takes no new streams; those it carries finish on it (tunnel-client.ts). */
  private retire(old: TunnelClient): void {
    this.retiring.delete(old);
    this.lingering.add(old);
    void old.retire().then(() => this.lingering.delete(old));
  }

  /** Start a replacement for `old` in its slot; `old` keeps serving until the replacement is up. */
  private replace(old: TunnelClient, probe = false): void {
    const slot = this.tunnels.indexOf(old);
    if (slot < 0) return;
    const fresh = this.make(this.next++, this.hooks);
    if (probe) this.probes.add(fresh);
    fresh.replaces = old;
    this.tunnels[slot] = fresh;
    this.retiring.add(old);
    fresh.start();
  }

  private goaway(c: TunnelClient): void {
    if (c.replica) this.avoid.set(c.replica, Date.now() + avoidMs);
    if (this.probes.has(c)) {
      // A probe that reached a draining replica: drop it, the old tunnel stays.
      this.probes.delete(c);
      const slot = this.tunnels.indexOf(c);
      if (slot >= 0 && c.replaces) this.tunnels[slot] = c.replaces;
      if (c.replaces) this.retiring.delete(c.replaces);
      c.replaces = undefined;
      void c.retire();
      return;
    }
    if (this.tunnels.includes(c)) this.replace(c);
  }

  /**
   * When tunnels share a replica while more replicas are live, move one (one
   * at a time). The live count is only as fresh as the last hello, so every
   * fourth check probes anyway: replicas may have come since.
   */
  private rebalance(): void {
    this.ticks++;
    if (this.tunnels.some((t) => t.replaces)) return;
    const up = this.tunnels.filter((t) => t.connected && t.replica);
    const distinct = new Set(up.map((t) => t.replica));
    if (up.length < 2 || distinct.size >= this.count) return;
    if (distinct.size >= this.liveReplicas && this.ticks % 4 !== 0) return;
    const seen = new Set<string>();
    const doubled = up.find((t) => (seen.has(t.replica!) ? true : (seen.add(t.replica!), false)));
    if (!doubled) return;
    this.log.info({ replica: doubled.replica }, 'rebalancing: probing for another replica');
    this.replace(doubled, true);
  }

  stop(): void {
    clearTimeout(this.timer);
    for (const t of [...this.tunnels, ...this.retiring, ...this.probes, ...this.lingering])
      t.stop();
  }
}
