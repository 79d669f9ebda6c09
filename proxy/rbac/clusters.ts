/**
 * Cluster administration: register (with a one-time bootstrap token), list,
 * get, change labels/description/disabled, and delete — each change in one
 * transaction with its admin_changes row. Enrollment and tunnels keep using
 * cluster-store.ts; this is the admin side of the same table.
 */
import { randomBytes } from 'node:crypto';
import { KgError, invalid } from '../../common/errors.js';
import { hashToken } from '../authn/token.js';
import { clusterProblems, type ClusterRow } from '../clusters/cluster-store.js';
import type { Pool } from '../db/pool.js';
import { decodeCursor, dnsName, encodeCursor } from './cursor.js';
import {
  clampLimit,
  toClusterRecord,
  type ClusterRecord,
  type Page,
  type PageRequest,
} from './records.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { checkVersion, recordChange, refuseWhileBound, type ChangeOptions } from './changes.js';
import { isObject } from '../../common/json-object.js';

export const maxClusterDescription = 1000;

function unknownFields(body: Record<string, unknown>, allowed: string[], problems: string[]) {
  const unknown = Object.keys(body).filter((k) => !allowed.includes(k));
  if (unknown.length > 0)
    problems.push(`unknown field(s): ${unknown.join(', ')} (allowed: ${allowed.join(', ')})`);
}

function description(raw: unknown, problems: string[]): string | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string') problems.push('description: must be a string');
  else if (raw.length > maxClusterDescription)
    problems.push(`description: must be at most ${maxClusterDescription} characters`);
  else return raw;
  return undefined;
}

/** One page of clusters, by name (byte order). */
export async function listClusters(pool: Pool, page: PageRequest): Promise<Page<ClusterRecord>> {
  const after = page.continue ? decodeCursor(page.continue, { n: dnsName }).n : '';
  const limit = clampLimit(page.limit);
  const rows = await query<ClusterRow>(
    pool,
    'SELECT * FROM clusters WHERE name COLLATE "C" > $1 ORDER BY name COLLATE "C" LIMIT $2',
    [after, limit + 1],
  );
  const items = rows.slice(0, limit).map(toClusterRecord);
  if (rows.length <= limit) return { items };
  return { items, continue: encodeCursor({ n: items[items.length - 1]!.name }) };
}

/** The cluster with this name, or undefined. */
export async function getCluster(db: Queryable, name: string): Promise<ClusterRecord | undefined> {
  const rows = await query<ClusterRow>(db, 'SELECT * FROM clusters WHERE name = $1', [name]);
  return rows[0] ? toClusterRecord(rows[0]) : undefined;
}

async function lockCluster(db: Queryable, name: string): Promise<ClusterRecord> {
  const { rows } = await db.query<ClusterRow>('SELECT * FROM clusters WHERE name = $1 FOR UPDATE', [
    name,
  ]);
  if (!rows[0])
    throw new KgError('KG_ERR_CLUSTER_NOT_FOUND', `cluster "${name}" is not registered`);
  return toClusterRecord(rows[0]);
}

export interface RegisteredCluster {
  cluster: ClusterRecord;
  /** One-time bootstrap token for the cluster's agent; shown once, stored hashed. */
  bootstrapToken: string;
  bootstrapExpiresAt: Date;
}

/**
 * Register a cluster from `{name, labels?, description?}` and mint its
 * bootstrap token in the same transaction, so a registered cluster always
 * has a way to enroll. The token has the same form and storage as
 * ClusterStore.createBootstrapToken's (only the hash is kept).
 */
