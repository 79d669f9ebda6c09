/**
 * Self-service namespaces in PostgreSQL (migrations/0013_namespaces.sql):
 * profiles, the namespaces asked for, and their owner and members — who are
 * ordinary central bindings tied to the namespace, so the authorizer, the
 * fleet kubeconfig and the agents' just-in-time accounts need nothing new.
 * Every change is one transaction with its audit event.
 */
import { KgError, invalid } from '../../common/errors.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import { openRequest } from '../approvals/open-request.js';
import type { NamespaceMember, NamespaceStatus } from '../console/ui/wire/namespaces.js';
import type { Requester } from '../approvals/records.js';
import type { Pool } from '../db/pool.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { roleUsable } from '../rbac/roles.js';
import { validateProfile, type NamespaceProfile, type ProfileApproval } from './profile-spec.js';

/** Who acts, as the API resolved them. */
export type Actor = Requester;

export interface ProfileRecord extends NamespaceProfile {
  version: number;
  updatedBy: string;
  updatedAt: Date;
}

export type { NamespaceStatus };

export interface NamespaceRow {
  id: string;
  cluster: string;
  name: string;
  profile: string;
  owner: string;
  owner_kind: 'user' | 'robot';
  status: NamespaceStatus;
  message: string;
  requested_by: string;
  reason: string;
  approval_id: string | null;
  retire_approval_id: string | null;
  drift: number;
  created_at: Date;
  ready_at: Date | null;
  reconciled_at: Date | null;
  ended_at: Date | null;
}

export type Member = NamespaceMember;

/** Statuses of a namespace that is over: kept as history, its name free again. */
export const ended: readonly NamespaceStatus[] = ['denied', 'failed', 'retired'];
/** SQL: the namespace is not over (it holds its name and counts as the owner's). */
export const live = `status NOT IN (${ended.map((e) => `'${e}'`).join(', ')})`;

const subjectKind = (k: 'user' | 'robot') => (k === 'robot' ? 'Robot' : 'User');

// ---------------------------------------------------------------------------
// Profiles

interface ProfileRow {
  name: string;
  spec: NamespaceProfile;
  version: number;
  updated_by: string;
  updated_at: Date;
}

const toProfile = (r: ProfileRow): ProfileRecord => ({
  ...r.spec,
  name: r.name,
  version: r.version,
  updatedBy: r.updated_by,
  updatedAt: r.updated_at,
});

export async function listProfiles(db: Queryable): Promise<ProfileRecord[]> {
  const rows = await query<ProfileRow>(
    db,
    'SELECT * FROM namespace_profiles ORDER BY name COLLATE "C"',
  );
  return rows.map(toProfile);
}

export async function getProfile(db: Queryable, name: string): Promise<ProfileRecord> {
  const [r] = await query<ProfileRow>(db, 'SELECT * FROM namespace_profiles WHERE name = $1', [
    name,
  ]);
  if (!r)
    throw new KgError('KG_ERR_NOT_FOUND', `namespace profile ${JSON.stringify(name)} not found`);
  return toProfile(r);
}

async function checkedProfile(
  db: Queryable,
  raw: unknown,
  name?: string,
): Promise<NamespaceProfile> {
  const { profile, problems } = validateProfile(raw, name);
  if (!profile) throw invalid('namespace profile', problems);
  for (const role of [profile.ownerRole, ...profile.memberRoles])
    if (!(await roleUsable(db, role))) problems.push(`role ${JSON.stringify(role)} does not exist`);
  if (problems.length) throw invalid('namespace profile', problems);
  return profile;
}

