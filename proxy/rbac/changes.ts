/**
 * The admin change log (`admin_changes`), newest first, pageable by id. It
 * holds identity changes (users, robots, tokens) as well as RBAC's.
 */
import type { Pool } from '../db/pool.js';
import { decodeCursor, digits, encodeCursor } from './cursor.js';
import { clampLimit, type ChangeRecord, type Page, type PageRequest } from './records.js';
import { query } from './transaction.js';

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
