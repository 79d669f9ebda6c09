/**
 * The self-service namespaces REST API:
 *
 *   GET    /api/v1/namespace-profiles                       profiles (non-admins: those they may use)
 *   POST   /api/v1/namespace-profiles                       admins: a new profile
 *   GET    /api/v1/namespace-profiles/{name}                one profile
 *   PUT    /api/v1/namespace-profiles/{name}                admins: replace it (If-Match: version)
 *   DELETE /api/v1/namespace-profiles/{name}                admins (refused while namespaces use it)
 *   POST   /api/v1/namespaces                               ask {name, profile, clusters, reason}
 *   GET    /api/v1/namespaces                               yours (owner or member); admins: ?all=true
 *   GET    /api/v1/namespaces/{cluster}/{name}              one, with its members
 *   DELETE /api/v1/namespaces/{cluster}/{name}              owner or admin: retire it
 *   GET    /api/v1/namespaces/{cluster}/{name}/members      its owner and members
 *   PUT    /api/v1/namespaces/{cluster}/{name}/members/{kind}/{member}   {role}: add or change
 *   DELETE /api/v1/namespaces/{cluster}/{name}/members/{kind}/{member}
 *   POST   /api/v1/namespaces/{cluster}/{name}/owner        {user}: hand it over
 *
 * Who may do what: anyone signed in may ask (the profile may name
 * requesterGroups); the owner and admins manage a namespace; its members may
 * look at it; anyone else learns nothing about it, not even that it exists.
 * A member's role is one the profile allows and, for an owner who is not an
 * admin, never more than the owner holds there.
 */
import { KgError, invalid } from '../../common/errors.js';
import { requestOrigin } from '../audit/admin-events.js';
import { selectorMatches } from '../../common/kube-grammar.js';
import { checkQuery, oneOf, optional } from '../api/params.js';
import { bindingsFor } from '../authz/authorizer.js';
import { uncovered } from '../authz/covers.js';
import { writeJson, writeNoContent } from '../http/json-body.js';
import {
  mount,
  pathParam,
  smallObjectBody,
  type Operation,
  type Route,
  type RouteSpec,
} from '../http/routes.js';
import {
  guardCaller,
  type Caller,
  type CallerCall,
  type PolicyRouteDeps,
} from '../identity/caller.js';
import type { NamespaceProfileView, NamespaceView } from '../console/ui/wire/namespaces.js';
import { dnsLabel, nameProblem } from './profile-spec.js';
import {
  askNamespace,
  deleteProfile,
  ended,
  findNamespace,
  getProfile,
  listNamespaces,
  listProfiles,
  membersOf,
  membersOfAll,
  notFound,
  removeMember,
  retireNamespace,
  saveProfile,
  setMember,
  transferOwner,
  type Actor,
  type Member,
  type NamespaceChange,
  type NamespaceRow,
  type ProfileRecord,
} from './store.js';

const profileBody = { object: true, maxBytes: 64 * 1024 };
const askFields = ['name', 'profile', 'clusters', 'reason'];
const maxClusters = 50;
const memberName = /^[^\s\0-\x1f\x7f]{1,256}$/;

function actorOf(c: CallerCall): Actor {
  const { name, kind, groups } = c.caller;
  return { name, kind, groups, actor: `${kind}:${name}`, ...requestOrigin(c.req) };
}

const isOwner = (c: Caller, ns: NamespaceRow) => ns.owner === c.name && ns.owner_kind === c.kind;

