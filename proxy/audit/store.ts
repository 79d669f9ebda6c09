/**
 * The audit table's writes: one statement per batch (the mapping from event
 * to columns lives in SQL, `kg_audit_insert`, next to the table), duplicates
 * skipped. The writer sorts their errors with `isDataError` (db/errors.ts)
 * into "this row can never be stored" (set it aside, loudly) and anything
 * else, "the database cannot answer" (spool and retry).
 */
import type { Queryable } from '../db/query.js';
import type { AuditEvent } from './event.js';

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
