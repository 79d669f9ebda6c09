/**
 * Bearer tokens: `kg_` + 32 random bytes (base64url). High entropy, so a
 * single SHA-256 is the right hash (no slow KDF needed); only the hash is
 * stored. Comparison happens by database lookup of the hash, never by
 * comparing secrets in JavaScript.
 */
import { createHash, randomBytes } from 'node:crypto';

export const tokenPrefix = 'kg_';
const tokenPattern = /^kg_[A-Za-z0-9_-]{43}$/;

export function mintToken(): string {
  return tokenPrefix + randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Shape check before any lookup: anything else is rejected without touching the DB. */
export function looksLikeToken(token: string): boolean {
  return tokenPattern.test(token);
}

/** The token from an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(header);
  return m?.[1];
}
