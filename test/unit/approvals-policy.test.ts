/**
 * Approval policies: validation, which requests a gate catches, which
 * access requests a policy covers, and when votes add up.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { requestInfo } from '../../proxy/authz/request-info.js';
import type { ClusterRef } from '../../proxy/authz/types.js';
import {
  parseGateResource,
  validatePolicy,
  type AccessPolicy,
  type GatePolicy,
} from '../../proxy/approvals/policy-spec.js';
import {
  accessCovers,
  gatesFor,
  isDryRun,
  mayDecide,
  outcome,
  selectorImplies,
  type Person,
  type Vote,
} from '../../proxy/approvals/policy-match.js';

function gate(raw: Record<string, unknown>): GatePolicy {
  const { policy, problems } = validatePolicy({
    name: 'g',
    kind: 'gate',
    approvers: { groups: ['leads'] },
    clusters: { selector: { matchLabels: { env: 'prod' } } },
    ...raw,
  });
  assert.deepEqual(problems, []);
  return policy as GatePolicy;
}

function access(raw: Record<string, unknown>): AccessPolicy {
  const { policy, problems } = validatePolicy({
    name: 'a',
    kind: 'access',
    approvers: { groups: ['leads'] },
    roles: ['edit'],
    clusters: { selector: { matchLabels: { env: 'prod' } } },
    ...raw,
  });
  assert.deepEqual(problems, []);
  return policy as AccessPolicy;
}

const prod: ClusterRef = { name: 'eu-prod', labels: { env: 'prod', region: 'eu' } };
const dev: ClusterRef = { name: 'eu-dev', labels: { env: 'dev' } };

describe('policy validation', () => {
  test('reports every problem at once', () => {
    const { policy, problems } = validatePolicy({
      name: 'Not Valid',
      kind: 'gate',
      approvers: { groups: [], count: 0 },
      clusters: {},
      resources: ['in valid'],
      verbs: [],
      window: '1y',
      extra: 1,
    });
    assert.equal(policy, undefined);
    for (const re of [
      /unknown field/,
      /^name/,
      /approvers.groups/,
      /approvers.count/,
      /^clusters/,
      /^resources/,
      /^verbs/,
      /^window/,
    ])
      assert.ok(
        problems.some((p) => re.test(p)),
        `${re} in ${problems.join(' | ')}`,
      );
  });
  test('defaults: mutating verbs, one approver, 15 minute window', () => {
    const g = gate({ resources: ['ingresses.networking.k8s.io'] });
    assert.deepEqual(g.verbs, ['create', 'update', 'patch', 'delete', 'deletecollection']);
    assert.equal(g.approvers.count, 1);
    assert.equal(g.window, 900);
  });
  test('an unknown kind is refused', () => {
    assert.match(validatePolicy({ kind: 'other' }).problems[0]!, /kind/);
  });
  const resources: [string, ReturnType<typeof parseGateResource>][] = [
    ['ingresses', { resource: 'ingresses', subresource: '' }],
    [
      'ingresses.networking.k8s.io',
      { resource: 'ingresses', group: 'networking.k8s.io', subresource: '' },
    ],
    ['pods/exec', { resource: 'pods', subresource: 'exec' }],
    ['deployments.apps/*', { resource: 'deployments', group: 'apps', subresource: '*' }],
    ['*', { resource: '*', subresource: '*' }],
    ['Pods', undefined],
    ['pods/', undefined],
  ];
  for (const [text, want] of resources)
    test(`resource ${JSON.stringify(text)}`, () => assert.deepEqual(parseGateResource(text), want));
});

describe('gatesFor', () => {
  const ingress = gate({ resources: ['ingresses.networking.k8s.io'] });
  const exec = gate({ name: 'x', resources: ['pods/exec'], namespaces: ['shop'] });
  const all = [ingress, exec];
  const ing = '/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web';
  const rows: {
    name: string;
    method: string;
    path: string;
    query?: string;
    cluster?: typeof prod;
    want: string[];
  }[] = [
    { name: 'patch an ingress in prod', method: 'PATCH', path: ing, want: ['g'] },
    {
      name: 'create an ingress',
      method: 'POST',
      path: '/apis/networking.k8s.io/v1/namespaces/shop/ingresses',
      want: ['g'],
    },
    { name: 'delete an ingress', method: 'DELETE', path: ing, want: ['g'] },
    { name: 'read an ingress', method: 'GET', path: ing, want: [] },
    {
      name: 'watch ingresses',
      method: 'GET',
      path: '/apis/networking.k8s.io/v1/ingresses',
      query: 'watch=1',
      want: [],
    },
    { name: 'same change in dev', method: 'PATCH', path: ing, cluster: dev, want: [] },
    { name: 'dry run passes', method: 'PATCH', path: ing, query: 'dryRun=All', want: [] },
    {
      name: 'a bogus dryRun value is gated',
      method: 'PATCH',
      path: ing,
      query: 'dryRun=All&dryRun=x',
      want: ['g'],
    },
    {
      name: 'same resource name in another group',
      method: 'PATCH',
      path: '/apis/example.com/v1/namespaces/shop/ingresses/web',
      want: [],
    },
    {
      name: 'the status subresource is not the object',
      method: 'PUT',
      path: `${ing}/status`,
      want: [],
    },
    {
      name: 'exec in the listed namespace',
      method: 'POST',
      path: '/api/v1/namespaces/shop/pods/p/exec',
      query: 'command=sh',
      want: ['x'],
    },
    {
      name: 'exec over WebSocket (GET) is create too',
      method: 'GET',
      path: '/api/v1/namespaces/shop/pods/p/exec',
      query: 'command=sh',
      want: ['x'],
    },
    {
      name: 'exec elsewhere',
      method: 'POST',
      path: '/api/v1/namespaces/other/pods/p/exec',
      want: [],
    },
    { name: 'non-resource path', method: 'POST', path: '/version', want: [] },
  ];
  for (const r of rows)
    test(r.name, () => {
      const info = requestInfo(r.method, r.path, r.query ?? '');
      assert.deepEqual(
        gatesFor(all, r.cluster ?? prod, info, r.query ?? '').map((g) => g.name),
        r.want,
      );
    });
  test('a resource without group matches it in any group; "*" verbs match reads', () => {
    const any = gate({ resources: ['secrets'], verbs: ['*'] });
    const info = requestInfo('GET', '/api/v1/namespaces/a/secrets/s', '');
    assert.equal(gatesFor([any], prod, info, '').length, 1);
  });
  test('isDryRun', () => {
    assert.equal(isDryRun('dryRun=All'), true);
    assert.equal(isDryRun('fieldManager=x&dryRun=All'), true);
    assert.equal(isDryRun(''), false);
    assert.equal(isDryRun('dryRun=all'), false);
  });
});

describe('selectorImplies (sound: never yes when some cluster could escape)', () => {
  const rows: [string, object, object, boolean][] = [
    ['same labels', { matchLabels: { env: 'prod' } }, { matchLabels: { env: 'prod' } }, true],
    [
      'narrower',
      { matchLabels: { env: 'prod', region: 'eu' } },
      { matchLabels: { env: 'prod' } },
      true,
    ],
    ['wider', { matchLabels: {} }, { matchLabels: { env: 'prod' } }, false],
    ['other value', { matchLabels: { env: 'dev' } }, { matchLabels: { env: 'prod' } }, false],
    [
      'In subset',
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod'] }] },
      { matchLabels: { env: 'prod' } },
      true,
    ],
    [
      'In wider',
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'dev'] }] },
      { matchLabels: { env: 'prod' } },
      false,
    ],
    [
      'label into In',
      { matchLabels: { env: 'prod' } },
      { matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'stage'] }] },
      true,
    ],
    [
      'Exists from label',
      { matchLabels: { env: 'x' } },
      { matchExpressions: [{ key: 'env', operator: 'Exists' }] },
      true,
    ],
    ['Exists missing', {}, { matchExpressions: [{ key: 'env', operator: 'Exists' }] }, false],
    [
      'NotIn same',
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev', 'x'] }] },
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
      true,
    ],
    [
      'NotIn from pinned',
      { matchLabels: { env: 'prod' } },
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
      true,
    ],
    [
      'NotIn missing',
      {},
      { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
      false,
    ],
    ['DoesNotExist', {}, { matchExpressions: [{ key: 'pci', operator: 'DoesNotExist' }] }, false],
    ['anything implies {}', { matchLabels: { a: 'b' } }, {}, true],
  ];
  for (const [name, a, b, want] of rows)
    test(name, () => assert.equal(selectorImplies(a, b), want));
});

describe('accessCovers', () => {
  const me: Person = { name: 'dev', kind: 'user', groups: ['developers'] };
  const labels = new Map([
    [prod.name, prod.labels],
    [dev.name, dev.labels],
  ]);
  const p = access({ maxDuration: '1h', namespaces: ['shop', 'cart'] });
  const ask = (o: object) => ({
    role: 'edit',
    clusters: { selector: { matchLabels: { env: 'prod' } } },
    namespaces: ['shop'],
    durationSeconds: 900,
    ...o,
  });
  const rows: [string, object, boolean][] = [
    ['the covered case', {}, true],
    ['another role', { role: 'admin' }, false],
    ['too long', { durationSeconds: 7200 }, false],
    ['cluster-wide when the policy lists namespaces', { namespaces: [] }, false],
    ['a namespace outside the policy', { namespaces: ['shop', 'other'] }, false],
    ['a named prod cluster', { clusters: { names: ['eu-prod'] } }, true],
    ['a named dev cluster', { clusters: { names: ['eu-prod', 'eu-dev'] } }, false],
    ['an unknown cluster', { clusters: { names: ['nowhere'] } }, false],
    ['a wider selector', { clusters: { selector: {} } }, false],
  ];
  for (const [name, o, want] of rows)
    test(name, () => assert.equal(accessCovers(p, ask(o), me, labels), want));
  test('requester groups restrict who may ask', () => {
    const only = access({ requesterGroups: ['sre'] });
    assert.equal(accessCovers(only, ask({ namespaces: [] }), me, labels), false);
    assert.equal(
      accessCovers(only, ask({ namespaces: [] }), { ...me, groups: ['sre'] }, labels),
      true,
    );
  });
});

describe('votes', () => {
  const requester: Person = { name: 'dev', kind: 'user', groups: ['developers', 'leads'] };
  const one = access({});
  const two = access({ name: 'two', approvers: { groups: ['leads'], count: 2 } });
  const v = (approver: string, decision: Vote['decision'], groups = ['leads']): Vote => ({
    approver,
    approverKind: 'user',
    groups,
    decision,
  });
  test('never oneself, even as a member of the approver group', () => {
    assert.equal(mayDecide(one, requester, requester), false);
    assert.equal(outcome([one], [v('dev', 'approve')], requester), 'pending');
    assert.equal(outcome([one], [v('dev', 'deny')], requester), 'pending');
  });
  test('a robot of the same name is someone else', () => {
    assert.equal(
      mayDecide(one, { name: 'dev', kind: 'robot', groups: ['leads'] }, requester),
      true,
    );
  });
  test('outsiders do not count', () => {
    assert.equal(outcome([one], [v('eve', 'approve', ['other'])], requester), 'pending');
    assert.equal(outcome([one], [v('eve', 'deny', ['other'])], requester), 'pending');
  });
  test('one approval under a one-approver policy', () => {
    assert.equal(outcome([one], [v('lead', 'approve')], requester), 'approved');
  });
  test('two distinct approvers under a two-approver policy', () => {
    assert.equal(outcome([two], [v('l1', 'approve')], requester), 'pending');
    assert.equal(outcome([two], [v('l1', 'approve'), v('l1', 'approve')], requester), 'pending');
    assert.equal(outcome([two], [v('l1', 'approve'), v('l2', 'approve')], requester), 'approved');
  });
  test('one entitled denial ends it', () => {
    assert.equal(outcome([two], [v('l1', 'approve'), v('l2', 'deny')], requester), 'denied');
  });
});
