/**
 * Attack (issue #17 item 14): a compromised agent pod. The agent's
 * ServiceAccount could impersonate anyone even in JIT mode, and with
 * `escalate`/`bind` on ClusterRoles it could bind cluster-admin to any
 * subject — itself included. Now the bootstrap YAML (and the agent chart)
 * grant each mode only what it uses: no impersonation in JIT mode, and the
 * RBAC writes JIT needs are fenced by a ValidatingAdmissionPolicy to
 * `kubegate:…` ClusterRoles bound to `kg-…` ServiceAccounts of the agent's
 * namespace. Here, the agent's own ServiceAccount token (as the stack mounts
 * it for the agent, applied from the real bootstrap YAML) is used directly
 * against the real apiserver, as an attacker holding the pod would.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';

let stack: Stack;
let admin: { kubeconfig: string };
let asAgent: { kubeconfig: string };

const managed = {
  'app.kubernetes.io/managed-by': 'kubegate',
  'kubegate.dev/user': '0123456789abcdef',
  'kubegate.dev/kind': 'user',
};

/** `kubectl apply` of one object as the agent; the result (it must fail). */
async function applyAsAgent(obj: Record<string, unknown>) {
  return kubectl(['create', '-f', '-'], { ...asAgent, input: JSON.stringify(obj) });
}

function crb(
  name: string,
  roleRef: string,
  subject: Record<string, string>,
  labels: Record<string, string> = managed,
) {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleRef },
    subjects: [subject],
  };
}

const denied = (r: { code: number | null; stderr: string }, what: string) => {
  assert.notEqual(r.code, 0, `${what}: must be refused`);
  assert.match(r.stderr, /forbidden|denied/i, `${what}: ${r.stderr}`);
  process.stderr.write(`# refused, ${what}: ${r.stderr.trim().split('\n')[0]!.slice(0, 240)}\n`);
};

