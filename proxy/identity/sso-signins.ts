/**
 * Single sign-on sign-ins, and keeping their groups current (issue #17 item
 * 13: groups were frozen into tokens for the token's whole life).
 *
 * A sign-in (migration 0009, `sso_signins`) is made at every successful
 * callback. Its `expires_at` — the provider's auth_time plus
 * KUBEGATE_SSO_TOKEN_MAX_AGE — bounds every token minted through it, however
 * long a ttl was asked for (self-routes.ts), so groups frozen into a token
 * are never older than that bound. When the provider issued a refresh token
 * it is kept, sealed with the master key, and every replica's refresher
 * (below) re-reads the user's claims with it every
 * KUBEGATE_OIDC_REFRESH_INTERVAL:
 *  - groups changed: the user's groups (which sessions read per request) and
 *    the groups of every live token of the sign-in are updated in one
 *    transaction; the token trigger announces each token on kubegate_tokens,
 *    so every replica drops its cached identity and ends the open requests
 *    made with the old groups within a second; an admin audit event records
 *    the change;
 *  - refused (invalid_grant: the user was removed or disabled at the
 *    provider, or the grant revoked; or the answer no longer passes the
 *    sign-in rules, e.g. a system: user name or an overage): the sign-in
 *    ends, every token of it is revoked, its sessions are deleted, audited;
 *  - the provider cannot be reached: retried (at most every 30 s); the
 *    tokens still die at the bound.
 * Due sign-ins are claimed with FOR UPDATE SKIP LOCKED and a lease, so each
 * is refreshed by one replica at a time.
 */
import type { Logger } from '../../common/log.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import type { Pool } from '../db/pool.js';
import { open, parseMasterKey, seal } from '../pki/master-key.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { loginIdentity } from './login-identity.js';
import type { OidcClient } from './oidc-client.js';
import type { IdentitySettings } from './settings.js';
import { startPeriodic, type Periodic } from '../../common/periodic.js';

/** Associated data binding a sealed refresh token to its row (no swapping between sign-ins). */
const aad = (id: string) => `sso-signin:${id}`;
/** A claimed sign-in is not claimed again before this (a replica dying mid-refresh). */
const leaseMs = 60_000;
/** Provider unreachable: try again after at most this. */
const retryMs = 30_000;
/** How many due sign-ins one tick refreshes. */
const batch = 20;

export interface NewSignin {
  userId: string;
  authTime: Date;
  refreshToken: string | undefined;
}

/** Record a sign-in; returns its id and the bound of the tokens minted through it. */
export async function createSignin(
  db: Queryable,
  s: Pick<IdentitySettings, 'ssoTokenMaxAgeMs' | 'refreshIntervalMs' | 'masterKey'>,
  n: NewSignin,
): Promise<{ id: string; expiresAt: Date }> {
  const keep = n.refreshToken && s.masterKey ? n.refreshToken : undefined;
  const rows = await query<{ id: string; expires_at: Date }>(
    db,
    `INSERT INTO sso_signins (user_id, auth_time, expires_at, next_refresh_at)
     VALUES ($1, $2, $2::timestamptz + ($3 || ' milliseconds')::interval,
             CASE WHEN $4 THEN now() + ($5 || ' milliseconds')::interval END)
     RETURNING id, expires_at`,
    [n.userId, n.authTime, String(s.ssoTokenMaxAgeMs), !!keep, String(s.refreshIntervalMs)],
  );
  const id = rows[0]!.id;
  if (keep)
    await query(db, 'UPDATE sso_signins SET refresh_sealed = $2 WHERE id = $1', [
      id,
      seal(parseMasterKey(s.masterKey!), aad(id), keep),
    ]);
  return { id, expiresAt: rows[0]!.expires_at };
}

/** Tokens of sign-in `id` end by this (undefined: no such live sign-in — mint nothing). */
export async function signinBound(db: Queryable, id: string): Promise<Date | undefined> {
  const rows = await query<{ expires_at: Date }>(
    db,
    'SELECT expires_at FROM sso_signins WHERE id = $1 AND ended_at IS NULL AND expires_at > now()',
    [id],
  );
  return rows[0]?.expires_at;
}

interface Due {
  id: string;
  user_id: string;
  refresh_sealed: string;
  issuer: string;
  subject: string;
  username: string;
  groups: string[];
}