export async function saveProfile(
  pool: Pool,
  raw: unknown,
  who: Actor,
  mode: { create: true } | { create: false; name: string; version?: number },
): Promise<ProfileRecord> {
  return inTransaction(pool, async (c) => {
    const p = await checkedProfile(c, raw, mode.create ? undefined : mode.name);
    const before = mode.create
      ? undefined
      : (
          await query<ProfileRow>(
            c,
            'SELECT * FROM namespace_profiles WHERE name = $1 FOR UPDATE',
            [p.name],
          )
        )[0];
    if (!mode.create && !before)
      throw new KgError(
        'KG_ERR_NOT_FOUND',
        `namespace profile ${JSON.stringify(p.name)} not found`,
      );
    if (!mode.create && mode.version !== undefined && before!.version !== mode.version)
      throw new KgError(
        'KG_ERR_CONFLICT',
        `namespace profile ${p.name} is at version ${before!.version}, not ${mode.version}: read it again`,
      );
    let row: ProfileRow | undefined;
    if (mode.create) {
      [row] = await query<ProfileRow>(
        c,
        `INSERT INTO namespace_profiles (name, spec, updated_by) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING RETURNING *`,
        [p.name, JSON.stringify(p), who.actor],
      );
      if (!row)
        throw new KgError(
          'KG_ERR_CONFLICT',
          `namespace profile ${JSON.stringify(p.name)} already exists: change it with PUT`,
        );
    } else {
      [row] = await query<ProfileRow>(
        c,
        `UPDATE namespace_profiles SET spec = $2, updated_by = $3, version = version + 1,
                updated_at = now() WHERE name = $1 RETURNING *`,
        [p.name, JSON.stringify(p), who.actor],
      );
      // Owners hold the profile's owner role as it is now (members keep the role they were given).
      if (before!.spec.ownerRole !== p.ownerRole)
        await query(
          c,
          `UPDATE bindings SET role = $2, version = version + 1, updated_at = now()
            WHERE managed_as = 'owner' AND managed_namespace IN
              (SELECT id FROM managed_namespaces WHERE profile = $1)`,
          [p.name, p.ownerRole],
        );
    }
    await recordAdminEvent(c, {
      actor: who.actor,
      verb: mode.create ? 'create' : 'update',
      resource: 'namespaceprofiles',
      name: p.name,
      detail: { before: before?.spec, after: p },
      ...origin(who),
    });
    return toProfile(row!);
  });
}

export async function deleteProfile(pool: Pool, name: string, who: Actor): Promise<void> {
  await inTransaction(pool, async (c) => {
    const [inUse] = await query<{ n: number }>(
      c,
      `SELECT count(*)::int AS n FROM managed_namespaces WHERE profile = $1 AND ${live}`,
      [name],
    );
    if (inUse!.n > 0)
      throw new KgError(
        'KG_ERR_CONFLICT',
        `namespace profile ${name} is used by ${inUse!.n} namespace(s): retire them first`,
      );
    // Ended namespaces keep their history; they forget the profile's row, not its name.
    const gone = await query<ProfileRow>(
      c,
      'DELETE FROM namespace_profiles WHERE name = $1 RETURNING *',
      [name],
    ).catch((err: { code?: string }) => {
      if (err.code === '23503')
        throw new KgError(
          'KG_ERR_CONFLICT',
          `namespace profile ${name} is named by past namespaces and is kept for their history`,
        );
      throw err;
    });
    if (!gone.length)
      throw new KgError('KG_ERR_NOT_FOUND', `namespace profile ${JSON.stringify(name)} not found`);
    await recordAdminEvent(c, {
      actor: who.actor,
      verb: 'delete',
      resource: 'namespaceprofiles',
      name,
      detail: { before: gone[0]!.spec },
      ...origin(who),
    });
  });
}

// ---------------------------------------------------------------------------
// Namespaces

function origin(who: Actor) {
  return {
    ...(who.sourceIp ? { sourceIp: who.sourceIp } : {}),
    ...(who.userAgent ? { userAgent: who.userAgent } : {}),
  };
}

export interface NamespaceAsk {
  name: string;
  profile: ProfileRecord;
  clusters: string[];
  reason: string;
  publicUrl: string;
}

/**
 * Ask for a namespace on each cluster: provisioning at once, or waiting for
 * the profile's approvers (one approval request for every cluster). The
 * per-person limit is counted under a lock on the person, so two requests at
 * once cannot both pass it.
 */
