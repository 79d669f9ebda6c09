/**
 * Foundations end to end: real PostgreSQL, the real test cluster, proxy and
 * agent as real processes, and the real kubectl binary using the fleet
 * kubeconfig written by `kubegate admin kubeconfig`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { credsOf, rawRequest } from '../support/creds.js';

let stack: Stack;

/** The cluster identity the latest forwarded request of `user` ran as (from its audit event). */
async function ranAsOf(user: string): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const rows = await stack.sql<{ u: string | null }>(
      `SELECT event->'impersonatedUser'->>'username' AS u FROM audit_events
        WHERE username = $1 AND stage = 'ResponseComplete' AND event ? 'impersonatedUser'
        ORDER BY received_at DESC LIMIT 1`,
      [user],
    );
    if (rows[0]?.u) return rows[0].u;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no forwarded request of ${user} in the audit log`);
}
let alice: string; // may edit in namespace team-a (granted by the cluster's own RBAC for now)
let bob: string; // no rights at all
let admin: { kubeconfig: string };

describe('kubectl through kubegate (foundations)', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    admin = { kubeconfig: stack.cluster.kubeconfig };
    await kubectlOk(['create', 'namespace', 'team-a'], admin);
    // Central grants only: kubegate authorizes, and the agent's JIT account
    // carries the same grants, so the cluster enforces them again.
    await grant(stack, { groups: ['developers'], role: 'view', clusters: ['dev'] });
    await grant(stack, {
      users: ['alice'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: ['team-a'],
    });
    await grant(stack, {
      users: ['bob'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['elsewhere'],
    });
    alice = await stack.kubeconfig('alice', ['developers']);
    bob = await stack.kubeconfig('bob', []);
  });
  after(async () => {
    await stack?.stop();
  });

  test('the fleet kubeconfig names the cluster through the proxy with a kg_ token', async () => {
    const view = await kubectlOk(['config', 'view', '--raw', '-o', 'json'], { kubeconfig: alice });
    const cfg = JSON.parse(view) as {
      clusters: { name: string; cluster: { server: string } }[];
      users: { user: { token: string } }[];
      'current-context': string;
    };
    assert.deepEqual(
      cfg.clusters.map((c) => c.name),
      ['dev'],
    );
    assert.equal(cfg.clusters[0]!.cluster.server, `${stack.publicUrl}/k8s/dev`);
    assert.match(cfg.users[0]!.user.token, /^kg_[A-Za-z0-9_-]{43}$/);
    assert.equal(cfg['current-context'], 'dev');
  });

  test("get ns works, as the user's JIT account, over verified TLS", async () => {
    const out = await kubectlOk(['get', 'ns', '-o', 'name'], { kubeconfig: alice });
    assert.match(out, /namespace\/team-a/);
    assert.match(out, /namespace\/kube-system/);
    // kubectl auth whoami names the kubegate identity, not the cluster account …
    const who = await kubectlOk(['auth', 'whoami', '-o', 'json'], { kubeconfig: alice });
    const status = JSON.parse(who) as {
      status: { userInfo: { username: string; groups: string[]; extra: Record<string, string[]> } };
    };
    assert.equal(status.status.userInfo.username, 'alice');
    assert.ok(status.status.userInfo.groups.includes('system:authenticated'));
    assert.deepEqual(status.status.userInfo.extra['kubegate.dev/cluster'], ['dev']);
    // … while the request itself ran as alice's just-in-time account, never as
    // the agent: the agent reports the account it used, and the audit keeps it.
    const ranAs = await ranAsOf('alice');
    assert.match(ranAs, /^system:serviceaccount:kubegate-system:kg-u-[0-9a-f]{16}$/);
  });

  test('create, apply and delete a ConfigMap and a Deployment, checked directly on the apiserver', async () => {
    await kubectlOk(['-n', 'team-a', 'create', 'configmap', 'cm1', '--from-literal=k=v1'], {
      kubeconfig: alice,
    });
    const direct = await kubectlOk(
      ['-n', 'team-a', 'get', 'configmap', 'cm1', '-o', 'jsonpath={.data.k}'],
      admin,
    );
    assert.equal(direct, 'v1');

    const manifest = join(stack.dir, 'app.yaml');
    writeFileSync(
      manifest,
      `apiVersion: v1
