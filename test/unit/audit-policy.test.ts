/**
 * The audit policy: rule matching as the apiserver's policy checker does it
 * (first match wins; resources, `*`, `*`/sub and res/`*` patterns,
 * resourceNames, namespaces, nonResourceURLs), kubegate's `clusters` field,
 * Metadata when nothing matches, and validation that refuses `None` and
 * omitting ResponseComplete, reporting every problem at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KgError } from '../../common/errors.js';
import {
  decideLevel,
  defaultPolicy,
  loadPolicyFile,
  validatePolicy,
  type AuditPolicy,
  type PolicyRequest,
} from '../../proxy/audit/policy.js';

const base: PolicyRequest = {
  cluster: 'prod',
  user: 'alice',
  groups: ['dev'],
  verb: 'get',
  isResourceRequest: true,
  path: '/api/v1/namespaces/default/pods/web',
  apiGroup: '',
  resource: 'pods',
  subresource: '',
  namespace: 'default',
  name: 'web',
};

const policy: AuditPolicy = validatePolicy({
  apiVersion: 'audit.k8s.io/v1',
  kind: 'Policy',
  omitStages: ['RequestReceived'],
  rules: [
    { level: 'Metadata', resources: [{ group: '', resources: ['secrets', 'configmaps'] }] },
    { level: 'RequestResponse', clusters: ['prod'], verbs: ['delete', 'deletecollection'] },
    { level: 'Request', resources: [{ group: 'apps', resources: ['deployments/*'] }] },
    { level: 'Request', resources: [{ group: '', resources: ['*/status'] }] },
    {
      level: 'RequestResponse',
      resources: [{ group: '', resources: ['pods'], resourceNames: ['special'] }],
    },
    { level: 'Request', userGroups: ['auditors'], namespaces: ['kube-system'] },
    { level: 'RequestResponse', nonResourceURLs: ['/version', '/healthz*'] },
    { level: 'Request', users: ['robot-ci'], omitStages: ['ResponseStarted'] },
  ],
});

const cases: { name: string; req: Partial<PolicyRequest>; level: string }[] = [
  { name: 'nothing matches: Metadata', req: {}, level: 'Metadata' },
  {
    name: 'secrets stay Metadata even for a delete on prod (first match)',
    req: { verb: 'delete', resource: 'secrets' },
    level: 'Metadata',
  },
  { name: 'deletes on prod', req: { verb: 'delete' }, level: 'RequestResponse' },
  {
    name: 'deletes elsewhere fall through',
    req: { verb: 'delete', cluster: 'dev' },
    level: 'Metadata',
  },
  {
    name: 'deployments/* matches a subresource',
    req: { apiGroup: 'apps', resource: 'deployments', subresource: 'scale' },
    level: 'Request',
  },
  {
    // checker.go: "resource/*" is compared on the resource alone.
    name: 'deployments/* also matches the resource itself, as in the apiserver',
    req: { apiGroup: 'apps', resource: 'deployments' },
    level: 'Request',
  },
  {
    name: 'the group is compared exactly',
    req: { apiGroup: 'extensions', resource: 'deployments', subresource: 'scale' },
    level: 'Metadata',
  },
  {
    name: '*/status matches any status subresource',
    req: { resource: 'nodes', subresource: 'status' },
    level: 'Request',
  },
  { name: 'resourceNames', req: { name: 'special' }, level: 'RequestResponse' },
  {
    name: 'groups and namespaces',
    req: { groups: ['auditors'], namespace: 'kube-system' },
    level: 'Request',
  },
  { name: 'groups without the namespace', req: { groups: ['auditors'] }, level: 'Metadata' },
  {
    name: 'non-resource exact',
    req: { isResourceRequest: false, path: '/version', resource: '' },
    level: 'RequestResponse',
  },
  {
    name: 'non-resource prefix',
    req: { isResourceRequest: false, path: '/healthz/etcd', resource: '' },
    level: 'RequestResponse',
  },
  {
    name: 'non-resource rules never match resource requests',
    req: { path: '/version' },
    level: 'Metadata',
  },
  { name: 'users', req: { user: 'robot-ci' }, level: 'Request' },
];

for (const c of cases) {
  test(`policy: ${c.name}`, () => {
    assert.equal(decideLevel(policy, { ...base, ...c.req }).level, c.level);
  });
}

test('omitStages: the policy-wide list plus the matching rule', () => {
  assert.deepEqual([...decideLevel(policy, base).omitStages], ['RequestReceived']);
  assert.deepEqual([...decideLevel(policy, { ...base, user: 'robot-ci' }).omitStages].sort(), [
    'RequestReceived',
    'ResponseStarted',
  ]);
});

test('the default policy keeps Metadata for everything', () => {
  assert.equal(
    decideLevel(defaultPolicy, { ...base, resource: 'secrets', verb: 'delete' }).level,
    'Metadata',
  );
});

test('validation reports every problem at once; None and omitting ResponseComplete are refused', () => {
  try {
    validatePolicy({
      kind: 'Policy',
      omitStages: ['ResponseComplete'],
      rules: [
        { level: 'None' },
        { level: 'Everything' },
        { level: 'Request', verbs: 'get' },
        { level: 'Request', resource: [] },
        { level: 'Request', resources: [{ group: 1 }] },
      ],
    });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof KgError);
    const problems = err.details!.problems as string[];
    assert.equal(problems.length, 6, problems.join('\n'));
    assert.match(err.message, /ResponseComplete/);
    assert.match(err.message, /None is not allowed/);
    assert.match(err.message, /rules\[3\]\.resource is not a field/);
  }
});

test('a policy file in YAML', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-policy-'));
  const file = join(dir, 'policy.yaml');
  writeFileSync(
    file,
    'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: RequestResponse\n  clusters: [prod]\n  resources:\n  - group: ""\n    resources: [configmaps]\n',
  );
  const p = loadPolicyFile(file);
  assert.equal(decideLevel(p, { ...base, resource: 'configmaps' }).level, 'RequestResponse');
  assert.equal(
    decideLevel(p, { ...base, resource: 'configmaps', cluster: 'dev' }).level,
    'Metadata',
  );
  writeFileSync(file, 'rules: [ {level: None} ]');
  assert.throws(() => loadPolicyFile(file), /None is not allowed/);
});
