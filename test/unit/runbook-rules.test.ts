/**
 * Derived RBAC rules (proxy/runbooks/rules.ts): per action, merged, sorted,
 * stable, cluster-scoped apart from namespaced, never a wildcard.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRunbook, type RunbookSpec } from '../../proxy/runbooks/definition.js';
import { derivedRules } from '../../proxy/runbooks/rules.js';
import { catalogue } from '../../proxy/runbooks/catalogue.js';

const deployments = { group: 'apps', version: 'v1', resource: 'deployments', namespaced: true };
const statefulsets = { group: 'apps', version: 'v1', resource: 'statefulsets', namespaced: true };
const configmaps = { group: '', version: 'v1', resource: 'configmaps', namespaced: true };
const nodes = { group: '', version: 'v1', resource: 'nodes', namespaced: false };

function spec(steps: unknown[]): RunbookSpec {
  const r = validateRunbook({
    name: 'rb',
    description: '',
    parameters: [],
    targets: { namespace: { fixed: 'ops' } },
    steps: steps.map((s, i) => ({ name: `s${i}`, ...(s as object) })),
  });
  assert.deepEqual(r.problems, []);
  return r.spec!;
}

const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } };
const job = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' } };

test('each action gives exactly its verbs', () => {
  const cases: [unknown, unknown[]][] = [
    [
      { action: 'apply', resource: configmaps, manifest: cm },
      [{ apiGroups: [''], resources: ['configmaps'], verbs: ['create', 'get', 'patch'] }],
    ],
    [
      { action: 'patch', target: { ...deployments, name: 'x' }, patchType: 'merge', patch: {} },
      [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch'] }],
    ],
    [
      { action: 'scale', target: { ...deployments, name: 'x' }, replicas: 1 },
      [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch'] }],
    ],
    [
      { action: 'restart', target: { ...deployments, name: 'x' } },
      [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch'] }],
    ],
    [
      { action: 'delete', target: { ...deployments, name: 'x' } },
      [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['delete', 'get'] }],
    ],
    [
      { action: 'job', manifest: job, timeoutSeconds: 5 },
      [{ apiGroups: ['batch'], resources: ['jobs'], verbs: ['create', 'get'] }],
    ],
    [
      {
        action: 'wait',
        target: { ...deployments, name: 'x' },
        condition: { type: 'Available' },
        timeoutSeconds: 5,
      },
      [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }],
    ],
    [
      { action: 'read', target: { ...deployments, name: 'x' } },
      [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }],
    ],
    [{ action: 'logs', pod: 'p' }, [{ apiGroups: [''], resources: ['pods/log'], verbs: ['get'] }]],
  ];
  for (const [step, namespaced] of cases) {
    assert.deepEqual(derivedRules(spec([step])), { namespaced, cluster: [] }, JSON.stringify(step));
  }
});

test('steps on the same resource merge their verbs; resources with equal verbs share a rule', () => {
  const rules = derivedRules(
    spec([
      { action: 'read', target: { ...deployments, name: 'x' } },
      { action: 'scale', target: { ...statefulsets, name: 'x' }, replicas: 1 },
      { action: 'delete', target: { ...deployments, name: 'x' } },
      { action: 'patch', target: { ...deployments, name: 'x' }, patchType: 'merge', patch: {} },
      { action: 'read', target: { ...configmaps, name: 'c' } },
      { action: 'logs', pod: 'p' },
      { action: 'read', target: { ...deployments, name: 'y' } },
    ]),
  );
  assert.deepEqual(rules, {
    namespaced: [
      { apiGroups: [''], resources: ['configmaps', 'pods/log'], verbs: ['get'] },
      { apiGroups: ['apps'], resources: ['deployments'], verbs: ['delete', 'get', 'patch'] },
      { apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['get', 'patch'] },
    ],
    cluster: [],
  });
});

test('cluster-scoped resources go to cluster, namespaced ones to namespaced', () => {
  const rules = derivedRules(
    spec([
      {
        action: 'patch',
        target: { ...nodes, name: 'n' },
        patchType: 'merge',
        patch: { spec: { unschedulable: true } },
      },
      { action: 'read', target: { ...deployments, name: 'x' } },
    ]),
  );
  assert.deepEqual(rules, {
    namespaced: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }],
    cluster: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] }],
  });
});

test('stable: the order of steps does not change the rules', () => {
  const steps = [
    { action: 'read', target: { ...configmaps, name: 'c' } },
    { action: 'delete', target: { ...statefulsets, name: 'x' } },
    { action: 'scale', target: { ...deployments, name: 'x' }, replicas: 1 },
    { action: 'job', manifest: job, timeoutSeconds: 5 },
    { action: 'read', target: { ...nodes, name: 'n' } },
    { action: 'apply', resource: configmaps, manifest: cm },
  ];
  const want = derivedRules(spec(steps));
  for (let k = 1; k < steps.length; k++) {
    const rotated = [...steps.slice(k), ...steps.slice(0, k)];
    assert.deepEqual(derivedRules(spec(rotated)), want);
    assert.deepEqual(derivedRules(spec(rotated.reverse())), want);
  }
  assert.equal(JSON.stringify(derivedRules(spec(steps))), JSON.stringify(want));
});

test('no wildcard, no resourceNames, nothing beyond what the steps name — catalogue included', () => {
  for (const rb of catalogue) {
    const { namespaced, cluster } = derivedRules(rb);
    for (const r of [...namespaced, ...cluster]) {
      assert.ok(
        !r.verbs.includes('*') && !r.resources!.includes('*') && !r.apiGroups!.includes('*'),
      );
      assert.equal(r.resourceNames, undefined);
      assert.equal(r.nonResourceURLs, undefined);
    }
  }
  const byName = Object.fromEntries(catalogue.map((c) => [c.name, derivedRules(c)]));
  assert.deepEqual(byName['scale-deployment'], {
    namespaced: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch'] }],
    cluster: [],
  });
  assert.deepEqual(byName['cordon-node'], {
    namespaced: [],
    cluster: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'patch'] }],
  });
  assert.deepEqual(byName['delete-pod'], {
    namespaced: [{ apiGroups: [''], resources: ['pods'], verbs: ['delete', 'get'] }],
    cluster: [],
  });
  assert.deepEqual(byName['suspend-cronjob'], {
    namespaced: [{ apiGroups: ['batch'], resources: ['cronjobs'], verbs: ['get', 'patch'] }],
    cluster: [],
  });
});
