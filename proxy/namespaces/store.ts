/**
 * Self-service namespaces in PostgreSQL (migrations/0013_namespaces.sql):
 * profiles, the namespaces asked for, and their owner and members — who are
 * ordinary central bindings tied to the namespace, so the authorizer, the
 * fleet kubeconfig and the agents' just-in-time accounts need nothing new.
 * Every change is one transaction with its audit event.
 */
import { KgError, invalid } from '../../common/errors.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import { askNamespaceApproval } from '../approvals/namespace-approval.js';
import type { Pool } from '../db/pool.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { roleUsable } from '../rbac/roles.js';
import { validateProfile, type NamespaceProfile } from './profile-spec.js';

/** Who acts, as the API resolved them. */
export interface Actor {
  name: string;
  kind: 'user' | 'robot';
  groups: string[];
  actor: string;
  sourceIp?: string;
  userAgent?: string;
}

export interface ProfileRecord extends NamespaceProfile {
  version: number;
  updatedBy: string;
  updatedAt: Date;
}

export type NamespaceStatus =
  'awaiting-approval' | 'provisioning' | 'ready' | 'failed' | 'denied' | 'retiring' | 'retired';

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

export interface Member {
  kind: 'User' | 'Group' | 'Robot';
  name: string;
  role: string;
  owner: boolean;
}

/** Statuses of a namespace that is over: kept as history, its name free again. */
export const ended: readonly NamespaceStatus[] = ['denied', 'failed', 'retired'];
const live = `status NOT IN ('denied', 'failed', 'retired')`;

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
      approvalId = await askNamespaceApproval(c, {
        spec: {
          action: 'create',
          namespace: ask.name,
          clusters: ask.clusters,
          profile: p.name,
          owner: who.name,
        },
        approval: p.approval,
        requester: who,
        reason: ask.reason,
        publicUrl: ask.publicUrl,
      });
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
  const rows = await query<{
    subjects: { kind: Member['kind']; name: string }[];
    role: string;
    managed_as: string;
  }>(
    db,
    `SELECT subjects, role, managed_as FROM bindings WHERE managed_namespace = $1
      ORDER BY managed_as DESC, created_at`,
    [id],
  );
  return rows.flatMap((r) =>
    r.subjects.map((s) => ({
      kind: s.kind,
      name: s.name,
      role: r.role,
      owner: r.managed_as === 'owner',
    })),
  );
}