export async function askNamespace(
  pool: Pool,
  ask: NamespaceAsk,
  who: Actor,
): Promise<{ rows: NamespaceRow[]; approvalId?: string }> {
  const p = ask.profile;
  return inTransaction(pool, async (c) => {
    // One request per person at a time; one being deleted no longer counts against the limit.
    await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [
      `kubegate-namespaces:${who.kind}:${who.name}`,
    ]);
    const [owned] = await query<{ n: number }>(
      c,
      `SELECT count(*)::int AS n FROM managed_namespaces
        WHERE owner_kind = $1 AND owner = $2 AND profile = $3
          AND status IN ('awaiting-approval', 'provisioning', 'ready')`,
      [who.kind, who.name, p.name],
    );
    if (owned!.n + ask.clusters.length > p.perUserLimit)
      throw new KgError(
        'KG_ERR_FORBIDDEN',
        `profile ${p.name} allows ${p.perUserLimit} namespace(s) per person and you own ${owned!.n}: retire one first, or ask an admin to raise perUserLimit`,
      );
    const taken = await query<{ cluster: string }>(
      c,
      `SELECT cluster FROM managed_namespaces WHERE name = $1 AND cluster = ANY($2) AND ${live}`,
      [ask.name, ask.clusters],
    );
    if (taken.length)
      throw new KgError(
        'KG_ERR_CONFLICT',
        `namespace ${ask.name} is already taken on ${taken.map((t) => t.cluster).join(', ')}: choose another name`,
      );
    const status: NamespaceStatus = p.approval ? 'awaiting-approval' : 'provisioning';
    let approvalId: string | undefined;
    if (p.approval)
      approvalId = await askApproval(
        c,
        'create',
        { name: ask.name, profile: p.name, owner: who.name },
        ask.clusters,
        p.approval,
        who,
        ask,
      );
    const rows: NamespaceRow[] = [];
    for (const cluster of ask.clusters) {
      const [row] = await query<NamespaceRow>(
        c,
        `INSERT INTO managed_namespaces (cluster, name, profile, owner, owner_kind, status, message,
                requested_by, reason, approval_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (cluster, name) WHERE ${live} DO NOTHING RETURNING *`,
        [
          cluster,
          ask.name,
          p.name,
          who.name,
          who.kind,
          status,
          approvalId ? 'waiting for approval' : 'being created',
          who.actor,
          ask.reason,
          approvalId ?? null,
        ],
      );
      if (!row)
        throw new KgError(
          'KG_ERR_CONFLICT',
          `namespace ${ask.name} was just taken on ${cluster}: choose another name`,
        );
      rows.push(row);
    }
    await recordAdminEvent(c, {
      actor: who.actor,
      verb: 'create',
      resource: 'namespaces',
      name: ask.name,
      detail: { profile: p.name, clusters: ask.clusters, status, reason: ask.reason },
      cluster: ask.clusters[0] ?? '',
      annotations: approvalId ? { 'kubegate.dev/approval-id': approvalId } : {},
      ...origin(who),
    });
    return { rows, ...(approvalId ? { approvalId } : {}) };
  });
}

/** The live namespace of that name on that cluster, or else its newest past one. */
export async function findNamespace(
  db: Queryable,
  cluster: string,
  name: string,
): Promise<NamespaceRow | undefined> {
  const [r] = await query<NamespaceRow>(
    db,
    `SELECT * FROM managed_namespaces WHERE cluster = $1 AND name = $2
      ORDER BY (${live}) DESC, created_at DESC LIMIT 1`,
    [cluster, name],
  );
  return r;
}

export interface NamespaceFilter {
  /** Only those this identity owns or is a member of (directly or through a group). */
  mine?: { name: string; kind: 'user' | 'robot'; groups: string[] };
  cluster?: string;
  profile?: string;
  /** Ended ones too. */
  history?: boolean;
}