export async function createCluster(
  pool: Pool,
  raw: unknown,
  actor: string,
  bootstrapTtlMs: number,
): Promise<RegisteredCluster> {
  if (!isObject(raw)) throw invalid('cluster', ['the cluster must be a JSON object']);
  const problems: string[] = [];
  unknownFields(raw, ['name', 'labels', 'description'], problems);
  const name = typeof raw.name === 'string' ? raw.name : '';
  if (typeof raw.name !== 'string') problems.push('name: must be a string');
  let labels: Record<string, string> = {};
  if (raw.labels !== undefined) {
    if (isObject(raw.labels)) labels = raw.labels as Record<string, string>;
    else problems.push('labels: must be an object of label key → value');
  }
  problems.push(...clusterProblems(name, labels));
  const desc = description(raw.description, problems) ?? '';
  if (problems.length > 0) throw invalid('cluster', problems);
  return inTransaction(pool, async (c) => {
    const { rows } = await c.query<ClusterRow>(
      `INSERT INTO clusters (name, labels, description) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO NOTHING RETURNING *`,
      [name, JSON.stringify(labels), desc],
    );
    if (!rows[0]) throw new KgError('KG_ERR_CONFLICT', `cluster "${name}" already exists`);
    const cluster = toClusterRecord(rows[0]);
    const token = 'kgb_' + randomBytes(32).toString('base64url');
    const t = await c.query<{ expires_at: Date }>(
      `INSERT INTO bootstrap_tokens (hash, cluster_id, expires_at, created_by)
       VALUES ($1, $2, now() + ($3 || ' milliseconds')::interval, $4) RETURNING expires_at`,
      [hashToken(token), cluster.id, String(bootstrapTtlMs), actor],
    );
    await recordChange(c, actor, 'create', 'cluster', name, null, cluster);
    return { cluster, bootstrapToken: token, bootstrapExpiresAt: t.rows[0]!.expires_at };
  });
}

/**
 * Change a cluster with a JSON merge patch (RFC 7396) of `labels`,
 * `description` and `disabled`: in `labels`, a null value removes that label
 * and `labels: null` removes them all. Order of refusals: 404, 412, then 422.
 */
export async function updateCluster(
  pool: Pool,
  name: string,
  patch: unknown,
  opts: ChangeOptions,
): Promise<ClusterRecord> {
  return inTransaction(pool, async (c) => {
    const before = await lockCluster(c, name);
    checkVersion(`cluster "${name}"`, before.version, opts.version);
    if (!isObject(patch)) throw invalid('cluster patch', ['the patch must be a JSON object']);
    const problems: string[] = [];
    unknownFields(patch, ['labels', 'description', 'disabled'], problems);
    let labels = { ...before.labels };
    if (patch.labels === null) labels = {};
    else if (isObject(patch.labels)) {
      for (const [k, v] of Object.entries(patch.labels)) {
        if (v === null) delete labels[k];
        else labels[k] = v as string;
      }
    } else if (patch.labels !== undefined) {
      problems.push('labels: must be an object of label key → value (null removes a label)');
    }
    problems.push(...clusterProblems(name, labels));
    const desc = description(patch.description, problems) ?? before.description;
    let disabled = before.disabled;
    if (patch.disabled !== undefined) {
      if (typeof patch.disabled !== 'boolean') problems.push('disabled: must be true or false');
      else disabled = patch.disabled;
    }
    if (problems.length > 0) throw invalid('cluster patch', problems);
    const { rows } = await c.query<ClusterRow>(
      `UPDATE clusters SET labels = $2, description = $3, disabled = $4, version = version + 1,
              updated_at = now()
        WHERE name = $1 RETURNING *`,
      [name, JSON.stringify(labels), desc, disabled],
    );
    const after = toClusterRecord(rows[0]!);
    await recordChange(c, opts.actor, 'update', 'cluster', name, before, after);
    return after;
  });
}

/**
 * Delete a cluster (its bootstrap tokens and agent certificates go with it).
 * Refused while a binding names it: re-registering the name later would
 * otherwise silently revive those grants on a different cluster.
 */
export async function deleteCluster(pool: Pool, name: string, opts: ChangeOptions): Promise<void> {
  await inTransaction(pool, async (c) => {
    const before = await lockCluster(c, name);
    checkVersion(`cluster "${name}"`, before.version, opts.version);
    await refuseWhileBound(
      c,
      '$1 = ANY(cluster_names)',
      name,
      (total, named) =>
        `cluster "${name}" is named by ${total} binding(s): ${named}; remove it from those bindings first`,
    );
    await c.query('DELETE FROM clusters WHERE name = $1', [name]);
    await recordChange(c, opts.actor, 'delete', 'cluster', name, before, null);
  });
}
