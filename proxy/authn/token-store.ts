/**
 * Token records in PostgreSQL, with a small in-memory cache of positive
 * lookups on the hot path. The cache lives at most `cacheMs`, so a revoked
 * token stops working within that bound even without a notification.
 */
import type { Pool } from '../db/pool.js';
import { KgError } from '../../common/errors.js';
import { hashToken, looksLikeToken, mintToken } from './token.js';

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

  constructor(
    private readonly pool: Pool,
    private readonly cacheMs = 1000,
  ) {}

  async create(input: CreateTokenInput): Promise<{ token: string; id: string; expiresAt: Date }> {
    checkSubjectNames(input.subject, input.groups);
    const token = mintToken();
    const { rows } = await this.pool.query<{ id: string; expires_at: Date }>(
      `INSERT INTO api_tokens (hash, subject, subject_kind, groups, description, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + ($7 || ' milliseconds')::interval) RETURNING id, expires_at`,
      [
        hashToken(token),
        input.subject,
        input.kind,
        input.groups,
        input.description ?? '',
        input.createdBy ?? '',
        String(input.ttlMs),
      ],
    );
    return { token, id: rows[0]!.id, expiresAt: rows[0]!.expires_at };
  }

  /** The identity behind a token, or undefined if unknown, expired or revoked. */
  async authenticate(token: string): Promise<TokenIdentity | undefined> {
    if (!looksLikeToken(token)) return undefined;
    const hash = hashToken(token);
    const now = Date.now();
    const hit = this.cache.get(hash);
    if (hit && hit.until > now && hit.id.expiresAt.getTime() > now) return hit.id;
    const { rows } = await this.pool.query<{
      id: string;
      subject: string;
      subject_kind: 'user' | 'robot';
      groups: string[];
      expires_at: Date;
    }>(
      `UPDATE api_tokens SET last_used_at = now()
        WHERE hash = $1 AND revoked_at IS NULL AND expires_at > now()
        RETURNING id, subject, subject_kind, groups, expires_at`,
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
    if (this.cache.size > 50_000) this.cache.clear();
    this.cache.set(hash, { id, until: now + this.cacheMs });
    return id;
  }

  /** Forget a token at once (a revocation notice from another replica). */
  evict(hash: string): void {
    this.cache.delete(hash);
  }

  async revoke(id: string): Promise<boolean> {
    const r = await this.pool.query(
      'UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL',
      [id],
    );
    this.cache.clear();
    return (r.rowCount ?? 0) > 0;
  }
}
