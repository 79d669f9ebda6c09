/**
 * Bindings in `bindings`: list with filters and keyset pagination ordered by
 * (created_at, id), get, create, update and delete — each change in one
 * transaction with its admin_changes row.
 */
import { KgError, invalid } from '../../common/errors.js';
import { bindingsFor } from '../authz/authorizer.js';
import { selectorMatches } from '../../common/kube-grammar.js';
import type { Binding, Identity, Role } from '../authz/types.js';
import type { Pool } from '../db/pool.js';
import { validateBindingSpec, type BindingSpec } from './binding-spec.js';
import { keysetPage, uuidPattern } from './cursor.js';
import {
  clampLimit,
  toBinding,
  type BindingRecord,
  type BindingRow,
  type Page,
  type PageRequest,
} from './records.js';
import { allRoles, roleUsable } from './roles.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { checkVersion, recordChange, type ChangeOptions } from './changes.js';

const columns = '*, created_at::text AS cursor_at';

export interface BindingFilter extends PageRequest {
  /** Bindings naming this subject (any kind, unless subjectKind is given). */
  subject?: string;
  subjectKind?: 'Group' | 'User' | 'Robot';
  role?: string;
  /** Bindings that reach this cluster: by name, or by a selector matching its labels. */
  cluster?: string;
}

/** A canonical binding id, or undefined when `id` cannot be one (never reaches SQL). */
export function bindingId(id: string): string | undefined {
  const lower = id.toLowerCase();
  return uuidPattern.test(lower) ? lower : undefined;
}

/** One page of bindings matching every given filter, in (created_at, id) order. */
export async function listBindings(pool: Pool, f: BindingFilter): Promise<Page<BindingRecord>> {
  const limit = clampLimit(f.limit);
  const where: string[] = [];
  const values: unknown[] = [];
  const param = (v: unknown): string => {
    values.push(v);
    return `$${values.length}`;
  };
  if (f.subject !== undefined) {
    const s = f.subjectKind ? { kind: f.subjectKind, name: f.subject } : { name: f.subject };
    where.push(`subjects @> ${param(JSON.stringify([s]))}::jsonb`);
  }
  if (f.role !== undefined) where.push(`role = ${param(f.role)}`);
  let labels: Record<string, string> | undefined;
  if (f.cluster !== undefined) {
    const rows = await query<{ labels: Record<string, string> }>(
      pool,
      'SELECT labels FROM clusters WHERE name = $1',
      [f.cluster],
    );
    labels = rows[0]?.labels;
    // Selectors can only match a registered cluster's labels; they are checked below, in JS,
    // with the selectorMatches the authorizer uses, so the list agrees with real decisions.
    const name = param(f.cluster);
    where.push(
      labels
        ? `(${name} = ANY(cluster_names) OR cluster_selector IS NOT NULL)`
        : `${name} = ANY(cluster_names)`,
    );
  }
  const keep = (b: BindingRecord): boolean =>
    f.cluster === undefined ||
    (b.clusters.names?.includes(f.cluster) ?? false) ||
    (labels !== undefined &&
      b.clusters.selector !== undefined &&
      selectorMatches(b.clusters.selector, labels));

  // The cluster filter may drop rows after SQL has chosen them (selectors are matched here).
  return keysetPage(pool, {
    select: `SELECT ${columns} FROM bindings`,
    where,
    values,
    order: 'oldest',
    limit,
    continue: f.continue,
    keep: (r: BindingRow) => {
      const rec = toBinding(r);
      return keep(rec) ? rec : undefined;
    },
  });
}

/** The binding with this id (any case), or undefined — also for a string that is no uuid. */
export async function getBinding(db: Queryable, id: string): Promise<BindingRecord | undefined> {
  const canonical = bindingId(id);
  if (!canonical) return undefined;
  const rows = await query<BindingRow>(db, `SELECT ${columns} FROM bindings WHERE id = $1`, [
    canonical,
  ]);
  return rows[0] ? toBinding(rows[0]) : undefined;
}

async function lockBinding(db: Queryable, id: string): Promise<BindingRecord> {
  const canonical = bindingId(id);
  const { rows } = canonical
    ? await db.query<BindingRow>(`SELECT ${columns} FROM bindings WHERE id = $1 FOR UPDATE`, [
        canonical,
      ])
    : { rows: [] };
  if (!rows[0]) throw new KgError('KG_ERR_NOT_FOUND', `binding "${id}" does not exist`);
  return toBinding(rows[0]);
}

