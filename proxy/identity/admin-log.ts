/**
 * Identity changes made by admins go to the same change log as RBAC edits
 * (`admin_changes`, migration 0002), in the same transaction as the change,
 * so the log can never disagree with what happened. Never a token or hash.
 */
import { query, type Queryable } from '../db/query.js';

export type IdentityChangeKind = 'user' | 'robot' | 'token';

export async function logChange(
  db: Queryable,
  actor: string,
  action: 'create' | 'update' | 'delete',
  kind: IdentityChangeKind,
  name: string,
  before: unknown,
  after: unknown,
): Promise<void> {
  await query(
    db,
    `INSERT INTO admin_changes (actor, action, kind, name, before, after) VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      actor,
      action,
      kind,
      name,
      before === undefined ? null : JSON.stringify(before),
      after === undefined ? null : JSON.stringify(after),
    ],
  );
}