function mayUse(p: ProfileRecord, c: Caller): boolean {
  return (
    c.admin || !p.requesterGroups.length || c.groups.some((g) => p.requesterGroups.includes(g))
  );
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function view(ns: NamespaceRow, c: Caller): NamespaceView {
  return {
    cluster: ns.cluster,
    name: ns.name,
    profile: ns.profile,
    owner: ns.owner,
    ownerKind: ns.owner_kind,
    status: ns.status,
    message: ns.message,
    ...(ns.approval_id ? { approvalId: ns.approval_id } : {}),
    ...(ns.retire_approval_id ? { retireApprovalId: ns.retire_approval_id } : {}),
    requestedBy: ns.requested_by,
    reason: ns.reason,
    createdAt: ns.created_at.toISOString(),
    readyAt: iso(ns.ready_at),
    reconciledAt: iso(ns.reconciled_at),
    endedAt: iso(ns.ended_at),
    drift: ns.drift,
    mayManage: c.admin || isOwner(c, ns),
  };
}

function profileView(p: ProfileRecord): NamespaceProfileView {
  return { ...p, updatedAt: p.updatedAt.toISOString() };
}

/** The namespace as the caller sees it, with their role in it (the owner's, else a member's). */
function withRole(ns: NamespaceRow, members: Member[], c: Caller): NamespaceView {
  const yourRole = isOwner(c, ns) ? members.find((m) => m.owner)?.role : roleOf(members, c);
  return { ...view(ns, c), ...(yourRole ? { yourRole } : {}) };
}

function roleOf(members: Member[], c: Caller): string | undefined {
  const mine = members.filter(
    (m) =>
      (m.kind === 'Group' && c.groups.includes(m.name)) ||
      (m.kind === (c.kind === 'robot' ? 'Robot' : 'User') && m.name === c.name),
  );
  return mine.find((m) => m.owner)?.role ?? mine[0]?.role;
}

export function namespacesRoutes(d: PolicyRouteDeps): Route[] {
  const publicUrl = d.settings.publicUrl.replace(/\/+$/, '');

  /** The namespace, for those who may see it; a 404 for anyone else. */
  const visible = async (c: CallerCall) => {
    const cluster = pathParam(c, 0);
    const name = pathParam(c, 1);
    const ns = await findNamespace(d.pool, cluster, name);
    if (!ns) throw notFound(cluster, name);
    const members = await membersOf(d.pool, ns.id);
    if (!c.caller.admin && !isOwner(c.caller, ns) && roleOf(members, c.caller) === undefined)
      throw notFound(cluster, name);
    return { ns, members };
  };
  /**
   * The namespace of the path as a change by the caller: only its owner or an
   * admin may make it (checked on the locked row, with `also`); a member is
   * told so, anyone else that it does not exist.
   */
  const change = (c: CallerCall, also?: (ns: NamespaceRow) => Promise<void>): NamespaceChange => ({
    cluster: pathParam(c, 0),
    name: pathParam(c, 1),
    who: actorOf(c),
    allowed: async (ns) => {
      if (!c.caller.admin && !isOwner(c.caller, ns)) {
        const members = await membersOf(d.pool, ns.id);
        if (roleOf(members, c.caller) === undefined) throw notFound(ns.cluster, ns.name);
        throw new KgError(
          'KG_ERR_FORBIDDEN',
          `only the owner of namespace ${ns.name} (${ns.owner}) or an admin may change it`,
        );
      }
      await also?.(ns);
    },
  });

  const profiles = async (c: CallerCall) => {
    const all = await listProfiles(d.pool);
    writeJson(c.res, 200, { items: all.filter((p) => mayUse(p, c.caller)).map(profileView) });
  };
  const oneProfile = async (c: CallerCall) => {
    const p = await getProfile(d.pool, pathParam(c, 0));
    if (!mayUse(p, c.caller))
      throw new KgError(
        'KG_ERR_NOT_FOUND',
        `namespace profile ${JSON.stringify(p.name)} not found`,
      );
    writeJson(c.res, 200, profileView(p));
  };
  const createProfile = async (c: CallerCall) => {
    const p = await saveProfile(d.pool, await c.readBody(), actorOf(c), { create: true });
    writeJson(c.res, 201, profileView(p), { location: `/api/v1/namespace-profiles/${p.name}` });
  };
  const replaceProfile = async (c: CallerCall) => {
    const ifMatch = c.req.headers['if-match'];
    let version: number | undefined;
    if (ifMatch !== undefined) {
      const m = /^"?(\d{1,9})"?$/.exec(String(ifMatch));
      if (!m)
        throw new KgError('KG_ERR_BAD_REQUEST', 'If-Match must be the version read, e.g. "3"');
      version = Number(m[1]);
    }
    const p = await saveProfile(d.pool, await c.readBody(), actorOf(c), {
      create: false,
      name: pathParam(c, 0),
      ...(version !== undefined ? { version } : {}),
    });
    d.changed();
    writeJson(c.res, 200, profileView(p));
  };
  const removeProfile = async (c: CallerCall) => {
    await deleteProfile(d.pool, pathParam(c, 0), actorOf(c));
    writeNoContent(c.res);
  };

  const ask = async (c: CallerCall) => {
    const body = (await c.readBody()) as Record<string, unknown>;
    const problems: string[] = [];
    for (const k of Object.keys(body))
      if (!askFields.includes(k))
        problems.push(`${k}: unknown field (fields: ${askFields.join(', ')})`);
    if (typeof body.profile !== 'string' || !dnsLabel.test(body.profile))
      problems.push(
        'profile: the name of a namespace profile is required (kubegate namespace profiles)',
      );
    const clusters = body.clusters;
    if (
      !Array.isArray(clusters) ||
      !clusters.length ||
      clusters.length > maxClusters ||
      clusters.some((x) => typeof x !== 'string')
    )
      problems.push(`clusters: must be a list of 1 to ${maxClusters} cluster names`);
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 1000))
      problems.push('reason: must be a string of at most 1000 characters');
    if (typeof body.name !== 'string') problems.push('name: the namespace name is required');
    if (problems.length) throw invalid('namespace request', problems);
    const profile = await getProfile(d.pool, body.profile as string).catch((err: unknown) => {
      if (err instanceof KgError && err.code === 'KG_ERR_NOT_FOUND')
        throw invalid('namespace request', [
          `profile: ${JSON.stringify(body.profile)} is not a namespace profile`,
        ]);
      throw err;
    });
    if (!mayUse(profile, c.caller))
      throw invalid('namespace request', [
        `profile: ${JSON.stringify(profile.name)} is not a namespace profile`,
      ]);
    const name = body.name as string;
    const bad = nameProblem(profile, name);
    if (bad) problems.push(`name: ${bad}`);
    const state = d.policy();
    const names = [...new Set(clusters as string[])];
    for (const n of names) {
      const cl = state.clusters.get(n);
      if (!cl) problems.push(`clusters: ${JSON.stringify(n)} is not a cluster kubegate knows`);
      else if (cl.disabled) problems.push(`clusters: ${JSON.stringify(n)} is disabled`);
      else if (
        !(profile.clusters.names?.includes(n) ?? false) &&
        !(profile.clusters.selector && selectorMatches(profile.clusters.selector, cl.labels))
      )
        problems.push(
          `clusters: profile ${profile.name} does not apply to cluster ${JSON.stringify(n)}${profile.clusters.names ? ` (it applies to ${profile.clusters.names.join(', ')})` : ''}`,
        );
    }
    if (problems.length) throw invalid('namespace request', problems);
    const made = await askNamespace(
      d.pool,
      {
        name,
        profile,
        clusters: names,
        reason: (body.reason as string | undefined) ?? '',
        publicUrl,
      },
      actorOf(c),
    );
    d.changed();
    const items = made.rows.map((r) => view(r, c.caller));
    if (made.approvalId) writeJson(c.res, 202, { items, approvalId: made.approvalId });
    else writeJson(c.res, 201, { items });
  };

  const list = async (c: CallerCall) => {
    checkQuery(c.query, ['cluster', 'profile', 'all', 'history']);
    const all = oneOf(c.query, 'all', ['true', 'false']) === 'true';
    if (all && !c.caller.admin)
      throw new KgError('KG_ERR_FORBIDDEN', 'all=true lists every namespace: admins only');
    const cluster = optional(c.query, 'cluster');
    const profile = optional(c.query, 'profile');
    const rows = await listNamespaces(d.pool, {
      ...(all
        ? {}
        : { mine: { name: c.caller.name, kind: c.caller.kind, groups: c.caller.groups } }),
      ...(cluster ? { cluster } : {}),
      ...(profile ? { profile } : {}),
      history: oneOf(c.query, 'history', ['true', 'false']) === 'true',
    });
    const members = await membersOfAll(
      d.pool,
      rows.map((r) => r.id),
    );
    writeJson(c.res, 200, {
      items: rows.map((r) => withRole(r, members.get(r.id) ?? [], c.caller)),
    });
  };
  const one = async (c: CallerCall) => {
    const { ns, members } = await visible(c);
    writeJson(c.res, 200, { ...withRole(ns, members, c.caller), members });
  };
  const members = async (c: CallerCall) => {
    const { ns, members } = await visible(c);
    if (ended.includes(ns.status)) return writeJson(c.res, 200, { items: [] });
    writeJson(c.res, 200, { items: members });
  };
  const retire = async (c: CallerCall) => {
    const row = await retireNamespace(d.pool, change(c), publicUrl);
    d.changed();
    writeJson(c.res, 202, view(row, c.caller));
  };

  const memberOf = (c: CallerCall): { kind: 'User' | 'Group'; name: string } => {
    const kind = pathParam(c, 2);
    const name = pathParam(c, 3);
    const problems: string[] = [];
    if (kind !== 'User' && kind !== 'Group') problems.push('kind: must be User or Group');
    if (!memberName.test(name)) problems.push('member: must be 1 to 256 visible characters');
    else if (name.startsWith('system:'))
      problems.push(`member: ${JSON.stringify(name)} must not start with "system:"`);
    if (problems.length) throw invalid('member', problems);
    return { kind: kind as 'User' | 'Group', name };
  };
  const putMember = async (c: CallerCall) => {
    const m = memberOf(c);
    const body = (await c.readBody()) as Record<string, unknown>;
    if (Object.keys(body).some((k) => k !== 'role') || typeof body.role !== 'string')
      throw invalid('member', ['the body is {role}: the role to give, one the profile allows']);
    const role = body.role;
    const member = await setMember(
      d.pool,
      change(c, async (ns) => {
        const p = await getProfile(d.pool, ns.profile);
        if (!p.memberRoles.includes(role))
          throw new KgError(
            'KG_ERR_FORBIDDEN',
            `profile ${p.name} lets owners give ${p.memberRoles.map((r) => JSON.stringify(r)).join(', ') || 'no role'}, not ${JSON.stringify(role)}`,
          );
        if (!c.caller.admin) ceiling(c.caller, ns, role);
      }),
      { ...m, role },
    );
    d.changed();
    writeJson(c.res, 200, member);
  };
  /** An owner never hands out more than they hold in the namespace. */
  const ceiling = (who: Caller, ns: NamespaceRow, role: string) => {
    const state = d.policy();
    const cluster = state.clusters.get(ns.cluster);
    const asked = state.snapshot.roles.get(role);
    if (!cluster || !asked)
      throw new KgError('KG_ERR_CONFLICT', `role ${role} is not known yet; try again`);
    const held = bindingsFor(
      state.snapshot,
      { user: who.name, groups: who.groups, kind: who.kind },
      cluster,
      new Date(),
    )
      .filter((b) => !b.namespaces.length || b.namespaces.includes(ns.name))
      .flatMap((b) => state.snapshot.roles.get(b.role)?.rules ?? []);
    const missing = uncovered(held, asked.rules);
    if (missing.length)
      throw new KgError(
        'KG_ERR_FORBIDDEN',
        `role ${JSON.stringify(role)} grants what you do not hold in namespace ${ns.name} (${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''}): you can give only what you have`,
      );
  };
  const deleteMember = async (c: CallerCall) => {
    await removeMember(d.pool, change(c), memberOf(c));
    d.changed();
    writeNoContent(c.res);
  };
  const transfer = async (c: CallerCall) => {
    const body = (await c.readBody()) as Record<string, unknown>;
    if (
      Object.keys(body).some((k) => k !== 'user') ||
      typeof body.user !== 'string' ||
      !memberName.test(body.user) ||
      body.user.startsWith('system:')
    )
      throw invalid('transfer', ['the body is {user}: the user who will own the namespace']);
    const row = await transferOwner(d.pool, change(c), body.user);
    d.changed();
    writeJson(c.res, 200, view(row, c.caller));
  };

  /** An operation that takes no query parameters (the list checks its own). */
  const op = (
    access: Operation<CallerCall>['access'],
    summary: string,
    handle: (c: CallerCall) => Promise<void>,
    more: Partial<Operation<CallerCall>> = {},
  ): Operation<CallerCall> => ({
    access,
    summary,
    handle: async (c) => {
      if (!more.query) checkQuery(c.query, []);
      await handle(c);
    },
    ...more,
  });
  const route = (
    path: string,
    methods: RouteSpec<CallerCall>['methods'],
  ): RouteSpec<CallerCall> => ({
    path,
    tag: 'namespaces',
    methods,
  });
  const member = '/api/v1/namespaces/{cluster}/{name}';
  const specs: RouteSpec<CallerCall>[] = [
    route('/api/v1/namespace-profiles', {
      GET: op('caller', 'Namespace profiles you may use (admins: all)', profiles),
      POST: op('admin', 'A new namespace profile', createProfile, {
        body: profileBody,
        responses: { 201: 'the profile' },
      }),
    }),
    route('/api/v1/namespace-profiles/{name}', {
      GET: op('caller', 'One namespace profile', oneProfile),
      PUT: op(
        'admin',
        'Replace a namespace profile (If-Match: the version read); its namespaces follow at the next reconcile',
        replaceProfile,
        { body: profileBody },
      ),
      DELETE: op('admin', 'Delete a namespace profile no namespace uses', removeProfile),
    }),
    route('/api/v1/namespaces', {
      GET: op(
        'caller',
        'Your self-service namespaces (owner or member); admins: all=true for every one',
        list,
        { query: ['cluster', 'profile', 'all', 'history'] },
      ),
      POST: op(
        'caller',
        'Ask for a namespace {name, profile, clusters, reason}: 201 when it is being made, 202 when it waits for approval',
        ask,
        { body: smallObjectBody, responses: { 201: 'being created', 202: 'waiting for approval' } },
      ),
    }),
    route(member, {
      GET: op('caller', 'One namespace with its owner and members', one),
      DELETE: op(
        'caller',
        'Retire a namespace (owner or admin): its bindings go at once, the cluster deletes it',
        retire,
        { responses: { 202: 'being deleted, or waiting for approval' } },
      ),
    }),
    route(`${member}/members`, {
      GET: op('caller', "A namespace's owner and members", members),
    }),
    route(`${member}/members/{kind}/{member}`, {
      PUT: op(
        'caller',
        'Add a member (User or Group) or change their role {role} (owner or admin)',
        putMember,
        { body: smallObjectBody },
      ),
      DELETE: op(
        'caller',
        'Remove a member (owner or admin): their access ends at once',
        deleteMember,
      ),
    }),
    route(`${member}/owner`, {
      POST: op('caller', 'Hand the namespace to another user {user} (owner or admin)', transfer, {
        body: smallObjectBody,
      }),
    }),
  ];
  return mount(specs, (base, op) =>
    guardCaller(d, base.req, op).then((caller) => ({ ...base, caller })),
  );
}