/** Validation plus "does the role exist", all problems together. */
async function checkedSpec(
  db: Queryable,
  raw: unknown,
  opts: Parameters<typeof validateBindingSpec>[1],
): Promise<BindingSpec> {
  const { spec, problems } = validateBindingSpec(raw, opts);
  const role = (raw as { role?: unknown } | null)?.role;
  if (typeof role === 'string' && role !== '' && !(await roleUsable(db, role))) {
    problems.push(
      `role: "${role}" does not exist (built-ins: view, edit, admin, cluster-admin; or create a custom role first)`,
    );
  }
  if (!spec || problems.length > 0) throw invalid('binding', problems);
  return spec;
}

function specValues(spec: BindingSpec): unknown[] {
  return [
    JSON.stringify(spec.subjects),
    spec.role,
    spec.clusters.names ?? [],
    spec.clusters.selector === undefined ? null : JSON.stringify(spec.clusters.selector),
    spec.namespaces,
    spec.expiresAt,
    spec.reason,
  ];
}

/** Validate (every problem at once, role existence included) and store a new binding. */
/** Insert a checked binding spec (one home for the column list: admin API and approvals). */
export async function insertBinding(
  c: Queryable,
  spec: BindingSpec,
  actor: string,
): Promise<BindingRow> {
  const { rows } = await c.query<BindingRow>(
    `INSERT INTO bindings (subjects, role, cluster_names, cluster_selector, namespaces, expires_at, reason, created_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${columns}`,
    [...specValues(spec), actor],
  );
  return rows[0]!;
}

export async function createBinding(
  pool: Pool,
  raw: unknown,
  actor: string,
): Promise<BindingRecord> {
  return inTransaction(pool, async (c) => {
    const spec = await checkedSpec(c, raw, {});
    const after = toBinding(await insertBinding(c, spec, actor));
    await recordChange(c, actor, 'create', 'binding', after.id, null, after);
    return after;
  });
}

/** Replace a binding. Order of refusals: 404, 412, then 422. */
export async function updateBinding(
  pool: Pool,
  id: string,
  raw: unknown,
  opts: ChangeOptions,
): Promise<BindingRecord> {
  return inTransaction(pool, async (c) => {
    const before = await lockBinding(c, id);
    checkVersion(`binding "${before.id}"`, before.version, opts.version);
    const spec = await checkedSpec(c, raw, {
      id: before.id,
      currentExpiresAt: before.expiresAt,
    });
    const { rows } = await c.query<BindingRow>(
      `UPDATE bindings SET subjects = $2, role = $3, cluster_names = $4, cluster_selector = $5,
              namespaces = $6, expires_at = $7, reason = $8, version = version + 1, updated_at = now()
        WHERE id = $1 RETURNING ${columns}`,
      [before.id, ...specValues(spec)],
    );
    const after = toBinding(rows[0]!);
    await recordChange(c, opts.actor, 'update', 'binding', before.id, before, after);
    return after;
  });
}

/** Delete a binding. Order of refusals: 404, then 412. */
export async function deleteBinding(pool: Pool, id: string, opts: ChangeOptions): Promise<void> {
  await inTransaction(pool, async (c) => {
    const before = await lockBinding(c, id);
    checkVersion(`binding "${before.id}"`, before.version, opts.version);
    await c.query('DELETE FROM bindings WHERE id = $1', [before.id]);
    await recordChange(c, opts.actor, 'delete', 'binding', before.id, before, null);
  });
}

/**
 * The bindings in effect for `who` on a registered cluster at `now`, decided
 * by the authorizer's own `bindingsFor` over the stored policy — what the
 * request path will see once the replicas have the current snapshot.
 */
export async function previewBindings(
  pool: Pool,
  who: Identity,
  cluster: string,
  now: Date,
): Promise<BindingRecord[]> {
  const rows = await query<{ labels: Record<string, string> }>(
    pool,
    'SELECT labels FROM clusters WHERE name = $1',
    [cluster],
  );
  if (!rows[0]) {
    throw new KgError('KG_ERR_CLUSTER_NOT_FOUND', `cluster "${cluster}" is not registered`);
  }
  const candidates = [
    { kind: who.kind === 'robot' ? 'Robot' : 'User', name: who.user },
    ...who.groups.map((g) => ({ kind: 'Group', name: g })),
  ].map((s) => JSON.stringify([s]));
  const bindings = (
    await query<BindingRow>(
      pool,
      `SELECT ${columns} FROM bindings WHERE subjects @> ANY($1::jsonb[]) ORDER BY created_at, id`,
      [candidates],
    )
  ).map(toBinding);
  const roles = new Map<string, Role>((await allRoles(pool)).map((r) => [r.name, r]));
  const effective: Binding[] = bindingsFor(
    { roles, bindings },
    who,
    { name: cluster, labels: rows[0].labels },
    now,
  );
  // bindingsFor returns the very objects it was given, so they are still records.
  return effective as BindingRecord[];
}
