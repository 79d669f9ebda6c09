/**
 * Opaque `continue` tokens for keyset pagination. The client gets base64url
 * JSON it should not parse; we check the shape on the way back in, so a
 * forged or stale token is a clean 400 and never reaches SQL as garbage.
 */
import { KgError } from '../../common/errors.js';
import { query, type Queryable } from '../db/query.js';

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

/** A keyset-paginated list of rows ordered by (created_at, id). */
export interface KeysetQuery<R, T> {
  /** `SELECT … FROM table`; rows carry `id` (uuid) and `cursor_at` (created_at::text). */
  select: string;
  /** SQL conditions (ANDed) and the values their `$n` refer to. */
  where: readonly string[];
  values: readonly unknown[];
  /** Oldest first, or newest first. */
  order: 'oldest' | 'newest';
  limit: number;
  /** The `continue` token of the previous page. */
  continue?: string | undefined;
  /** A row as an item, or undefined to leave it out (a filter SQL cannot apply). */
  keep: (row: R) => T | undefined;
}

/**
 * One page: rows are read in batches until the page is full (plus one, to
 * know whether there is more), since `keep` may drop rows after SQL chose
 * them. `continue` is the opaque position after the last item, absent on
 * the last page.
 */
export async function keysetPage<R extends { id: string; cursor_at: string }, T>(
  db: Queryable,
  q: KeysetQuery<R, T>,
): Promise<{ items: T[]; continue?: string }> {
  let after = q.continue ? decodeCursor(q.continue, { t: pgTimestamp, i: uuidPattern }) : undefined;
  const [past, dir] = q.order === 'newest' ? ['<', ' DESC'] : ['>', ''];
  const found: { item: T; at: string; id: string }[] = [];
  for (;;) {
    const batch = q.limit + 1 - found.length;
    const conds = [...q.where];
    const v = [...q.values];
    if (after) {
      v.push(after.t, after.i);
      conds.push(`(created_at, id) ${past} ($${v.length - 1}::timestamptz, $${v.length}::uuid)`);
    }
    v.push(batch);
    const rows = await query<R>(
      db,
      `${q.select} ${conds.length ? `WHERE ${conds.join(' AND ')}` : ''}
        ORDER BY created_at${dir}, id${dir} LIMIT $${v.length}`,
      v,
    );
    for (const r of rows) {
      const item = q.keep(r);
      if (item !== undefined) found.push({ item, at: r.cursor_at, id: r.id });
    }
    if (rows.length < batch || found.length > q.limit) break;
    const last = rows[rows.length - 1]!;
    after = { t: last.cursor_at, i: last.id };
  }
  const page = found.slice(0, q.limit);
  const items = page.map((x) => x.item);
  if (found.length <= q.limit) return { items };
  const last = page[page.length - 1]!;
  return { items, continue: encodeCursor({ t: last.at, i: last.id }) };
}
