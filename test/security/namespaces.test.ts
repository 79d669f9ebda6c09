/**
 * Attacks on self-service namespaces (issue #22), against a real stack
 * (proxy, agent, apiserver, PostgreSQL):
 *
 * - names that try to reach the cluster's own namespaces or break the
 *   profile's rule, clusters outside the profile, profiles the caller may
 *   not use — refused with nothing made;
 * - the per-person limit raced by parallel requests;
 * - other people's namespaces: not readable, not changeable, not even shown
 *   to exist; a member may look but not manage;
 * - handing out more than you hold: a role beyond the profile's list, or
 *   one that grants what the owner does not hold;
 * - path and body tricks: encoded slashes, lone `%`, `system:` names, odd
 *   kinds, huge and deep bodies, unknown query parameters;
 * - a person reaching the agent's namespaces control path through the
 *   Kubernetes path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { httpGet, until } from '../support/http.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- answers are read field by field */

let stack: Stack;
let ca: string;
let admin: string;
let alice: string;
let aliceFile: string;
let bob: string;
let carol: string;
const k = () => ({ kubeconfig: stack.cluster.kubeconfig });

function tokenOf(file: string): string {
  return (parse(readFileSync(file, 'utf8')) as { users: { user: { token: string } }[] }).users[0]!
    .user.token;
}

async function api(token: string, method: string, path: string, body?: unknown) {
  const r = await httpGet(`${stack.publicUrl}${path}`, {
    ca,
    token,
    method,
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    timeoutMs: 30_000,
  });
  let json: any = {};
  try {
    json = r.body ? JSON.parse(r.body) : {};
  } catch {
    json = { raw: r.body };
  }
  return { status: r.status, json };
}

const ask = (token: string, name: string, extra: Record<string, unknown> = {}) =>
  api(token, 'POST', '/api/v1/namespaces', { name, profile: 'team', clusters: ['dev'], ...extra });

async function namespacesOnCluster(): Promise<string[]> {
  const out = await kubectlOk(
    ['get', 'namespaces', '-o', 'jsonpath={.items[*].metadata.name}'],
    k(),
  );
  return out.split(/\s+/).filter(Boolean);
}

