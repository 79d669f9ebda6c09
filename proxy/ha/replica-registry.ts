/**
 * The replica registry: each replica writes
 * its own row (id, peer address, heartbeat, draining) and one row per tunnel
 * it holds, and reads everyone's, so a request for a cluster whose tunnels
 * are elsewhere knows which peer to ask. Replicas that stop heart-beating
 * (kill -9, a partition) are expired by the others; their tunnel rows go with
 * them. Tunnel changes are batched, so thousands of agents reconnecting at
 * once cost a few statements, not thousands.
 *
 * What a heartbeat reads stays small whatever the fleet size: only the
 * replicas table (a handful of rows). Where a cluster's tunnels are is
 * looked up on demand, per cluster, by index, when a request needs a peer,
 * and kept for one heartbeat (one lookup per remote cluster per beat at
 * most, concurrent misses share one query).
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

interface ReplicaInfo {
  peerAddress: string;
  draining: boolean;
}

interface ClusterEntry {
  at: number;
  replicaIds: string[];
}

export class ReplicaRegistry {
  private readonly held = new Map<string, TunnelRow>();
  private readonly pendingUp = new Map<string, TunnelRow>();
  private readonly pendingDown = new Set<string>();
  /** Live replicas other than this one, from the last heartbeat. */
  private peers = new Map<string, ReplicaInfo>();
  /** Per-cluster tunnel locations, read on demand (see routesFor). */
  private readonly byCluster = new Map<string, ClusterEntry>();
  private readonly lookups = new Map<string, Promise<ClusterEntry>>();
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

  /** Re-read the live replicas (id, peer address, draining): one small query. */
  refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const { rows } = await this.o.pool.query<{
          id: string;
          peer_address: string;
          draining: boolean;
        }>(
          `SELECT id, peer_address, draining FROM replicas
            WHERE heartbeat_at >= now() - ($1 || ' milliseconds')::interval`,
          [String(this.o.staleAfterMs)],
        );
        const peers = new Map<string, ReplicaInfo>();
        let live = 0;
        let others = 0;
        for (const r of rows) {
          if (!r.draining) live++;
          if (r.id === this.o.replicaId) continue;
          if (!r.draining) others++;
          peers.set(r.id, { peerAddress: r.peer_address, draining: r.draining });
        }
        this.peers = peers;
        this.liveCount = Math.max(1, live);
        this.others = others;
        this.refreshedAt = Date.now();
        // Forget locations nobody asked for lately, so the cache stays as small as the traffic.
        const old = Date.now() - 10 * this.o.heartbeatMs;
        for (const [cluster, e] of this.byCluster) if (e.at < old) this.byCluster.delete(cluster);
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /**
   * Live peers holding tunnels for `cluster`, non-draining first. The
   * location is cached for one heartbeat; pass a smaller `maxAgeMs` to look
   * again sooner (a miss may be a tunnel that moved a moment ago).
   */
  async routesFor(cluster: string, maxAgeMs = this.o.heartbeatMs): Promise<PeerRoute[]> {
    let entry = this.byCluster.get(cluster);
    if (!entry || Date.now() - entry.at >= maxAgeMs) entry = await this.lookup(cluster);
    // A replica that started after our last heartbeat: learn its address now
    // (at most every 250 ms), rather than a beat later.
    if (entry.replicaIds.some((id) => !this.peers.has(id)) && Date.now() - this.refreshedAt >= 250)
      await this.refresh();
    const out: PeerRoute[] = [];
    for (const id of entry.replicaIds) {
      const p = this.peers.get(id);
      if (p) out.push({ replica: id, peerAddress: p.peerAddress, draining: p.draining });
    }
    return out.sort((a, b) => Number(a.draining) - Number(b.draining));
  }

  /** One indexed query per cluster at a time (replica_tunnels_cluster_idx). */
  private lookup(cluster: string): Promise<ClusterEntry> {
    let p = this.lookups.get(cluster);
    if (!p) {
      p = (async () => {
        try {
          const { rows } = await this.o.pool.query<{ replica_id: string }>(
            'SELECT DISTINCT replica_id FROM replica_tunnels WHERE cluster = $1 AND replica_id <> $2',
            [cluster, this.o.replicaId],
          );
          const entry = { at: Date.now(), replicaIds: rows.map((r) => r.replica_id) };
          this.byCluster.set(cluster, entry);
          return entry;
        } finally {
          this.lookups.delete(cluster);
        }
      })();
      this.lookups.set(cluster, p);
    }
    return p;
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
