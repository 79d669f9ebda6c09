/**
 * Browser sessions and sign-ins in progress, in PostgreSQL so any replica
 * can answer any request. The cookie carries 32 random bytes; only their
 * SHA-256 is stored, so a database dump holds no usable session. A session's
 * expiry is fixed when it is made (max session age) and never extended: a
 * fresh SSO sign-in is the only way to a new one.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Pool } from '../db/pool.js';
import { query } from '../db/query.js';
import type { PendingLogin } from './oidc-client.js';
import { userRecord, type UserRecord, type UserRow } from './user-store.js';

const secretPattern = /^[A-Za-z0-9_-]{43}$/;

function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

function hash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export interface Session {
  userId: string;
  csrfToken: string;
  createdAt: Date;
  expiresAt: Date;
  user: UserRecord;
  /** The single sign-on sign-in that made it (sso-signins.ts); undefined for older sessions. */
  signinId: string | undefined;
  /** Tokens minted in this session end by then (the sign-in's bound). */
  tokensEndBy: Date;
}

/** Make a session; returns the cookie value (shown to the browser only). */
export async function createSession(
  pool: Pool,
  userId: string,
  expiresAt: Date,
  meta: { userAgent: string; sourceIp: string },
  signinId?: string,
): Promise<{ cookie: string; csrfToken: string }> {
  const cookie = newSecret();
  const csrfToken = newSecret();
  await query(
    pool,
    `INSERT INTO sessions (id_hash, user_id, csrf_token, expires_at, user_agent, source_ip, signin_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [
      hash(cookie),
      userId,
      csrfToken,
      expiresAt,
      meta.userAgent.slice(0, 512),
      meta.sourceIp,
      signinId ?? null,
    ],
  );
  return { cookie, csrfToken };
}

/** The live session behind a cookie value: not expired, and its user still active. */
export async function findSession(pool: Pool, cookie: string): Promise<Session | undefined> {
  if (!secretPattern.test(cookie)) return undefined;
  const rows = await query<
    UserRow & {
      csrf_token: string;
      s_created_at: Date;
      expires_at: Date;
      signin_id: string | null;
      tokens_end_by: Date;
    }
  >(
    pool,
    `SELECT s.csrf_token, s.created_at AS s_created_at, s.expires_at, u.id, u.issuer, u.subject,
            u.username, u.email, u.name, u.groups, u.active, u.created_at, u.last_login_at,
            u.deactivated_at, u.deactivated_by, s.signin_id,
            COALESCE(si.expires_at, s.expires_at) AS tokens_end_by
       FROM sessions s JOIN users u ON u.id = s.user_id
       LEFT JOIN sso_signins si ON si.id = s.signin_id
      WHERE s.id_hash = $1 AND s.expires_at > now() AND u.active
        AND (si.id IS NULL OR si.ended_at IS NULL)`,
    [hash(cookie)],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    userId: r.id,
    csrfToken: r.csrf_token,
    createdAt: r.s_created_at,
    expiresAt: r.expires_at,
    user: userRecord(r),
    signinId: r.signin_id ?? undefined,
    tokensEndBy: r.tokens_end_by,
  };
}

export async function deleteSession(pool: Pool, cookie: string): Promise<void> {
  if (!secretPattern.test(cookie)) return;
  await query(pool, 'DELETE FROM sessions WHERE id_hash = $1', [hash(cookie)]);
}

/**
 * The description of the tokens a session's console terminals run with
 * (proxy/console/terminal.ts): it names the session by a one-way tag of its
 * cookie, so signing out can revoke exactly that session's terminals.
 */
export function terminalTokenDescription(cookie: string): string {
  return `console terminal ${hash(`terminal:${cookie}`).slice(0, 16)}`;
}

/** Revoke the terminal tokens of the session behind `cookie` (signing out); how many. */
export async function revokeTerminalTokens(
  pool: Pool,
  userId: string | undefined,
  cookie: string,
): Promise<number> {
  if (!userId || !secretPattern.test(cookie)) return 0;
  const rows = await query(
    pool,
    `UPDATE api_tokens SET revoked_at = now()
      WHERE user_id = $1 AND description = $2 AND revoked_at IS NULL RETURNING id`,
    [userId, terminalTokenDescription(cookie)],
  );
  return rows.length;
}

/** Remember a sign-in in progress; returns the value of the cookie that binds it to this browser. */
export async function savePendingLogin(
  pool: Pool,
  pending: PendingLogin,
  ttlMs: number,
): Promise<string> {
  const cookie = newSecret();
  await query(
    pool,
    `INSERT INTO oidc_logins (id_hash, state, nonce, code_verifier, expires_at)
     VALUES ($1, $2, $3, $4, now() + ($5 || ' milliseconds')::interval)`,
    [hash(cookie), pending.state, pending.nonce, pending.codeVerifier, String(ttlMs)],
  );
  return cookie;
}

/**
 * Take (and delete) the sign-in in progress bound to this cookie: one
 * callback consumes it, whatever its outcome, so a callback cannot be replayed.
 */
export async function takePendingLogin(
  pool: Pool,
  cookie: string,
): Promise<PendingLogin | undefined> {
  if (!secretPattern.test(cookie)) return undefined;
  const rows = await query<{ state: string; nonce: string; code_verifier: string; live: boolean }>(
    pool,
    `DELETE FROM oidc_logins WHERE id_hash = $1
     RETURNING state, nonce, code_verifier, expires_at > now() AS live`,
    [hash(cookie)],
  );
  const r = rows[0];
  if (!r?.live) return undefined;
  return { state: r.state, nonce: r.nonce, codeVerifier: r.code_verifier };
}

/** Delete expired sessions and abandoned sign-ins; returns how many rows went. */
export async function sweepExpired(pool: Pool): Promise<number> {
  const a = await query(pool, 'DELETE FROM sessions WHERE expires_at <= now() RETURNING 1');
  const b = await query(pool, 'DELETE FROM oidc_logins WHERE expires_at <= now() RETURNING 1');
  return a.length + b.length;
}
