/**
 * Token records in PostgreSQL, with a small in-memory cache of positive
 * lookups on the hot path. The cache lives at most `cacheMs`, so a revoked
 * token stops working within that bound even without a notification.
 *
 * The database is never allowed to hold a request: lookups have a deadline,
 * run at most a few at a time on a pool of their own, are skipped while the
 * database is suspect, and unknown hashes are remembered for a few seconds,
 * so a flood of made-up tokens costs PostgreSQL almost nothing.
 */
import type { Pool } from '../db/pool.js';
import type { Queryable } from '../db/query.js';
import { KgError } from '../../common/errors.js';
import { hashToken, looksLikeToken, mintToken } from './token.js';
import { proxyMetrics } from '../metrics.js';
import type { DbHealth } from '../db/health.js';
import { Limiter } from '../db/limiter.js';
import type { SourceBudget } from './source-budget.js';
import type { TokenIdentity } from './identity.js';

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

export interface TokenStoreOptions {
  /**
   * Pool for authentication lookups: a small pool of its own, so that
   * unauthenticated traffic can hold only a bounded share of PostgreSQL.
   * Default: the main pool.
   */
  lookupPool?: Pool;
  /** A positive lookup is trusted from memory this long (ms). */
  cacheMs?: number;
  /**
   * When the database cannot answer, a token confirmed within this long is
   * still accepted from memory (the policy's staleness bound); older → 503.
   */
  staleMs?: number;
  /** An unknown token hash is answered "no" from memory this long (ms). */
  negativeMs?: number;
  /** No request waits on a lookup longer than this (ms). */
  lookupDeadlineMs?: number;
  /** Lookups in flight / waiting at once; past both → 503 at once. */
  maxLookups?: number;
  maxQueuedLookups?: number;
  /** Failed lookups per source address (token bucket). */
  sourceBudget?: SourceBudget;
  /** While suspect, lookups are not attempted (answered from memory or refused). */
  health?: DbHealth;
}

interface Cached {
  id: TokenIdentity;
  /** Trusted without asking until then. */
  until: number;
  /** When the database last confirmed it. */
  confirmedAt: number;
}

/** The lookup could not be answered in time (or the database is suspect). */
class LookupUnavailable extends Error {}

export class TokenStore {
  private readonly cache = new Map<string, Cached>();
  /** Unknown hashes, answered "no" without a query until the time given. */
  private readonly unknown = new Map<string, number>();
  /** One database lookup per token at a time: a burst after expiry waits for it. */
  private readonly inflight = new Map<string, Promise<TokenIdentity | undefined>>();
  /** Bumped by every eviction; a lookup that straddles one does not cache its answer. */
  private evictions = 0;
  private readonly cacheMs: number;
  private readonly staleMs: number;
  private readonly negativeMs: number;
  private readonly deadlineMs: number;
  private readonly lookupPool: Pool;
  private readonly limiter: Limiter;
  private readonly budget: SourceBudget | undefined;
  private readonly health: DbHealth | undefined;

  constructor(
    private readonly pool: Pool,
    options: number | TokenStoreOptions = {},
  ) {
    const o = typeof options === 'number' ? { cacheMs: options } : options;
    this.cacheMs = o.cacheMs ?? 1000;
    this.staleMs = o.staleMs ?? 0;
    this.negativeMs = o.negativeMs ?? 5000;
    this.deadlineMs = o.lookupDeadlineMs ?? 800;
    this.lookupPool = o.lookupPool ?? pool;
    this.limiter = new Limiter(o.maxLookups ?? 4, o.maxQueuedLookups ?? 512);
    this.budget = o.sourceBudget;
    this.health = o.health;
  }

  /** Mint a token (shown once; only its hash is stored). `db` lets a caller's transaction include it. */
  async create(
    input: CreateTokenInput,
    db: Queryable = this.pool,
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
    // A hash remembered as unknown (someone guessed it first) must not hide the new token.
    this.unknown.delete(hashToken(token));
    return { token, id: rows[0]!.id, expiresAt: rows[0]!.expires_at };
  }

