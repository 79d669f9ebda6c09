/**
 * Every manifest both charts render, with the minimal and the full values, is
 * accepted by a real kube-apiserver (`kubectl apply --dry-run=server`): schema
 * validation, defaulting and admission — including the "restricted" Pod
 * Security Standard — not just YAML that looks right. The
 * prometheus-operator CRDs the optional monitors need are installed first, in
 * a minimal form (the kinds exist; their schemas are not checked here).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { stringify } from 'yaml';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { renderObjects, type K8sObject } from '../support/helm.js';

function minimalCrd(kind: string, plural: string): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: 'monitoring.coreos.com',
      scope: 'Namespaced',
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
          },
        },
      ],
    },
  };
}

const toYaml = (objects: readonly unknown[]) =>
  objects.map((o) => '---\n' + stringify(o, { lineWidth: 0 })).join('');

let cluster: TestCluster;
let admin: { kubeconfig: string };

describe('rendered charts are accepted by a real apiserver', { timeout: 300_000 }, () => {
  before(async () => {
    cluster = await startCluster();
    admin = { kubeconfig: cluster.kubeconfig };
    await kubectlOk(['apply', '-f', '-'], {
      ...admin,
      input: toYaml([
        minimalCrd('ServiceMonitor', 'servicemonitors'),
        minimalCrd('PodMonitor', 'podmonitors'),
      ]),
    });
    await kubectlOk(
      [
        'wait',
        '--for=condition=Established',
        'crd/servicemonitors.monitoring.coreos.com',
        'crd/podmonitors.monitoring.coreos.com',
        '--timeout=60s',
      ],
      admin,
    );
  });
  after(async () => {
    await cluster?.stop();
  });

  const cases: { chart: 'kubegate' | 'kubegate-agent'; values: string; namespace: string }[] = [
    { chart: 'kubegate', values: 'minimal-values.yaml', namespace: 'kg-min' },
    { chart: 'kubegate', values: 'full-values.yaml', namespace: 'kg-full' },
    { chart: 'kubegate-agent', values: 'minimal-values.yaml', namespace: 'kga-min' },
    { chart: 'kubegate-agent', values: 'full-values.yaml', namespace: 'kga-full' },
  ];
  for (const c of cases) {
    test(`${c.chart} with ci/${c.values}: kubectl apply --dry-run=server accepts every object`, async () => {
      const { yaml, objects } = await renderObjects(c.chart, {
        namespace: c.namespace,
        ciValues: [c.values],
      });
      await kubectlOk(['create', 'namespace', c.namespace], admin);
      // The "restricted" Pod Security Standard: enforced on Pods (the chart
      // tests), warned about for workloads (Deployments, Jobs) — none allowed.
      await kubectlOk(
        [
          'label',
          'namespace',
          c.namespace,
          'pod-security.kubernetes.io/enforce=restricted',
          'pod-security.kubernetes.io/warn=restricted',
        ],
        admin,
      );
      // Pods (chart tests) are admitted only if their ServiceAccount exists:
      // create the rendered ServiceAccounts for real first, as an install would.
      const accounts = objects.filter((o) => o.kind === 'ServiceAccount');
      if (accounts.length)
        await kubectlOk(['apply', '-f', '-'], { ...admin, input: toYaml(accounts) });
      await waitForDefaultServiceAccount(c.namespace);
      const r = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], {
        ...admin,
        input: yaml,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /PodSecurity|violate/, 'no Pod Security warnings');
      const accepted = r.stdout.split('\n').filter((l) => /\(server dry run\)$/.test(l));
      assert.equal(accepted.length, objects.length, `one line per object:\n${r.stdout}`);
      assertAllKinds(objects, r.stdout);
    });
  }
});

/** The controller-manager creates `default` shortly after the namespace; pods need it. */
async function waitForDefaultServiceAccount(ns: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await kubectl(['get', 'serviceaccount', 'default', '-n', ns], admin);
    if (r.code === 0) return;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`no default ServiceAccount in ${ns}`);
}

function assertAllKinds(objects: K8sObject[], out: string): void {
  for (const o of objects) {
    const kind = o.kind.toLowerCase();
    assert.ok(
      new RegExp(`^${kind}[^ ]*/${o.metadata.name} `, 'm').test(out),
      `${o.kind}/${o.metadata.name} accepted:\n${out}`,
    );
  }
}
