/**
 * Roles: the built-ins from code (read-only) and custom roles in `roles`.
 * Lists are ordered by name in byte order (`COLLATE "C"`, the same order as
 * JavaScript string comparison) so built-ins and stored roles merge into one
 * stable, pageable sequence.
 */
import { KgError, invalid } from '../../common/errors.js';
import { builtinRoles, type BuiltinRole } from '../authz/builtin-roles.js';
import type { Pool } from '../db/pool.js';
import { decodeCursor, dnsName, encodeCursor } from './cursor.js';
import {
  clampLimit,
  toRole,
  type Page,
  type PageRequest,
  type RoleRecord,
  type RoleRow,
} from './records.js';
import { isBuiltinRoleName, validateRoleSpec } from './role-spec.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { checkVersion, recordChange, refuseWhileBound, type ChangeOptions } from './changes.js';

function builtinRecord(r: BuiltinRole): RoleRecord {
  return {
    name: r.name,
    description: r.description,
    // A copy: the built-ins are shared and frozen.
    rules: structuredClone(r.rules),
    builtin: true,
    version: 0,
    createdBy: 'kubegate',
    createdAt: null,
    updatedAt: null,
  };
}

function readOnly(name: string): KgError {
  return new KgError(
    'KG_ERR_CONFLICT',
    `role "${name}" is built in and read-only; create a custom role with the rules you need instead`,
  );
}

/** One page of roles, built-in and custom merged, by name. */
export async function listRoles(pool: Pool, page: PageRequest): Promise<Page<RoleRecord>> {
  const after = page.continue ? decodeCursor(page.continue, { n: dnsName }).n : '';
  const limit = clampLimit(page.limit);
  const rows = await query<RoleRow>(
    pool,
    'SELECT * FROM roles WHERE name COLLATE "C" > $1 ORDER BY name COLLATE "C" LIMIT $2',
    [after, limit + 1],
  );
  const all = [
    ...builtinRoles.filter((r) => r.name > after).map(builtinRecord),
    ...rows.map(toRole),
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const items = all.slice(0, limit);
  if (all.length <= limit) return { items };
  return { items, continue: encodeCursor({ n: items[items.length - 1]!.name }) };
}

/** A built-in or custom role by name, or undefined. */
export async function getRole(db: Queryable, name: string): Promise<RoleRecord | undefined> {
  const builtin = builtinRoles.find((r) => r.name === name);
  if (builtin) return builtinRecord(builtin);
  const rows = await query<RoleRow>(db, 'SELECT * FROM roles WHERE name = $1', [name]);
  return rows[0] ? toRole(rows[0]) : undefined;
}

/** The custom role, locked for this transaction; 404 when there is none. */
async function lockRole(db: Queryable, name: string): Promise<RoleRecord> {
  const { rows } = await db.query<RoleRow>('SELECT * FROM roles WHERE name = $1 FOR UPDATE', [
    name,
  ]);
  if (!rows[0]) throw new KgError('KG_ERR_NOT_FOUND', `role "${name}" does not exist`);
  return toRole(rows[0]);
}

/** Validate (every problem at once) and store a new custom role; 409 if the name is taken. */
export async function createRole(pool: Pool, raw: unknown, actor: string): Promise<RoleRecord> {
  const { spec, problems } = validateRoleSpec(raw);
  if (!spec) throw invalid('role', problems);
  return inTransaction(pool, async (c) => {
    const { rows } = await c.query<RoleRow>(
      `INSERT INTO roles (name, description, rules, created_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO NOTHING RETURNING *`,
      [spec.name, spec.description, JSON.stringify(spec.rules), actor],
    );
    if (!rows[0]) throw new KgError('KG_ERR_CONFLICT', `role "${spec.name}" already exists`);
    const after = toRole(rows[0]);
    await recordChange(c, actor, 'create', 'role', spec.name, null, after);
    return after;
  });
}

/** Replace a custom role's description and rules. Order of refusals: 404, 412, then 422. */
export async function updateRole(
  pool: Pool,
  name: string,
  raw: unknown,
  opts: ChangeOptions,
): Promise<RoleRecord> {
  if (isBuiltinRoleName(name)) throw readOnly(name);
  const { spec, problems } = validateRoleSpec(raw, name);
  return inTransaction(pool, async (c) => {
    const before = await lockRole(c, name);
    checkVersion(`role "${name}"`, before.version, opts.version);
    if (!spec) throw invalid('role', problems);
    const { rows } = await c.query<RoleRow>(
      `UPDATE roles SET description = $2, rules = $3, version = version + 1, updated_at = now()
        WHERE name = $1 RETURNING *`,
      [name, spec.description, JSON.stringify(spec.rules)],
    );
    const after = toRole(rows[0]!);
    await recordChange(c, opts.actor, 'update', 'role', name, before, after);
    return after;
  });
}

/**
 * Delete a custom role, refused while any binding uses it. Binding writes
 * take `FOR SHARE` on the role row, so a binding created concurrently either
 * commits first (and blocks this delete) or finds the role gone.
 */
export async function deleteRole(pool: Pool, name: string, opts: ChangeOptions): Promise<void> {
  if (isBuiltinRoleName(name)) throw readOnly(name);
  await inTransaction(pool, async (c) => {
    const before = await lockRole(c, name);
    checkVersion(`role "${name}"`, before.version, opts.version);
    await refuseWhileBound(
      c,
      'role = $1',
      name,
      (total, named) =>
        `role "${name}" is used by ${total} binding(s): ${named}; delete those bindings or move them to another role first`,
    );
    await c.query('DELETE FROM roles WHERE name = $1', [name]);
    await recordChange(c, opts.actor, 'delete', 'role', name, before, null);
  });
}

/**
 * Whether `name` is a role a binding may use: a built-in, or a custom role —
 * which is then share-locked until the transaction ends (see deleteRole).
 */
export async function roleUsable(db: Queryable, name: string): Promise<boolean> {
  if (builtinRoles.some((r) => r.name === name)) return true;
  const { rows } = await db.query('SELECT 1 FROM roles WHERE name = $1 FOR SHARE', [name]);
  return rows.length > 0;
}

/** Every role, built-in and custom, for building a policy snapshot. */
export async function allRoles(db: Queryable): Promise<RoleRecord[]> {
  const rows = await query<RoleRow>(db, 'SELECT * FROM roles ORDER BY name COLLATE "C"');
  return [...builtinRoles.map(builtinRecord), ...rows.map(toRole)];
}
