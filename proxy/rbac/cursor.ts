/**
 * Opaque `continue` tokens for keyset pagination. The client gets base64url
 * JSON it should not parse; we check the shape on the way back in, so a
 * forged or stale token is a clean 400 and never reaches SQL as garbage.
 */
import { KgError } from '../../common/errors.js';

/** An opaque, URL-safe token for a list position. */
export function encodeCursor(position: Record<string, string>): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

const invalid = () =>
  new KgError(
    'KG_ERR_BAD_REQUEST',
    'the continue token is not valid; start the list again without it',
  );

/**
 * Decode a token made by `encodeCursor`, requiring each of `fields` to be a
 * string matching its pattern.
 */
export function decodeCursor<K extends string>(
  token: string,
  fields: Record<K, RegExp>,
): Record<K, string> {
  if (token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) throw invalid();
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid();
  const obj = raw as Record<string, unknown>;
  const out = {} as Record<K, string>;
  for (const [k, re] of Object.entries(fields) as [K, RegExp][]) {
    const v = obj[k];
    if (typeof v !== 'string' || !re.test(v)) throw invalid();
    out[k] = v;
  }
  return out;
}

/** PostgreSQL's text form of a timestamptz, e.g. `2025-01-02 03:04:05.123456+00`. */
export const pgTimestamp =
  /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2}){0,2}$/;
export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const digits = /^\d{1,18}$/;
/** Role and cluster names (the union of both CHECK patterns). */
export const dnsName = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;