export async function listNamespaces(db: Queryable, f: NamespaceFilter): Promise<NamespaceRow[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  if (!f.history) where.push(live);
  if (f.cluster) where.push(`cluster = ${param(f.cluster)}`);
  if (f.profile) where.push(`profile = ${param(f.profile)}`);
  if (f.mine) {
    const me = JSON.stringify([{ kind: subjectKind(f.mine.kind), name: f.mine.name }]);
    const groups = f.mine.groups.map((g) => JSON.stringify([{ kind: 'Group', name: g }]));
    where.push(`((owner_kind = ${param(f.mine.kind)} AND owner = ${param(f.mine.name)})
      OR id IN (SELECT managed_namespace FROM bindings WHERE managed_namespace IS NOT NULL
                AND (subjects @> ${param(me)}::jsonb OR subjects @> ANY(${param(groups)}::jsonb[]))))`);
  }
  return query<NamespaceRow>(
    db,
    `SELECT * FROM managed_namespaces ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY cluster COLLATE "C", name COLLATE "C", created_at DESC LIMIT 1000`,
    values,
  );
}

export async function membersOf(db: Queryable, id: string): Promise<Member[]> {
  return (await membersOfAll(db, [id])).get(id) ?? [];
}

/** The owner and members of each namespace, by namespace id, in one query. */
export async function membersOfAll(
  db: Queryable,
  ids: readonly string[],
): Promise<Map<string, Member[]>> {
  const rows = await query<{
    managed_namespace: string;
    subjects: { kind: Member['kind']; name: string }[];
    role: string;
    managed_as: string;
  }>(
    db,
    `SELECT managed_namespace, subjects, role, managed_as FROM bindings
      WHERE managed_namespace = ANY($1::uuid[]) ORDER BY managed_as DESC, created_at`,
    [ids],
  );
  const out = new Map<string, Member[]>();
  for (const r of rows) {
    const list = out.get(r.managed_namespace) ?? [];
    for (const s of r.subjects)
      list.push({ kind: s.kind, name: s.name, role: r.role, owner: r.managed_as === 'owner' });
    out.set(r.managed_namespace, list);
  }
  return out;
}