  /**
   * The identity behind a token, or undefined if unknown, expired, revoked,
   * or owned by a deactivated user or robot — matched by reference or, for
   * tokens minted by the CLI, by name (deny by default: deactivation must
   * hold even if revoking a token was missed).
   *
   * Never waits on the database longer than the lookup deadline. When the
   * database cannot answer, a token confirmed within the staleness bound is
   * accepted from memory; otherwise this throws (the caller answers 503).
   * `source` (the client address) is charged for lookups that find nothing;
   * a source with no budget left gets 429 for anything not in memory.
   */
  async authenticate(token: string, source?: string): Promise<TokenIdentity | undefined> {
    if (!looksLikeToken(token)) return undefined;
    const hash = hashToken(token);
    const now = Date.now();
    const hit = this.cache.get(hash);
    const fresh = !!hit && hit.until > now && hit.id.expiresAt.getTime() > now;
    if (fresh) {
      proxyMetrics.observeTokenCache(true);
      // Busy tokens are re-checked in the background shortly before their entry
      // expires, so a steady stream of requests never waits on the database.
      if (hit!.until - now < this.cacheMs / 4 && !this.inflight.has(hash))
        void this.lookupOnce(hash).catch(() => undefined);
      return hit!.id;
    }
    const unknownUntil = this.unknown.get(hash);
    if (unknownUntil !== undefined) {
      if (unknownUntil > now) {
        proxyMetrics.observeTokenCache('negative');
        return undefined;
      }
      this.unknown.delete(hash);
    }
    // A unit is taken before the lookup (so concurrent requests cannot all
    // pass the check) and given back when the token turns out to be known.
    // Requests that ride on a lookup already in flight for the same token
    // cost the database nothing, and are not charged.
    const charged = source !== undefined && !!this.budget && !this.inflight.has(hash);
    if (charged && !this.budget!.take(source)) {
      proxyMetrics.observeTokenCache('rate_limited');
      throw new KgError(
        'KG_ERR_RATE_LIMITED',
        'too many failed authentication attempts from this address; slow down',
        { retryAfter: this.budget.retryAfter(source) },
      );
    }
    proxyMetrics.observeTokenCache(false);
    let id: TokenIdentity | undefined;
    try {
      id = await this.withDeadline(hash);
    } catch (err) {
      if (charged) this.budget!.refund(source); // not the source's fault
      const stale = this.cache.get(hash);
      if (
        stale &&
        Date.now() - stale.confirmedAt <= this.staleMs &&
        stale.id.expiresAt.getTime() > Date.now()
      ) {
        proxyMetrics.observeTokenCache('stale');
        return stale.id;
      }
      throw err;
    }
    if (id && charged) this.budget!.refund(source);
    return id;
  }

  /** The lookup, bounded by the deadline and by the database's health. */
  private withDeadline(hash: string): Promise<TokenIdentity | undefined> {
    if (this.health?.suspect) return Promise.reject(new LookupUnavailable('database suspect'));
    const lookup = this.lookupOnce(hash);
    return new Promise<TokenIdentity | undefined>((resolve, reject) => {
      let done = false;
      const finish = (fn: () => void) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        unsubscribe?.();
        fn();
      };
      const timer = setTimeout(
        () => finish(() => reject(new LookupUnavailable('token lookup deadline passed'))),
        this.deadlineMs,
      );
      timer.unref();
      lookup.then(
        (v) => finish(() => resolve(v)),
        (e: unknown) => finish(() => reject(e instanceof Error ? e : new Error(String(e)))),
      );
      const unsubscribe = this.health?.onSuspect(() =>
        finish(() => reject(new LookupUnavailable('database stopped answering'))),
      );
    });
  }

  private lookupOnce(hash: string): Promise<TokenIdentity | undefined> {
    const pending = this.inflight.get(hash);
    if (pending) return pending;
    const p: Promise<TokenIdentity | undefined> = this.limiter
      .run(() => this.lookup(hash))
      .finally(() => {
        if (this.inflight.get(hash) === p) this.inflight.delete(hash);
      });
    this.inflight.set(hash, p);
    // Nobody may be waiting (background refresh, a caller past its deadline).
    p.catch(() => undefined);
    return p;
  }

  private async lookup(hash: string): Promise<TokenIdentity | undefined> {
    const generation = this.evictions;
    const { rows } = await this.lookupPool.query<{
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
      if (generation === this.evictions) {
        if (this.unknown.size > 100_000) this.unknown.clear();
        this.unknown.set(hash, Date.now() + this.negativeMs);
      }
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
    const now = Date.now();
    this.cache.set(hash, { id, until: now + this.cacheMs, confirmedAt: now });
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
