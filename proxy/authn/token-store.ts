/**
 * Token records in PostgreSQL, with a small in-memory cache of positive
 * lookups on the hot path. The cache lives at most `cacheMs`, so a revoked
 * token stops working within that bound even without a notification.
 */
import type { Pool } from '../db/pool.js';
import { KgError } from '../../common/errors.js';
import { hashToken, looksLikeToken, mintToken } from './token.js';
import { proxyMetrics } from '../metrics.js';

export interface TokenIdentity {
  tokenId: string;
  /** SHA-256 of the token: the key revocation notices use. */
  tokenHash: string;
  user: string;
  kind: 'user' | 'robot';
  groups: string[];
  expiresAt: Date;
}

export interface CreateTokenInput {
  subject: string;
  kind: 'user' | 'robot';
  groups: string[];
  ttlMs: number;
  description?: string;
  createdBy?: string;
  /** The users row of a signed-in person (deactivating them revokes the token). */
  userId?: string;
  /** The robots row of a robot. */
  robotId?: string;
  /** Never valid past this, whatever `ttlMs` says (a token minted with a token never outlives it). */
  notAfter?: Date | undefined;
  /** The single sign-on sign-in it was minted through (its groups are refreshed with it). */
  signinId?: string | undefined;
}

/** Names that would let a kubegate identity claim a Kubernetes system identity. */
export function checkSubjectNames(subject: string, groups: string[]): void {
  const bad = [subject, ...groups].filter((n) => n.startsWith('system:') || n.trim() === '');
  if (bad.length) {
    throw new KgError(
      'KG_ERR_VALIDATION',
      `user and group names must be non-empty and must not start with "system:" (got ${bad.map((b) => JSON.stringify(b)).join(', ')})`,
    );
  }
}

export class TokenStore {
  private readonly cache = new Map<string, { id: TokenIdentity; until: number }>();
  /** One database lookup per token at a time: a burst after expiry waits for it. */
  private readonly inflight = new Map<string, Promise<TokenIdentity | undefined>>();
  /** Bumped by every eviction; a lookup that straddles one does not cache its answer. */
  private evictions = 0;

  constructor(
    private readonly pool: Pool,
    private readonly cacheMs = 1000,
  ) {}

  /** Mint a token (shown once; only its hash is stored). `db` lets a caller's transaction include it. */
  async create(
    input: CreateTokenInput,
    db: Pick<Pool, 'query'> = this.pool,
  ): Promise<{ token: string; id: string; expiresAt: Date }> {
    checkSubjectNames(input.subject, input.groups);
    const token = mintToken();
    const { rows } = await db.query<{ id: string; expires_at: Date }>(
      `INSERT INTO api_tokens (hash, subject, subject_kind, groups, description, created_by, expires_at, user_id, robot_id, signin_id)
       VALUES ($1, $2, $3, $4, $5, $6,
               LEAST(now() + ($7 || ' milliseconds')::interval, COALESCE($8::timestamptz, 'infinity')),
               $9, $10, $11)
       RETURNING id, expires_at`,
      [
        hashToken(token),
        input.subject,
        input.kind,
        input.groups,
        input.description ?? '',
        input.createdBy ?? '',
        String(input.ttlMs),
        input.notAfter ?? null,
        input.userId ?? null,
        input.robotId ?? null,
        input.signinId ?? null,
      ],
    );
    return { token, id: rows[0]!.id, expiresAt: rows[0]!.expires_at };
  }

  /**
   * The identity behind a token, or undefined if unknown, expired, revoked,
   * or owned by a deactivated user or robot — matched by reference or, for
   * tokens minted by the CLI, by name (deny by default: deactivation must
   * hold even if revoking a token was missed).
   */
  async authenticate(token: string): Promise<TokenIdentity | undefined> {
    if (!looksLikeToken(token)) return undefined;
    const hash = hashToken(token);
    const now = Date.now();
    const hit = this.cache.get(hash);
    const fresh = !!hit && hit.until > now && hit.id.expiresAt.getTime() > now;
    proxyMetrics.observeTokenCache(fresh);
    if (fresh) {
      // Busy tokens are re-checked in the background shortly before their entry
      // expires, so a steady stream of requests never waits on the database.
      if (hit!.until - now < this.cacheMs / 4 && !this.inflight.has(hash))
        void this.lookupOnce(hash).catch(() => undefined);
      return hit!.id;
    }
    return this.lookupOnce(hash);
  }

  private lookupOnce(hash: string): Promise<TokenIdentity | undefined> {
    const pending = this.inflight.get(hash);
    if (pending) return pending;
    const p: Promise<TokenIdentity | undefined> = this.lookup(hash).finally(() => {
      if (this.inflight.get(hash) === p) this.inflight.delete(hash);
    });
    this.inflight.set(hash, p);
    return p;
  }

  private async lookup(hash: string): Promise<TokenIdentity | undefined> {
    const generation = this.evictions;
    const { rows } = await this.pool.query<{
      id: string;
      subject: string;
      subject_kind: 'user' | 'robot';
      groups: string[];
      expires_at: Date;
    }>(
      `UPDATE api_tokens t SET last_used_at = now()
        WHERE t.hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
          AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id AND NOT u.active)
          AND NOT EXISTS (SELECT 1 FROM users u
                WHERE t.subject_kind = 'user' AND u.username = t.subject AND NOT u.active)
          AND NOT EXISTS (SELECT 1 FROM robots r WHERE r.id = t.robot_id AND NOT r.active)
          AND NOT EXISTS (SELECT 1 FROM robots r
                WHERE t.subject_kind = 'robot' AND r.name = t.subject AND NOT r.active)
        RETURNING t.id, t.subject, t.subject_kind, t.groups, t.expires_at`,
      [hash],
    );
    const row = rows[0];
    if (!row) {
      this.cache.delete(hash);
      return undefined;
    }
    const id: TokenIdentity = {
      tokenId: row.id,
      tokenHash: hash,
      user: row.subject,
      kind: row.subject_kind,
      groups: row.groups,
      expiresAt: row.expires_at,
    };
    // Revoked while we asked: answer this request, but do not keep the answer.
    if (generation !== this.evictions) return id;
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(hash, { id, until: Date.now() + this.cacheMs });
    return id;
  }

  /** Forget a token at once (a revocation notice from another replica). */
  evict(hash: string): void {
    this.evictions++;
    this.cache.delete(hash);
    // A lookup that started before the revocation must not answer later requests.
    this.inflight.delete(hash);
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.pool.query(
      'UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL',
      [id],
    );
    this.evictions++;
    this.cache.clear();
    this.inflight.clear();
    return (r.rowCount ?? 0) > 0;
  }
}