/** Insert the binding that gives `subject` `role` in the namespace (the reconciler makes the owner's). */
export async function bind(
  c: Queryable,
  ns: Pick<NamespaceRow, 'id' | 'cluster' | 'name'>,
  subject: { kind: Member['kind']; name: string },
  role: string,
  as: 'owner' | 'member',
  actor: string,
): Promise<void> {
  await query(
    c,
    `INSERT INTO bindings (subjects, role, cluster_names, namespaces, reason, created_by,
            managed_namespace, managed_as)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      JSON.stringify([subject]),
      role,
      [ns.cluster],
      [ns.name],
      `${as} of namespace ${ns.name} on ${ns.cluster} (self-service namespace)`,
      actor,
      ns.id,
      as,
    ],
  );
}

export const notFound = (cluster: string, name: string) =>
  new KgError(
    'KG_ERR_NOT_FOUND',
    `no self-service namespace ${JSON.stringify(name)} on cluster ${JSON.stringify(cluster)}`,
  );

/** A change to one live namespace, by someone the API resolved. */
export interface NamespaceChange {
  cluster: string;
  name: string;
  who: Actor;
  /** Throws when `who` may not change it (checked on the locked row). */
  allowed: (ns: NamespaceRow) => Promise<void>;
}

/**
 * Run `fn` on the namespace's row, locked, once `allowed` agrees; and record
 * what it did as one audit event in the same transaction.
 */
async function changeNamespace<T>(
  pool: Pool,
  t: NamespaceChange,
  fn: (c: Queryable, ns: NamespaceRow) => Promise<{ result: T; event: NamespaceEvent }>,
): Promise<T> {
  return inTransaction(pool, async (c) => {
    const [ns] = await query<NamespaceRow>(
      c,
      `SELECT * FROM managed_namespaces WHERE cluster = $1 AND name = $2 AND ${live} FOR UPDATE`,
      [t.cluster, t.name],
    );
    if (!ns) throw notFound(t.cluster, t.name);
    await t.allowed(ns);
    const { result, event } = await fn(c, ns);
    await recordAdminEvent(c, {
      actor: t.who.actor,
      cluster: t.cluster,
      ...event,
      ...origin(t.who),
    });
    return result;
  });
}

interface NamespaceEvent {
  verb: string;
  resource: 'namespaces' | 'namespacemembers';
  name: string;
  detail: unknown;
}

function mustBeReady(r: NamespaceRow, what: string) {
  if (r.status !== 'ready')
    throw new KgError(
      'KG_ERR_CONFLICT',
      `namespace ${r.name} on ${r.cluster} is ${r.status}: ${what} once it is ready`,
    );
}

/** Delete a member's binding; whether there was one. */
async function unbind(
  c: Queryable,
  ns: NamespaceRow,
  member: { kind: string; name: string },
): Promise<boolean> {
  const gone = await query(
    c,
    `DELETE FROM bindings WHERE managed_namespace = $1 AND managed_as = 'member'
        AND subjects @> $2::jsonb RETURNING id`,
    [ns.id, JSON.stringify([{ kind: member.kind, name: member.name }])],
  );
  return gone.length > 0;
}

/** Give a member a role (replacing any role they had); `allowed` checks the role too. */
export function setMember(
  pool: Pool,
  t: NamespaceChange,
  member: { kind: 'User' | 'Group'; name: string; role: string },
): Promise<Member> {
  return changeNamespace(pool, t, async (c, ns) => {
    mustBeReady(ns, 'add members');
    if (member.kind === 'User' && ns.owner_kind === 'user' && member.name === ns.owner)
      throw new KgError(
        'KG_ERR_CONFLICT',
        `${member.name} owns namespace ${ns.name}: owners are not members`,
      );
    const had = await unbind(c, ns, member);
    await bind(c, ns, { kind: member.kind, name: member.name }, member.role, 'member', t.who.actor);
    return {
      result: { ...member, owner: false },
      event: {
        verb: had ? 'update' : 'create',
        resource: 'namespacemembers',
        name: `${ns.name}/${member.kind}/${member.name}`,
        detail: { namespace: ns.name, member },
      },
    };
  });
}

export function removeMember(
  pool: Pool,
  t: NamespaceChange,
  member: { kind: 'User' | 'Group'; name: string },
): Promise<void> {
  return changeNamespace(pool, t, async (c, ns) => {
    if (!(await unbind(c, ns, member)))
      throw new KgError(
        'KG_ERR_NOT_FOUND',
        `${member.kind} ${JSON.stringify(member.name)} is not a member of namespace ${ns.name} on ${ns.cluster}`,
      );
    return {
      result: undefined,
      event: {
        verb: 'delete',
        resource: 'namespacemembers',
        name: `${ns.name}/${member.kind}/${member.name}`,
        detail: { namespace: ns.name, member },
      },
    };
  });
}

/** Hand the namespace to another user: their owner binding replaces the old owner's. */
export function transferOwner(pool: Pool, t: NamespaceChange, to: string): Promise<NamespaceRow> {
  return changeNamespace(pool, t, async (c, ns) => {
    mustBeReady(ns, 'transfer it');
    const [known] = await query(c, 'SELECT 1 FROM users WHERE username = $1', [to]);
    if (!known)
      throw new KgError(
        'KG_ERR_VALIDATION',
        `user ${JSON.stringify(to)} has never signed in to kubegate: they sign in once, then it can be handed to them`,
      );
    const profile = await getProfile(c, ns.profile);
    await query(c, `DELETE FROM bindings WHERE managed_namespace = $1 AND managed_as = 'owner'`, [
      ns.id,
    ]);
    // The new owner is no longer also a member.
    await unbind(c, ns, { kind: 'User', name: to });
    const [row] = await query<NamespaceRow>(
      c,
      `UPDATE managed_namespaces SET owner = $2, owner_kind = 'user' WHERE id = $1 RETURNING *`,
      [ns.id, to],
    );
    await bind(c, ns, { kind: 'User', name: to }, profile.ownerRole, 'owner', t.who.actor);
    return {
      result: row!,
      event: {
        verb: 'update',
        resource: 'namespaces',
        name: ns.name,
        detail: { owner: { before: ns.owner, after: to } },
      },
    };
  });
}

/**
 * Retire a namespace: its bindings go at once and the cluster deletes it; or,
 * where the profile says so, an approval request first.
 */
export function retireNamespace(
  pool: Pool,
  t: NamespaceChange,
  publicUrl: string,
): Promise<NamespaceRow> {
  return changeNamespace(pool, t, async (c, ns) => {
    if (ns.retire_approval_id)
      throw new KgError(
        'KG_ERR_CONFLICT',
        `deleting namespace ${ns.name} on ${ns.cluster} already waits for approval ${ns.retire_approval_id}`,
      );
    const approval = ns.status === 'ready' ? (await getProfile(c, ns.profile)).approval : null;
    let row: NamespaceRow;
    if (approval?.onDelete) {
      const approvalId = await askApproval(c, 'delete', ns, [ns.cluster], approval, t.who, {
        reason: `delete namespace ${ns.name}`,
        publicUrl,
      });
      row = await setStatus(c, ns.id, {
        retire_approval_id: approvalId,
        message: 'deletion waits for approval',
      });
    } else {
      await query(c, 'DELETE FROM bindings WHERE managed_namespace = $1', [ns.id]);
      // Still waiting for approval: nothing on the cluster to delete, and the request is withdrawn.
      if (ns.status === 'awaiting-approval') {
        row = await setStatus(c, ns.id, {
          status: 'retired',
          message: 'withdrawn before it was created',
          ended: true,
        });
        await query(
          c,
          `UPDATE approval_requests SET status = 'withdrawn', decided_at = now()
            WHERE id = $1 AND status = 'pending'`,
          [ns.approval_id],
        );
      } else row = await setStatus(c, ns.id, { status: 'retiring', message: 'being deleted' });
    }
    return {
      result: row,
      event: {
        verb: 'delete',
        resource: 'namespaces',
        name: ns.name,
        detail: { status: row.status, profile: ns.profile },
      },
    };
  });
}

/** Move a namespace on: the columns given, and `ended_at`/`reconciled_at` stamped when asked. */
export async function setStatus(
  c: Queryable,
  id: string,
  f: {
    status?: NamespaceStatus;
    message?: string;
    retire_approval_id?: string;
    ended?: boolean;
    ready?: boolean;
    reconciled?: boolean;
    drift?: number;
  },
): Promise<NamespaceRow> {
  const [row] = await query<NamespaceRow>(
    c,
    `UPDATE managed_namespaces SET status = coalesce($2, status), message = coalesce($3, message),
            retire_approval_id = coalesce($4, retire_approval_id),
            ended_at = CASE WHEN $5 THEN now() ELSE ended_at END,
            ready_at = CASE WHEN $6 THEN now() ELSE ready_at END,
            reconciled_at = CASE WHEN $7 THEN now() ELSE reconciled_at END,
            drift = drift + $8
      WHERE id = $1 RETURNING *`,
    [
      id,
      f.status ?? null,
      f.message ?? null,
      f.retire_approval_id ?? null,
      f.ended === true,
      f.ready === true,
      f.reconciled === true,
      f.drift ?? 0,
    ],
  );
  return row!;
}

/** The approval request creating or deleting a namespace waits for; its id. */
function askApproval(
  c: Queryable,
  action: 'create' | 'delete',
  ns: { name: string; profile: string; owner: string },
  clusters: string[],
  approval: ProfileApproval,
  who: Actor,
  o: { reason: string; publicUrl: string },
): Promise<string> {
  return openRequest(c, {
    kind: 'namespace',
    spec: {
      action,
      namespace: ns.name,
      clusters,
      profile: ns.profile,
      owner: ns.owner,
      policies: [ns.profile],
    },
    requester: who,
    reason: o.reason,
    pendingFor: approval.pendingFor,
    publicUrl: o.publicUrl,
  });
}
