/**
 * The replica registry (architecture.md, "Scale-out"): each replica writes
 * its own row (id, peer address, heartbeat, draining) and one row per tunnel
 * it holds, and reads everyone's, so a request for a cluster whose tunnels
 * are elsewhere knows which peer to ask. Replicas that stop heart-beating
 * (kill -9, a partition) are expired by the others; their tunnel rows go with
 * them. Tunnel changes are batched, so thousands of agents reconnecting at
 * once cost a few statements, not thousands.
 */
import type { Logger } from '../../common/log.js';
import type { Pool } from '../db/pool.js';

export interface TunnelRow {
  id: string;
  cluster: string;
  agentId: string;
  agentVersion: string;
  since: Date;
}

/** A live peer that holds at least one tunnel for a cluster. */
export interface PeerRoute {
  replica: string;
  peerAddress: string;
  draining: boolean;
}

export interface ReplicaRegistryOptions {
  pool: Pool;
  replicaId: string;
  peerAddress: string;
  heartbeatMs: number;
  /** A replica whose heartbeat is older than this is gone. */
  staleAfterMs: number;
  log: Logger;
}

export class ReplicaRegistry {
  private readonly held = new Map<string, TunnelRow>();
  private readonly pendingUp = new Map<string, TunnelRow>();
  private readonly pendingDown = new Set<string>();
  private routes = new Map<string, PeerRoute[]>();
  private liveCount = 1;
  private others = 0;
  private refreshedAt = 0;
  private refreshing: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private beat: NodeJS.Timeout | undefined;
  private stopped = false;
  draining = false;

  constructor(private readonly o: ReplicaRegistryOptions) {}

  /** Register this replica (a restart under the same id replaces the old row) and start heart-beating. */
  async start(): Promise<void> {
    await this.register();
    await this.refresh();
    this.beat = setInterval(() => void this.heartbeat(), this.o.heartbeatMs);
    this.beat.unref();
  }

  private async register(): Promise<void> {
    await this.o.pool.query(
      `INSERT INTO replicas (id, peer_address, draining) VALUES ($1, $2, $3)
       ON CONFLICT (id) DO UPDATE SET peer_address = $2, started_at = now(),
         heartbeat_at = now(), draining = $3`,
      [this.o.replicaId, this.o.peerAddress, this.draining],
    );
    // Rows a previous run under this id left behind describe dead tunnels.
    await this.o.pool.query('DELETE FROM replica_tunnels WHERE replica_id = $1', [
      this.o.replicaId,
    ]);
    for (const t of this.held.values()) this.pendingUp.set(t.id, t);
    this.scheduleFlush();
  }

  private async heartbeat(): Promise<void> {
    if (this.stopped) return;
    try {
      const r = await this.o.pool.query('UPDATE replicas SET heartbeat_at = now() WHERE id = $1', [
        this.o.replicaId,
      ]);
      // Expired by a peer while we were paused or partitioned: come back with everything we hold.
      if (r.rowCount === 0) await this.register();
      await this.o.pool.query(
        `DELETE FROM replicas WHERE heartbeat_at < now() - ($1 || ' milliseconds')::interval`,
        [String(this.o.staleAfterMs)],
      );
      await this.refresh();
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'replica heartbeat failed');
    }
  }

  /** Re-read every live replica's tunnels into the route cache. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const { rows } = await this.o.pool.query<{
          id: string;
          peer_address: string;
          draining: boolean;
          cluster: string | null;
        }>(
          `SELECT r.id, r.peer_address, r.draining, t.cluster
             FROM replicas r LEFT JOIN replica_tunnels t ON t.replica_id = r.id
            WHERE r.heartbeat_at >= now() - ($1 || ' milliseconds')::interval`,
          [String(this.o.staleAfterMs)],
        );
        const routes = new Map<string, PeerRoute[]>();
        const live = new Set<string>();
        const others = new Set<string>();
        for (const r of rows) {
          if (!r.draining) live.add(r.id);
          if (!r.draining && r.id !== this.o.replicaId) others.add(r.id);
          if (r.id === this.o.replicaId || r.cluster === null) continue;
          const list = routes.get(r.cluster) ?? [];
          if (!list.some((p) => p.replica === r.id))
            list.push({ replica: r.id, peerAddress: r.peer_address, draining: r.draining });
          routes.set(r.cluster, list);
        }
        this.routes = routes;
        this.liveCount = Math.max(1, live.size);
        this.others = others.size;
        this.refreshedAt = Date.now();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** Re-read now unless the cache is younger than `maxAgeMs` (a miss must not hammer the database). */
  async refreshIfOlder(maxAgeMs: number): Promise<void> {
    if (Date.now() - this.refreshedAt >= maxAgeMs) await this.refresh();
  }

  /** Peers holding tunnels for `cluster`, non-draining first (from the cache). */
  peersFor(cluster: string): PeerRoute[] {
    const list = this.routes.get(cluster) ?? [];
    return [...list].sort((a, b) => Number(a.draining) - Number(b.draining));
  }

  /** Live, non-draining replicas (this one included while it is not draining). */
  get liveReplicas(): number {
    return this.liveCount;
  }

  /** No other live, non-draining replica is known. */
  get alone(): boolean {
    return this.others === 0;
  }

  tunnelUp(t: TunnelRow): void {
    this.held.set(t.id, t);
    this.pendingDown.delete(t.id);
    this.pendingUp.set(t.id, t);
    this.scheduleFlush();
  }

  tunnelDown(id: string): void {
    if (!this.held.delete(id)) return;
    if (!this.pendingUp.delete(id)) this.pendingDown.add(id);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushTimer || this.stopped) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flushing = this.flushing.then(() => this.flush());
    }, 20);
  }

  /** Write pending tunnel changes in two statements; on failure keep them for the next try. */
  private async flush(): Promise<void> {
    const up = [...this.pendingUp.values()];
    const down = [...this.pendingDown];
    this.pendingUp.clear();
    this.pendingDown.clear();
    try {
      if (down.length)
        await this.o.pool.query('DELETE FROM replica_tunnels WHERE tunnel_id = ANY($1::text[])', [
          down,
        ]);
      if (up.length)
        await this.o.pool.query(
          `INSERT INTO replica_tunnels (tunnel_id, replica_id, cluster, agent_id, agent_version, since)
           SELECT t.id, $1, t.cluster, t.agent, t.version, t.since
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[])
               AS t(id, cluster, agent, version, since)
           ON CONFLICT (tunnel_id) DO NOTHING`,
          [
            this.o.replicaId,
            up.map((t) => t.id),
            up.map((t) => t.cluster),
            up.map((t) => t.agentId),
            up.map((t) => t.agentVersion),
            up.map((t) => t.since),
          ],
        );
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'tunnel registry write failed; retrying');
      for (const t of up) if (this.held.has(t.id)) this.pendingUp.set(t.id, t);
      for (const id of down) this.pendingDown.add(id);
      setTimeout(() => this.scheduleFlush(), 1000).unref();
    }
  }

  /** Tell the others this replica takes nothing new (they stop routing here first). */
  async setDraining(): Promise<void> {
    this.draining = true;
    await this.o.pool.query('UPDATE replicas SET draining = true WHERE id = $1', [
      this.o.replicaId,
    ]);
  }

  /** Stop heart-beating and remove this replica and its tunnels. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.beat);
    clearTimeout(this.flushTimer);
    await this.flushing;
    await this.o.pool.query('DELETE FROM replicas WHERE id = $1', [this.o.replicaId]);
  }
}
