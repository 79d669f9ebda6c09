/**
 * The audit table's writes: one statement per batch (the mapping from event
 * to columns lives in SQL, `kg_audit_insert`, next to the table), duplicates
 * skipped. Errors are sorted into "the database cannot answer" (spool and
 * retry) and "this row can never be stored" (set it aside, loudly).
 */
import type { Pool } from '../db/pool.js';
import type { AuditEvent } from './event.js';

export type Queryable = Pick<Pool, 'query'>;

/** Insert events; returns how many were new (replays of stored events count 0). */
export async function insertEvents(db: Queryable, events: readonly AuditEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const r = await db.query<{ n: number }>('SELECT kg_audit_insert($1::jsonb) AS n', [
    JSON.stringify(events),
  ]);
  return r.rows[0]?.n ?? 0;
}

/** Strict-mode leftovers: insert each only if no stage of its request is stored. */
export async function insertOrphans(db: Queryable, events: readonly AuditEvent[]): Promise<number> {
  if (events.length === 0) return 0;
  const r = await db.query<{ n: number }>('SELECT kg_audit_insert_orphans($1::jsonb) AS n', [
    JSON.stringify(events),
  ]);
  return r.rows[0]?.n ?? 0;
}

/**
 * True for errors that retrying cannot fix: the data itself is refused
 * (SQLSTATE class 22, data exception; 23, integrity constraint). Anything
 * else (connection refused, shutdown, timeout) means "try again later".
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23)[0-9A-Z]{3}$/.test(code);
}
