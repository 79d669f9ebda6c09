/**
 * The agent Helm chart and the bootstrap YAML render the same objects: a
 * cluster attached with `helm install` looks exactly like one attached with
 * `kubectl apply -f bootstrap.yaml` (same names, labels, RBAC, env, security
 * context). Runs the real `helm template` and compares with bootstrapObjects().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bootstrapObjects, type BootstrapInput } from '../../proxy/clusters/bootstrap-yaml.js';
import { proxyDefaults } from '../../proxy/config.js';
import { parseHostPort } from '../../common/config.js';
import { renderObjects, type K8sObject } from '../support/helm.js';

const ca =
  '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUexample+/=\n"quoted" and: colon # hash\n-----END CERTIFICATE-----\n';

const base: BootstrapInput = {
  cluster: 'eu-1',
  token: 'kgb_Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6',
  tunnelAddress: 'kubegate-tunnel.example.com:8444',
  tunnelServerName: 'kubegate-tunnel.example.com',
  enrollAddress: 'kubegate-enroll.example.com:8445',
  proxyCaPem: ca,
  image: proxyDefaults.agentImage,
  namespace: 'kubegate-system',
};

/** Chart values that say the same as a bootstrap input. */
function valuesFor(input: BootstrapInput, extra: Record<string, unknown> = {}) {
  const at = input.image.lastIndexOf(':');
  return {
    cluster: input.cluster,
    tunnelAddress: input.tunnelAddress,
    tunnelServerName: input.tunnelServerName,
    enrollAddress: input.enrollAddress,
    bootstrap: { token: input.token, proxyCa: input.proxyCaPem },
    image: { repository: input.image.slice(0, at), tag: input.image.slice(at + 1) },
    createNamespace: true,
    ...extra,
  };
}

async function chartObjects(input: BootstrapInput, extra: Record<string, unknown> = {}) {
  const { objects } = await renderObjects('kubegate-agent', {
    release: 'kubegate-agent',
    namespace: input.namespace ?? 'kubegate-system',
    values: [valuesFor(input, extra)],
    skipTests: true,
  });
  return objects;
}

