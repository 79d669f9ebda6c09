/**
 * Rendering (proxy/runbooks/render.ts): each action's API call exactly,
 * typed substitution, the namespace forced, nothing of dryRun, and
 * conditionMet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRunbook, type RunbookSpec } from '../../proxy/runbooks/definition.js';
import { validateParams } from '../../proxy/runbooks/params.js';
import { conditionMet, renderRun, type RenderedStep } from '../../proxy/runbooks/render.js';

const deployments = { group: 'apps', version: 'v1', resource: 'deployments', namespaced: true };
const nodes = { group: '', version: 'v1', resource: 'nodes', namespaced: false };
const now = '2026-12-06T20:00:00Z';

function spec(steps: unknown[], extra: Record<string, unknown> = {}): RunbookSpec {
  const r = validateRunbook({
    name: 'rb',
    description: '',
    parameters: [
      { name: 'deployment', type: 'string', required: true },
      { name: 'replicas', type: 'integer', minimum: 0, maximum: 50, default: 2 },
      { name: 'paused', type: 'boolean', default: false },
      { name: 'ns', type: 'string', required: true },
      { name: 'note', type: 'string', default: 'hello' },
    ],
    targets: { namespace: { param: 'ns' } },
    steps,
    ...extra,
  });
  assert.deepEqual(r.problems, []);
  return r.spec!;
}

function render(s: RunbookSpec, params: Record<string, unknown> = {}): RenderedStep[] {
  const p = validateParams(s, { deployment: 'web', ns: 'team-a', ...params });
  assert.deepEqual(p.problems, []);
  const r = renderRun(s, p.values!, p.namespace, { now });
  assert.deepEqual(r.problems, []);
  return r.steps!;
}

const path = '/apis/apps/v1/namespaces/team-a/deployments/web';

test('apply: server-side apply PATCH with the field manager, force, and the namespace forced', () => {
  const s = spec([
    {
      name: 'cm',
      action: 'apply',
      resource: { group: '', version: 'v1', resource: 'configmaps', namespaced: true },
      manifest: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: {
          name: 'cfg-{{deployment}}',
          namespace: 'kube-system',
          labels: { app: '{{deployment}}' },
        },
        data: { replicas: 'r={{replicas}}', where: '{{namespace}}', note: '{{note}}' },
      },
    },
  ]);
  const [step] = render(s, { replicas: 3 });
  assert.deepEqual(step, {
    index: 0,
    name: 'cm',
    action: 'apply',
    onFailure: 'stop',
    namespace: 'team-a',
    objectPath: '/api/v1/namespaces/team-a/configmaps/cfg-web',
    call: {
      method: 'PATCH',
      path: '/api/v1/namespaces/team-a/configmaps/cfg-web',
      query: 'fieldManager=kubegate-runbook&force=true',
      contentType: 'application/apply-patch+yaml',
      body: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cfg-web', namespace: 'team-a', labels: { app: 'web' } },
        data: { replicas: 'r=3', where: 'team-a', note: 'hello' },
      },
    },
  });
});

test('apply of a cluster-scoped object: no namespace in path or body', () => {
  const s = spec([
    {
      name: 'pc',
      action: 'apply',
      resource: {
        group: 'scheduling.k8s.io',
        version: 'v1',
        resource: 'priorityclasses',
        namespaced: false,
      },
      manifest: {
        apiVersion: 'scheduling.k8s.io/v1',
        kind: 'PriorityClass',
        metadata: { name: 'high' },
        value: '{{replicas}}',
      },
    },
  ]);
  const [step] = render(s);
  assert.equal(step!.namespace, undefined);
  assert.equal(step!.call!.path, '/apis/scheduling.k8s.io/v1/priorityclasses/high');
  assert.deepEqual(step!.call!.body, {
    apiVersion: 'scheduling.k8s.io/v1',
    kind: 'PriorityClass',
    metadata: { name: 'high' },
    value: 2,
  });
});

test('patch: merge and strategic content types; whole placeholders keep their type', () => {
  const s = spec([
    {
      name: 'm',
      action: 'patch',
      target: { ...deployments, name: '{{deployment}}' },
      patchType: 'merge',
      patch: {
        spec: { paused: '{{paused}}', replicas: '{{replicas}}', list: ['{{deployment}}', 1, null] },
      },
    },
    {
      name: 's',
      action: 'patch',
      onFailure: 'continue',
      target: { ...deployments, name: 'web' },
      patchType: 'strategic',
      patch: { metadata: { annotations: { a: '{{replicas}} pods', b: '{{paused}}' } } },
    },
  ]);
  const [m, st] = render(s, { replicas: '7', paused: 'true' });
  assert.deepEqual(m!.call, {
    method: 'PATCH',
    path,
    query: '',
    contentType: 'application/merge-patch+json',
    body: { spec: { paused: true, replicas: 7, list: ['web', 1, null] } },
  });
  assert.equal(st!.onFailure, 'continue');
  assert.deepEqual(st!.call, {
    method: 'PATCH',
    path,
    query: '',
    contentType: 'application/strategic-merge-patch+json',
    body: { metadata: { annotations: { a: '7 pods', b: true } } }, // whole: typed, even here
  });
});

test('scale: a merge patch of spec.replicas on the object itself (not the scale subresource)', () => {
  const s = spec([
    {
      name: 'a',
      action: 'scale',
      target: { ...deployments, name: '{{deployment}}' },
      replicas: '{{replicas}}',
    },
    { name: 'b', action: 'scale', target: { ...deployments, name: 'other' }, replicas: 0 },
  ]);
  const [a, b] = render(s, { replicas: 3 });
  assert.deepEqual(a!.call, {
    method: 'PATCH',
    path,
    query: '',
    contentType: 'application/merge-patch+json',
    body: { spec: { replicas: 3 } },
  });
  assert.equal(typeof (a!.call!.body as { spec: { replicas: unknown } }).spec.replicas, 'number');
  assert.deepEqual(b!.call!.body, { spec: { replicas: 0 } });
  assert.equal(b!.objectPath, '/apis/apps/v1/namespaces/team-a/deployments/other');
});

test('restart: a strategic merge patch of the pod template annotation with the time passed in', () => {
  const s = spec([
    { name: 'r', action: 'restart', target: { ...deployments, name: '{{deployment}}' } },
  ]);
  const [r] = render(s);
  assert.deepEqual(r!.call, {
    method: 'PATCH',
    path,
    query: '',
    contentType: 'application/strategic-merge-patch+json',
    body: {
      spec: {
        template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': now } } },
      },
    },
  });
  const p = validateParams(s, { deployment: 'web', ns: 'team-a' });
  const without = renderRun(s, p.values!, p.namespace);
  assert.deepEqual(without.problems, ['steps[0]: a restart needs the time (render option now)']);
});

test('delete: DELETE with background propagation', () => {
  const s = spec([
    {
      name: 'd',
      action: 'delete',
      target: {
        group: '',
        version: 'v1',
        resource: 'pods',
        namespaced: true,
        name: '{{deployment}}-0',
      },
    },
  ]);
  const [d] = render(s);
  assert.deepEqual(d!.call, {
    method: 'DELETE',
    path: '/api/v1/namespaces/team-a/pods/web-0',
    query: 'propagationPolicy=Background',
  });
  assert.equal(d!.poll, undefined);
  assert.equal(d!.read, undefined);
});

test('job: POST to the jobs collection, then poll the job for Complete', () => {
  const s = spec([
    {
      name: 'j',
      action: 'job',
      timeoutSeconds: 300,
      manifest: {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'migrate-{{deployment}}' },
        spec: {
          template: {
            spec: { containers: [{ name: 'm', image: 'img', args: ['--n={{replicas}}'] }] },
          },
        },
      },
    },
  ]);
  const [j] = render(s);
  assert.deepEqual(j!.call, {
    method: 'POST',
    path: '/apis/batch/v1/namespaces/team-a/jobs',
    query: '',
    contentType: 'application/json',
    body: {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'migrate-web', namespace: 'team-a' },
      spec: { template: { spec: { containers: [{ name: 'm', image: 'img', args: ['--n=2'] }] } } },
    },
  });
  assert.deepEqual(j!.poll, {
    call: { method: 'GET', path: '/apis/batch/v1/namespaces/team-a/jobs/migrate-web', query: '' },
    timeoutSeconds: 300,
    condition: { type: 'Complete', status: 'True' },
  });
  assert.equal(j!.objectPath, '/apis/batch/v1/namespaces/team-a/jobs/migrate-web');
});

test('wait, read and logs: GETs only, no change', () => {
  const s = spec([
    {
      name: 'w',
      action: 'wait',
      target: { ...deployments, name: '{{deployment}}' },
      condition: { type: 'Available' },
      timeoutSeconds: 90,
    },
    { name: 'r', action: 'read', target: { ...nodes, name: 'node-1.example' } },
    { name: 'l', action: 'logs', pod: '{{deployment}}-0', container: 'app', tailLines: 50 },
    { name: 'l2', action: 'logs', pod: 'p' },
  ]);
  const [w, r, l, l2] = render(s);
  assert.equal(w!.call, undefined);
  assert.deepEqual(w!.poll, {
    call: { method: 'GET', path, query: '' },
    timeoutSeconds: 90,
    condition: { type: 'Available', status: 'True' },
  });
  assert.equal(r!.call, undefined);
  assert.equal(r!.namespace, undefined);
  assert.deepEqual(r!.read, { method: 'GET', path: '/api/v1/nodes/node-1.example', query: '' });
  assert.equal(l!.call, undefined);
  assert.equal(l!.objectPath, '/api/v1/namespaces/team-a/pods/web-0');
  assert.deepEqual(l!.read, {
    method: 'GET',
    path: '/api/v1/namespaces/team-a/pods/web-0/log',
    query: 'container=app&tailLines=50',
  });
  assert.deepEqual(l2!.read, {
    method: 'GET',
    path: '/api/v1/namespaces/team-a/pods/p/log',
    query: '',
  });
});

test('dryRun is left to the caller: no rendered query mentions it', () => {
  const s = spec([
    { name: 'a', action: 'scale', target: { ...deployments, name: 'x' }, replicas: 1 },
    { name: 'b', action: 'delete', target: { ...deployments, name: 'x' } },
    {
      name: 'c',
      action: 'apply',
      resource: deployments,
      manifest: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } },
    },
  ]);
  for (const st of render(s)) assert.ok(!/dryRun/i.test(st.call!.query), st.call!.query);
});

test('a fixed namespace is the run namespace whatever the manifest says', () => {
  const s = spec(
    [
      {
        name: 'a',
        action: 'apply',
        resource: deployments,
        manifest: {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'x', namespace: 'kube-system' },
        },
      },
    ],
    { targets: { namespace: { fixed: 'ops' } } },
  );
  const p = validateParams(s, { deployment: 'web', ns: 'ignored-param' });
  assert.equal(p.namespace, 'ops');
  const [a] = renderRun(s, p.values!, p.namespace).steps!;
  assert.equal(a!.call!.path, '/apis/apps/v1/namespaces/ops/deployments/x');
  assert.equal((a!.call!.body as { metadata: { namespace: string } }).metadata.namespace, 'ops');
});

test('render problems: bad names, a missing value, a missing namespace — all at once', () => {
  const s = spec([
    { name: 'a', action: 'read', target: { ...deployments, name: '{{deployment}}' } },
    { name: 'b', action: 'read', target: { ...deployments, name: 'x-{{note}}' } },
    { name: 'c', action: 'logs', pod: 'p', container: '{{note}}' },
  ]);
  const r = renderRun(s, { deployment: '../secrets', note: 'A/B', ns: 'team-a' }, 'team-a');
  assert.equal(r.steps, undefined);
  assert.deepEqual(r.problems, [
    `steps[0].target.name: "../secrets" is not a valid object name (a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253)`,
    `steps[1].target.name: "x-A/B" is not a valid object name (a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253)`,
    'steps[2].container: "A/B" is not a container name (a DNS label)',
  ]);
  const missing = renderRun(s, { ns: 'team-a', note: 'n' }, undefined);
  assert.ok(missing.problems.includes('steps[0].target.name: parameter deployment has no value'));
  assert.ok(
    missing.problems.some((p) =>
      /^steps\[0\]\.target: deployments are namespaced and the run has no valid namespace/.test(p),
    ),
  );
  const badNs = renderRun(s, { deployment: 'web', note: 'n', ns: 'x' }, 'a/b');
  assert.ok(badNs.problems.some((p) => /no valid namespace/.test(p)));
});

test('conditionMet: yes, no, failed', () => {
  const complete = { type: 'Complete', status: 'True' };
  const job = (conds: unknown) => ({ status: { conditions: conds } });
  assert.equal(conditionMet(job([{ type: 'Complete', status: 'True' }]), complete), 'yes');
  assert.equal(conditionMet(job([{ type: 'Complete', status: 'False' }]), complete), 'no');
  assert.equal(conditionMet(job([{ type: 'Failed', status: 'True' }]), complete), 'failed');
  assert.equal(conditionMet(job([{ type: 'Failed', status: 'False' }]), complete), 'no');
  assert.equal(
    conditionMet(job([{ type: 'Failed', status: 'True' }]), { type: 'Failed', status: 'True' }),
    'yes',
  );
  assert.equal(conditionMet(job([]), complete), 'no');
  assert.equal(conditionMet({ status: {} }, complete), 'no');
  assert.equal(conditionMet(null, complete), 'no');
  assert.equal(conditionMet('x', complete), 'no');
  assert.equal(
    conditionMet(job([null, 'x', { type: 'Available', status: 'True' }]), {
      type: 'Available',
      status: 'True',
    }),
    'yes',
  );
  assert.equal(
    conditionMet(job([{ type: 'Available', status: 'True' }]), {
      type: 'Available',
      status: 'False',
    }),
    'no',
  );
});
