/**
 * The admin change log (`admin_changes`). Every admin change runs in one
 * transaction with its `admin_changes` row and its version check, so they
 * commit together or not at all and the log can never disagree with the
 * policy tables. Read newest first, pageable by id; it holds identity changes
 * (users, robots, tokens) as well as RBAC's.
 */
import { KgError } from '../../common/errors.js';
import type { Pool } from '../db/pool.js';
import { query, type Queryable } from '../db/query.js';
import { decodeCursor, digits, encodeCursor } from './cursor.js';
import {
  clampLimit,
  type LoggedKind,
  type ChangeRecord,
  type Page,
  type PageRequest,
} from './records.js';

/** Options every change takes: who acts, and the version they read (optimistic concurrency). */
export interface ChangeOptions {
  actor: string;
  version?: number;
}

/**
 * Append one admin_changes row; call inside the transaction of the change it
 * records, so the log never disagrees with what happened. `before` is null
 * for a creation, `after` for a deletion. Never a token or its hash.
 */
export async function recordChange(
  db: Queryable,
  actor: string,
  action: 'create' | 'update' | 'delete',
  kind: LoggedKind,
  name: string,
  before: unknown,
  after: unknown,
): Promise<void> {
  await query(
    db,
    `INSERT INTO admin_changes (actor, action, kind, name, before, after)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      actor,
      action,
      kind,
      name,
      before == null ? null : JSON.stringify(before),
      after == null ? null : JSON.stringify(after),
    ],
  );
}

/**
 * Optimistic concurrency: refuse when the caller read an older version than
 * the one stored (RFC 9110 §13.1.1 If-Match). `expected` undefined = no check
 * (the CLI acting on a name the admin just typed).
 */
export function checkVersion(what: string, current: number, expected: number | undefined): void {
  if (expected === undefined || expected === current) return;
  throw new KgError(
    'KG_ERR_PRECONDITION_FAILED',
    `${what} is at version ${current}, not ${expected}: it changed since you read it; fetch it again and re-apply your change`,
    { details: { currentVersion: current } },
  );
}

export interface ChangeFilter extends PageRequest {
  kind?: string;
  /** The changed object's name (a binding's id). */
  name?: string;
  actor?: string;
}

interface ChangeRow {
  id: string;
  at: Date;
  actor: string;
  action: ChangeRecord['action'];
  kind: string;
  name: string;
  before: unknown;
  after: unknown;
}

/** One page of admin changes matching every given filter, newest first. */
export async function listChanges(pool: Pool, f: ChangeFilter): Promise<Page<ChangeRecord>> {
  const limit = clampLimit(f.limit);
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    values.push(v);
    where.push(sql.replace('?', `$${values.length}`));
  };
  if (f.continue) add('id < ?', decodeCursor(f.continue, { i: digits }).i);
  if (f.kind !== undefined) add('kind = ?', f.kind);
  if (f.name !== undefined) add('name = ?', f.name);
  if (f.actor !== undefined) add('actor = ?', f.actor);
  values.push(limit + 1);
  const rows = await query<ChangeRow>(
    pool,
    `SELECT id::text, at, actor, action, kind, name, before, after FROM admin_changes
      ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT $${values.length}`,
    values,
  );
  const items: ChangeRecord[] = rows.slice(0, limit).map((r) => ({ ...r }));
  if (rows.length <= limit) return { items };
  return { items, continue: encodeCursor({ i: items[items.length - 1]!.id }) };
}

/** How many binding ids a refusal names in its message; the details carry up to 100. */
const namedInMessage = 10;

/**
 * Refuse to delete what bindings still use (409): how many, which ones (the
 * first ten in the message, up to 100 in details) and what to do about it.
 */
export async function refuseWhileBound(
  c: Queryable,
  where: string,
  key: string,
  conflict: (total: number, named: string) => string,
): Promise<void> {
  const { rows } = await c.query<{ id: string; total: number }>(
    `SELECT id, count(*) OVER ()::int AS total FROM bindings WHERE ${where}
      ORDER BY created_at, id LIMIT 100`,
    [key],
  );
  if (rows.length === 0) return;
  const total = rows[0]!.total;
  const shown = rows.slice(0, namedInMessage).map((r) => r.id);
  const more = total > shown.length ? ` and ${total - shown.length} more` : '';
  throw new KgError('KG_ERR_CONFLICT', conflict(total, `${shown.join(', ')}${more}`), {
    details: { bindings: rows.map((r) => r.id), bindingCount: total },
  });
}