const key = (o: K8sObject) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** Order-free, formatting-free form: objects by kind/namespace/name, plain JSON data. */
function normalize(objects: readonly Record<string, unknown>[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const o of objects) {
    const k = key(o as K8sObject);
    assert.ok(!out.has(k), `duplicate object ${k}`);
    out.set(k, JSON.parse(JSON.stringify(o)) as unknown);
  }
  return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

function assertSameObjects(
  chart: readonly K8sObject[],
  bootstrap: readonly Record<string, unknown>[],
) {
  const c = normalize(chart);
  const b = normalize(bootstrap);
  assert.deepEqual([...c.keys()], [...b.keys()], 'the same set of objects');
  for (const [k, obj] of b) assert.deepEqual(c.get(k), obj, `${k} is identical`);
}

test('the chart renders exactly the bootstrap objects', async () => {
  assertSameObjects(await chartObjects(base), bootstrapObjects(base));
});

test('...for any cluster, namespace, address, token and CA text (property)', async () => {
  const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
  const host = fc.oneof(
    fc.domain(),
    fc.ipV4(),
    fc.ipV6().map((ip) => `[${ip}]`),
  );
  await fc.assert(
    fc.asyncProperty(
      label,
      label,
      host,
      fc.integer({ min: 1, max: 65535 }),
      fc.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      fc.string({ minLength: 1, maxLength: 200 }),
      async (cluster, namespace, h, port, tok, caBody) => {
        const tunnelAddress = `${h}:${port}`;
        const input: BootstrapInput = {
          ...base,
          cluster,
          namespace,
          tunnelAddress,
          enrollAddress: `${h}:${(port % 65535) + 1}`,
          tunnelServerName: parseHostPort(tunnelAddress).host,
          token: `kgb_${tok}`,
          proxyCaPem: `-----BEGIN CERTIFICATE-----\n${caBody}\n-----END CERTIFICATE-----\n`,
        };
        assertSameObjects(await chartObjects(input), bootstrapObjects(input));
      },
    ),
    { numRuns: 12 },
  );
});

test('without tunnelServerName the chart derives it as the CLI does (host of tunnelAddress)', async () => {
  for (const tunnelAddress of ['tunnel.example.com:443', '10.1.2.3:8444', '[2001:db8::7]:8444']) {
    const input = { ...base, tunnelAddress, tunnelServerName: parseHostPort(tunnelAddress).host };
    assertSameObjects(await chartObjects(input, { tunnelServerName: '' }), bootstrapObjects(input));
  }
});

test('installed with --create-namespace (the default), everything but the Namespace', async () => {
  const chart = await chartObjects(base, { createNamespace: false });
  assertSameObjects(
    chart,
    bootstrapObjects(base).filter((o) => o.kind !== 'Namespace'),
  );
});

test('metrics on: the only difference is the metrics env var and port', async () => {
  const chart = await chartObjects(base, { metrics: { enabled: true, port: 9464 } });
  const dep = chart.find((o) => o.kind === 'Deployment')!;
  type Container = { env: { name: string; value?: string }[]; ports?: unknown[] };
  const container = (dep.spec as { template: { spec: { containers: Container[] } } }).template.spec
    .containers[0]!;
  const metricsEnv = container.env.find((e) => e.name === 'KUBEGATE_METRICS_LISTEN');
  assert.equal(metricsEnv?.value, '0.0.0.0:9464');
  assert.deepEqual(container.ports, [{ name: 'metrics', containerPort: 9464, protocol: 'TCP' }]);
  container.env = container.env.filter((e) => e !== metricsEnv);
  delete container.ports;
  assertSameObjects(chart, bootstrapObjects(base));
});

test('workers: the only difference is KUBEGATE_WORKERS; the schema refuses what the agent would', async () => {
  for (const workers of [4, 'auto'] as const) {
    const chart = await chartObjects(base, { workers });
    const dep = chart.find((o) => o.kind === 'Deployment')!;
    type Container = { env: { name: string; value?: string }[] };
    const container = (dep.spec as { template: { spec: { containers: Container[] } } }).template
      .spec.containers[0]!;
    const w = container.env.find((e) => e.name === 'KUBEGATE_WORKERS');
    assert.equal(w?.value, String(workers));
    container.env = container.env.filter((e) => e !== w);
    assertSameObjects(chart, bootstrapObjects(base));
  }
  assertSameObjects(await chartObjects(base, { workers: 1 }), bootstrapObjects(base));
  for (const bad of [0, 'all', '2.5'])
    await assert.rejects(chartObjects(base, { workers: bad }), /workers/, String(bad));
});

test('with bootstrap.existingSecret: no Secret rendered, and every reference points to it', async () => {
  const chart = await chartObjects(base, {
    cluster: '',
    tunnelAddress: '',
    tunnelServerName: '',
    enrollAddress: '',
    bootstrap: { existingSecret: 'my-bootstrap' },
  });
  assert.equal(
    chart.find((o) => o.kind === 'Secret'),
    undefined,
  );
  const text = JSON.stringify(chart.find((o) => o.kind === 'Deployment'));
  assert.ok(!text.includes('kubegate-agent-bootstrap'), 'no reference to the default Secret left');
  assert.equal(text.split('"my-bootstrap"').length - 1, 5, 'four secretKeyRefs and the volume');
});

/** Every verb the agent's ClusterRole and Role grant, as `resource:verb`. */
function grantedVerbs(objects: readonly Record<string, unknown>[]): Set<string> {
  const out = new Set<string>();
  for (const o of objects) {
    if (o.kind !== 'ClusterRole' && o.kind !== 'Role') continue;
    for (const r of o.rules as { resources?: string[]; verbs: string[] }[])
      for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${res}:${v}`);
  }
  return out;
}

test('forwardMode impersonate: the chart renders exactly the bootstrap objects of that mode', async () => {
  const input: BootstrapInput = { ...base, forwardMode: 'impersonate' };
  assertSameObjects(
    await chartObjects(input, { forwardMode: 'impersonate' }),
    bootstrapObjects(input),
  );
});

test('each mode grants only what it uses: impersonation only in impersonate mode, the fence only in jit', () => {
  const jit = bootstrapObjects(base);
  const imp = bootstrapObjects({ ...base, forwardMode: 'impersonate' });
  const j = grantedVerbs(jit);
  const i = grantedVerbs(imp);
  assert.ok(!j.has('users:impersonate') && !j.has('groups:impersonate'), 'JIT: no impersonation');
  assert.ok(![...j].some((v) => v.endsWith(':*')), 'JIT: no * verb');
  assert.ok(i.has('users:impersonate') && i.has('groups:impersonate'));
  for (const v of ['clusterroles:escalate', 'clusterroles:bind', 'clusterrolebindings:create'])
    assert.ok(!i.has(v), `impersonate mode: no ${v}`);
  assert.ok(jit.some((o) => o.kind === 'ValidatingAdmissionPolicy'));
  assert.ok(jit.some((o) => o.kind === 'ValidatingAdmissionPolicyBinding'));
  assert.ok(!imp.some((o) => String(o.kind).startsWith('ValidatingAdmissionPolicy')));
  const env = (objs: readonly Record<string, unknown>[]) =>
    JSON.stringify(objs.find((o) => o.kind === 'Deployment'));
  assert.ok(!env(jit).includes('KUBEGATE_FORWARD_MODE'));
  assert.ok(env(imp).includes('"name":"KUBEGATE_FORWARD_MODE","value":"impersonate"'));
});
