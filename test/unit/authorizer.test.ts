/**
 * The central authorizer: tables for each rule (subjects, expiry, clusters by
 * name and selector, namespaced bindings, unknown roles, the authenticated
 * baseline, messages), then fast-check properties against a deliberately naive
 * reference model written here, plus targeted properties (empty snapshot
 * denies, removing a binding never allows more, `*` never grants
 * impersonate/escalate/bind).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { authorize, bindingsFor, forbiddenMessage } from '../../proxy/authz/authorizer.js';
import { selectorMatches, type LabelSelector } from '../../common/kube-grammar.js';
import { authenticatedBaseline, builtinRoles } from '../../proxy/authz/builtin-roles.js';
import type { PolicyRule } from '../../proxy/authz/policy-rule.js';
import {
  nonResourceInfo as nonResource,
  type RequestInfo,
} from '../../proxy/authz/request-info.js';
import type {
  Binding,
  ClusterRef,
  Identity,
  PolicySnapshot,
  Role,
} from '../../proxy/authz/types.js';

const NOW = new Date('2025-06-01T12:00:00Z');

function res(
  verb: string,
  apiGroup: string,
  resource: string,
  opts: { sub?: string; name?: string; ns?: string } = {},
): RequestInfo {
  return {
    isResourceRequest: true,
    path: '/x',
    verb,
    apiPrefix: apiGroup === '' ? 'api' : 'apis',
    apiGroup,
    apiVersion: 'v1',
    namespace: opts.ns ?? '',
    resource,
    subresource: opts.sub ?? '',
    name: opts.name ?? '',
    parts: [],
  };
}

const nonres = (verb: string, path: string): RequestInfo => nonResource(path, verb);

function snapshot(bindings: Binding[], extraRoles: Role[] = []): PolicySnapshot {
  const roles = new Map<string, Role>();
  for (const r of builtinRoles) roles.set(r.name, { name: r.name, rules: r.rules });
  for (const r of extraRoles) roles.set(r.name, r);
  return { roles, bindings };
}

function binding(id: string, partial: Partial<Binding>): Binding {
  return {
    id,
    subjects: [{ kind: 'Group', name: 'dev' }],
    role: 'edit',
    clusters: { names: ['prod'] },
    namespaces: [],
    ...partial,
  };
}

const alice: Identity = { user: 'alice', groups: ['dev'], kind: 'user' };
const prod: ClusterRef = { name: 'prod', labels: { env: 'prod', region: 'eu' } };
const staging: ClusterRef = { name: 'staging', labels: { env: 'staging', region: 'eu' } };
const getPod = res('get', '', 'pods', { name: 'web', ns: 'dev' });

interface Case {
  name: string;
  bindings: Binding[];
  who?: Identity;
  info?: RequestInfo;
  cluster?: ClusterRef;
  now?: Date;
  allowed: boolean;
  bindingId?: string;
  reason?: RegExp;
}

const cases: Case[] = [
  // deny by default
  {
    name: 'no bindings: deny',
    bindings: [],
    allowed: false,
    reason: /has no binding in effect on cluster "prod"/,
  },
  // subjects
  { name: 'group subject matches', bindings: [binding('b1', {})], allowed: true, bindingId: 'b1' },
  {
    name: 'group not held',
    bindings: [binding('b1', { subjects: [{ kind: 'Group', name: 'ops' }] })],
    allowed: false,
  },
  {
    name: 'user subject matches a user',
    bindings: [binding('b1', { subjects: [{ kind: 'User', name: 'alice' }] })],
    allowed: true,
  },
  {
    name: 'user subject does not match a robot of that name',
    bindings: [binding('b1', { subjects: [{ kind: 'User', name: 'alice' }] })],
    who: { user: 'alice', groups: [], kind: 'robot' },
    allowed: false,
  },
  {
    name: 'robot subject matches a robot',
    bindings: [binding('b1', { subjects: [{ kind: 'Robot', name: 'ci' }] })],
    who: { user: 'ci', groups: [], kind: 'robot' },
    allowed: true,
  },
  {
    name: 'robot subject does not match a user of that name',
    bindings: [binding('b1', { subjects: [{ kind: 'Robot', name: 'alice' }] })],
    allowed: false,
  },
  {
    name: 'group named like the user does not match the user',
    bindings: [binding('b1', { subjects: [{ kind: 'Group', name: 'alice' }] })],
    who: { user: 'alice', groups: [], kind: 'user' },
    allowed: false,
  },
  // expiry
  {
    name: 'expired binding',
    bindings: [binding('b1', { expiresAt: new Date(NOW.getTime() - 1) })],
    allowed: false,
  },
  {
    name: 'binding expiring exactly now has expired',
    bindings: [binding('b1', { expiresAt: new Date(NOW) })],
    allowed: false,
  },
  {
    name: 'binding expiring later',
    bindings: [binding('b1', { expiresAt: new Date(NOW.getTime() + 1) })],
    allowed: true,
  },
  {
    name: 'null expiry never expires',
    bindings: [binding('b1', { expiresAt: null })],
    allowed: true,
  },
  {
    name: 'an unreadable expiry counts as expired',
    bindings: [binding('b1', { expiresAt: new Date('not a date') })],
    allowed: false,
  },
  // clusters
  {
    name: 'cluster by name',
    bindings: [binding('b1', { clusters: { names: ['staging', 'prod'] } })],
    allowed: true,
  },
  {
    name: 'other cluster by name',
    bindings: [binding('b1', { clusters: { names: ['staging'] } })],
    allowed: false,
  },
  {
    name: 'cluster by selector',
    bindings: [binding('b1', { clusters: { selector: { matchLabels: { env: 'prod' } } } })],
    allowed: true,
  },
  {
    name: 'selector does not match',
    bindings: [binding('b1', { clusters: { selector: { matchLabels: { env: 'prod' } } } })],
    cluster: staging,
    allowed: false,
  },
  {
    name: 'name OR selector',
    bindings: [
      binding('b1', {
        clusters: { names: ['staging'], selector: { matchLabels: { env: 'prod' } } },
      }),
    ],
    allowed: true,
  },
  {
    name: 'empty selector matches every cluster',
    bindings: [binding('b1', { clusters: { selector: {} } })],
    cluster: staging,
    allowed: true,
  },
  {
    name: 'no names and no selector match nothing',
    bindings: [binding('b1', { clusters: {} })],
    allowed: false,
  },
  {
    name: 'empty names and no selector match nothing',
    bindings: [binding('b1', { clusters: { names: [] } })],
    allowed: false,
  },
  {
    name: 'In without values is invalid: matches nothing',
    bindings: [
      binding('b1', {
        clusters: { selector: { matchExpressions: [{ key: 'env', operator: 'In' }] } },
      }),
    ],
    allowed: false,
  },
  // namespaces (RoleBinding semantics)
  {
    name: 'namespaced binding, listed namespace',
    bindings: [binding('b1', { namespaces: ['dev'] })],
    allowed: true,
  },
  {
    name: 'namespaced binding, other namespace',
    bindings: [binding('b1', { namespaces: ['dev'] })],
    info: res('get', '', 'pods', { name: 'web', ns: 'prod' }),
    allowed: false,
  },
  {
    name: 'namespaced binding, all-namespace list',
    bindings: [binding('b1', { namespaces: ['dev'] })],
    info: res('list', '', 'pods'),
    allowed: false,
  },
  {
    name: 'namespaced cluster-admin, cluster-scoped nodes',
    bindings: [binding('b1', { namespaces: ['dev'], role: 'cluster-admin' })],
    info: res('list', '', 'nodes'),
    allowed: false,
  },
  {
    name: 'namespaced cluster-admin, non-resource URL',
    bindings: [binding('b1', { namespaces: ['dev'], role: 'cluster-admin' })],
    info: nonres('get', '/metrics'),
    allowed: false,
  },
  {
    name: 'namespaced binding reads its own namespace object',
    bindings: [binding('b1', { namespaces: ['dev'], role: 'view' })],
    info: res('get', '', 'namespaces', { name: 'dev', ns: 'dev' }),
    allowed: true,
  },
  {
    name: 'namespaced binding cannot read another namespace object',
    bindings: [binding('b1', { namespaces: ['dev'], role: 'view' })],
    info: res('get', '', 'namespaces', { name: 'prod', ns: 'prod' }),
    allowed: false,
  },
  {
    name: 'namespace "" never means cluster-wide',
    bindings: [binding('b1', { namespaces: [''], role: 'cluster-admin' })],
    info: res('list', '', 'pods'),
    allowed: false,
  },
  {
    name: 'cluster-wide binding, cluster-scoped resource',
    bindings: [binding('b1', { role: 'cluster-admin' })],
    info: res('list', '', 'nodes'),
    allowed: true,
  },
  // roles
  {
    name: 'unknown role allows nothing',
    bindings: [binding('b1', { role: 'ghost' })],
    allowed: false,
    reason: /names unknown role "ghost"/,
  },
  {
    name: 'role without the verb',
    bindings: [binding('b1', { role: 'view' })],
    info: res('delete', '', 'pods', { name: 'web', ns: 'dev' }),
    allowed: false,
    reason: /none of the 1 binding\(s\) of User "alice" on cluster "prod" allows this request/,
  },
  {
    name: 'exec needs edit',
    bindings: [binding('b1', { role: 'view' })],
    info: res('create', '', 'pods', { sub: 'exec', name: 'web', ns: 'dev' }),
    allowed: false,
  },
  // which binding is reported
  {
    name: 'first allowing binding in snapshot order is reported',
    bindings: [
      binding('b1', { role: 'view' }),
      binding('b2', { subjects: [{ kind: 'User', name: 'alice' }], role: 'edit' }),
      binding('b3', { role: 'admin' }),
    ],
    info: res('delete', '', 'pods', { name: 'web', ns: 'dev' }),
    allowed: true,
    bindingId: 'b2',
  },
  {
    name: 'an expired earlier binding is skipped',
    bindings: [binding('b1', { expiresAt: new Date(0) }), binding('b2', {})],
    allowed: true,
    bindingId: 'b2',
  },
  // the authenticated baseline
  {
    name: 'baseline: namespace-only user may discover APIs',
    bindings: [binding('b1', { namespaces: ['dev'], role: 'view' })],
    info: nonres('get', '/apis'),
    allowed: true,
    bindingId: 'b1',
  },
  {
    name: 'baseline: self access review',
    bindings: [binding('b1', { namespaces: ['dev'] })],
    info: res('create', 'authorization.k8s.io', 'selfsubjectaccessreviews'),
    allowed: true,
  },
  {
    name: 'baseline: nothing without a binding on this cluster',
    bindings: [binding('b1', { clusters: { names: ['staging'] } })],
    info: nonres('get', '/apis'),
    allowed: false,
  },
  {
    name: 'baseline: nothing with an expired binding',
    bindings: [binding('b1', { expiresAt: new Date(0) })],
    info: nonres('get', '/version'),
    allowed: false,
  },
  {
    name: 'baseline: not /metrics',
    bindings: [binding('b1', { role: 'admin' })],
    info: nonres('get', '/metrics'),
    allowed: false,
  },
  {
    name: 'baseline: an unknown role still means access to the cluster',
    bindings: [binding('b1', { role: 'ghost' })],
    info: nonres('get', '/api'),
    allowed: true,
  },
];

for (const c of cases) {
  test(`authorize: ${c.name}`, () => {
    const d = authorize(
      snapshot(c.bindings),
      c.who ?? alice,
      c.info ?? getPod,
      c.cluster ?? prod,
      c.now ?? NOW,
    );
    assert.equal(d.allowed, c.allowed, d.reason);
    if (c.bindingId) assert.equal(d.bindingId, c.bindingId);
    if (!c.allowed) assert.equal(d.bindingId, undefined);
    if (c.reason) assert.match(d.reason, c.reason);
    assert.ok(d.reason.length > 0);
  });
}

test('authorize: an allow names the binding and role; the baseline names itself', () => {
  const snap = snapshot([binding('b7', { namespaces: ['dev'], role: 'view' })]);
  assert.deepEqual(
    { ...authorize(snap, alice, getPod, prod, NOW) },
    {
      allowed: true,
      reason: 'allowed by binding "b7" (role "view")',
      bindingId: 'b7',
      role: 'view',
    },
  );
  const d = authorize(snap, alice, nonres('get', '/api'), prod, NOW);
  assert.equal(d.role, authenticatedBaseline.name);
  assert.equal(d.bindingId, 'b7');
});

test('a deactivated user has no bindings and is denied; a robot of the same name is not', () => {
  const b = binding('b8', {
    subjects: [
      { kind: 'User', name: 'alice' },
      { kind: 'Robot', name: 'alice' },
    ],
  });
  const live = snapshot([b]);
  const off = { ...live, deactivatedUsers: new Set(['alice']) };
  assert.equal(authorize(live, alice, getPod, prod, NOW).allowed, true);
  const d = authorize(off, alice, getPod, prod, NOW);
  assert.deepEqual({ ...d }, { allowed: false, reason: 'denied: user "alice" is deactivated' });
  assert.equal(authorize(off, alice, nonres('get', '/api'), prod, NOW).allowed, false);
  assert.deepEqual(bindingsFor(off, alice, prod, NOW), []);
  const robot: Identity = { user: 'alice', groups: [], kind: 'robot' };
  assert.deepEqual(
    bindingsFor(off, robot, prod, NOW).map((x) => x.id),
    ['b8'],
  );
});

// --- selectorMatches ----------------------------------------------------------

const selectorCases: {
  name: string;
  sel: LabelSelector;
  labels: Record<string, string>;
  want: boolean;
}[] = [
  { name: 'empty selector', sel: {}, labels: {}, want: true },
  {
    name: 'matchLabels hit',
    sel: { matchLabels: { env: 'prod' } },
    labels: { env: 'prod', x: 'y' },
    want: true,
  },
  {
    name: 'matchLabels miss',
    sel: { matchLabels: { env: 'prod' } },
    labels: { env: 'dev' },
    want: false,
  },
  {
    name: 'matchLabels absent key',
    sel: { matchLabels: { env: 'prod' } },
    labels: {},
    want: false,
  },
  {
    name: 'matchLabels all must hold',
    sel: { matchLabels: { env: 'prod', region: 'us' } },
    labels: { env: 'prod', region: 'eu' },
    want: false,
  },
  {
    name: 'In hit',
    sel: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] },
    labels: { env: 'dev' },
    want: true,
  },
  {
    name: 'In absent',
    sel: { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
    labels: {},
    want: false,
  },
  {
    name: 'In with no values is invalid',
    sel: { matchExpressions: [{ key: 'env', operator: 'In', values: [] }] },
    labels: { env: 'x' },
    want: false,
  },
  {
    name: 'NotIn absent key matches',
    sel: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
    labels: {},
    want: true,
  },
  {
    name: 'NotIn listed value',
    sel: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] },
    labels: { env: 'prod' },
    want: false,
  },
  {
    name: 'NotIn with no values is invalid',
    sel: { matchExpressions: [{ key: 'env', operator: 'NotIn' }] },
    labels: {},
    want: false,
  },
  {
    name: 'Exists',
    sel: { matchExpressions: [{ key: 'env', operator: 'Exists' }] },
    labels: { env: '' },
    want: true,
  },
  {
    name: 'Exists absent',
    sel: { matchExpressions: [{ key: 'env', operator: 'Exists' }] },
    labels: {},
    want: false,
  },
  {
    name: 'Exists with values is invalid',
    sel: { matchExpressions: [{ key: 'env', operator: 'Exists', values: ['x'] }] },
    labels: { env: 'x' },
    want: false,
  },
  {
    name: 'DoesNotExist',
    sel: { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] },
    labels: {},
    want: true,
  },
  {
    name: 'DoesNotExist present',
    sel: { matchExpressions: [{ key: 'env', operator: 'DoesNotExist' }] },
    labels: { env: 'x' },
    want: false,
  },
  {
    name: 'prototype keys are not labels (Exists)',
    sel: { matchExpressions: [{ key: 'constructor', operator: 'Exists' }] },
    labels: {},
    want: false,
  },
  {
    name: 'prototype keys are not labels (DoesNotExist)',
    sel: { matchExpressions: [{ key: 'toString', operator: 'DoesNotExist' }] },
    labels: {},
    want: true,
  },
  {
    name: 'unknown operator matches nothing',
    sel: { matchExpressions: [{ key: 'env', operator: 'Gt' as 'In', values: ['1'] }] },
    labels: { env: '2' },
    want: false,
  },
  {
    name: 'labels and expressions are ANDed',
    sel: {
      matchLabels: { env: 'prod' },
      matchExpressions: [{ key: 'region', operator: 'In', values: ['us'] }],
    },
    labels: { env: 'prod', region: 'eu' },
    want: false,
  },
];

for (const c of selectorCases) {
  test(`selectorMatches: ${c.name}`, () => assert.equal(selectorMatches(c.sel, c.labels), c.want));
}

// --- bindingsFor ----------------------------------------------------------------

test('bindingsFor: effective bindings in snapshot order, each once', () => {
  const b1 = binding('b1', {
    subjects: [
      { kind: 'Group', name: 'dev' },
      { kind: 'User', name: 'alice' },
    ],
  });
  const b2 = binding('b2', { expiresAt: new Date(0) });
  const b3 = binding('b3', { clusters: { names: ['staging'] } });
  const b4 = binding('b4', {
    subjects: [{ kind: 'Group', name: 'ops' }],
    clusters: { selector: {} },
  });
  const b5 = binding('b5', {
    subjects: [{ kind: 'User', name: 'alice' }],
    namespaces: ['x'],
    role: 'ghost',
  });
  const snap = snapshot([b1, b2, b3, b4, b5]);
  const who: Identity = { user: 'alice', groups: ['dev', 'ops', 'dev'], kind: 'user' };
  assert.deepEqual(
    bindingsFor(snap, who, prod, NOW).map((b) => b.id),
    ['b1', 'b4', 'b5'],
  );
  assert.deepEqual(
    bindingsFor(snap, who, staging, NOW).map((b) => b.id),
    ['b3', 'b4'],
  );
  assert.deepEqual(bindingsFor(snap, { user: 'alice', groups: [], kind: 'robot' }, prod, NOW), []);
  assert.equal(bindingsFor(snap, who, prod, NOW)[0], b1, 'the snapshot objects themselves');
});

// --- forbiddenMessage -----------------------------------------------------------

test('forbiddenMessage follows the apiserver wording and names the cluster', () => {
  assert.equal(
    forbiddenMessage(alice, res('delete', '', 'pods', { name: 'web', ns: 'dev' }), 'prod'),
    'pods "web" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "dev" on cluster "prod"',
  );
  assert.equal(
    forbiddenMessage(alice, res('list', '', 'pods', { ns: 'dev' }), 'prod'),
    'pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "dev" on cluster "prod"',
  );
  assert.equal(
    forbiddenMessage(alice, nonres('get', '/metrics'), 'prod'),
    'forbidden: User "alice" cannot get path "/metrics" on cluster "prod"',
  );
  assert.equal(
    forbiddenMessage(
      alice,
      res('create', '', 'pods', { sub: 'exec', name: 'web', ns: 'dev' }),
      'prod',
    ),
    'pods "web" is forbidden: User "alice" cannot create resource "pods/exec" in API group "" in the namespace "dev" on cluster "prod"',
  );
  assert.equal(
    forbiddenMessage(alice, res('list', 'apps', 'deployments'), 'eu-1'),
    'deployments.apps is forbidden: User "alice" cannot list resource "deployments" in API group "apps" at the cluster scope on cluster "eu-1"',
  );
  assert.equal(
    forbiddenMessage(
      { user: 'ci "bot"', groups: [], kind: 'robot' },
      res('get', '', 'configmaps', { name: '<b>&', ns: 'dev' }),
      'prod',
    ),
    'configmaps "&lt;b&gt;&amp;" is forbidden: User "ci \\"bot\\"" cannot get resource "configmaps" in API group "" in the namespace "dev" on cluster "prod"',
  );
});

// ---------------------------------------------------------------------------
// Reference model: the rules written out as plainly as possible, no index.

const EXPLICIT = ['impersonate', 'escalate', 'bind'];

function refRule(r: PolicyRule, info: RequestInfo): boolean {
  const verbs = r.verbs ?? [];
  const verbOk =
    verbs.includes(info.verb) || (verbs.includes('*') && !EXPLICIT.includes(info.verb));
  if (!verbOk) return false;
  if (!info.isResourceRequest) {
    return (r.nonResourceURLs ?? []).some(
      (u) =>
        u === '*' ||
        u === info.path ||
        (u.endsWith('*') && info.path.startsWith(u.replace(/\*+$/, ''))),
    );
  }
  const combined = info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
  const groupOk = (r.apiGroups ?? []).some((g) => g === '*' || g === info.apiGroup);
  const resourceOk = (r.resources ?? []).some(
    (x) =>
      x === '*' || x === combined || (info.subresource !== '' && x === `*/${info.subresource}`),
  );
  const nameOk =
    !r.resourceNames ||
    r.resourceNames.length === 0 ||
    (info.name !== '' && r.resourceNames.includes(info.name));
  return groupOk && resourceOk && nameOk;
}

function refSelector(sel: LabelSelector, labels: Record<string, string>): boolean {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(labels, k);
  const labelsOk = Object.entries(sel.matchLabels ?? {}).every(
    ([k, v]) => has(k) && labels[k] === v,
  );
  const exprsOk = (sel.matchExpressions ?? []).every((e) => {
    const vals = e.values ?? [];
    if (e.operator === 'In')
      return vals.length > 0 && has(e.key) && vals.includes(labels[e.key] ?? '');
    if (e.operator === 'NotIn')
      return vals.length > 0 && !(has(e.key) && vals.includes(labels[e.key] ?? ''));
    if (e.operator === 'Exists') return vals.length === 0 && has(e.key);
    if (e.operator === 'DoesNotExist') return vals.length === 0 && !has(e.key);
    return false;
  });
  return labelsOk && exprsOk;
}

function refEffective(b: Binding, who: Identity, cluster: ClusterRef, now: Date): boolean {
  const subject = b.subjects.some(
    (s) =>
      (s.kind === 'Group' && who.groups.includes(s.name)) ||
      (s.kind === 'User' && who.kind === 'user' && s.name === who.user) ||
      (s.kind === 'Robot' && who.kind === 'robot' && s.name === who.user),
  );
  const live = b.expiresAt == null || b.expiresAt.getTime() > now.getTime();
  const onCluster =
    (b.clusters.names ?? []).includes(cluster.name) ||
    (b.clusters.selector !== undefined && refSelector(b.clusters.selector, cluster.labels));
  return subject && live && onCluster;
}

function refAuthorize(
  snap: PolicySnapshot,
  who: Identity,
  info: RequestInfo,
  cluster: ClusterRef,
  now: Date,
) {
  const effective = snap.bindings.filter((b) => refEffective(b, who, cluster, now));
  for (const b of effective) {
    if (b.namespaces.length > 0) {
      const inScope =
        info.isResourceRequest && info.namespace !== '' && b.namespaces.includes(info.namespace);
      if (!inScope) continue;
    }
    const role = snap.roles.get(b.role);
    if (role && role.rules.some((r) => refRule(r, info)))
      return { allowed: true, bindingId: b.id, role: b.role };
  }
  const first = effective[0];
  if (first && authenticatedBaseline.rules.some((r) => refRule(r, info))) {
    return { allowed: true, bindingId: first.id, role: authenticatedBaseline.name };
  }
  return { allowed: false, bindingId: undefined, role: undefined };
}

// --- arbitraries ----------------------------------------------------------------

const USERS = ['alice', 'bob', 'ci'];
const GROUPS = ['dev', 'ops', 'sre', 'constructor'];
const CLUSTERS = ['prod', 'dev', 'eu-1'];
const NAMESPACES = ['dev', 'prod', 'kube-system', ''];
const LABEL_KEYS = ['env', 'region', 'constructor'];
const LABEL_VALUES = ['prod', 'dev', 'eu'];
const VERBS = [
  'get',
  'list',
  'watch',
  'create',
  'delete',
  'deletecollection',
  'impersonate',
  'escalate',
  'bind',
  'post',
  '',
];
const ROLE_NAMES = ['r0', 'r1', 'r2', 'r3', 'ghost'];

const resourceRule: fc.Arbitrary<PolicyRule> = fc.record(
  {
    apiGroups: fc.subarray(['', 'apps', '*', 'Apps']),
    resources: fc.subarray([
      'pods',
      'pods/exec',
      'pods/log',
      '*',
      '*/status',
      'deployments',
      'secrets',
      'namespaces',
      'nodes',
    ]),
    verbs: fc.subarray([
      'get',
      'list',
      'watch',
      'create',
      'delete',
      '*',
      'impersonate',
      'escalate',
      'bind',
    ]),
    resourceNames: fc.subarray(['web', 'db', '']),
  },
  { requiredKeys: ['verbs'] },
);
const nonResourceRule: fc.Arbitrary<PolicyRule> = fc.record({
  nonResourceURLs: fc.subarray(['/metrics', '/api', '/api/*', '*', '/healthz*', '/logs/']),
  verbs: fc.subarray(['get', 'post', '*', 'impersonate']),
});
const rule = fc.oneof(resourceRule, nonResourceRule);
const roles = fc.tuple(
  ...ROLE_NAMES.slice(0, 4).map(() => fc.array(rule, { minLength: 1, maxLength: 5 })),
);

const selector: fc.Arbitrary<LabelSelector> = fc.record(
  {
    matchLabels: fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), {
      maxKeys: 2,
    }),
    matchExpressions: fc.array(
      fc.record(
        {
          key: fc.constantFrom(...LABEL_KEYS),
          operator: fc.constantFrom(
            'In' as const,
            'NotIn' as const,
            'Exists' as const,
            'DoesNotExist' as const,
          ),
          values: fc.subarray(LABEL_VALUES),
        },
        { requiredKeys: ['key', 'operator'] },
      ),
      { maxLength: 2 },
    ),
  },
  { requiredKeys: [] },
);

const expiry = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 6 },
  { arbitrary: fc.constant(null), weight: 1 },
  { arbitrary: fc.constant(new Date(Number.NaN)), weight: 1 },
  {
    arbitrary: fc
      .integer({ min: -3_600_000, max: 3_600_000 })
      .map((d) => new Date(NOW.getTime() + d)),
    weight: 2,
  },
  { arbitrary: fc.constant(new Date(NOW)), weight: 1 },
);

const bindingShape = fc.record({
  subjects: fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant('Group' as const), name: fc.constantFrom(...GROUPS) }),
      fc.record({
        kind: fc.constantFrom('User' as const, 'Robot' as const),
        name: fc.constantFrom(...USERS),
      }),
    ),
    { minLength: 1, maxLength: 3 },
  ),
  role: fc.constantFrom(...ROLE_NAMES),
  clusters: fc.oneof(
    { arbitrary: fc.record({ names: fc.subarray(CLUSTERS, { minLength: 1 }) }), weight: 3 },
    { arbitrary: fc.record({ selector }), weight: 2 },
    {
      arbitrary: fc.record({ names: fc.subarray(CLUSTERS), selector }, { requiredKeys: [] }),
      weight: 1,
    },
  ),
  namespaces: fc.oneof(
    { arbitrary: fc.constant<string[]>([]), weight: 2 },
    { arbitrary: fc.subarray(NAMESPACES, { maxLength: 2 }), weight: 1 },
  ),
  expiresAt: expiry,
});

const snapshotArb: fc.Arbitrary<PolicySnapshot> = fc
  .tuple(roles, fc.array(bindingShape, { maxLength: 8 }))
  .map(([ruleLists, shapes]) => {
    const roleMap = new Map<string, Role>();
    ruleLists.forEach((rules, i) => roleMap.set(`r${i}`, { name: `r${i}`, rules }));
    const bindings: Binding[] = shapes.map((s, i) => {
      const b: Binding = {
        id: `b${i}`,
        subjects: s.subjects,
        role: s.role,
        clusters: s.clusters,
        namespaces: s.namespaces,
      };
      if (s.expiresAt !== undefined) b.expiresAt = s.expiresAt;
      return b;
    });
    return { roles: roleMap, bindings };
  });

const identity: fc.Arbitrary<Identity> = fc.record({
  user: fc.constantFrom(...USERS),
  groups: fc.subarray(GROUPS),
  kind: fc.constantFrom('user' as const, 'robot' as const),
});

const cluster: fc.Arbitrary<ClusterRef> = fc.record({
  name: fc.constantFrom(...CLUSTERS),
  labels: fc.dictionary(fc.constantFrom(...LABEL_KEYS), fc.constantFrom(...LABEL_VALUES), {
    maxKeys: 3,
  }),
});

const resourceInfo: fc.Arbitrary<RequestInfo> = fc
  .record({
    verb: fc.constantFrom(...VERBS),
    apiGroup: fc.oneof(
      { arbitrary: fc.constantFrom('', 'apps'), weight: 4 },
      { arbitrary: fc.constantFrom('Apps', 'apps.evil', 'authorization.k8s.io'), weight: 1 },
    ),
    resource: fc.constantFrom(
      'pods',
      'deployments',
      'secrets',
      'namespaces',
      'nodes',
      'selfsubjectaccessreviews',
    ),
    subresource: fc.oneof(
      { arbitrary: fc.constant(''), weight: 3 },
      { arbitrary: fc.constantFrom('exec', 'status', 'log', 'scale'), weight: 2 },
    ),
    name: fc.constantFrom('', 'web', 'db'),
    namespace: fc.constantFrom(...NAMESPACES),
  })
  .map((r) =>
    res(r.verb, r.apiGroup, r.resource, { sub: r.subresource, name: r.name, ns: r.namespace }),
  );
const nonResourceInfo: fc.Arbitrary<RequestInfo> = fc
  .tuple(
    fc.constantFrom(...VERBS),
    fc.constantFrom(
      '/metrics',
      '/api',
      '/apis/apps/v1',
      '/healthz',
      '/healthz/etcd',
      '/logs/x',
      '/version',
      '/',
    ),
  )
  .map(([v, p]) => nonres(v, p));
const info = fc.oneof(resourceInfo, nonResourceInfo);

// --- properties -------------------------------------------------------------

test('property: authorize agrees with the naive reference model', () => {
  let allowedSeen = 0;
  fc.assert(
    fc.property(snapshotArb, identity, info, cluster, (snap, who, req, c) => {
      const got = authorize(snap, who, req, c, NOW);
      const want = refAuthorize(snap, who, req, c, NOW);
      assert.deepEqual({ allowed: got.allowed, bindingId: got.bindingId, role: got.role }, want);
      if (got.allowed) allowedSeen++;
      // bindingsFor agrees with the model's effective set, too.
      assert.deepEqual(
        bindingsFor(snap, who, c, NOW).map((b) => b.id),
        snap.bindings.filter((b) => refEffective(b, who, c, NOW)).map((b) => b.id),
      );
    }),
    { numRuns: 4000 },
  );
  assert.ok(allowedSeen > 200, `the generators must reach allows too (saw ${allowedSeen})`);
});

test('property: selectorMatches agrees with the reference model', () => {
  fc.assert(
    fc.property(selector, cluster, (sel, c) =>
      assert.equal(selectorMatches(sel, c.labels), refSelector(sel, c.labels)),
    ),
    { numRuns: 2000 },
  );
});

test('property: an empty snapshot denies everything', () => {
  fc.assert(
    fc.property(roles, identity, info, cluster, (ruleLists, who, req, c) => {
      const roleMap = new Map<string, Role>(
        ruleLists.map((rules, i) => [`r${i}`, { name: `r${i}`, rules }]),
      );
      for (const r of builtinRoles) roleMap.set(r.name, { name: r.name, rules: r.rules });
      assert.equal(authorize({ roles: roleMap, bindings: [] }, who, req, c, NOW).allowed, false);
    }),
  );
});

test('property: removing a binding never turns a deny into an allow', () => {
  fc.assert(
    fc.property(snapshotArb, fc.nat(), identity, info, cluster, (snap, k, who, req, c) => {
      if (snap.bindings.length === 0) return;
      const before = authorize(snap, who, req, c, NOW);
      const i = k % snap.bindings.length;
      const smaller: PolicySnapshot = {
        roles: snap.roles,
        bindings: snap.bindings.filter((_, j) => j !== i),
      };
      const after = authorize(smaller, who, req, c, NOW);
      if (!before.allowed) assert.equal(after.allowed, false);
    }),
    { numRuns: 3000 },
  );
});

test('property: * never grants impersonate, escalate or bind', () => {
  const withoutLiteral = snapshotArb.map((snap) => {
    const roleMap = new Map<string, Role>();
    for (const [name, r] of snap.roles) {
      roleMap.set(name, {
        name,
        rules: r.rules.map((x) => ({
          ...x,
          verbs: x.verbs.filter((v) => !EXPLICIT.includes(v)).concat('*'),
        })),
      });
    }
    return { roles: roleMap, bindings: snap.bindings };
  });
  fc.assert(
    fc.property(
      withoutLiteral,
      identity,
      fc.oneof(resourceInfo, nonResourceInfo),
      fc.constantFrom(...EXPLICIT),
      cluster,
      (snap, who, req, verb, c) => {
        assert.equal(authorize(snap, who, { ...req, verb }, c, NOW).allowed, false);
      },
    ),
    { numRuns: 3000 },
  );
});

test('property: authorize is pure (same answer twice, snapshot untouched)', () => {
  fc.assert(
    fc.property(snapshotArb, identity, info, cluster, (snap, who, req, c) => {
      const serialise = () => JSON.stringify({ roles: [...snap.roles], bindings: snap.bindings });
      const before = serialise();
      const a = authorize(snap, who, req, c, NOW);
      const b = authorize(snap, who, req, c, NOW);
      assert.deepEqual(a, b);
      assert.equal(serialise(), before);
    }),
    { numRuns: 500 },
  );
});