kind: ConfigMap
metadata: { name: cm1, namespace: team-a }
data: { k: v2 }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: web, namespace: team-a }
spec:
  replicas: 1
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec: { containers: [{ name: web, image: nginx:1.27 }] }
`,
    );
    const applied = await kubectlOk(['apply', '-f', manifest], { kubeconfig: alice });
    assert.match(applied, /configmap\/cm1 configured/);
    assert.match(applied, /deployment.apps\/web created/);
    assert.equal(
      await kubectlOk(
        ['-n', 'team-a', 'get', 'configmap', 'cm1', '-o', 'jsonpath={.data.k}'],
        admin,
      ),
      'v2',
    );
    assert.equal(
      await kubectlOk(
        [
          '-n',
          'team-a',
          'get',
          'deployment',
          'web',
          '-o',
          'jsonpath={.spec.template.spec.containers[0].image}',
        ],
        admin,
      ),
      'nginx:1.27',
    );

    await kubectlOk(['delete', '-f', manifest, '--wait=false'], { kubeconfig: alice });
    const gone = await kubectl(['-n', 'team-a', 'get', 'configmap', 'cm1'], admin);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /NotFound/);
  });

  test('get -w receives events as they happen', async () => {
    const watcher = spawn(
      kubectlPath(),
      ['--kubeconfig', alice, '-n', 'team-a', 'get', 'configmaps', '-w', '-o', 'name'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let seen = '';
    watcher.stdout.on('data', (b: Buffer) => (seen += b.toString()));
    watcher.stderr.on('data', (b: Buffer) => (seen += b.toString()));
    const saw = async (name: string) => {
      const t0 = Date.now();
      while (!seen.includes(name)) {
        if (Date.now() - t0 > 20_000) throw new Error(`watch did not show ${name}; got: ${seen}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await saw('configmap/kube-root-ca.crt'); // the initial list arrived through the watch
      for (const name of ['w1', 'w2', 'w3']) {
        await kubectlOk(['-n', 'team-a', 'create', 'configmap', name], admin);
        await saw(`configmap/${name}`); // each event arrives while the watch stays open
      }
    } finally {
      watcher.kill('SIGINT');
    }
  });

  test("a user without rights sees kubectl's Forbidden message, naming the cluster", async () => {
    const r = await kubectl(['-n', 'team-a', 'get', 'configmaps'], { kubeconfig: bob });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /Error from server \(Forbidden\): configmaps is forbidden: User "bob" cannot list resource "configmaps" in API group "" in the namespace "team-a"/,
    );
    const r2 = await kubectl(['-n', 'kube-system', 'delete', 'configmap', 'kube-root-ca.crt'], {
      kubeconfig: alice,
    });
    assert.match(r2.stderr, /Forbidden/);
  });

  test("a bad token gets kubectl's Unauthorized", async () => {
    const cfg = await kubectlOk(['config', 'view', '--raw'], { kubeconfig: alice });
    const bad = join(stack.dir, 'bad-kubeconfig');
    writeFileSync(bad, cfg.replace(/token: kg_[A-Za-z0-9_-]+/, `token: kg_${'A'.repeat(43)}`));
    const r = await kubectl(['get', 'ns'], { kubeconfig: bad });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /error: You must be logged in to the server \(Unauthorized\)|Unauthorized/,
    );
  });

  test('answers kubegate gives itself are negotiated as the apiserver would (406, 415, YAML)', async () => {
    const { token, ca } = credsOf(alice);
    const ssar = JSON.stringify({
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SelfSubjectAccessReview',
      spec: { resourceAttributes: { verb: 'get', resource: 'pods', namespace: 'team-a' } },
    });
    const post = (headers: Record<string, string>, body = ssar) =>
      rawRequest(stack.publicUrl, ca, {
        method: 'POST',
        path: '/k8s/dev/apis/authorization.k8s.io/v1/selfsubjectaccessreviews',
        token,
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    // What the conformance spec "a 406 for a backend which does not implement metadata" sends.
    const table = await post({ accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' });
    assert.equal(table.status, 406, table.body);
    const st = JSON.parse(table.body) as { kind: string; reason: string };
    assert.deepEqual([st.kind, st.reason], ['Status', 'NotAcceptable']);
    const text = await post({ 'content-type': 'text/plain' });
    assert.equal(text.status, 415, text.body);
    const yaml = await post({ accept: 'application/yaml' });
    assert.equal(yaml.status, 201);
    assert.match(String(yaml.headers['content-type']), /application\/yaml/);
    assert.match(yaml.body, /allowed: (true|false)/);
    const fromYaml = await post(
      { 'content-type': 'application/yaml' },
      'apiVersion: authorization.k8s.io/v1\nkind: SelfSubjectAccessReview\nspec:\n  resourceAttributes: {verb: get, resource: pods, namespace: team-a}\n',
    );
    assert.equal(fromYaml.status, 201, fromYaml.body);
  });

  test('client impersonation headers are never forwarded', async () => {
    // kubectl --as sends Impersonate-User; the request must still run as alice.
    const r = await kubectl(
      [
        '--as=system:admin',
        '--as-group=system:masters',
        'auth',
        'whoami',
        '-o',
        'jsonpath={.status.userInfo.username}',
      ],
      { kubeconfig: alice },
    );
    assert.equal(r.stdout, 'alice', 'whoami answers alice, not the impersonated name');
    const r2 = await kubectl(
      ['--as=system:admin', '--as-group=system:masters', '-n', 'kube-system', 'get', 'secrets'],
      { kubeconfig: alice },
    );
    assert.match(r2.stderr, /Forbidden/);
  });

  test('after the agent is killed and restarted kubectl works again within seconds, without a new bootstrap token', async () => {
    const agent = stack.agents.get('dev')!;
    await agent.stop('SIGKILL');
    const down = await kubectl(['get', 'ns'], { kubeconfig: alice, timeoutMs: 20_000 });
    assert.notEqual(down.code, 0);
    assert.match(down.stderr, /offline|ServiceUnavailable|503/);
    const t0 = Date.now();
    await stack.startAgent('dev'); // the bootstrap token is spent: this must use the stored identity Secret
    let ok = false;
    while (Date.now() - t0 < 15_000 && !ok) {
      ok = (await kubectl(['get', 'ns', '-o', 'name'], { kubeconfig: alice })).code === 0;
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(ok, 'kubectl works again');
    process.stderr.write(`# agent restart → kubectl ok in ${Date.now() - t0} ms\n`);
    assert.match(stack.agents.get('dev')!.output(), /using stored agent certificate/);
  });
});
