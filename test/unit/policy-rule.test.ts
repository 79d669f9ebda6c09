/**
 * RBAC rule matching (Kubernetes evaluation_helpers.go semantics plus the
 * kubegate narrowing for impersonate/escalate/bind), rule validation for the
 * admin API, and the built-in roles.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  EXPLICIT_ONLY_VERBS,
  ruleAllows,
  validateRules,
  type PolicyRule,
} from '../../proxy/authz/policy-rule.js';
import { authenticatedBaseline, builtinRoles } from '../../proxy/authz/builtin-roles.js';
import { nonResourceInfo, type RequestInfo } from '../../proxy/authz/request-info.js';

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
    namespace: opts.ns ?? 'dev',
    resource,
    subresource: opts.sub ?? '',
    name: opts.name ?? '',
    parts: [],
  };
}

const nonres = (verb: string, path: string): RequestInfo => nonResourceInfo(path, verb);

interface Case {
  name: string;
  rule: PolicyRule;
  info: RequestInfo;
  allowed: boolean;
}

const pods: PolicyRule = { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] };
const apps: PolicyRule = { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] };

const cases: Case[] = [
  // API groups: exact comparison only (Rancher CVE-2021-25318)
  {
    name: 'exact group matches',
    rule: apps,
    info: res('get', 'apps', 'deployments'),
    allowed: true,
  },
  {
    name: 'group suffix trick does not match',
    rule: apps,
    info: res('get', 'apps.evil.example', 'deployments'),
    allowed: false,
  },
  {
    name: 'group prefix trick does not match',
    rule: { ...apps, apiGroups: ['apps.evil.example'] },
    info: res('get', 'apps', 'deployments'),
    allowed: false,
  },
  {
    name: 'group case trick does not match',
    rule: apps,
    info: res('get', 'Apps', 'deployments'),
    allowed: false,
  },
  { name: 'core group is not apps', rule: pods, info: res('get', 'apps', 'pods'), allowed: false },
  {
    name: 'apps is not the core group',
    rule: apps,
    info: res('get', '', 'deployments'),
    allowed: false,
  },
  {
    name: 'group * matches any group',
    rule: { apiGroups: ['*'], resources: ['deployments'], verbs: ['get'] },
    info: res('get', 'x.example', 'deployments'),
    allowed: true,
  },
  {
    name: 'no apiGroups never matches a resource request',
    rule: { resources: ['*'], verbs: ['*'] },
    info: res('get', '', 'pods'),
    allowed: false,
  },
  // resources and subresources
  { name: 'resource matches', rule: pods, info: res('list', '', 'pods'), allowed: true },
  {
    name: 'resource does not cover its subresources',
    rule: pods,
    info: res('get', '', 'pods', { sub: 'log', name: 'web' }),
    allowed: false,
  },
  {
    name: 'resource/subresource matches',
    rule: { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
    info: res('get', '', 'pods', { sub: 'log', name: 'web' }),
    allowed: true,
  },
  {
    name: 'resource/subresource does not match the resource',
    rule: { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] },
    info: res('get', '', 'pods', { name: 'web' }),
    allowed: false,
  },
  {
    name: 'resource * covers subresources',
    rule: { apiGroups: [''], resources: ['*'], verbs: ['create'] },
    info: res('create', '', 'pods', { sub: 'exec', name: 'web' }),
    allowed: true,
  },
  {
    name: '*/scale matches any scale',
    rule: { apiGroups: ['*'], resources: ['*/scale'], verbs: ['update'] },
    info: res('update', 'apps', 'deployments', { sub: 'scale', name: 'x' }),
    allowed: true,
  },
  {
    name: '*/scale does not match the resource',
    rule: { apiGroups: ['*'], resources: ['*/scale'], verbs: ['update'] },
    info: res('update', 'apps', 'deployments', { name: 'x' }),
    allowed: false,
  },
  {
    name: '*/scale does not match scale2',
    rule: { apiGroups: ['*'], resources: ['*/scale'], verbs: ['update'] },
    info: res('update', 'apps', 'deployments', { sub: 'scale2', name: 'x' }),
    allowed: false,
  },
  {
    name: '*/scale does not match xscale',
    rule: { apiGroups: ['*'], resources: ['*/scale'], verbs: ['update'] },
    info: res('update', 'apps', 'deployments', { sub: 'xscale', name: 'x' }),
    allowed: false,
  },
  {
    name: 'pods/* is not a wildcard in RBAC',
    rule: { apiGroups: [''], resources: ['pods/*'], verbs: ['create'] },
    info: res('create', '', 'pods', { sub: 'exec', name: 'web' }),
    allowed: false,
  },
  {
    name: 'pods/exec is not pods/execute',
    rule: { apiGroups: [''], resources: ['pods/exec'], verbs: ['create'] },
    info: res('create', '', 'pods', { sub: 'execute', name: 'web' }),
    allowed: false,
  },
  {
    name: 'a pods/ex rule is not pods/exec',
    rule: { apiGroups: [''], resources: ['pods/ex'], verbs: ['create'] },
    info: res('create', '', 'pods', { sub: 'exec', name: 'web' }),
    allowed: false,
  },
  {
    name: 'podsx/exec is not pods/exec',
    rule: { apiGroups: [''], resources: ['podsx/exec'], verbs: ['create'] },
    info: res('create', '', 'pods', { sub: 'exec', name: 'web' }),
    allowed: false,
  },
  // verbs
  {
    name: 'verb not listed',
    rule: pods,
    info: res('delete', '', 'pods', { name: 'web' }),
    allowed: false,
  },
  {
    name: 'verb * matches delete',
    rule: { apiGroups: [''], resources: ['pods'], verbs: ['*'] },
    info: res('delete', '', 'pods', { name: 'web' }),
    allowed: true,
  },
  {
    name: 'verb * matches the empty verb of an unknown method (as in Kubernetes)',
    rule: { apiGroups: [''], resources: ['pods'], verbs: ['*'] },
    info: res('', '', 'pods'),
    allowed: true,
  },
  {
    name: 'verb * does not grant impersonate',
    rule: { apiGroups: [''], resources: ['users'], verbs: ['*'] },
    info: res('impersonate', '', 'users', { name: 'admin' }),
    allowed: false,
  },
  {
    name: 'verb * does not grant escalate',
    rule: { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
    info: res('escalate', 'rbac.authorization.k8s.io', 'clusterroles', { name: 'x' }),
    allowed: false,
  },
  {
    name: 'verb * does not grant bind',
    rule: { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
    info: res('bind', 'rbac.authorization.k8s.io', 'clusterroles', { name: 'x' }),
    allowed: false,
  },
  {
    name: 'literal impersonate is granted',
    rule: { apiGroups: [''], resources: ['serviceaccounts'], verbs: ['impersonate'] },
    info: res('impersonate', '', 'serviceaccounts', { name: 'sa' }),
    allowed: true,
  },
  {
    name: 'literal bind is granted',
    rule: {
      apiGroups: ['rbac.authorization.k8s.io'],
      resources: ['clusterroles'],
      verbs: ['bind'],
    },
    info: res('bind', 'rbac.authorization.k8s.io', 'clusterroles', { name: 'x' }),
    allowed: true,
  },
  // resourceNames
  {
    name: 'resourceNames: named get',
    rule: { ...pods, resourceNames: ['web'] },
    info: res('get', '', 'pods', { name: 'web' }),
    allowed: true,
  },
  {
    name: 'resourceNames: other name',
    rule: { ...pods, resourceNames: ['web'] },
    info: res('get', '', 'pods', { name: 'db' }),
    allowed: false,
  },
  {
    name: 'resourceNames: list without a name',
    rule: { ...pods, resourceNames: ['web'] },
    info: res('list', '', 'pods'),
    allowed: false,
  },
  {
    name: 'resourceNames: list named by fieldSelector',
    rule: { ...pods, resourceNames: ['web'] },
    info: res('list', '', 'pods', { name: 'web' }),
    allowed: true,
  },
  {
    name: 'resourceNames: create has no name',
    rule: { apiGroups: [''], resources: ['pods'], verbs: ['create'], resourceNames: ['web'] },
    info: res('create', '', 'pods'),
    allowed: false,
  },
  {
    name: 'resourceNames: deletecollection has no name',
    rule: {
      apiGroups: [''],
      resources: ['pods'],
      verbs: ['deletecollection'],
      resourceNames: ['web'],
    },
    info: res('deletecollection', '', 'pods'),
    allowed: false,
  },
  {
    name: 'resourceNames [""] never matches a nameless request',
    rule: { ...pods, resourceNames: [''] },
    info: res('list', '', 'pods'),
    allowed: false,
  },
  {
    name: 'resourceNames "*" is literal',
    rule: { ...pods, resourceNames: ['*'] },
    info: res('get', '', 'pods', { name: 'web' }),
    allowed: false,
  },
  {
    name: 'empty resourceNames matches every name',
    rule: { ...pods, resourceNames: [] },
    info: res('get', '', 'pods', { name: 'web' }),
    allowed: true,
  },
  // non-resource URLs
  {
    name: 'nonResourceURL exact',
    rule: { nonResourceURLs: ['/healthz'], verbs: ['get'] },
    info: nonres('get', '/healthz'),
    allowed: true,
  },
  {
    name: 'nonResourceURL exact is not a prefix',
    rule: { nonResourceURLs: ['/healthz'], verbs: ['get'] },
    info: nonres('get', '/healthz/etcd'),
    allowed: false,
  },
  {
    name: 'nonResourceURL trailing * is a prefix',
    rule: { nonResourceURLs: ['/healthz/*'], verbs: ['get'] },
    info: nonres('get', '/healthz/etcd'),
    allowed: true,
  },
  {
    name: 'nonResourceURL /healthz/* does not match /healthz',
    rule: { nonResourceURLs: ['/healthz/*'], verbs: ['get'] },
    info: nonres('get', '/healthz'),
    allowed: false,
  },
  {
    name: 'nonResourceURL /api* matches /apis (plain prefix)',
    rule: { nonResourceURLs: ['/api*'], verbs: ['get'] },
    info: nonres('get', '/apis'),
    allowed: true,
  },
  {
    name: 'nonResourceURL * matches everything',
    rule: { nonResourceURLs: ['*'], verbs: ['get'] },
    info: nonres('get', '/metrics'),
    allowed: true,
  },
  {
    name: 'nonResourceURL verb must match',
    rule: { nonResourceURLs: ['*'], verbs: ['get'] },
    info: nonres('post', '/metrics'),
    allowed: false,
  },
  {
    name: 'a resource rule never matches a non-resource URL',
    rule: { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
    info: nonres('get', '/metrics'),
    allowed: false,
  },
  {
    name: 'a non-resource rule never matches a resource',
    rule: { nonResourceURLs: ['*'], verbs: ['*'] },
    info: res('get', '', 'pods'),
    allowed: false,
  },
];

for (const c of cases) {
  test(`ruleAllows: ${c.name}`, () => {
    assert.equal(ruleAllows(c.rule, c.info), c.allowed);
  });
}

test('property: a * verb never grants impersonate, escalate or bind', () => {
  const strings = (pool: string[]) => fc.subarray(pool);
  const rule = fc.record({
    apiGroups: strings(['', '*', 'apps', 'rbac.authorization.k8s.io']),
    resources: strings(['*', 'users', 'groups', 'serviceaccounts', 'clusterroles', '*/status']),
    verbs: strings(['*', 'get', 'create', 'update', 'list']),
    nonResourceURLs: strings(['*', '/x']),
  });
  fc.assert(
    fc.property(
      rule,
      fc.constantFrom(...EXPLICIT_ONLY_VERBS),
      fc.boolean(),
      (r, verb, resource) => {
        const info = resource
          ? res(verb, 'rbac.authorization.k8s.io', 'clusterroles', { name: 'x' })
          : nonres(verb, '/x');
        assert.equal(ruleAllows(r, info), false);
      },
    ),
    { numRuns: 2000 },
  );
});

// --- validation -------------------------------------------------------------

test('validateRules: valid rules come back as clean copies', () => {
  const input = [
    { apiGroups: [''], resources: ['pods', 'pods/log'], verbs: ['get', 'list'] },
    { apiGroups: ['apps'], resources: ['*/scale'], verbs: ['update'], resourceNames: ['web'] },
    { nonResourceURLs: ['/healthz', '/metrics*'], verbs: ['get'] },
    { apiGroups: ['*'], resources: ['*'], verbs: ['*'] },
  ];
  const got = validateRules(input);
  assert.deepEqual(got.problems, []);
  assert.deepEqual(got.rules, input);
  assert.notEqual(got.rules?.[0]?.resources, input[0]?.resources, 'copies, not the caller arrays');
});

test('validateRules: not an array', () => {
  assert.deepEqual(validateRules({ verbs: ['get'] }), {
    problems: ['rules: must be an array of policy rules'],
  });
  assert.deepEqual(validateRules(undefined).problems, ['rules: must be an array of policy rules']);
});

test('validateRules: every problem at once, each naming its field', () => {
  const got = validateRules([
    { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
    'pods',
    { apiGroups: [''], resources: ['pods'], verbs: [] },
    {
      apiGroups: ['Apps'],
      resources: ['Deployments', 'pods/*', 'a/b/c'],
      verbs: ['GET', 'get list'],
    },
    { resources: ['pods'], verbs: ['get'], resourceName: ['web'] },
    { apiGroups: [''], verbs: ['get'], resourceNames: ['', '*'] },
    { apiGroups: [''], resources: ['pods'], nonResourceURLs: ['/x'], verbs: ['get'] },
    { nonResourceURLs: ['healthz', '/a*b'], verbs: ['get'] },
    { apiGroups: 'apps', resources: [1], verbs: 'get' },
    null,
  ]);
  assert.equal(got.rules, undefined);
  assert.deepEqual(got.problems, [
    'rules[1]: must be an object',
    'rules[2].verbs: must be non-empty',
    'rules[3].verbs[0]: "GET" must be lowercase (Kubernetes verbs are lowercase, e.g. "get")',
    'rules[3].verbs[1]: "get list" is not a valid verb (lowercase letters, e.g. "get")',
    'rules[3].apiGroups[0]: "Apps" is not a valid API group (a lowercase DNS subdomain such as "apps", "" for the core group, or "*")',
    'rules[3].resources[0]: "Deployments" is not a valid resource (expected "*", "pods", "pods/log" or "*/scale", lowercase)',
    'rules[3].resources[1]: "pods/*" does not match subresources in Kubernetes RBAC; name them (e.g. "pods/log") or use "*"',
    'rules[3].resources[2]: "a/b/c" is not a valid resource (expected "*", "pods", "pods/log" or "*/scale", lowercase)',
    'rules[4].resourceName: unknown field (allowed: apiGroups, resources, verbs, resourceNames, nonResourceURLs)',
    'rules[4].apiGroups: must be non-empty for a resource rule (use "" for the core group)',
    'rules[5].resources: must be non-empty for a resource rule (or give nonResourceURLs)',
    'rules[5].resourceNames[0]: must be a non-empty string',
    'rules[5].resourceNames[1]: "*" is not a wildcard in resourceNames; omit resourceNames to match every name',
    'rules[6]: a rule cannot apply to both resources (apiGroups, resources, resourceNames) and nonResourceURLs; split it in two',
    'rules[7].nonResourceURLs[0]: "healthz" must start with \'/\' (or be "*")',
    'rules[7].nonResourceURLs[1]: "/a*b" may contain \'*\' only as its last character',
    'rules[8].apiGroups: must be an array of strings',
    'rules[8].resources[0]: must be a string',
    'rules[8].verbs: must be an array of strings',
    'rules[9]: must be an object',
  ]);
});

test('validateRules: an empty list of rules is valid', () => {
  assert.deepEqual(validateRules([]), { rules: [], problems: [] });
});

// --- built-in roles ---------------------------------------------------------

const role = (name: string): PolicyRule[] => {
  const r = builtinRoles.find((x) => x.name === name);
  assert.ok(r, name);
  return r.rules;
};
const allows = (rules: PolicyRule[], info: RequestInfo): boolean =>
  rules.some((r) => ruleAllows(r, info));

test('builtins: the four roles, valid, frozen', () => {
  assert.deepEqual(
    builtinRoles.map((r) => r.name),
    ['view', 'edit', 'admin', 'cluster-admin'],
  );
  for (const r of [...builtinRoles, authenticatedBaseline]) {
    assert.deepEqual(validateRules(r.rules).problems, [], r.name);
    assert.ok(r.description.length > 0);
    assert.ok(Object.isFrozen(r) && Object.isFrozen(r.rules) && Object.isFrozen(r.rules[0]));
  }
});

test('builtins: view ⊂ edit ⊂ admin, as Kubernetes aggregates them', () => {
  const contains = (big: PolicyRule[], small: PolicyRule[]) =>
    small.every((s) => big.some((b) => JSON.stringify(b) === JSON.stringify(s)));
  assert.ok(contains(role('edit'), role('view')));
  assert.ok(contains(role('admin'), role('edit')));
});

interface RoleCase {
  info: RequestInfo;
  view: boolean;
  edit: boolean;
  admin: boolean;
  clusterAdmin: boolean;
  what: string;
}

const roleCases: RoleCase[] = [
  {
    what: 'get pods',
    info: res('get', '', 'pods', { name: 'web' }),
    view: true,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'read pods/log',
    info: res('get', '', 'pods', { sub: 'log', name: 'web' }),
    view: true,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'get secrets',
    info: res('get', '', 'secrets', { name: 's' }),
    view: false,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'list secrets',
    info: res('list', '', 'secrets'),
    view: false,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'exec (create pods/exec)',
    info: res('create', '', 'pods', { sub: 'exec', name: 'web' }),
    view: false,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'port-forward',
    info: res('create', '', 'pods', { sub: 'portforward', name: 'web' }),
    view: false,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'delete deployments',
    info: res('delete', 'apps', 'deployments', { name: 'api' }),
    view: false,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'scale deployments',
    info: res('update', 'apps', 'deployments', { sub: 'scale', name: 'api' }),
    view: false,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'create rolebindings',
    info: res('create', 'rbac.authorization.k8s.io', 'rolebindings'),
    view: false,
    edit: false,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'update resourcequotas',
    info: res('update', '', 'resourcequotas', { name: 'q' }),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
  {
    what: 'escalate roles',
    info: res('escalate', 'rbac.authorization.k8s.io', 'roles', { name: 'r' }),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
  {
    what: 'bind clusterroles',
    info: res('bind', 'rbac.authorization.k8s.io', 'clusterroles', { name: 'r' }),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
  {
    what: 'impersonate users',
    info: res('impersonate', '', 'users', { name: 'root' }),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
  {
    what: 'impersonate serviceaccounts (Kubernetes edit has it)',
    info: res('impersonate', '', 'serviceaccounts', { name: 'sa' }),
    view: false,
    edit: true,
    admin: true,
    clusterAdmin: true,
  },
  {
    what: 'nodes/proxy is cluster-admin only',
    info: res('get', '', 'nodes', { sub: 'proxy', name: 'n1', ns: '' }),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
  {
    what: 'list nodes',
    info: res('list', '', 'nodes', { ns: '' }),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
  {
    what: 'create clusterroles',
    info: res('create', 'rbac.authorization.k8s.io', 'clusterroles', { ns: '' }),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
  {
    what: 'POST /metrics',
    info: nonres('post', '/metrics'),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
  {
    what: 'GET /api discovery is the baseline, not a role',
    info: nonres('get', '/api'),
    view: false,
    edit: false,
    admin: false,
    clusterAdmin: true,
  },
];

for (const c of roleCases) {
  test(`builtins: ${c.what}`, () => {
    assert.equal(allows(role('view'), c.info), c.view, 'view');
    assert.equal(allows(role('edit'), c.info), c.edit, 'edit');
    assert.equal(allows(role('admin'), c.info), c.admin, 'admin');
    assert.equal(allows(role('cluster-admin'), c.info), c.clusterAdmin, 'cluster-admin');
  });
}

test('baseline: discovery, health and self reviews only', () => {
  const b = authenticatedBaseline.rules;
  assert.ok(allows(b, nonres('get', '/api')));
  assert.ok(allows(b, nonres('get', '/apis/apps/v1')));
  assert.ok(allows(b, nonres('get', '/openapi/v3/apis/apps/v1')));
  assert.ok(allows(b, nonres('get', '/version')));
  assert.ok(
    allows(b, res('create', 'authorization.k8s.io', 'selfsubjectaccessreviews', { ns: '' })),
  );
  assert.ok(allows(b, res('create', 'authentication.k8s.io', 'selfsubjectreviews', { ns: '' })));
  assert.ok(!allows(b, nonres('get', '/metrics')));
  assert.ok(!allows(b, nonres('post', '/api')));
  assert.ok(!allows(b, res('create', 'authorization.k8s.io', 'subjectaccessreviews', { ns: '' })));
  assert.ok(!allows(b, res('get', '', 'pods', { name: 'x' })));
});
