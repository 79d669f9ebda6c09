/**
 * The built-in catalogue (proxy/runbooks/catalogue.ts): every entry is a
 * valid runbook, has a description, and renders with sample parameters into
 * the calls its name promises.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateRunbook } from '../../proxy/runbooks/definition.js';
import { validateParams } from '../../proxy/runbooks/params.js';
import { renderRun, type RenderedStep } from '../../proxy/runbooks/render.js';
import { catalogue } from '../../proxy/runbooks/catalogue.js';

const samples: Record<string, Record<string, unknown>> = {
  'scale-deployment': { namespace: 'platform-demo', deployment: 'demo-app', replicas: 3 },
  'rollout-restart': { namespace: 'platform-demo', deployment: 'demo-app' },
  'set-image': {
    namespace: 'platform-demo',
    deployment: 'demo-app',
    container: 'app',
    image: 'registry.example.com:5000/team/app:1.4.2',
  },
  'delete-pod': { namespace: 'platform-demo', pod: 'demo-app-7d9f-x2' },
  'cordon-node': { node: 'kwok-node-1' },
  'uncordon-node': { node: 'kwok-node-1' },
  'suspend-cronjob': { namespace: 'platform-demo', cronjob: 'nightly' },
  'resume-cronjob': { namespace: 'platform-demo', cronjob: 'nightly' },
};

function run(name: string, params: Record<string, unknown> = samples[name]!): RenderedStep[] {
  const rb = catalogue.find((c) => c.name === name)!;
  const p = validateParams(rb, params);
  assert.deepEqual(p.problems, [], name);
  const r = renderRun(rb, p.values!, p.namespace, { now: '2026-12-06T20:00:00Z' });
  assert.deepEqual(r.problems, [], name);
  return r.steps!;
}

test('the catalogue holds the promised runbooks, each valid and described', () => {
  assert.deepEqual(catalogue.map((c) => c.name).sort(), Object.keys(samples).sort());
  for (const rb of catalogue) {
    const v = validateRunbook(rb);
    assert.deepEqual(v.problems, [], rb.name);
    assert.deepEqual(v.spec, rb);
    assert.ok(rb.description.length >= 20 && rb.description.length <= 200, rb.name);
    for (const p of rb.parameters) assert.ok(p.description, `${rb.name}.${p.name}`);
  }
});

test('every entry renders with sample parameters', () => {
  for (const name of Object.keys(samples)) assert.ok(run(name).length > 0, name);
});

test('scale-deployment: the issue scenario', () => {
  assert.deepEqual(run('scale-deployment'), [
    {
      index: 0,
      name: 'scale',
      action: 'scale',
      onFailure: 'stop',
      namespace: 'platform-demo',
      objectPath: '/apis/apps/v1/namespaces/platform-demo/deployments/demo-app',
      call: {
        method: 'PATCH',
        path: '/apis/apps/v1/namespaces/platform-demo/deployments/demo-app',
        query: '',
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas: 3 } },
      },
    },
  ]);
  const rb = catalogue.find((c) => c.name === 'scale-deployment')!;
  for (const replicas of [-1, 101, '1e2', 2.5]) {
    const p = validateParams(rb, { ...samples['scale-deployment'], replicas });
    assert.equal(p.problems.length, 1, `${replicas}: ${p.problems.join('; ')}`);
  }
  assert.deepEqual(validateParams(rb, { deployment: 'x', replicas: 1 }).problems, [
    'parameters.namespace: required',
  ]);
});

test('set-image: a strategic patch of one container; the image pattern accepts real references only', () => {
  const [s] = run('set-image');
  assert.deepEqual(s!.call!.body, {
    spec: {
      template: {
        spec: { containers: [{ name: 'app', image: 'registry.example.com:5000/team/app:1.4.2' }] },
      },
    },
  });
  assert.equal(s!.call!.contentType, 'application/strategic-merge-patch+json');
  const rb = catalogue.find((c) => c.name === 'set-image')!;
  const base = samples['set-image']!;
  for (const image of [
    'nginx',
    'nginx:1.27',
    'library/nginx:latest',
    'ghcr.io/org/app@sha256:' + 'a'.repeat(64),
    'localhost:5000/a/b_c/d__e:v1.0-rc.1',
  ]) {
    assert.deepEqual(validateParams(rb, { ...base, image }).problems, [], image);
  }
  for (const image of [
    '',
    'Nginx',
    'nginx:',
    'a b',
    'nginx\n',
    'x:1"}',
    'nginx:1;rm -rf /',
    '../x',
  ]) {
    assert.equal(validateParams(rb, { ...base, image }).problems.length, 1, JSON.stringify(image));
  }
});

test('node runbooks touch the node and no namespace; cronjob ones flip spec.suspend', () => {
  const [c] = run('cordon-node');
  assert.equal(c!.namespace, undefined);
  assert.deepEqual(
    { path: c!.call!.path, body: c!.call!.body },
    { path: '/api/v1/nodes/kwok-node-1', body: { spec: { unschedulable: true } } },
  );
  assert.deepEqual(run('uncordon-node')[0]!.call!.body, { spec: { unschedulable: false } });
  const rb = catalogue.find((x) => x.name === 'cordon-node')!;
  assert.deepEqual(validateParams(rb, samples['cordon-node'], 'default').problems, [
    'namespace: this runbook touches no namespace; do not give one',
  ]);
  const [s] = run('suspend-cronjob');
  assert.equal(s!.call!.path, '/apis/batch/v1/namespaces/platform-demo/cronjobs/nightly');
  assert.deepEqual(s!.call!.body, { spec: { suspend: true } });
  assert.deepEqual(run('resume-cronjob')[0]!.call!.body, { spec: { suspend: false } });
});

test('rollout-restart and delete-pod', () => {
  const [r] = run('rollout-restart');
  assert.deepEqual(r!.call!.body, {
    spec: {
      template: {
        metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': '2026-12-06T20:00:00Z' } },
      },
    },
  });
  const [d] = run('delete-pod');
  assert.deepEqual(d!.call, {
    method: 'DELETE',
    path: '/api/v1/namespaces/platform-demo/pods/demo-app-7d9f-x2',
    query: 'propagationPolicy=Background',
  });
});
