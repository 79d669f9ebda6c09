/**
 * Self-service namespaces, the agent's half, against a real apiserver (with
 * its namespace controller), run as the agent's own ServiceAccount with the
 * JIT-mode bootstrap RBAC and admission fence applied: the agent creates a
 * namespace with its quota, limits and policies; a pass with nothing changed
 * reports nothing; a deleted quota, a loosened policy and a raised quota are
 * put back and reported; a namespace it does not manage is never touched;
 * retirement ends in `gone`. And with the agent's token, what the fence must
 * refuse is refused by the apiserver itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { kubeConfigFor } from '../../agent/kube-client.js';
import { kubeJson } from '../../agent/namespaces/kube-json.js';
import { NamespaceReconciler } from '../../agent/namespaces/reconcile.js';
import { namespacesBody } from '../../agent/namespaces/body.js';
import { agentMetrics } from '../../agent/metrics.js';
import { createLogger } from '../../common/log.js';
import { bootstrapObjects } from '../../proxy/clusters/bootstrap-yaml.js';
import type {
  ManagedObject,
  NamespaceDesired,
  NamespaceResult,
} from '../../common/tunnel-protocol.js';

const AGENT_NS = 'kubegate-system';

let cluster: TestCluster;
let admin: { kubeconfig: string };
let asAgent: { kubeconfig: string };
let reconciler: NamespaceReconciler;

const quota: ManagedObject = {
  apiVersion: 'v1',
  kind: 'ResourceQuota',
  metadata: { name: 'kubegate-quota' },
  spec: { hard: { pods: '10', 'requests.memory': '1Gi' } },
};
const limits: ManagedObject = {
  apiVersion: 'v1',
  kind: 'LimitRange',
  metadata: { name: 'kubegate-limits' },
  spec: {
    limits: [
      { type: 'Container', default: { memory: '256Mi' }, defaultRequest: { memory: '128Mi' } },
    ],
  },
};
const deny: ManagedObject = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'kubegate-default-deny', labels: { 'kubegate.dev/profile': 'dev' } },
  spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
};
const sameNs: ManagedObject = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name: 'kubegate-allow-same-namespace' },
  spec: {
    podSelector: {},
    policyTypes: ['Ingress'],
    ingress: [{ from: [{ podSelector: {} }] }],
  },
};

const teamA = (objects: ManagedObject[] = [quota, limits, deny, sameNs]): NamespaceDesired => ({
  name: 'team-a',
  labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
  annotations: { 'kubegate.dev/owner': 'alice@example.com' },
  objects,
});

/** One pass as the proxy would send it (through the same body check as the control table). */
async function pass(...entries: unknown[]): Promise<NamespaceResult[]> {
  return (await reconciler.reconcile(namespacesBody({ namespaces: entries }))).results;
}

const getJson = async (args: string[]) =>
  JSON.parse(await kubectlOk([...args, '-o', 'json'], admin)) as {
    metadata: { labels?: Record<string, string> };
    spec: Record<string, unknown>;
  };

const sortChanges = (r: NamespaceResult) =>
  [...r.changes].sort((a, b) => `${a.kind}/${a.name}`.localeCompare(`${b.kind}/${b.name}`));

