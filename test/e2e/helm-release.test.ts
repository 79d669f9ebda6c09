/**
 * helm 4 (the real binary) through kubegate with a fleet kubeconfig: install --wait, upgrade,
 * rollback and uninstall of a small chart (a ConfigMap and a Deployment whose Pods run on kwok
 * nodes, so --wait really watches a rollout). After each step the release state is read from
 * the apiserver directly with the admin kubeconfig: helm's release Secrets and their status
 * labels, the ConfigMap's data and the Deployment's ready replicas. A namespace the user has no
 * grant in is refused by kubegate.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { helm } from '../support/helm.js';

const NS = 'apps';
const REL = 'tiny';

let stack: Stack;
let admin: { kubeconfig: string };
let userConfig: string;
let chart: string;

/** A chart of our own: a ConfigMap with a message and a Deployment of `replicas` pods. */
function writeChart(dir: string): string {
  const root = join(dir, 'tiny');
  mkdirSync(join(root, 'templates'), { recursive: true });
  writeFileSync(join(root, 'Chart.yaml'), 'apiVersion: v2\nname: tiny\nversion: 0.1.0\n');
  writeFileSync(join(root, 'values.yaml'), 'message: first\nreplicas: 1\n');
  writeFileSync(
    join(root, 'templates', 'configmap.yaml'),
    [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-cfg',
      'data:',
      '  message: {{ .Values.message | quote }}',
      '',
    ].join('\n'),
  );
  writeFileSync(
    join(root, 'templates', 'deployment.yaml'),
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}-app',
      'spec:',
      '  replicas: {{ .Values.replicas }}',
      '  selector:',
      '    matchLabels: {app: {{ .Release.Name }}}',
      '  template:',
      '    metadata:',
      '      labels: {app: {{ .Release.Name }}}',
      '    spec:',
      '      containers:',
      '        - name: app',
      '          image: busybox',
      '',
    ].join('\n'),
  );
  return root;
}

/** helm through kubegate; must succeed. */
async function helmOk(args: string[]): Promise<string> {
  const r = await helm(['--kubeconfig', userConfig, '-n', NS, ...args], 180_000);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** helm's release records on the cluster: revision → status label, read directly. */
async function releaseRecords(): Promise<Map<number, string>> {
  const out = await kubectlOk(
    ['-n', NS, 'get', 'secrets', '-l', `owner=helm,name=${REL}`, '-o', 'json'],
    admin,
  );
  const items = (JSON.parse(out) as { items: { metadata: { labels: Record<string, string> } }[] })
    .items;
  return new Map(items.map((s) => [Number(s.metadata.labels.version), s.metadata.labels.status!]));
}

async function liveState(): Promise<{ message: string; replicas: number; ready: number }> {
  const message = await kubectlOk(
    ['-n', NS, 'get', 'configmap', `${REL}-cfg`, '-o', 'jsonpath={.data.message}'],
    admin,
  );
  const d = JSON.parse(
    await kubectlOk(['-n', NS, 'get', 'deployment', `${REL}-app`, '-o', 'json'], admin),
  ) as { spec: { replicas: number }; status: { readyReplicas?: number } };
  return { message, replicas: d.spec.replicas, ready: d.status.readyReplicas ?? 0 };
}

describe(
  'helm 4 through kubegate: install, upgrade, rollback, uninstall',
  { timeout: 600_000 },
  () => {
    before(async () => {
      stack = await startStack({
        clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 1 }],
        log: (m) => process.stderr.write(`# ${m}\n`),
      });
      admin = { kubeconfig: stack.cluster.kubeconfig };
      await kubectlOk(['create', 'namespace', NS], admin);
      await kubectlOk(['create', 'namespace', 'elsewhere'], admin);
      await grant(stack, { users: ['hana'], role: 'admin', clusters: ['dev'], namespaces: [NS] });
      userConfig = await stack.kubeconfig('hana');
      chart = writeChart(mkdtempSync(join(stack.dir, 'chart-')));
    });
    after(async () => {
      await stack?.stop();
    });

    test('install --wait: revision 1 deployed, its pods ready', async () => {
      await helmOk(['install', REL, chart, '--wait', '--timeout', '150s']);
      assert.deepEqual([...(await releaseRecords())], [[1, 'deployed']]);
      assert.deepEqual(await liveState(), { message: 'first', replicas: 1, ready: 1 });
    });

    test('upgrade --wait: revision 2 deployed, revision 1 superseded', async () => {
      await helmOk([
        ...['upgrade', REL, chart, '--set', 'message=second', '--set', 'replicas=2'],
        ...['--wait', '--timeout', '150s'],
      ]);
      const records = await releaseRecords();
      assert.equal(records.get(1), 'superseded');
      assert.equal(records.get(2), 'deployed');
      assert.deepEqual(await liveState(), { message: 'second', replicas: 2, ready: 2 });
      const status = JSON.parse(await helmOk(['status', REL, '-o', 'json'])) as {
        version: number;
        info: { status: string };
      };
      assert.equal(status.version, 2);
      assert.equal(status.info.status, 'deployed');
    });

    test('rollback to 1: revision 3 deployed with revision 1 content', async () => {
      await helmOk(['rollback', REL, '1', '--wait', '--timeout', '150s']);
      const records = await releaseRecords();
      assert.equal(records.get(3), 'deployed');
      assert.equal(records.get(2), 'superseded');
      const s = await liveState();
      assert.equal(s.message, 'first');
      assert.equal(s.replicas, 1);
    });

    test('uninstall: release records and objects are gone', async () => {
      await helmOk(['uninstall', REL, '--wait', '--timeout', '150s']);
      assert.equal((await releaseRecords()).size, 0);
      const cm = await kubectl(['-n', NS, 'get', 'configmap', `${REL}-cfg`], admin);
      assert.notEqual(cm.code, 0);
      assert.match(cm.stderr, /NotFound|not found/);
      const dep = await kubectl(['-n', NS, 'get', 'deployment', `${REL}-app`], admin);
      assert.notEqual(dep.code, 0);
    });

    test('a namespace without a grant: kubegate refuses, nothing is created', async () => {
      const r = await helm(['--kubeconfig', userConfig, '-n', 'elsewhere', 'install', REL, chart]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /forbidden/i);
      const left = await kubectlOk(
        ['-n', 'elsewhere', 'get', 'secrets,configmaps,deployments', '-o', 'name'],
        admin,
      );
      assert.doesNotMatch(left, /tiny/);
    });
  },
);