/** Insert the binding that gives `subject` `role` in the namespace. */
async function bind(
  c: Queryable,
  ns: NamespaceRow,
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

/** The namespace row, locked for a change, or a 404 / 409 that says why not. */
async function lockLive(c: Queryable, cluster: string, name: string): Promise<NamespaceRow> {
  const [r] = await query<NamespaceRow>(
    c,
    `SELECT * FROM managed_namespaces WHERE cluster = $1 AND name = $2 AND ${live} FOR UPDATE`,
    [cluster, name],
  );
  if (!r) throw notFound(cluster, name);
  return r;
}

export const notFound = (cluster: string, name: string) =>
  new KgError(
    'KG_ERR_NOT_FOUND',
    `no self-service namespace ${JSON.stringify(name)} on cluster ${JSON.stringify(cluster)}`,
  );

function mustBeReady(r: NamespaceRow, what: string) {
  if (r.status !== 'ready')
    throw new KgError(
      'KG_ERR_CONFLICT',
      `namespace ${r.name} on ${r.cluster} is ${r.status}: ${what} once it is ready`,
    );
}

/** Give a member a role (replacing any role they had); the API has checked the role is allowed. */
export async function setMember(
  pool: Pool,
  cluster: string,
  name: string,
  member: { kind: 'User' | 'Group'; name: string; role: string },
  who: Actor,
  allowed: (ns: NamespaceRow) => Promise<void>,
): Promise<Member> {
  return inTransaction(pool, async (c) => {
    const ns = await lockLive(c, cluster, name);
    await allowed(ns);
    mustBeReady(ns, 'add members');
    if (member.kind === 'User' && ns.owner_kind === 'user' && member.name === ns.owner)
      throw new KgError(
        'KG_ERR_CONFLICT',
        `${member.name} owns namespace ${name}: owners are not members`,
      );
    const removed = await query(
      c,
      `DELETE FROM bindings WHERE managed_namespace = $1 AND managed_as = 'member'
          AND subjects @> $2::jsonb RETURNING id`,
      [ns.id, JSON.stringify([{ kind: member.kind, name: member.name }])],
    );
    await bind(c, ns, { kind: member.kind, name: member.name }, member.role, 'member', who.actor);
    await recordAdminEvent(c, {
      actor: who.actor,
      verb: removed.length ? 'update' : 'create',
      resource: 'namespacemembers',
      name: `${name}/${member.kind}/${member.name}`,
      cluster,
      detail: { namespace: name, member },
      ...origin(who),
    });
    return { ...member, owner: false };
  });
}

export async function removeMember(
  pool: Pool,
  cluster: string,
  name: string,
  member: { kind: 'User' | 'Group'; name: string },
  who: Actor,
  allowed: (ns: NamespaceRow) => Promise<void>,
): Promise<void> {
  await inTransaction(pool, async (c) => {
    const ns = await lockLive(c, cluster, name);
    await allowed(ns);
    const removed = await query(
      c,
      `DELETE FROM bindings WHERE managed_namespace = $1 AND managed_as = 'member'
          AND subjects @> $2::jsonb RETURNING id`,
      [ns.id, JSON.stringify([member])],
    );
    if (!removed.length)
      throw new KgError(
        'KG_ERR_NOT_FOUND',
        `${member.kind} ${JSON.stringify(member.name)} is not a member of namespace ${name} on ${cluster}`,
      );
    await recordAdminEvent(c, {
      actor: who.actor,
      verb: 'delete',
      resource: 'namespacemembers',
      name: `${name}/${member.kind}/${member.name}`,
      cluster,
      detail: { namespace: name, member },
      ...origin(who),
    });
  });
}

/** Hand the namespace to another user: their owner binding replaces the old owner's. */
export async function transferOwner(
  pool: Pool,
  cluster: string,
  name: string,
  to: string,
  who: Actor,
  allowed: (ns: NamespaceRow) => Promise<void>,
): Promise<NamespaceRow> {
  return inTransaction(pool, async (c) => {
    const ns = await lockLive(c, cluster, name);
    await allowed(ns);
    mustBeReady(ns, 'transfer it');
    const [known] = await query(c, 'SELECT 1 FROM users WHERE username = $1', [to]);
    if (!known)
      throw new KgError(
        'KG_ERR_VALIDATION',
        `user ${JSON.stringify(to)} has never signed in to kubegate: they sign in once, then it can be handed to them`,
      );
    const [profile] = await query<ProfileRow>(
      c,
      'SELECT * FROM namespace_profiles WHERE name = $1',
      [ns.profile],
    );
    await query(c, `DELETE FROM bindings WHERE managed_namespace = $1 AND managed_as = 'owner'`, [
      ns.id,
    ]);
    // The new owner is no longer also a member.
    await query(
      c,
      `DELETE FROM bindings WHERE managed_namespace = $1 AND managed_as = 'member' AND subjects @> $2::jsonb`,
      [ns.id, JSON.stringify([{ kind: 'User', name: to }])],
    );
    const [row] = await query<NamespaceRow>(
      c,
      `UPDATE managed_namespaces SET owner = $2, owner_kind = 'user' WHERE id = $1 RETURNING *`,
      [ns.id, to],
    );
    await bind(c, row!, { kind: 'User', name: to }, profile!.spec.ownerRole, 'owner', who.actor);
    await recordAdminEvent(c, {
      actor: who.actor,
      verb: 'update',
      resource: 'namespaces',
      name,
      cluster,
      detail: { owner: { before: ns.owner, after: to } },
      ...origin(who),
    });
    return row!;
  });
}

/**
 * Retire a namespace: its bindings go at once and the cluster deletes it; or,
 * where the profile says so, an approval request first.
 */
export async function retireNamespace(
  pool: Pool,
  cluster: string,
  name: string,
  who: Actor,
  publicUrl: string,
  allowed: (ns: NamespaceRow) => Promise<void>,
): Promise<NamespaceRow> {
  return inTransaction(pool, async (c) => {
    const ns = await lockLive(c, cluster, name);
    await allowed(ns);
    if (ns.status === 'retiring') return ns;
    if (ns.retire_approval_id)
      throw new KgError(
        'KG_ERR_CONFLICT',
        `deleting namespace ${name} on ${cluster} already waits for approval ${ns.retire_approval_id}`,
      );
    const [p] = await query<ProfileRow>(c, 'SELECT * FROM namespace_profiles WHERE name = $1', [
      ns.profile,
    ]);
    const approval = p!.spec.approval;
    let row: NamespaceRow;
    if (approval?.onDelete && ns.status === 'ready') {
      const approvalId = await askNamespaceApproval(c, {
        spec: {
          action: 'delete',
          namespace: name,
          clusters: [cluster],
          profile: ns.profile,
          owner: ns.owner,
        },
        approval,
        requester: who,
        reason: `delete namespace ${name}`,
        publicUrl,
      });
      [row] = (await query<NamespaceRow>(
        c,
        `UPDATE managed_namespaces SET retire_approval_id = $2, message = 'deletion waits for approval'
          WHERE id = $1 RETURNING *`,
        [ns.id, approvalId],
      )) as [NamespaceRow];
    } else {
      await query(c, 'DELETE FROM bindings WHERE managed_namespace = $1', [ns.id]);
      // Not yet on the cluster (waiting for approval, or still being made): nothing to delete there.
      const nothingThere = ns.status === 'awaiting-approval';
      [row] = (await query<NamespaceRow>(
        c,
        `UPDATE managed_namespaces SET status = $2, message = $3,
                ended_at = CASE WHEN $2 = 'retired' THEN now() END
          WHERE id = $1 RETURNING *`,
        [
          ns.id,
          nothingThere ? 'retired' : 'retiring',
          nothingThere ? 'withdrawn before it was created' : 'being deleted',
        ],
      )) as [NamespaceRow];
      if (nothingThere && ns.approval_id)
        await query(
          c,
          `UPDATE approval_requests SET status = 'withdrawn', decided_at = now()
            WHERE id = $1 AND status = 'pending'`,
          [ns.approval_id],
        );
    }
    await recordAdminEvent(c, {
      actor: who.actor,
      verb: 'delete',
      resource: 'namespaces',
      name,
      cluster,
      detail: { status: row.status, profile: ns.profile },
      ...origin(who),
    });
    return row;
  });
}