export function startRefresher(deps: {
  pool: Pool;
  oidc: OidcClient;
  settings: IdentitySettings;
  log: Logger;
  intervalMs?: number;
}): Periodic {
  const { pool, settings: s, log } = deps;
  const key = parseMasterKey(s.masterKey!);
  const every = deps.intervalMs ?? Math.min(1000, s.refreshIntervalMs);

  const end = async (d: Due, why: string) => {
    const revoked = await inTransaction(pool, async (db) => {
      await query(
        db,
        `UPDATE sso_signins SET ended_at = now(), ended_reason = $2, refresh_sealed = NULL,
                next_refresh_at = NULL WHERE id = $1`,
        [d.id, why.slice(0, 300)],
      );
      const tokens = await query<{ id: string }>(
        db,
        `UPDATE api_tokens SET revoked_at = now() WHERE signin_id = $1 AND revoked_at IS NULL
         RETURNING id`,
        [d.id],
      );
      await query(db, 'DELETE FROM sessions WHERE signin_id = $1', [d.id]);
      await recordAdminEvent(db, {
        actor: 'kubegate:sso-refresh',
        verb: 'revoke',
        resource: 'tokens',
        name: d.username,
        detail: { signin: d.id, tokens: tokens.map((t) => t.id), reason: 'refresh refused' },
        annotations: { 'kubegate.dev/reason': why.slice(0, 300) },
      });
      return tokens.length;
    });
    log.info(
      { user: d.username, signin: d.id, tokens: revoked, why },
      'sign-in ended: the identity provider refused to refresh it; its tokens are revoked',
    );
  };

  const refreshOne = async (d: Due): Promise<void> => {
    let rt: string;
    try {
      rt = open(key, aad(d.id), d.refresh_sealed);
    } catch {
      return end(d, 'the stored refresh token cannot be decrypted (master key changed)');
    }
    const r = await deps.oidc.refresh(rt, d.subject);
    if (r.outcome !== 'ok' && r.outcome === 'unavailable') {
      log.warn({ user: d.username, signin: d.id, err: r.why }, 'group refresh failed; will retry');
      await query(
        pool,
        `UPDATE sso_signins SET next_refresh_at = now() + ($2 || ' milliseconds')::interval
          WHERE id = $1 AND ended_at IS NULL`,
        [d.id, String(Math.min(retryMs, s.refreshIntervalMs))],
      );
      return;
    }
    if (r.outcome !== 'ok') return end(d, r.why);
    let li;
    try {
      li = loginIdentity(r.claims, s, log);
    } catch (err) {
      return end(d, (err as Error).message);
    }
    if (li.issuer !== d.issuer || li.subject !== d.subject || li.username !== d.username)
      return end(d, 'the provider now names this account differently; sign in again');
    const changed = await inTransaction(pool, async (db) => {
      await query(
        db,
        `UPDATE sso_signins SET refresh_sealed = $2, refreshed_at = now(),
                next_refresh_at = now() + ($3 || ' milliseconds')::interval
          WHERE id = $1 AND ended_at IS NULL`,
        [d.id, seal(key, aad(d.id), r.refreshToken), String(s.refreshIntervalMs)],
      );
      const before = await query<{ groups: string[] }>(
        db,
        'SELECT groups FROM users WHERE id = $1 FOR UPDATE',
        [d.user_id],
      );
      const old = before[0]?.groups ?? [];
      const same = old.length === li.groups.length && old.every((g, i) => g === li.groups[i]);
      // Every live token of the sign-in, even when the user's row already
      // says the new groups (another sign-in of the same user refreshed first).
      const tokens = await query<{ id: string }>(
        db,
        `UPDATE api_tokens SET groups = $2 WHERE signin_id = $1 AND revoked_at IS NULL
            AND expires_at > now() AND groups IS DISTINCT FROM $2 RETURNING id`,
        [d.id, li.groups],
      );
      if (same && !tokens.length) return false;
      if (!same)
        await query(db, 'UPDATE users SET groups = $2, email = $3, name = $4 WHERE id = $1', [
          d.user_id,
          li.groups,
          li.email,
          li.name,
        ]);
      await recordAdminEvent(db, {
        actor: 'kubegate:sso-refresh',
        verb: 'update',
        resource: 'users',
        name: d.username,
        detail: {
          signin: d.id,
          groupsBefore: old,
          groupsAfter: li.groups,
          tokens: tokens.map((t) => t.id),
        },
      });
      return true;
    });
    if (changed)
      log.info(
        { user: d.username, signin: d.id, groups: li.groups.length },
        'groups re-read from the identity provider changed; tokens and sessions follow',
      );
  };

  return startPeriodic(
    'group refresh pass',
    every,
    async () => {
      const due = await inTransaction(pool, (db) =>
        query<Due>(
          db,
          `WITH due AS (
           SELECT si.id FROM sso_signins si
            WHERE si.ended_at IS NULL AND si.refresh_sealed IS NOT NULL
              AND si.next_refresh_at <= now() AND si.expires_at > now()
            ORDER BY si.next_refresh_at LIMIT ${batch} FOR UPDATE SKIP LOCKED)
         UPDATE sso_signins si SET next_refresh_at = now() + ($1 || ' milliseconds')::interval
           FROM due, users u
          WHERE si.id = due.id AND u.id = si.user_id
         RETURNING si.id, si.user_id, si.refresh_sealed, u.issuer, u.subject, u.username, u.groups`,
          [String(leaseMs)],
        ),
      );
      for (const d of due) {
        await refreshOne(d).catch((err: unknown) =>
          log.warn({ signin: d.id, err: (err as Error).message }, 'group refresh failed'),
        );
      }
      // Sign-ins whose bound passed a day ago: nothing can use them any more.
      await query(pool, "DELETE FROM sso_signins WHERE expires_at < now() - interval '1 day'");
    },
    log,
  );
}
