/**
 * Attack (issue #17 item 10): a robot and a user with the same name. The
 * agent named just-in-time accounts after the bare name, so robot `ci` and
 * user `ci` shared one ServiceAccount — each one's reconcile rewrote the
 * other's bindings, and either could act with the other's grants. Now the
 * kind is part of the identity: `kg-u-…` for people, `kg-r-…` for robots,
 * each hash over the kind-qualified name.
 *
 * Which identity the apiserver acted as is read from the apiserver itself:
 * the ServiceAccounts and bindings listed with the test cluster's own admin
 * kubeconfig, and each account's token used directly against the apiserver,
 * whose Forbidden message names the ServiceAccount. Real stack: proxy, agent,
 * a real kube-apiserver, PostgreSQL and kubectl.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { until } from '../support/http.js';
import { serviceAccountName, userKey } from '../../agent/jit/names.js';

let stack: Stack;
let admin: { kubeconfig: string };
let userKc: string;
let robotKc: string;
const userSa = serviceAccountName('user', 'ci');
const robotSa = serviceAccountName('robot', 'ci');

type List = {
  items: {
    metadata: { name: string; namespace?: string; labels?: Record<string, string> };
    subjects?: { kind: string; name: string; namespace?: string }[];
  }[];
};

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk([...args, '-o', 'json'], admin)) as T;
}

/** A kubeconfig straight to the apiserver with a ServiceAccount's own token. */
async function direct(sa: string): Promise<{ kubeconfig: string }> {
  const token = (
    await kubectlOk(['create', 'token', sa, '-n', 'kubegate-system', '--duration=10m'], admin)
  ).trim();
  const file = join(stack.dir, `${sa}-direct`);
  writeFileSync(
    file,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: ${stack.cluster.server}, certificate-authority: ${stack.cluster.caFile}}}]\nusers: [{name: u, user: {token: ${token}}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
  );
  return { kubeconfig: file };
}

async function bind(kind: 'User' | 'Robot', name: string, namespace: string): Promise<void> {
  await stack.sql(
    `INSERT INTO bindings (subjects, role, cluster_names, namespaces, created_by)
     VALUES ($1, 'edit', '{dev}', $2, 'test')`,
    [JSON.stringify([{ kind, name }]), [namespace]],
  );
}

describe(
  'a robot and a user of the same name are different identities on the cluster',
  { timeout: 300_000 },
  () => {
    before(async () => {
      stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
      admin = { kubeconfig: stack.cluster.kubeconfig };
      for (const ns of ['team-u', 'team-r']) await kubectlOk(['create', 'namespace', ns], admin);
      await bind('User', 'ci', 'team-u');
      await bind('Robot', 'ci', 'team-r');
      userKc = await stack.kubeconfig('ci');
      robotKc = join(stack.dir, 'kubeconfig-robot-ci');
      await stack.admin(['kubeconfig', '--user', 'ci', '--robot', '--ttl', '1h', '--out', robotKc]);
    });
    after(async () => {
      await stack?.stop();
    });

    test('each can do only its own, turn after turn', async () => {
      for (let i = 0; i < 3; i++) {
        await kubectlOk(['create', 'configmap', `u${i}`, '-n', 'team-u'], { kubeconfig: userKc });
        await kubectlOk(['create', 'configmap', `r${i}`, '-n', 'team-r'], { kubeconfig: robotKc });
      }
      const u = await kubectl(['create', 'configmap', 'x', '-n', 'team-r'], { kubeconfig: userKc });
      assert.match(u.stderr, /forbidden/i, 'the user may not write where only the robot may');
      const r = await kubectl(['create', 'configmap', 'x', '-n', 'team-u'], {
        kubeconfig: robotKc,
      });
      assert.match(r.stderr, /forbidden/i, 'the robot may not write where only the user may');
    });

    test('the cluster holds two accounts, labelled with their kind, each bound only to its own grant', async () => {
      const sas = await json<List>([
        'get',
        'serviceaccounts',
        '-n',
        'kubegate-system',
        '-l',
        'kubegate.dev/user',
      ]);
      const names = sas.items.map((s) => s.metadata.name).sort();
      assert.deepEqual(names, [robotSa, userSa].sort());
      assert.match(robotSa, /^kg-r-/);
      assert.match(userSa, /^kg-u-/);
      const byName = new Map(sas.items.map((s) => [s.metadata.name, s.metadata.labels ?? {}]));
      assert.equal(byName.get(userSa)!['kubegate.dev/kind'], 'user');
      assert.equal(byName.get(robotSa)!['kubegate.dev/kind'], 'robot');
      assert.equal(byName.get(userSa)!['kubegate.dev/user'], userKey('user', 'ci'));
      assert.equal(byName.get(robotSa)!['kubegate.dev/user'], userKey('robot', 'ci'));

      const rbs = await json<List>(['get', 'rolebindings', '-A', '-l', 'kubegate.dev/user']);
      const where = (sa: string) =>
        rbs.items
          .filter((b) => b.subjects?.some((s) => s.name === sa))
          .map((b) => b.metadata.namespace)
          .sort();
      assert.deepEqual(where(userSa), ['team-u']);
      assert.deepEqual(where(robotSa), ['team-r']);
    });

    test("the apiserver's own answer: each account may write only in its own namespace", async () => {
      const asUser = await direct(userSa);
      const asRobot = await direct(robotSa);
      await kubectlOk(['create', 'configmap', 'd-u', '-n', 'team-u'], asUser);
      await kubectlOk(['create', 'configmap', 'd-r', '-n', 'team-r'], asRobot);
      const u = await kubectl(['create', 'configmap', 'd-x', '-n', 'team-r'], asUser);
      assert.match(
        u.stderr,
        new RegExp(
          `system:serviceaccount:kubegate-system:${userSa}" cannot create resource "configmaps"`,
        ),
      );
      const r = await kubectl(['create', 'configmap', 'd-x', '-n', 'team-u'], asRobot);
      assert.match(
        r.stderr,
        new RegExp(
          `system:serviceaccount:kubegate-system:${robotSa}" cannot create resource "configmaps"`,
        ),
      );
    });

    test('the audit record names the account each one ran as', async () => {
      let rows: { kind: string; ran: string }[] = [];
      await until(
        async () => {
          rows = await stack.sql<{ kind: string; ran: string }>(
            `SELECT user_kind AS kind, event->'impersonatedUser'->>'username' AS ran FROM audit_events
            WHERE stage = 'ResponseComplete' AND username = 'ci' AND code = 201`,
          );
          return rows.length >= 6;
        },
        10_000,
        'the audit events of the six creates',
      );
      const ranAs = (k: string) => new Set(rows.filter((r) => r.kind === k).map((r) => r.ran));
      assert.deepEqual([...ranAs('user')], [`system:serviceaccount:kubegate-system:${userSa}`]);
      assert.deepEqual([...ranAs('robot')], [`system:serviceaccount:kubegate-system:${robotSa}`]);
    });
  },
);
