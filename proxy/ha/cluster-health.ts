/**
 * Cluster health, measured from live tunnels:
 * a cluster is online when at least one replica with a fresh heartbeat holds
 * a tunnel for it. For each cluster: which replicas, since when, and the
 * agent version(s) connected.
 */
import type { Pool } from '../db/pool.js';
import { query } from '../db/query.js';

export interface ReplicaTunnels {
  replica: string;
  tunnels: number;
  since: Date;
  draining: boolean;
}

export interface ClusterHealth {
  online: boolean;
  /** Earliest connection among the live tunnels; null when offline. */
  since: Date | null;
  /** The newest agent version seen on a live tunnel; null when offline. */
  agentVersion: string | null;
  agentVersions: string[];
  replicas: ReplicaTunnels[];
}

const offline = (): ClusterHealth => ({
  online: false,
  since: null,
  agentVersion: null,
  agentVersions: [],
  replicas: [],
});

/** Health for each named cluster (every name gets an entry, offline when nothing is live). */
export async function clusterHealth(
  pool: Pool,
  names: readonly string[],
  staleAfterMs: number,
): Promise<Map<string, ClusterHealth>> {
  const out = new Map<string, ClusterHealth>(names.map((n) => [n, offline()]));
  if (!names.length) return out;
  const rows = await query<{
    cluster: string;
    replica_id: string;
    draining: boolean;
    agent_version: string;
    since: Date;
  }>(
    pool,
    `SELECT t.cluster, t.replica_id, r.draining, t.agent_version, t.since
       FROM replica_tunnels t JOIN replicas r ON r.id = t.replica_id
      WHERE t.cluster = ANY($1::text[])
        AND r.heartbeat_at >= now() - ($2 || ' milliseconds')::interval
      ORDER BY t.since`,
    [names, String(staleAfterMs)],
  );
  for (const r of rows) {
    const h = out.get(r.cluster)!;
    h.online = true;
    h.since ??= r.since;
    if (!h.agentVersions.includes(r.agent_version)) h.agentVersions.push(r.agent_version);
    const rep = h.replicas.find((x) => x.replica === r.replica_id);
    if (rep) rep.tunnels++;
    else
      h.replicas.push({ replica: r.replica_id, tunnels: 1, since: r.since, draining: r.draining });
  }
  for (const h of out.values()) {
    h.agentVersions.sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
    h.agentVersion = h.agentVersions[0] ?? null;
  }
  return out;
}
