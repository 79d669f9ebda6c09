/**
 * The gate's index (proxy/approvals/policy-match.ts GateIndex) is only a
 * shortcut: for any gate policies and any request it must answer exactly
 * what `gatesFor` answers over all policies — same policies, same order.
 * A shortcut that dropped a policy would let a gated change through.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { requestInfo } from '../../proxy/authz/request-info.js';
import { GateIndex, gatesFor } from '../../proxy/approvals/policy-match.js';
import { validatePolicy, type GatePolicy } from '../../proxy/approvals/policy-spec.js';

const resources = [
  'ingresses.networking.k8s.io',
  'ingresses',
  'pods/exec',
  'pods/*',
  'pods',
  'secrets',
  'deployments.apps',
  '*',
];
const verbs = ['get', 'list', 'create', 'update', 'patch', 'delete', '*'];
const namespaces = ['shop', 'kube-system', 'team-a'];

const policyArb = (i: number) =>
  fc
    .record({
      resources: fc.subarray(resources, { minLength: 1, maxLength: 3 }),
      verbs: fc.option(fc.subarray(verbs, { minLength: 1, maxLength: 3 }), { nil: undefined }),
      namespaces: fc.subarray(namespaces, { maxLength: 2 }),
      byName: fc.boolean(),
      env: fc.constantFrom('prod', 'dev'),
    })
    .map((r) => {
      const { policy, problems } = validatePolicy({
        name: `p-${i}`,
        kind: 'gate',
        approvers: { groups: ['leads'] },
        clusters: r.byName ? { names: ['c1'] } : { selector: { matchLabels: { env: r.env } } },
        namespaces: r.namespaces,
        resources: r.resources,
        ...(r.verbs ? { verbs: r.verbs } : {}),
      });
      assert.ok(policy, problems.join('; '));
      return policy as GatePolicy;
    });

const policiesArb = fc
  .integer({ min: 0, max: 12 })
  .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => policyArb(i))));

const requestArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
  path: fc.constantFrom(
    '/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web',
    '/apis/networking.k8s.io/v1/namespaces/team-a/ingresses',
    '/api/v1/namespaces/shop/pods/web-1/exec',
    '/api/v1/namespaces/kube-system/pods/web-1',
    '/api/v1/namespaces/shop/pods/web-1/log',
    '/api/v1/namespaces/shop/secrets/s',
    '/apis/apps/v1/namespaces/shop/deployments/d/scale',
    '/api/v1/namespaces/shop/configmaps/c',
    '/api/v1/nodes/n1',
    '/version',
  ),
  query: fc.constantFrom('', 'dryRun=All', 'fieldManager=kubectl'),
  cluster: fc.constantFrom(
    { name: 'c1', labels: { env: 'dev' } },
    { name: 'c2', labels: { env: 'prod' } },
  ),
});

test('GateIndex.match answers exactly as gatesFor over all policies', () => {
  fc.assert(
    fc.property(policiesArb, requestArb, (policies, r) => {
      const info = requestInfo(r.method, r.path, r.query);
      const want = gatesFor(policies, r.cluster, info, r.query).map((p) => p.name);
      const got = new GateIndex(policies).match(r.cluster, info, r.query).map((p) => p.name);
      assert.deepEqual(got, want);
    }),
    { numRuns: 3000 },
  );
});

test('an ungated read is ruled out without looking at policies', () => {
  const { policy } = validatePolicy({
    name: 'prod-ingress',
    kind: 'gate',
    approvers: { groups: ['leads'] },
    clusters: { selector: { matchLabels: { env: 'prod' } } },
    resources: ['ingresses.networking.k8s.io'],
  });
  const index = new GateIndex([policy as GatePolicy]);
  const prod = { name: 'p', labels: { env: 'prod' } };
  const get = requestInfo('GET', '/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web', '');
  const patch = requestInfo(
    'PATCH',
    '/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web',
    '',
  );
  assert.equal(index.match(prod, get, '').length, 0);
  assert.deepEqual(
    index.match(prod, patch, '').map((p) => p.name),
    ['prod-ingress'],
  );
  assert.equal(index.match({ name: 'd', labels: { env: 'dev' } }, patch, '').length, 0);
});
