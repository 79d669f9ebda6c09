/**
 * Token records as their owners and admins see them: list (never the hash,
 * never the token), revoke one, revoke all of an identity's. Revoking sets
 * `revoked_at`, and the trigger of migration 0002 announces the hash on
 * `kubegate_tokens`, so every replica drops it from its cache and ends the
 * open requests using it within a second.
 */
import { query, type Queryable } from '../db/query.js';

/** Whose tokens: by name (covers tokens minted by the CLI) or by row reference. */
export interface TokenOwner {
  kind: 'user' | 'robot';
  name: string;
  userId?: string | undefined;
  robotId?: string | undefined;
}

export interface TokenRecord {
  id: string;
  kind: 'user' | 'robot';
  subject: string;
  description: string;
  createdBy: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  expiresAt: Date;
  revokedAt: Date | null;
  state: 'active' | 'expired' | 'revoked';
}

interface Row {
  id: string;
  subject_kind: 'user' | 'robot';
  subject: string;
  description: string;
  created_by: string;
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date;
  revoked_at: Date | null;
  expired: boolean;
}

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** SQL condition matching `owner`'s tokens, parameters from $1. */
function ownerWhere(owner: TokenOwner): { sql: string; values: unknown[] } {
  const values: unknown[] = [owner.kind, owner.name];
  const parts = ['(subject_kind = $1 AND subject = $2)'];
  if (owner.userId) {
    values.push(owner.userId);
    parts.push(`user_id = $${values.length}`);
  }
  if (owner.robotId) {
    values.push(owner.robotId);
    parts.push(`robot_id = $${values.length}`);
  }
  return { sql: `(${parts.join(' OR ')})`, values };
}

const columns = `id, subject_kind, subject, description, created_by, created_at, last_used_at,
  expires_at, revoked_at, expires_at <= now() AS expired`;

function record(r: Row): TokenRecord {
  return {
    id: r.id,
    kind: r.subject_kind,
    subject: r.subject,
    description: r.description,
    createdBy: r.created_by,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    state: r.revoked_at ? 'revoked' : r.expired ? 'expired' : 'active',
  };
}

/** An owner's tokens (undefined = every owner: admins), newest first; by default only those still usable. */
export async function listTokens(
  db: Queryable,
  owner: TokenOwner | undefined,
  includeInactive = false,
): Promise<TokenRecord[]> {
  const w = owner ? ownerWhere(owner) : { sql: 'true', values: [] };
  const rows = await query<Row>(
    db,
    `SELECT ${columns} FROM api_tokens WHERE ${w.sql}
      ${includeInactive ? '' : 'AND revoked_at IS NULL AND expires_at > now()'}
      ORDER BY created_at DESC, id LIMIT 500`,
    w.values,
  );
  return rows.map(record);
}

/**
 * Revoke one token by id, if `owner` owns it (undefined = any owner: admins).
 * 'missing' also covers "not yours", so ids of others' tokens are not revealed.
 */
export async function revokeToken(
  db: Queryable,
  id: string,
  owner: TokenOwner | undefined,
): Promise<'revoked' | 'already' | 'missing'> {
  if (!uuidPattern.test(id)) return 'missing';
  const w = owner ? ownerWhere(owner) : { sql: 'true', values: [] };
  const idParam = `$${w.values.length + 1}`;
  const rows = await query<{ already: boolean }>(
    db,
    `WITH target AS (SELECT id, revoked_at FROM api_tokens WHERE id = ${idParam} AND ${w.sql}),
          upd AS (UPDATE api_tokens t SET revoked_at = now() FROM target
                   WHERE t.id = target.id AND t.revoked_at IS NULL RETURNING t.id)
     SELECT target.revoked_at IS NOT NULL AS already FROM target`,
    [...w.values, id],
  );
  if (!rows[0]) return 'missing';
  return rows[0].already ? 'already' : 'revoked';
}

/** Revoke every usable token of `owner`; returns how many. */
export async function revokeAllTokens(db: Queryable, owner: TokenOwner): Promise<number> {
  const w = ownerWhere(owner);
  const rows = await query<{ id: string }>(
    db,
    `UPDATE api_tokens SET revoked_at = now() WHERE ${w.sql} AND revoked_at IS NULL RETURNING id`,
    w.values,
  );
  return rows.length;
}

/** The users / robots rows a token was minted for, if any, and the sign-in it came from. */
export async function tokenOwnerRefs(
  db: Queryable,
  tokenId: string,
): Promise<{ userId: string | null; robotId: string | null; signinId: string | null }> {
  const rows = await query<{
    user_id: string | null;
    robot_id: string | null;
    signin_id: string | null;
  }>(db, 'SELECT user_id, robot_id, signin_id FROM api_tokens WHERE id = $1', [tokenId]);
  return {
    userId: rows[0]?.user_id ?? null,
    robotId: rows[0]?.robot_id ?? null,
    signinId: rows[0]?.signin_id ?? null,
  };
}
