/**
 * Just-in-time service accounts against the real test cluster: the cluster
 * itself sees and enforces each user's central grants.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant, ungrant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';

let stack: Stack;
let admin: { kubeconfig: string };
let adminToken: string;
let ca: string;

import { serviceAccountName, userKey } from '../../agent/jit/names.js';
const sa = (user: string) => serviceAccountName('user', user);

async function json<T>(args: string[]): Promise<T> {
  return JSON.parse(await kubectlOk([...args, '-o', 'json'], admin)) as T;
}
/** A kubeconfig that talks to the apiserver directly with a ServiceAccount token. */
function directKubeconfig(name: string, token: string): string {
  const file = `${stack.dir}/${name}-direct`;
  writeFileSync(
    file,
    `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: ${stack.cluster.server}, certificate-authority: ${stack.cluster.caFile}}}]\nusers: [{name: u, user: {token: ${token}}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
  );
  return file;
}
type List = {
  items: {
    metadata: { name: string; namespace?: string; labels?: Record<string, string> };
    type?: string;
  }[];
};
const names = (l: List) =>
  l.items
    .map((i) =>
      i.metadata.namespace ? `${i.metadata.namespace}/${i.metadata.name}` : i.metadata.name,
    )
    .sort();

describe('just-in-time service accounts', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({
      agentEnv: { KUBEGATE_JIT_IDLE: '8s', KUBEGATE_JIT_CLEANUP_INTERVAL: '1s' },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    admin = { kubeconfig: stack.cluster.kubeconfig };
    // The front's CA is the internal server CA the agents pin too.
    ca = readFileSync(stack.agentEnv.get('dev')!.KUBEGATE_PROXY_CA_FILE!, 'utf8');
    const rootKc = await stack.kubeconfig('root', ['kubegate-admins']);
    adminToken = /token: (kg_\S+)/.exec(readFileSync(rootKc, 'utf8'))![1]!;
    for (const ns of ['team-a', 'team-b']) await kubectlOk(['create', 'namespace', ns], admin);
  });
  after(async () => {
    await stack?.stop();
  });

  test("a request runs as the user's account, whose own token gets the same answers as the central policy", async () => {
    await grant(stack, { users: ['erin'], role: 'view', clusters: ['dev'] });
    await grant(stack, {
      users: ['erin'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: ['team-a', 'not-there'],
    });
    const erin = await stack.kubeconfig('erin');
    const who = await kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], {
      kubeconfig: erin,
    });
    assert.equal(who, 'erin', 'whoami names the kubegate user');
    // The request ran as erin's account: the agent reports it, the audit keeps it.
    await kubectlOk(['get', 'ns', 'default'], { kubeconfig: erin });
    let ranAs: string | null | undefined;
    for (let i = 0; i < 40 && !ranAs; i++) {
      const rows = await stack.sql<{ u: string | null }>(
        `SELECT event->'impersonatedUser'->>'username' AS u FROM audit_events
          WHERE username = 'erin' AND stage = 'ResponseComplete' AND event ? 'impersonatedUser'
          ORDER BY received_at DESC LIMIT 1`,
      );
      ranAs = rows[0]?.u;
      if (!ranAs) await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(ranAs, `system:serviceaccount:kubegate-system:${sa('erin')}`);

    // What the agent created, all labelled; no RoleBinding in the missing namespace, which was not created.
    const rbs = await json<List>(['get', 'rolebindings', '-A', '-l', 'kubegate.dev/user']);
    assert.deepEqual(
      names(rbs).map((n) => n.split('/')[0]),
      ['team-a'],
    );
    assert.notEqual((await kubectl(['get', 'namespace', 'not-there'], admin)).code, 0);
    const crbs = await json<List>(['get', 'clusterrolebindings', '-l', 'kubegate.dev/user']);
    assert.equal(crbs.items.length, 1);

    // The account's own token straight at the apiserver: same answers as kubegate's can-i.
    const token = (
      await kubectlOk(['create', 'token', sa('erin'), '-n', 'kubegate-system'], admin)
    ).trim();
    const direct = directKubeconfig('erin', token);
    const table: string[][] = [
      ['list', 'pods', '-n', 'team-b'],
      ['create', 'configmaps', '-n', 'team-a'],
      ['create', 'configmaps', '-n', 'team-b'],
      ['delete', 'deployments.apps', '-n', 'team-a'],
      ['get', 'secrets', '-n', 'team-a'],
      ['get', 'secrets', '-n', 'team-b'],
      ['create', 'pods/exec', '-n', 'team-a'],
      ['create', 'pods/exec', '-n', 'team-b'],
      ['list', 'nodes'],
      ['delete', 'namespaces'],
      ['impersonate', 'users'],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'],
    ];
    for (const row of table) {
      const c = await kubectl(['auth', 'can-i', ...row], { kubeconfig: erin });
      const d = await kubectl(['auth', 'can-i', ...row], { kubeconfig: direct });
      const central = c.stdout.split(/\s/)[0];
      const cluster = d.stdout.split(/\s/)[0];
      assert.equal(
        cluster,
        central,
        `both layers agree on: ${row.join(' ')} (central ${central} ${c.stderr}, cluster ${cluster} ${d.stderr})`,
      );
    }
  });

  test('the admin API shows the accounts the agent holds, read from the cluster, without tokens', async () => {
    const url = `${stack.publicUrl}/api/v1/clusters/dev/jit-accounts`;
    const r = await httpGet(url, { token: adminToken, ca });
    assert.equal(r.status, 200, r.body);
    const report = JSON.parse(r.body) as {
      cluster: string;
      mode: string;
      accounts: {
        user?: string;
        serviceAccount: string;
        lastUsedAt?: string;
        idleExpiresAt?: string;
        tokenExpiresAt?: string;
        bindings: { kind: string; namespace?: string; clusterRole: string }[];
      }[];
      stats: { created: number; tokenRequests: number };
    };
    assert.equal(report.mode, 'jit');
    const erin = report.accounts.find((a) => a.user === 'erin');
    assert.ok(erin, `erin's account listed: ${r.body}`);
    assert.equal(erin.serviceAccount, `system:serviceaccount:kubegate-system:${sa('erin')}`);
    assert.deepEqual(
      erin.bindings.map((b) => `${b.kind}:${b.namespace ?? ''}:${b.clusterRole.split(':')[1]}`),
      ['ClusterRoleBinding::view', 'RoleBinding:team-a:edit'],
    );
    assert.ok(Date.parse(erin.idleExpiresAt!) > Date.parse(erin.lastUsedAt!));
    assert.ok(Date.parse(erin.tokenExpiresAt!) > Date.now());
    assert.ok(report.stats.created >= 1 && report.stats.tokenRequests >= 1);
    // Whatever the agent holds in memory, no token leaves it.
    assert.doesNotMatch(r.body, /eyJ[A-Za-z0-9_-]{10,}\./);
    // Admins only; an unknown cluster is a 404 problem.
    const erinToken = /token: (kg_\S+)/.exec(
      readFileSync(await stack.kubeconfig('erin'), 'utf8'),
    )![1]!;
    assert.equal((await httpGet(url, { token: erinToken, ca })).status, 403);
    const missing = await httpGet(`${stack.publicUrl}/api/v1/clusters/nope/jit-accounts`, {
      token: adminToken,
      ca,
    });
    assert.equal(missing.status, 404);
    assert.match(String(missing.headers['content-type']), /problem\+json/);
  });

  test('no Secret of type service-account-token is ever created', async () => {
    const secrets = await json<List>(['get', 'secrets', '-A']);
    assert.deepEqual(
      secrets.items
        .filter((s) => s.type === 'kubernetes.io/service-account-token')
        .map((s) => s.metadata.name),
      [],
    );
  });

  test('two racing first requests create one account', async () => {
    await grant(stack, { users: ['frank'], role: 'view', clusters: ['dev'] });
    const frank = await stack.kubeconfig('frank');
    const results = await Promise.all(
      Array.from({ length: 6 }, () =>
        kubectl(['get', 'pods', '-n', 'team-a'], { kubeconfig: frank }),
      ),
    );
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const accounts = await json<List>([
      'get',
      'serviceaccounts',
      '-n',
      'kubegate-system',
      '-l',
      `kubegate.dev/user`,
    ]);
    assert.equal(accounts.items.filter((a) => a.metadata.name === sa('frank')).length, 1);
    const crbs = await json<List>([
      'get',
      'clusterrolebindings',
      '-l',
      `kubegate.dev/user=${userKey('user', 'frank')}`,
    ]);
    assert.equal(crbs.items.length, 1);
  });

  test('revoking a grant removes its RoleBinding within a second, and both layers deny', async () => {
    const viewId = await grant(stack, { users: ['gina'], role: 'view', clusters: ['dev'] });
    const editId = await grant(stack, {
      users: ['gina'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: ['team-b'],
    });
    const gina = await stack.kubeconfig('gina');
    await kubectlOk(['create', 'configmap', 'g1', '-n', 'team-b'], { kubeconfig: gina });
    const key = userKey('user', 'gina');
    const direct = directKubeconfig(
      'gina',
      (await kubectlOk(['create', 'token', sa('gina'), '-n', 'kubegate-system'], admin)).trim(),
    );
    const t0 = Date.now();
    await ungrant(stack, editId);
    await until(
      async () =>
        (
          await json<List>([
            'get',
            'rolebindings',
            '-n',
            'team-b',
            '-l',
            `kubegate.dev/user=${key}`,
          ])
        ).items.length === 0,
      5000,
      'RoleBinding removed',
    );
    const ms = Date.now() - t0;
    process.stderr.write(`# grant revoked → RoleBinding gone after ${ms} ms\n`);
    assert.ok(ms < 1500, `within about a second (${ms} ms)`);
    const viaKubegate = await kubectl(['create', 'configmap', 'g2', '-n', 'team-b'], {
      kubeconfig: gina,
    });
    assert.match(viaKubegate.stderr, /forbidden/);
    assert.match(
      (
        await kubectl(['auth', 'can-i', 'create', 'configmaps', '-n', 'team-b'], {
          kubeconfig: direct,
        })
      ).stdout,
      /^no/,
    );
    assert.match(
      (await kubectl(['auth', 'can-i', 'list', 'pods', '-n', 'team-b'], { kubeconfig: direct }))
        .stdout,
      /^yes/,
      'the remaining grant still works on the cluster',
    );

    // The last grant gone: the account itself is deleted, and its tokens stop working.
    await ungrant(stack, viewId);
    await until(
      async () =>
        (await kubectl(['get', 'serviceaccount', sa('gina'), '-n', 'kubegate-system'], admin))
          .code !== 0,
      5000,
      'account deleted',
    );
    const after = await kubectl(['get', 'pods', '-n', 'team-b'], { kubeconfig: direct });
    // Unauthorized once the apiserver's token cache notices; Forbidden until then: denied either way.
    assert.match(after.stderr, /Unauthorized|Forbidden/);
  });

  test('idle accounts are deleted with their bindings; nothing unlabelled is touched', async () => {
    await kubectlOk(['create', 'serviceaccount', 'not-ours', '-n', 'kubegate-system'], admin);
    await kubectlOk(
      [
        'create',
        'rolebinding',
        'not-ours',
        '--clusterrole=view',
        '--serviceaccount=kubegate-system:not-ours',
        '-n',
        'team-a',
      ],
      admin,
    );
    // An orphan as a crash mid-reconcile would leave: our name and labels, no
    // account (the agent's admission fence lets it delete only kg-… bindings).
    await kubectlOk(
      [
        'create',
        'rolebinding',
        'kg-u-0000000000000000-0000',
        '--clusterrole=view',
        '--serviceaccount=kubegate-system:ghost',
        '-n',
        'team-a',
      ],
      admin,
    );
    await kubectlOk(
      [
        'label',
        'rolebinding',
        'kg-u-0000000000000000-0000',
        '-n',
        'team-a',
        'app.kubernetes.io/managed-by=kubegate',
        'kubegate.dev/user=0000000000000000',
      ],
      admin,
    );
    const ms = await until(
      async () =>
        (
          await json<List>([
            'get',
            'serviceaccounts',
            '-n',
            'kubegate-system',
            '-l',
            'kubegate.dev/user',
          ])
        ).items.length === 0,
      40_000,
      'idle accounts deleted',
    );
    process.stderr.write(`# idle accounts gone after ${ms} ms (idle 8 s, sweep 1 s)\n`);
    await until(
      async () =>
        (await json<List>(['get', 'rolebindings', '-A', '-l', 'kubegate.dev/user'])).items
          .length === 0,
      10_000,
      'bindings deleted',
    );
    assert.equal(
      (await json<List>(['get', 'clusterrolebindings', '-l', 'kubegate.dev/user'])).items.length,
      0,
    );
    await until(
      async () =>
        (await json<List>(['get', 'clusterroles', '-l', 'kubegate.dev/role'])).items.length === 0,
      90_000,
      'unused ClusterRoles deleted',
    );
    await kubectlOk(['get', 'serviceaccount', 'not-ours', '-n', 'kubegate-system'], admin);
    await kubectlOk(['get', 'rolebinding', 'not-ours', '-n', 'team-a'], admin);
    // The next request simply recreates what is needed.
    const erin = await stack.kubeconfig('erin');
    await kubectlOk(['get', 'pods', '-n', 'team-b'], { kubeconfig: erin });
  });

  test('an agent restart in the middle of reconciling leaves no orphans', async () => {
    await grant(stack, {
      users: ['hank'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: ['team-a', 'team-b'],
    });
    const hank = await stack.kubeconfig('hank');
    const pending = kubectl(['get', 'pods', '-n', 'team-a'], {
      kubeconfig: hank,
      timeoutMs: 20_000,
    });
    await new Promise((r) => setTimeout(r, 150)); // the first request is reconciling
    await stack.agents.get('dev')!.stop('SIGKILL');
    await pending;
    await stack.startAgent('dev');
    // Idle clean-up after the restart removes whatever the killed reconcile left behind.
    const key = userKey('user', 'hank');
    await until(
      async () => {
        const left = [
          ...(
            await json<List>([
              'get',
              'serviceaccounts',
              '-n',
              'kubegate-system',
              '-l',
              `kubegate.dev/user=${key}`,
            ])
          ).items,
          ...(await json<List>(['get', 'rolebindings', '-A', '-l', `kubegate.dev/user=${key}`]))
            .items,
        ];
        return left.length === 0;
      },
      40_000,
      'no orphans',
    );
  });

  test("deactivating a user deletes the user's account on the cluster and both layers deny", async () => {
    // A user known to kubegate (as after a sign-in) with a live JIT account.
    await stack.sql(
      `INSERT INTO users (issuer, subject, username) VALUES ('https://idp.test', 'jo-1', 'jo')`,
    );
    await grant(stack, { users: ['jo'], role: 'edit', clusters: ['dev'], namespaces: ['team-a'] });
    const jo = await stack.kubeconfig('jo');
    await kubectlOk(['get', 'configmaps', '-n', 'team-a'], { kubeconfig: jo });
    const direct = directKubeconfig(
      'jo',
      (await kubectlOk(['create', 'token', sa('jo'), '-n', 'kubegate-system'], admin)).trim(),
    );
    assert.equal(
      (
        await kubectl(['auth', 'can-i', 'create', 'configmaps', '-n', 'team-a'], {
          kubeconfig: direct,
        })
      ).stdout.trim(),
      'yes',
    );
    const t0 = Date.now();
    // Deleted because the grants were pushed empty, not by idle clean-up (8 s in this suite).
    const pushed = stack.agents.get('dev')!.waitFor(/"user":"jo","why":"grants revoked"/, 15_000);
    await stack.admin(['user', 'deactivate', 'jo']);
    await pushed;
    const key = userKey('user', 'jo');
    await until(
      async () =>
        (await kubectl(['get', 'serviceaccount', sa('jo'), '-n', 'kubegate-system'], admin))
          .code !== 0 &&
        (await json<List>(['get', 'rolebindings', '-A', '-l', `kubegate.dev/user=${key}`])).items
          .length === 0,
      10_000,
      "jo's account and bindings deleted",
    );
    process.stderr.write(`# user deactivated → JIT account gone after ${Date.now() - t0} ms\n`);
    // The proxy refuses jo (the token was revoked too), and the account's token is dead on the cluster.
    const r = await kubectl(['get', 'configmaps', '-n', 'team-a'], { kubeconfig: jo });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unauthorized|Forbidden/);
    const c = await kubectl(['auth', 'can-i', 'create', 'configmaps', '-n', 'team-a'], {
      kubeconfig: direct,
    });
    assert.notEqual(c.stdout.trim(), 'yes');
  });

  test('a grant above the ceiling role is refused by the agent with a clear error; grants within it work', async () => {
    // A ceiling of read-only access: the agent must refuse to mint `edit`.
    const ceiling = `${stack.dir}/ceiling.json`;
    writeFileSync(
      ceiling,
      JSON.stringify([{ apiGroups: ['*'], resources: ['*'], verbs: ['get', 'list', 'watch'] }]),
    );
    await stack.agents.get('dev')!.stop();
    await stack.startAgent('dev', undefined, { KUBEGATE_JIT_CEILING_FILE: ceiling });
    try {
      await grant(stack, {
        users: ['ivy'],
        role: 'edit',
        clusters: ['dev'],
        namespaces: ['team-a'],
      });
      await grant(stack, {
        users: ['gina'],
        role: 'view',
        clusters: ['dev'],
        namespaces: ['team-a'],
      });
      const ivy = await stack.kubeconfig('ivy');
      const r = await kubectl(['get', 'configmaps', '-n', 'team-a'], { kubeconfig: ivy });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /Forbidden/);
      assert.match(r.stderr, /refuses role edit.*ceiling/);
      // Nothing was bound for ivy on the cluster.
      const key = userKey('user', 'ivy');
      const rbs = await json<List>(['get', 'rolebindings', '-A', '-l', `kubegate.dev/user=${key}`]);
      assert.deepEqual(names(rbs), []);
      // Within the ceiling: works, and runs as gina's account.
      const gina = await stack.kubeconfig('gina');
      await kubectlOk(['get', 'configmaps', '-n', 'team-a'], { kubeconfig: gina });
    } finally {
      await stack.agents.get('dev')!.stop();
      await stack.startAgent('dev');
    }
  });
});
