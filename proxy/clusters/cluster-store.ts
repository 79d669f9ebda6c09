/**
 * Registered clusters, their one-time bootstrap tokens and the agent
 * certificates issued to them.
 */
import { randomBytes } from 'node:crypto';
import type { Pool } from '../db/pool.js';
import { KgError } from '../../common/errors.js';
import { hashToken } from '../authn/token.js';
import { isLabelKey, isLabelValue } from '../../common/kube-grammar.js';

export interface Cluster {
  id: string;
  name: string;
  labels: Record<string, string>;
  description: string;
  disabled: boolean;
  version: number;
  createdAt: Date;
}

const clusterName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The key of one agent certificate in `agentCertsValid`'s answer. */
export const certKey = (cluster: string, serial: string) => `${cluster}/${serial}`;

/** Every problem with a cluster name and labels, in Kubernetes' own terms. */
export function clusterProblems(name: string, labels: Record<string, string>): string[] {
  const problems: string[] = [];
  if (!clusterName.test(name)) {
    problems.push(
      `name "${name}" must be a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters`,
    );
  }
  for (const [k, v] of Object.entries(labels)) {
    if (!isLabelKey(k)) problems.push(`label key "${k}" is not a valid Kubernetes label key`);
    if (typeof v !== 'string' || !isLabelValue(v))
      problems.push(
        `label "${k}" has an invalid value "${String(v)}" (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)`,
      );
  }
  return problems;
}

/** A `clusters` row as `SELECT *` reads it: the Cluster's columns, timestamps in SQL's names. */
export interface ClusterRow extends Omit<Cluster, 'createdAt'> {
  created_at: Date;
  updated_at: Date;
}

export const toCluster = (r: ClusterRow): Cluster => ({
  id: String(r.id),
  name: r.name,
  labels: r.labels,
  description: r.description,
  disabled: r.disabled,
  version: r.version,
  createdAt: r.created_at,
});

export class ClusterStore {
  constructor(private readonly pool: Pool) {}