describe('a compromised agent is not cluster-admin', { timeout: 300_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    admin = { kubeconfig: stack.cluster.kubeconfig };
    const token = readFileSync(stack.agentEnv.get('dev')!.KUBEGATE_APISERVER_TOKEN_FILE!, 'utf8');
    const file = join(stack.dir, 'agent-direct');
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: ${stack.cluster.server}, certificate-authority: ${stack.cluster.caFile}}}]\nusers: [{name: u, user: {token: ${token.trim()}}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
    );
    asAgent = { kubeconfig: file };
    const who = await kubectlOk(
      ['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
      asAgent,
    );
    assert.equal(who, 'system:serviceaccount:kubegate-system:kubegate-agent');
  });
  after(async () => {
    await stack?.stop();
  });

  test('it cannot impersonate a user, a group or system:masters', async () => {
    denied(await kubectl(['get', 'pods', '-A', '--as=alice'], asAgent), 'impersonate alice');
    denied(
      await kubectl(['get', 'secrets', '-A', '--as=x', '--as-group=system:masters'], asAgent),
      'impersonate system:masters',
    );
    const can = await kubectl(['auth', 'can-i', 'impersonate', 'users'], asAgent);
    assert.equal(can.stdout.trim(), 'no');
  });

  test('it cannot bind cluster-admin to a subject of its choosing', async () => {
    denied(
      await applyAsAgent(crb('evil', 'cluster-admin', { kind: 'User', name: 'mallory' })),
      'cluster-admin to User mallory',
    );
    denied(
      await applyAsAgent(
        crb('kg-evil', 'cluster-admin', {
          kind: 'ServiceAccount',
          name: 'kg-u-0123456789abcdef',
          namespace: 'kubegate-system',
        }),
      ),
      'cluster-admin even to a kg- account, with kubegate labels',
    );
    // A kubegate:… role (which the agent may create) bound to someone not a kg- account.
    await kubectlOk(['create', '-f', '-'], {
      ...asAgent,
      input: JSON.stringify({
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: {
          name: 'kubegate:probe:000000000000',
          labels: { 'app.kubernetes.io/managed-by': 'kubegate', 'kubegate.dev/role': '0' },
        },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }],
      }),
    });
    denied(
      await applyAsAgent(
        crb('kg-evil2', 'kubegate:probe:000000000000', {
          kind: 'Group',
          name: 'system:authenticated',
        }),
      ),
      'a kubegate role to system:authenticated',
    );
    denied(
      await applyAsAgent(
        crb('kg-evil3', 'kubegate:probe:000000000000', {
          kind: 'ServiceAccount',
          name: 'kg-u-0123456789abcdef',
          namespace: 'default',
        }),
      ),
      'a kg- account of another namespace',
    );
    denied(
      await kubectl(
        [
          'create',
          'rolebinding',
          'evil',
          '--clusterrole=cluster-admin',
          '--user=mallory',
          '-n',
          'default',
        ],
        asAgent,
      ),
      'RoleBinding of cluster-admin in default',
    );
  });

  test('it cannot bind anything to itself', async () => {
    const self = { kind: 'ServiceAccount', name: 'kubegate-agent', namespace: 'kubegate-system' };
    denied(
      await applyAsAgent(crb('agent-admin', 'cluster-admin', self, {})),
      'cluster-admin to itself',
    );
    denied(
      await applyAsAgent(crb('kg-self', 'kubegate:probe:000000000000', self)),
      'a kubegate role to itself',
    );
    const can = await kubectl(['auth', 'can-i', '--list'], asAgent);
    assert.doesNotMatch(can.stdout, /^\*\.\*\s/m, 'no wildcard grant on itself');
  });

  test("it cannot remove the cluster's own bindings or roles, nor mint other accounts' tokens", async () => {
    await kubectlOk(
      ['create', 'clusterrolebinding', 'canary', '--clusterrole=view', '--user=nobody'],
      admin,
    );
    denied(
      await kubectl(['delete', 'clusterrolebinding', 'canary'], asAgent),
      'delete a foreign CRB',
    );
    denied(
      await kubectl(['delete', 'clusterrole', 'view'], asAgent),
      'delete a built-in ClusterRole',
    );
    denied(
      await kubectl(['delete', 'clusterrolebinding', 'kubegate-agent'], asAgent),
      'delete its own binding',
    );
    await kubectlOk(['create', 'serviceaccount', 'victim', '-n', 'kubegate-system'], admin);
    denied(
      await kubectl(['create', 'token', 'victim', '-n', 'kubegate-system'], asAgent),
      'a token for another account',
    );
    denied(
      await kubectl(['create', 'token', 'kubegate-agent', '-n', 'kubegate-system'], asAgent),
      'a token for itself',
    );
    denied(
      await applyAsAgent({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'victim-token',
          namespace: 'kubegate-system',
          annotations: { 'kubernetes.io/service-account.name': 'victim' },
        },
        type: 'kubernetes.io/service-account-token',
      }),
      'a legacy service-account-token Secret',
    );
    // Still there.
    await kubectlOk(['get', 'clusterrolebinding', 'canary'], admin);
  });

  test('JIT still works end to end through the fenced agent', async () => {
    await kubectlOk(['create', 'namespace', 'team-j'], admin);
    await grant(stack, { users: ['jo'], role: 'view', clusters: ['dev'] });
    await grant(stack, { users: ['jo'], role: 'edit', clusters: ['dev'], namespaces: ['team-j'] });
    const jo = await stack.kubeconfig('jo');
    await kubectlOk(['get', 'pods', '-A'], { kubeconfig: jo });
    await kubectlOk(['create', 'configmap', 'j1', '-n', 'team-j'], { kubeconfig: jo });
    const out = await kubectlOk(['get', 'configmap', 'j1', '-n', 'team-j', '-o', 'name'], admin);
    assert.equal(out.trim(), 'configmap/j1');
  });
});
