/**
 * Approval policies in `approval_policies`: list, get, create, replace,
 * delete. Each change is one transaction with its audit event; the table's
 * trigger announces it, so every replica reloads its gate policies at once.
 */
import { KgError, invalid } from '../../common/errors.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import type { Pool } from '../db/pool.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { checkVersion } from '../rbac/changes.js';
import { policyFromStored, validatePolicy, type ApprovalPolicy } from './policy-spec.js';

export interface PolicyRecord {
  policy: ApprovalPolicy;
  version: number;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  name: string;
  kind: string;
  spec: unknown;
  version: number;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

const toRecord = (r: Row): PolicyRecord => ({
  policy: policyFromStored(r.spec),
  version: r.version,
  createdBy: r.created_by,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export async function listPolicies(
  db: Queryable,
  kind?: ApprovalPolicy['kind'],
): Promise<PolicyRecord[]> {
  const rows = await query<Row>(
    db,
    `SELECT * FROM approval_policies ${kind ? 'WHERE kind = $1' : ''} ORDER BY name COLLATE "C"`,
    kind ? [kind] : [],
  );
  return rows.map(toRecord);
}

export async function getPolicy(db: Queryable, name: string): Promise<PolicyRecord | undefined> {
  const rows = await query<Row>(db, 'SELECT * FROM approval_policies WHERE name = $1', [name]);
  return rows[0] ? toRecord(rows[0]) : undefined;
}

function checked(raw: unknown, nameFromPath?: string): ApprovalPolicy {
  const { policy, problems } = validatePolicy(raw, nameFromPath);
  if (!policy) throw invalid('approval policy', problems);
  return policy;
}

export async function createPolicy(pool: Pool, raw: unknown, actor: string): Promise<PolicyRecord> {
  const policy = checked(raw);
  return inTransaction(pool, async (c) => {
    const { rows } = await c.query<Row>(
      `INSERT INTO approval_policies (name, kind, spec, created_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO NOTHING RETURNING *`,
      [policy.name, policy.kind, JSON.stringify(policy), actor],
    );
    if (!rows[0])
      throw new KgError('KG_ERR_CONFLICT', `approval policy "${policy.name}" already exists`);
    await recordAdminEvent(c, {
      actor,
      verb: 'create',
      resource: 'approval-policies',
      name: policy.name,
      detail: policy,
    });
    return toRecord(rows[0]);
  });
}

export async function replacePolicy(
  pool: Pool,
  name: string,
  raw: unknown,
  actor: string,
  version?: number,
): Promise<PolicyRecord> {
  const policy = checked(raw, name);
  return inTransaction(pool, async (c) => {
    const { rows: old } = await c.query<Row>(
      'SELECT * FROM approval_policies WHERE name = $1 FOR UPDATE',
      [name],
    );
    if (!old[0]) throw new KgError('KG_ERR_NOT_FOUND', `approval policy "${name}" does not exist`);
    checkVersion(`approval policy "${name}"`, old[0].version, version);
    const { rows } = await c.query<Row>(
      `UPDATE approval_policies SET kind = $2, spec = $3, version = version + 1, updated_at = now()
        WHERE name = $1 RETURNING *`,
      [name, policy.kind, JSON.stringify(policy)],
    );
    await recordAdminEvent(c, {
      actor,
      verb: 'update',
      resource: 'approval-policies',
      name,
      detail: { before: old[0].spec, after: policy },
    });
    return toRecord(rows[0]!);
  });
}

export async function deletePolicy(
  pool: Pool,
  name: string,
  actor: string,
  version?: number,
): Promise<void> {
  await inTransaction(pool, async (c) => {
    const { rows } = await c.query<Row>(
      'SELECT * FROM approval_policies WHERE name = $1 FOR UPDATE',
      [name],
    );
    if (!rows[0]) throw new KgError('KG_ERR_NOT_FOUND', `approval policy "${name}" does not exist`);
    checkVersion(`approval policy "${name}"`, rows[0].version, version);
    await c.query('DELETE FROM approval_policies WHERE name = $1', [name]);
    await recordAdminEvent(c, {
      actor,
      verb: 'delete',
      resource: 'approval-policies',
      name,
      detail: { before: rows[0].spec },
    });
  });
}