describe('self-service namespaces under attack', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({
      proxyEnv: { KUBEGATE_NAMESPACE_RECONCILE: '2s' },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    admin = tokenOf(await stack.kubeconfig('root@example.com', ['kubegate-admins']));
    aliceFile = await stack.kubeconfig('alice@example.com', ['developers']);
    alice = tokenOf(aliceFile);
    bob = tokenOf(await stack.kubeconfig('bob@example.com', ['developers']));
    carol = tokenOf(await stack.kubeconfig('carol@example.com', ['outsiders']));
    // A role the namespace admin role does not cover: reading nodes is cluster-scoped.
    const role = await api(admin, 'POST', '/api/v1/roles', {
      name: 'node-reader',
      rules: [{ apiGroups: [''], resources: ['nodes', 'pods'], verbs: ['get'] }],
    });
    assert.equal(role.status, 201, JSON.stringify(role.json));
    for (const p of [
      {
        name: 'team',
        clusters: { names: ['dev'] },
        naming: { prefix: 'team-', maxLength: 20 },
        memberRoles: ['edit', 'view', 'node-reader'],
        perUserLimit: 3,
        requesterGroups: ['developers'],
      },
    ]) {
      const r = await api(admin, 'POST', '/api/v1/namespace-profiles', p);
      assert.equal(r.status, 201, JSON.stringify(r.json));
    }
  });
  after(async () => {
    await stack?.stop();
  });

  test('hostile names and clusters are refused and nothing is made', async () => {
    const before = await namespacesOnCluster();
    for (const [name, why] of [
      ['kube-system', /start with "team-"|reserved/],
      ['default', /start with "team-"|reserved/],
      ['team-../kube-system', /DNS label/],
      ['Team-A', /DNS label/],
      ['team-a\n', /DNS label/],
      ['team-' + 'a'.repeat(20), /at most 20 characters/],
      ['team-' + 'a'.repeat(60), /DNS label/],
      ['', /DNS label/],
    ] as const) {
      const r = await ask(alice, name);
      assert.equal(r.status, 422, `${JSON.stringify(name)}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.detail, why);
    }
    assert.equal((await ask(alice, 'team-x', { clusters: ['prod'] })).status, 422);
    assert.match(
      (await ask(alice, 'team-x', { clusters: ['prod'] })).json.detail,
      /not a cluster kubegate knows/,
    );
    assert.match(
      (await ask(alice, 'team-x', { clusters: 'dev' })).json.detail,
      /clusters: must be a list/,
    );
    assert.match((await ask(alice, 'team-x', { profile: '../team' })).json.detail, /profile:/);
    assert.match(
      (await ask(alice, 'team-x', { owner: 'root@example.com' })).json.detail,
      /owner: unknown field/,
    );
    // A profile for other people's groups is not there for this caller.
    const outsider = await ask(carol, 'team-c');
    assert.equal(outsider.status, 422);
    assert.match(outsider.json.detail, /is not a namespace profile/);
    assert.deepEqual((await api(carol, 'GET', '/api/v1/namespace-profiles')).json.items, []);
    assert.equal((await api(carol, 'GET', '/api/v1/namespace-profiles/team')).status, 404);
    // Only admins write profiles.
    assert.equal(
      (
        await api(alice, 'POST', '/api/v1/namespace-profiles', {
          name: 'mine',
          clusters: { selector: {} },
        })
      ).status,
      403,
    );
    assert.equal((await api(alice, 'DELETE', '/api/v1/namespace-profiles/team')).status, 403);
    const rows = await stack.sql<{ n: number }>(
      'SELECT count(*)::int AS n FROM managed_namespaces',
    );
    assert.equal(rows[0]!.n, 0, 'nothing was recorded');
    assert.deepEqual(await namespacesOnCluster(), before, 'nothing was made on the cluster');
  });

  test('huge, deep and odd bodies and queries get clear errors', async () => {
    const huge = await api(
      alice,
      'POST',
      '/api/v1/namespaces',
      JSON.stringify({
        name: 'team-h',
        profile: 'team',
        clusters: ['dev'],
        reason: 'x'.repeat(200_000),
      }),
    );
    assert.equal(huge.status, 413);
    let deep: unknown = 'x';
    for (let i = 0; i < 200; i++) deep = [deep];
    const d = await api(alice, 'POST', '/api/v1/namespaces', {
      name: 'team-d',
      profile: 'team',
      clusters: deep,
    });
    assert.equal(d.status, 400);
    const many = await ask(alice, 'team-m', {
      clusters: Array.from({ length: 51 }, (_, i) => `c${i}`),
    });
    assert.equal(many.status, 422);
    assert.equal(
      (await api(alice, 'GET', '/api/v1/namespaces?all=true')).status,
      403,
      'all=true is for admins',
    );
    assert.equal(
      (await api(alice, 'GET', '/api/v1/namespaces?cluster=dev&cluster=prod')).status,
      400,
    );
    assert.equal((await api(alice, 'GET', '/api/v1/namespaces?sort=name')).status, 400);
    const profile = await api(admin, 'POST', '/api/v1/namespace-profiles', {
      name: 'slow',
      clusters: { selector: {} },
      naming: { pattern: '(a+)+b' },
    });
    assert.equal(profile.status, 422, 'a pattern that can backtrack for ever is refused');
  });

  test('the per-person limit holds when requests race', async () => {
    const results = await Promise.all(
      ['team-r1', 'team-r2', 'team-r3', 'team-r4', 'team-r5', 'team-r6'].map((n) => ask(bob, n)),
    );
    const made = results.filter((r) => r.status === 201).length;
    assert.equal(made, 3, results.map((r) => `${r.status} ${r.json.detail ?? ''}`).join('\n'));
    for (const r of results.filter((r) => r.status !== 201)) {
      assert.equal(r.status, 403);
      assert.match(r.json.detail, /allows 3 namespace\(s\) per person/);
    }
    // The same name twice at once: one wins, the other is told it is taken.
    await Promise.all(
      (await api(bob, 'GET', '/api/v1/namespaces')).json.items.map((n: any) =>
        api(bob, 'DELETE', `/api/v1/namespaces/dev/${n.name}`),
      ),
    );
    const twice = await Promise.all([ask(alice, 'team-same'), ask(bob, 'team-same')]);
    assert.deepEqual(twice.map((r) => r.status).sort(), [201, 409]);
    assert.match(twice.find((r) => r.status === 409)!.json.detail, /already taken|just taken/);
  });

  test("other people's namespaces are invisible; members look but do not manage; nobody hands out more than they hold", async () => {
    const made = await ask(alice, 'team-alice');
    assert.equal(made.status, 201, JSON.stringify(made.json));
    await until(
      async () =>
        (await api(alice, 'GET', '/api/v1/namespaces/dev/team-alice')).json.status === 'ready',
      30_000,
      'team-alice ready',
    );
    const base = '/api/v1/namespaces/dev/team-alice';
    // A stranger: every path is a 404, as if there were nothing.
    for (const [method, path, body] of [
      ['GET', base, undefined],
      ['GET', `${base}/members`, undefined],
      ['PUT', `${base}/members/User/bob@example.com`, { role: 'edit' }],
      ['DELETE', `${base}/members/User/alice@example.com`, undefined],
      ['POST', `${base}/owner`, { user: 'bob@example.com' }],
      ['DELETE', base, undefined],
    ] as const) {
      const r = await api(bob, method, path, body);
      assert.equal(r.status, 404, `${method} ${path}: ${JSON.stringify(r.json)}`);
    }
    assert.deepEqual(
      (await api(bob, 'GET', '/api/v1/namespaces')).json.items.filter(
        (n: any) => n.name === 'team-alice',
      ),
      [],
    );

    // Beyond the profile, beyond what alice holds, odd names and kinds.
    const put = (who: string, kind: string, name: string, body: unknown) =>
      api(alice, 'PUT', `${base}/members/${kind}/${name}`, body).then((r) => ({ ...r, who }));
    const refusals = [
      [
        await put('admin role', 'User', 'bob@example.com', { role: 'admin' }),
        403,
        /lets owners give/,
      ],
      [
        await put('cluster-admin', 'Group', 'developers', { role: 'cluster-admin' }),
        403,
        /lets owners give/,
      ],
      [
        await put('more than held', 'User', 'bob@example.com', { role: 'node-reader' }),
        403,
        /grants what you do not hold.*nodes/,
      ],
      [
        await put('system name', 'Group', 'system:masters', { role: 'view' }),
        422,
        /must not start with "system:"/,
      ],
      [
        await put('encoded system name', 'Group', 'system%3Amasters', { role: 'view' }),
        422,
        /must not start with "system:"/,
      ],
      [
        await put('odd kind', 'ServiceAccount', 'x', { role: 'view' }),
        422,
        /kind: must be User or Group/,
      ],
      [await put('lone percent', 'User', 'bob%', { role: 'view' }), 400, /percent-encoded/],
      [
        await put('extra field', 'User', 'bob@example.com', {
          role: 'view',
          namespaces: ['kube-system'],
        }),
        422,
        /the body is \{role\}/,
      ],
    ] as const;
    for (const [r, status, why] of refusals) {
      assert.equal(r.status, status, `${r.who}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.detail, why, r.who);
    }
    // An encoded slash is one name, never a path.
    const slash = await put('encoded slash', 'User', 'bob%2F..%2Fadmin', { role: 'view' });
    assert.equal(slash.status, 200, JSON.stringify(slash.json));
    assert.equal(slash.json.name, 'bob/../admin');
    await api(alice, 'DELETE', `${base}/members/User/bob%2F..%2Fadmin`);

    // A member (view) sees the namespace and its members but cannot manage it.
    assert.equal(
      (await put('bob as viewer', 'User', 'bob@example.com', { role: 'view' })).status,
      200,
    );
    assert.equal((await api(bob, 'GET', base)).json.yourRole, 'view');
    const listed = (await api(bob, 'GET', '/api/v1/namespaces')).json.items;
    assert.deepEqual(
      listed.filter((n: any) => n.name === 'team-alice').map((n: any) => [n.yourRole, n.mayManage]),
      [['view', false]],
      'the list says the member’s role too',
    );
    const escalate = await api(bob, 'PUT', `${base}/members/User/bob@example.com`, {
      role: 'edit',
    });
    assert.equal(escalate.status, 403);
    assert.match(escalate.json.detail, /only the owner/);
    assert.equal((await api(bob, 'DELETE', base)).status, 403);
    assert.equal(
      (await api(bob, 'POST', `${base}/owner`, { user: 'bob@example.com' })).status,
      403,
    );

    // Nothing reached the cluster beyond what the central bindings allow.
    const bindings = await stack.sql<{ role: string }>(
      `SELECT b.role FROM bindings b JOIN managed_namespaces m ON m.id = b.managed_namespace WHERE m.name = 'team-alice' ORDER BY b.role`,
    );
    assert.deepEqual(
      bindings.map((b) => b.role),
      ['admin', 'view'],
    );
  });

  test("a profile's new owner role reaches every owner at once; members keep theirs", async () => {
    const p = (await api(admin, 'GET', '/api/v1/namespace-profiles/team')).json;
    const r = await api(admin, 'PUT', '/api/v1/namespace-profiles/team', {
      ...p,
      ownerRole: 'edit',
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const roles = await stack.sql<{ role: string; managed_as: string }>(
      `SELECT b.role, b.managed_as FROM bindings b JOIN managed_namespaces m ON m.id = b.managed_namespace
        WHERE m.name = 'team-alice' ORDER BY b.managed_as DESC`,
    );
    assert.deepEqual(
      roles.map((b) => `${b.managed_as}:${b.role}`),
      ['owner:edit', 'member:view'],
    );
    // An owner holding edit can no longer hand out edit's superset, and still gives view.
    assert.equal(
      (await api(alice, 'GET', '/api/v1/namespaces/dev/team-alice')).json.yourRole,
      'edit',
    );
  });

  test("the agent's namespaces control path cannot be reached through the Kubernetes path", async () => {
    const body = JSON.stringify({
      namespaces: [{ name: 'pwned', labels: {}, annotations: {}, objects: [] }],
    });
    for (const path of [
      '/.kubegate/v1/namespaces',
      '/k8s/dev/.kubegate/v1/namespaces',
      '/k8s/dev/%2Ekubegate/v1/namespaces',
    ]) {
      const r = await httpGet(`${stack.publicUrl}${path}`, {
        ca,
        token: admin,
        method: 'POST',
        body,
        timeoutMs: 10_000,
      });
      assert.ok(r.status >= 400, `${path}: ${r.status}`);
    }
    const raw = await kubectl(['create', '--raw', '/.kubegate/v1/namespaces', '-f', '-'], {
      kubeconfig: aliceFile,
      input: body,
    });
    assert.notEqual(raw.code, 0);
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(!(await namespacesOnCluster()).includes('pwned'), 'no namespace was made');
  });
});