async function corrections(kind: string): Promise<number> {
  const m = await agentMetrics.registry
    .getSingleMetric('kubegate_agent_namespace_corrections_total')!
    .get();
  return m.values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

const denied = (r: { code: number | null; stderr: string }, what: string) => {
  assert.notEqual(r.code, 0, `${what}: must be refused`);
  assert.match(r.stderr, /kubegate agent may only write/, `${what}: refused by the fence`);
};

describe(
  'managed namespaces on a real apiserver, as the fenced agent',
  { timeout: 240_000 },
  () => {
    before(async () => {
      cluster = await startCluster();
      admin = { kubeconfig: cluster.kubeconfig };
      // The agent's RBAC and admission fence exactly as the bootstrap YAML has them (JIT mode).
      const objects = bootstrapObjects({
        cluster: 'dev',
        token: 'kgb_unused',
        tunnelAddress: 'proxy.invalid:8444',
        tunnelServerName: 'proxy.invalid',
        enrollAddress: 'proxy.invalid:8445',
        proxyCaPem: 'unused',
        image: 'unused',
        namespace: AGENT_NS,
        forwardMode: 'jit',
      }).filter((o) => o.kind !== 'Deployment' && o.kind !== 'Secret');
      await kubectlOk(['apply', '-f', '-'], {
        ...admin,
        input: objects.map((o) => JSON.stringify(o)).join('\n'),
      });
      const token = (
        await kubectlOk(
          ['create', 'token', 'kubegate-agent', '-n', AGENT_NS, '--duration=2h'],
          admin,
        )
      ).trim();
      const tokenFile = join(cluster.dir, 'agent-token');
      writeFileSync(tokenFile, token);
      const kubeconfig = join(cluster.dir, 'agent.kubeconfig');
      writeFileSync(
        kubeconfig,
        `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: ${cluster.server}, certificate-authority: ${cluster.caFile}}}]\nusers: [{name: u, user: {tokenFile: ${tokenFile}}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
      );
      asAgent = { kubeconfig };
      const who = await kubectlOk(
        ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
        asAgent,
      );
      assert.equal(who, `system:serviceaccount:${AGENT_NS}:kubegate-agent`);
      // The policy takes effect a moment after it is created: wait until it refuses.
      const until = Date.now() + 60_000;
      for (;;) {
        const r = await kubectl(['create', 'namespace', 'fence-probe'], asAgent);
        if (r.code !== 0 && /kubegate agent may only write/.test(r.stderr)) break;
        if (r.code === 0)
          await kubectlOk(['delete', 'namespace', 'fence-probe', '--wait=false'], admin);
        assert.ok(Date.now() < until, `the admission fence never took effect: ${r.stderr}`);
        await new Promise((res) => setTimeout(res, 500));
      }
      reconciler = new NamespaceReconciler({
        kube: kubeJson(
          kubeConfigFor({ server: cluster.server, caFile: cluster.caFile, tokenFile }),
        ),
        agentNamespace: AGENT_NS,
        log: createLogger({ name: 'namespaces-test', level: 'silent' }),
      });
    });
    after(async () => {
      await cluster?.stop();
    });

    test('a new namespace is created with its labels, annotations and every object', async () => {
      const [r] = await pass(teamA());
      assert.equal(r!.state, 'ready', r!.error);
      assert.equal(r!.namespaceChange, 'created');
      assert.deepEqual(sortChanges(r!), [
        { kind: 'LimitRange', name: 'kubegate-limits', change: 'created' },
        { kind: 'NetworkPolicy', name: 'kubegate-allow-same-namespace', change: 'created' },
        { kind: 'NetworkPolicy', name: 'kubegate-default-deny', change: 'created' },
        { kind: 'ResourceQuota', name: 'kubegate-quota', change: 'created' },
      ]);
      const ns = await getJson(['get', 'namespace', 'team-a']);
      assert.equal(ns.metadata.labels?.['app.kubernetes.io/managed-by'], 'kubegate');
      assert.equal(ns.metadata.labels?.['kubegate.dev/managed-namespace'], 'true');
      assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'baseline');
      const q = await getJson(['-n', 'team-a', 'get', 'resourcequota', 'kubegate-quota']);
      assert.deepEqual(q.spec, { hard: { pods: '10', 'requests.memory': '1Gi' } });
      const np = await getJson(['-n', 'team-a', 'get', 'networkpolicy', 'kubegate-default-deny']);
      assert.equal(np.metadata.labels?.['app.kubernetes.io/managed-by'], 'kubegate');
      assert.equal(np.metadata.labels?.['kubegate.dev/profile'], 'dev');
    });

    test('a second pass with nothing changed reports no change at all', async () => {
      // The quota controller writes the quota's status meanwhile; that is not drift.
      await new Promise((res) => setTimeout(res, 1500));
      const quiet = async () => {
        const [r] = await pass(teamA());
        assert.equal(r!.state, 'ready', r!.error);
        assert.equal(r!.namespaceChange, 'unchanged');
        assert.deepEqual(r!.changes, []);
      };
      // The first apply after the create writes once (the apply takes over the
      // fields the create set); from then on nothing is written: objects without
      // a status writer keep their resourceVersion.
      await quiet();
      const versions = () =>
        kubectlOk(
          [
            '-n',
            'team-a',
            'get',
            'namespace/team-a',
            'limitrange/kubegate-limits',
            'networkpolicy/kubegate-default-deny',
            'networkpolicy/kubegate-allow-same-namespace',
            '-o',
            'jsonpath={.items[*].metadata.resourceVersion}',
          ],
          admin,
        );
      const before = await versions();
      await quiet();
      await quiet();
      assert.equal(await versions(), before);
      assert.equal(before.split(' ').length, 4);
    });

    test('a quota deleted by hand is created again and counted as a correction', async () => {
      const before = await corrections('ResourceQuota');
      await kubectlOk(['-n', 'team-a', 'delete', 'resourcequota', 'kubegate-quota'], admin);
      const [r] = await pass(teamA());
      assert.deepEqual(r!.changes, [
        { kind: 'ResourceQuota', name: 'kubegate-quota', change: 'created' },
      ]);
      await kubectlOk(['-n', 'team-a', 'get', 'resourcequota', 'kubegate-quota'], admin);
      assert.equal(await corrections('ResourceQuota'), before + 1);
    });

    test('a network policy loosened by hand is put back', async () => {
      // Allow everything on the default-deny policy (it has no ingress of its own),
      // and widen the same-namespace policy with a rule from anywhere.
      await kubectlOk(
        [
          '-n',
          'team-a',
          'patch',
          'networkpolicy',
          'kubegate-default-deny',
          '--type=merge',
          '-p',
          '{"spec":{"ingress":[{}]}}',
        ],
        admin,
      );
      await kubectlOk(
        [
          '-n',
          'team-a',
          'patch',
          'networkpolicy',
          'kubegate-allow-same-namespace',
          '--type=json',
          '-p',
          '[{"op":"add","path":"/spec/ingress/-","value":{"from":[{"ipBlock":{"cidr":"0.0.0.0/0"}}]}}]',
        ],
        admin,
      );
      const [r] = await pass(teamA());
      assert.deepEqual(sortChanges(r!), [
        { kind: 'NetworkPolicy', name: 'kubegate-allow-same-namespace', change: 'updated' },
        { kind: 'NetworkPolicy', name: 'kubegate-default-deny', change: 'updated' },
      ]);
      const d = await getJson(['-n', 'team-a', 'get', 'networkpolicy', 'kubegate-default-deny']);
      assert.equal(d.spec.ingress, undefined, 'the allow-all rule is gone');
      const s = await getJson([
        '-n',
        'team-a',
        'get',
        'networkpolicy',
        'kubegate-allow-same-namespace',
      ]);
      assert.deepEqual(s.spec.ingress, [{ from: [{ podSelector: {} }] }]);
    });

    test('a quota raised by hand is put back, and then all is quiet', async () => {
      await kubectlOk(
        [
          '-n',
          'team-a',
          'patch',
          'resourcequota',
          'kubegate-quota',
          '--type=merge',
          '-p',
          '{"spec":{"hard":{"pods":"1000","secrets":"50"}}}',
        ],
        admin,
      );
      const [r] = await pass(teamA());
      assert.deepEqual(r!.changes, [
        { kind: 'ResourceQuota', name: 'kubegate-quota', change: 'updated' },
      ]);
      const q = await getJson(['-n', 'team-a', 'get', 'resourcequota', 'kubegate-quota']);
      assert.deepEqual(q.spec, { hard: { pods: '10', 'requests.memory': '1Gi' } });
      const [quiet] = await pass(teamA());
      assert.deepEqual(quiet!.changes, []);
      assert.equal(quiet!.namespaceChange, 'unchanged');
    });

    test("a namespace label removed by hand comes back; others' labels stay", async () => {
      await kubectlOk(
        ['label', 'namespace', 'team-a', 'pod-security.kubernetes.io/enforce-', 'team=blue'],
        admin,
      );
      const [r] = await pass(teamA());
      assert.equal(r!.namespaceChange, 'updated');
      const ns = await getJson(['get', 'namespace', 'team-a']);
      assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'baseline');
      assert.equal(ns.metadata.labels?.team, 'blue');
    });

    test('an object the profile no longer has is deleted', async () => {
      const [r] = await pass(teamA([quota, deny, sameNs]));
      assert.deepEqual(r!.changes, [
        { kind: 'LimitRange', name: 'kubegate-limits', change: 'deleted' },
      ]);
      const lr = await kubectl(['-n', 'team-a', 'get', 'limitrange', 'kubegate-limits'], admin);
      assert.notEqual(lr.code, 0);
    });

    test('a namespace kubegate does not manage is reported and never touched', async () => {
      await kubectlOk(['create', 'namespace', 'legacy'], admin);
      await kubectlOk(['label', 'namespace', 'legacy', 'owner=someone'], admin);
      const [r, ok] = await pass({ ...teamA(), name: 'legacy' }, teamA([quota, deny, sameNs]));
      assert.equal(r!.state, 'error');
      assert.equal(r!.error, 'namespace "legacy" exists and is not managed by kubegate');
      assert.equal(ok!.state, 'ready', 'the other entry is reconciled all the same');
      const ns = await getJson(['get', 'namespace', 'legacy']);
      assert.equal(ns.metadata.labels?.['kubegate.dev/managed-namespace'], undefined);
      assert.equal(ns.metadata.labels?.['pod-security.kubernetes.io/enforce'], undefined);
      const q = await kubectlOk(['-n', 'legacy', 'get', 'resourcequota', '-o', 'name'], admin);
      assert.equal(q.trim(), '', 'no object was put into it');
    });

    test('reserved names and foreign kinds are refused per entry', async () => {
      const rs = await pass(
        { ...teamA(), name: 'default' },
        { ...teamA(), name: 'kube-system' },
        { ...teamA(), name: AGENT_NS },
        {
          ...teamA(),
          name: 'team-b',
          objects: [{ ...quota, kind: 'Secret' }],
        },
      );
      assert.deepEqual(
        rs.map((r) => r.state),
        ['error', 'error', 'error', 'error'],
      );
      assert.match(rs[3]!.error!, /not one kubegate manages/);
      const b = await kubectl(['get', 'namespace', 'team-b'], admin);
      assert.notEqual(b.code, 0, 'nothing was created for the refused entry');
    });

    test('the fence refuses the agent anything outside managed namespaces', async () => {
      denied(
        await kubectl(['delete', 'namespace', 'legacy'], asAgent),
        'delete an unmanaged namespace',
      );
      denied(
        await kubectl(['delete', 'namespace', AGENT_NS, '--wait=false'], asAgent),
        "delete the agent's own namespace",
      );
      const q = {
        apiVersion: 'v1',
        kind: 'ResourceQuota',
        metadata: {
          name: 'kubegate-quota',
          namespace: 'legacy',
          labels: { 'app.kubernetes.io/managed-by': 'kubegate' },
        },
        spec: { hard: { pods: '0' } },
      };
      denied(
        await kubectl(['create', '-f', '-'], { ...asAgent, input: JSON.stringify(q) }),
        'a quota in an unmanaged namespace',
      );
      denied(
        await kubectl(
          [
            'label',
            'namespace',
            'legacy',
            'app.kubernetes.io/managed-by=kubegate',
            'kubegate.dev/managed-namespace=true',
          ],
          asAgent,
        ),
        'adopting an unmanaged namespace by labelling it',
      );
      const np = {
        apiVersion: 'networking.k8s.io/v1',
        kind: 'NetworkPolicy',
        metadata: {
          name: 'allow-all',
          namespace: 'team-a',
          labels: { 'app.kubernetes.io/managed-by': 'kubegate' },
        },
        spec: { podSelector: {}, ingress: [{}] },
      };
      denied(
        await kubectl(['create', '-f', '-'], { ...asAgent, input: JSON.stringify(np) }),
        'a policy not named kubegate-… even in a managed namespace',
      );
      const ns = await getJson(['get', 'namespace', 'legacy']);
      assert.equal(ns.metadata.labels?.['kubegate.dev/managed-namespace'], undefined);
    });

    test('a retired namespace is retiring, then gone', async () => {
      const [r] = await pass({ ...teamA(), retire: true });
      assert.equal(r!.state, 'retiring', r!.error);
      assert.equal(r!.namespaceChange, 'updated');
      const until = Date.now() + 90_000;
      for (;;) {
        const [again] = await pass({ ...teamA(), retire: true });
        if (again!.state === 'gone') break;
        assert.equal(again!.state, 'retiring', again!.error);
        assert.equal(again!.namespaceChange, 'unchanged');
        assert.ok(Date.now() < until, 'the namespace controller removed it within 90 s');
        await new Promise((res) => setTimeout(res, 1000));
      }
      const legacy = await pass({ ...teamA(), name: 'legacy', retire: true });
      assert.equal(legacy[0]!.state, 'error', 'an unmanaged namespace is never retired');
      await kubectlOk(['get', 'namespace', 'legacy'], admin);
    });
  },
);
