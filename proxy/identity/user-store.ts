/**
 * People who signed in: recorded (or updated) on every sign-in, listed and
 * deactivated by admins. Deactivation is one transaction — the flag, every
 * token revoked (each revocation is announced to every replica, ending open
 * watches), every session deleted, the change logged — so there is no moment
 * where a deactivated user still holds a working credential.
 */
import { KgError } from '../../common/errors.js';
import type { Pool } from '../db/pool.js';
import { recordChange } from '../rbac/changes.js';
import { dbError } from '../db/errors.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import type { LoginIdentity } from './login-identity.js';
import { revokeAllTokens, uuidPattern } from './token-records.js';

/** A user as kubegate records them: who signed in (LoginIdentity) and their account's state. */
export interface UserRecord extends LoginIdentity {
  id: string;
  active: boolean;
  createdAt: Date;
  lastLoginAt: Date | null;
  deactivatedAt: Date | null;
  deactivatedBy: string;
}

/** A `users` row as `SELECT ${cols}` (below) reads it. */
export interface UserRow extends LoginIdentity {
  id: string;
  active: boolean;
  created_at: Date;
  last_login_at: Date | null;
  deactivated_at: Date | null;
  deactivated_by: string;
}

const cols = `id, issuer, subject, username, email, name, groups, active, created_at,
  last_login_at, deactivated_at, deactivated_by`;

export function userRecord(r: UserRow): UserRecord {
  return {
    id: r.id,
    issuer: r.issuer,
    subject: r.subject,
    username: r.username,
    email: r.email,
    name: r.name,
    groups: r.groups,
    active: r.active,
    createdAt: r.created_at,
    lastLoginAt: r.last_login_at,
    deactivatedAt: r.deactivated_at,
    deactivatedBy: r.deactivated_by,
  };
}

/**
 * Record a sign-in: create the user or refresh their claims and groups. An
 * inactive user is refused (and their last sign-in time is left alone).
 */
export async function recordLogin(pool: Pool, li: LoginIdentity): Promise<UserRecord> {
  let rows: UserRow[];
  try {
    rows = (
      await pool.query<UserRow>(
        `INSERT INTO users (issuer, subject, username, email, name, groups, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (issuer, subject) DO UPDATE SET
           username = EXCLUDED.username, email = EXCLUDED.email, name = EXCLUDED.name,
           groups = EXCLUDED.groups,
           last_login_at = CASE WHEN users.active THEN now() ELSE users.last_login_at END
         RETURNING ${cols}`,
        [li.issuer, li.subject, li.username, li.email, li.name, li.groups],
      )
    ).rows;
  } catch (err) {
    const e = err as { code?: string; constraint?: string };
    if (e.code === '23505' && e.constraint === 'users_username_key') {
      throw new KgError(
        'KG_ERR_FORBIDDEN',
        `Sign-in refused: the user name "${li.username}" already belongs to another account at the identity provider; ask a kubegate admin`,
      );
    }
    throw dbError(err);
  }
  const user = userRecord(rows[0]!);
  if (!user.active) {
    throw new KgError(
      'KG_ERR_FORBIDDEN',
      `Sign-in refused: the kubegate account "${user.username}" is deactivated; ask a kubegate admin`,
    );
  }
  return user;
}

/** A user by id (uuid) or user name; undefined when there is none. */
export async function findUser(db: Queryable, idOrName: string): Promise<UserRecord | undefined> {
  const byId = uuidPattern.test(idOrName);
  const rows = await query<UserRow>(
    db,
    `SELECT ${cols} FROM users WHERE ${byId ? 'id = $1' : 'username = $1'}`,
    [idOrName],
  );
  return rows[0] ? userRecord(rows[0]) : undefined;
}

export async function getUser(db: Queryable, idOrName: string): Promise<UserRecord> {
  const u = await findUser(db, idOrName);
  if (!u) throw new KgError('KG_ERR_NOT_FOUND', `no user "${idOrName}" has signed in to kubegate`);
  return u;
}

export async function listUsers(db: Queryable): Promise<UserRecord[]> {
  return (await query<UserRow>(db, `SELECT ${cols} FROM users ORDER BY username LIMIT 5000`)).map(
    userRecord,
  );
}

export interface DeactivationResult {
  user: UserRecord;
  revokedTokens: number;
  endedSessions: number;
}

/** Deactivate a user: flag, tokens, sessions and change log in one transaction. */
export async function deactivateUser(
  pool: Pool,
  idOrName: string,
  actor: string,
): Promise<DeactivationResult> {
  return inTransaction(pool, async (c) => {
    const before = await getUser(c, idOrName);
    const rows = await query<UserRow>(
      c,
      `UPDATE users SET active = false,
         deactivated_at = CASE WHEN active THEN now() ELSE deactivated_at END,
         deactivated_by = CASE WHEN active THEN $2 ELSE deactivated_by END
       WHERE id = $1 RETURNING ${cols}`,
      [before.id, actor],
    );
    const user = userRecord(rows[0]!);
    const revokedTokens = await revokeAllTokens(c, {
      kind: 'user',
      name: user.username,
      userId: user.id,
    });
    const ended = await query(c, 'DELETE FROM sessions WHERE user_id = $1 RETURNING user_id', [
      user.id,
    ]);
    await recordChange(
      c,
      actor,
      'update',
      'user',
      user.username,
      { active: before.active },
      {
        active: false,
        revokedTokens,
        endedSessions: ended.length,
      },
    );
    return { user, revokedTokens, endedSessions: ended.length };
  });
}

/** Let a deactivated user sign in again (their old tokens stay revoked). */
export async function activateUser(
  pool: Pool,
  idOrName: string,
  actor: string,
): Promise<UserRecord> {
  return inTransaction(pool, async (c) => {
    const before = await getUser(c, idOrName);
    const rows = await query<UserRow>(
      c,
      `UPDATE users SET active = true, deactivated_at = NULL, deactivated_by = ''
        WHERE id = $1 RETURNING ${cols}`,
      [before.id],
    );
    await recordChange(
      c,
      actor,
      'update',
      'user',
      before.username,
      { active: before.active },
      {
        active: true,
      },
    );
    return userRecord(rows[0]!);
  });
}