  async add(name: string, labels: Record<string, string>, description = ''): Promise<Cluster> {
    const problems = clusterProblems(name, labels);
    if (problems.length)
      throw new KgError('KG_ERR_VALIDATION', problems.join('; '), { details: { problems } });
    try {
      const { rows } = await this.pool.query<ClusterRow>(
        'INSERT INTO clusters (name, labels, description) VALUES ($1, $2, $3) RETURNING *',
        [name, JSON.stringify(labels), description],
      );
      return toCluster(rows[0]!);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new KgError('KG_ERR_CONFLICT', `cluster "${name}" already exists`, { cause: err });
      }
      throw err;
    }
  }

  async get(name: string): Promise<Cluster | undefined> {
    const { rows } = await this.pool.query<ClusterRow>('SELECT * FROM clusters WHERE name = $1', [
      name,
    ]);
    return rows[0] ? toCluster(rows[0]) : undefined;
  }

  async list(): Promise<Cluster[]> {
    const { rows } = await this.pool.query<ClusterRow>('SELECT * FROM clusters ORDER BY name');
    return rows.map(toCluster);
  }

  /** A fresh one-time bootstrap token for the cluster; only its hash is stored. */
  async createBootstrapToken(
    clusterId: string,
    ttlMs: number,
    createdBy = '',
  ): Promise<{ token: string; expiresAt: Date }> {
    const token = 'kgb_' + randomBytes(32).toString('base64url');
    const { rows } = await this.pool.query<{ expires_at: Date }>(
      `INSERT INTO bootstrap_tokens (hash, cluster_id, expires_at, created_by)
       VALUES ($1, $2, now() + ($3 || ' milliseconds')::interval, $4) RETURNING expires_at`,
      [hashToken(token), clusterId, String(ttlMs), createdBy],
    );
    return { token, expiresAt: rows[0]!.expires_at };
  }

  /**
   * Spend a bootstrap token for `cluster`, atomically: exactly one caller can
   * ever succeed, and only before expiry. Returns the cluster on success.
   */
  async spendBootstrapToken(cluster: string, token: string): Promise<Cluster> {
    const { rows } = await this.pool.query<ClusterRow>(
      `UPDATE bootstrap_tokens b SET used_at = now()
         FROM clusters c
        WHERE b.hash = $1 AND b.cluster_id = c.id AND c.name = $2
          AND b.used_at IS NULL AND b.expires_at > now() AND NOT c.disabled
        RETURNING c.*`,
      [hashToken(token), cluster],
    );
    if (!rows[0]) {
      throw new KgError(
        'KG_ERR_TOKEN_SPENT',
        `bootstrap token for cluster "${cluster}" is unknown, already used or expired; ask an admin for a new one: kubegate admin cluster bootstrap ${cluster}`,
      );
    }
    return toCluster(rows[0]);
  }

  async recordAgentCert(clusterId: string, serial: string, notAfter: Date): Promise<void> {
    await this.pool.query(
      'INSERT INTO agent_certs (serial, cluster_id, not_after) VALUES ($1, $2, $3)',
      [serial, clusterId, notAfter],
    );
  }

  /** True when the certificate was issued by us for this cluster, is unexpired and not revoked. */
  async agentCertValid(cluster: string, serial: string): Promise<boolean> {
    const { rows } = await this.pool.query(
      `SELECT 1 FROM agent_certs a JOIN clusters c ON c.id = a.cluster_id
        WHERE a.serial = $1 AND c.name = $2 AND a.revoked_at IS NULL AND a.not_after > now() AND NOT c.disabled`,
      [serial, cluster],
    );
    return rows.length > 0;
  }

  /**
   * `agentCertValid` for many certificates in one query: the `cluster/serial`
   * keys (see `certKey`) that are valid now.
   */
  async agentCertsValid(certs: { cluster: string; serial: string }[]): Promise<Set<string>> {
    return this.certKeysWhere(
      certs,
      'a.revoked_at IS NULL AND a.not_after > now() AND NOT c.disabled',
    );
  }

  /**
   * Renewal: the presenting certificate `serial` is superseded (revoked,
   * reason `superseded`) and the new one recorded, in one transaction. The
   * claim is atomic: of two renewals racing with the same certificate, one
   * wins and the other is refused, and a certificate that was revoked,
   * superseded, expired or whose cluster was disabled meanwhile renews
   * nothing. `issue` signs the new certificate (it runs inside the
   * transaction; nothing is recorded if it fails).
   */
  async renewAgentCert<T extends { serial: string; notAfter: Date }>(
    cluster: string,
    serial: string,
    issue: (clusterId: string) => Promise<T>,
  ): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN');
      const { rows } = await c.query<{ cluster_id: string }>(
        `UPDATE agent_certs a SET revoked_at = now(), revoke_reason = 'superseded'
           FROM clusters c
          WHERE a.cluster_id = c.id AND c.name = $2 AND a.serial = $1
            AND a.revoked_at IS NULL AND a.not_after > now() AND NOT c.disabled
          RETURNING a.cluster_id`,
        [serial, cluster],
      );
      if (!rows[0])
        throw new KgError(
          'KG_ERR_UNAUTHENTICATED',
          'renewal needs a valid, unrevoked agent certificate for a registered, enabled cluster; re-enroll with a new bootstrap token',
        );
      const issued = await issue(String(rows[0].cluster_id));
      await c.query('INSERT INTO agent_certs (serial, cluster_id, not_after) VALUES ($1, $2, $3)', [
        issued.serial,
        rows[0].cluster_id,
        issued.notAfter,
      ]);
      await c.query('COMMIT');
      return issued;
    } catch (err) {
      await c.query('ROLLBACK').catch((e: Error) => (broken = e));
      throw err;
    } finally {
      c.release(broken);
    }
  }

  /**
   * Of the certificates of open tunnels, the `cluster/serial` keys that may
   * keep their tunnel: issued by us for that cluster, unexpired, not revoked
   * by an admin (a certificate superseded by renewal keeps the tunnels it
   * opened), and the cluster registered and enabled.
   */
  async tunnelCertsAllowed(certs: { cluster: string; serial: string }[]): Promise<Set<string>> {
    return this.certKeysWhere(
      certs,
      `(a.revoked_at IS NULL OR a.revoke_reason = 'superseded')
          AND a.not_after > now() AND NOT c.disabled`,
    );
  }

  /** The `cluster/serial` keys of `certs` whose certificate and cluster pass `condition` (SQL over a, c). */
  private async certKeysWhere(
    certs: { cluster: string; serial: string }[],
    condition: string,
  ): Promise<Set<string>> {
    const { rows } = await this.pool.query<{ name: string; serial: string }>(
      `SELECT c.name, a.serial
         FROM unnest($1::text[], $2::text[]) AS q(serial, name)
         JOIN agent_certs a ON a.serial = q.serial
         JOIN clusters c ON c.id = a.cluster_id AND c.name = q.name
        WHERE ${condition}`,
      [certs.map((c) => c.serial), certs.map((c) => c.cluster)],
    );
    return new Set(rows.map((r) => certKey(r.name, r.serial)));
  }

  async revokeAgentCerts(cluster: string): Promise<number> {
    const r = await this.pool.query(
      'UPDATE agent_certs a SET revoked_at = now() FROM clusters c WHERE c.id = a.cluster_id AND c.name = $1 AND a.revoked_at IS NULL',
      [cluster],
    );
    return r.rowCount ?? 0;
  }
}
