/**
 * Self-service namespaces end to end (issue #22): a real OpenID Provider,
 * real kubectl, a real apiserver (with its quota and namespace controllers)
 * behind the agent, PostgreSQL, the REST API.
 *
 * A developer signs in through the provider and asks for `team-a` from the
 * `dev` profile: the namespace is there at once with its quota, limits and
 * network policies; the developer deploys into it and is Forbidden
 * elsewhere; the apiserver enforces the quota. The owner adds a colleague
 * with `edit` (kubectl works for them at once) and removes them (their open
 * watch ends); `admin` is refused where the profile allows only edit and
 * view. A `qa` namespace waits for an approver, and a denied one creates
 * nothing. Someone deleting the quota or opening the network policy by hand
 * sees it put back within the reconcile period, and the correction is in
 * the audit log. Retiring the namespace deletes it and its access.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { Browser } from '../support/browser.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { signIn } from '../support/sso.js';
import { runKubegate } from '../support/proc.js';
import { freePort } from '../support/ports.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- answers are read field by field */

let stack: Stack;
let idp: Idp;
let publicUrl: string;
let ca: string;
let metricsPort = 0;
const admin = () => ({ kubeconfig: stack.cluster.kubeconfig });

interface Person {
  file: string;
  token: string;
}
const people = new Map<string, Person>();

/** Sign in at the provider as `email` and download the fleet kubeconfig (once per person). */
async function person(email: string): Promise<Person> {
  const known = people.get(email);
  if (known) return known;
  const b = new Browser({ ca });
  const s = await signIn(b, publicUrl, email);
  assert.equal(s.result!.status, 303, s.result!.body);
  const home = await b.request(`${publicUrl}/`);
  const href = /<a class="button" href="([^"]+)" download>Download kubeconfig<\/a>/.exec(
    home.body,
  )?.[1];
  assert.ok(href, 'the page offers the kubeconfig');
  const r = await b.request(`${publicUrl}${href}`);
  assert.equal(r.status, 200, r.body);
  const file = `${stack.dir}/ns-${email.replace(/\W/g, '_')}-${randomBytes(3).toString('hex')}.kubeconfig`;
  writeFileSync(file, r.body, { mode: 0o600 });
  const token = (parse(r.body) as { users: { user: { token: string } }[] }).users[0]!.user.token;
  const p = { file, token };
  people.set(email, p);
  return p;
}

async function api(token: string, method: string, path: string, body?: unknown) {
  const r = await httpGet(`${publicUrl}${path}`, {
    ca,
    token,
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    timeoutMs: 30_000,
  });
  let json: any;
  try {
    json = JSON.parse(r.body);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, body: r.body };
}

const as = (p: Person) => ({ kubeconfig: p.file, timeoutMs: 30_000 });
const adminEmail = 'admin@example.com';
const owner = 'dev@example.com';
const colleague = 'csv@example.com';

const devProfile = {
  name: 'dev',
  description: 'Team namespaces on the dev cluster',
  clusters: { names: ['dev'] },
  naming: { prefix: 'team-', maxLength: 30 },
  quota: { pods: '2', 'requests.cpu': '1', 'requests.memory': '1Gi' },
  limits: {
    default: { cpu: '200m', memory: '128Mi' },
    defaultRequest: { cpu: '100m', memory: '64Mi' },
  },
  networkPolicy: 'default-deny',
  labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
  ownerRole: 'admin',
  memberRoles: ['edit', 'view'],
  perUserLimit: 3,
};
const qaProfile = {
  name: 'qa',
  clusters: { selector: { matchLabels: { env: 'dev' } } },
  naming: { prefix: 'qa-' },
  quota: { pods: '5' },
  networkPolicy: 'default-deny',
  approval: { approvers: { groups: ['kubegate-admins'], count: 1 }, pendingFor: '1h' },
};

async function waitReady(token: string, name: string): Promise<any> {
  let last: any;
  await until(
    async () => {
      last = (await api(token, 'GET', `/api/v1/namespaces/dev/${name}`)).json;
      return last?.status === 'ready' || last?.status === 'failed';
    },
    30_000,
    `namespace ${name} ready`,
  );
  assert.equal(last.status, 'ready', JSON.stringify(last));
  return last;
}

describe('self-service namespaces', { timeout: 900_000 }, () => {
  before(async () => {
    metricsPort = await freePort();
    const sso = await startStackIdp();
    idp = sso.idp;
    publicUrl = sso.publicUrl;
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' } }],
      proxyEnv: {
        ...sso.proxyEnv,
        KUBEGATE_NAMESPACE_RECONCILE: '2s',
        KUBEGATE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await kubectlOk(['create', 'namespace', 'shared'], admin());
    // Developers may look at one shared namespace: the fleet kubeconfig has a dev context.
    await grant(stack, {
      groups: ['developers'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['shared'],
    });
    await grant(stack, { groups: ['kubegate-admins'], role: 'cluster-admin', clusters: ['dev'] });
    const a = await person(adminEmail);
    for (const p of [devProfile, qaProfile]) {
      const r = await api(a.token, 'POST', '/api/v1/namespace-profiles', p);
      assert.equal(r.status, 201, r.body);
    }
  });
  after(async () => {
    await stack?.stop();
    await idp?.close();
  });

  test('a developer asks for team-a: it is there at once, fenced, theirs, and the quota holds', async () => {
    const dev = await person(owner);
    const t0 = Date.now();
    const r = await api(dev.token, 'POST', '/api/v1/namespaces', {
      name: 'team-a',
      profile: 'dev',
      clusters: ['dev'],
      reason: 'payments team',
    });
    assert.equal(r.status, 201, r.body);
    assert.equal(r.json.items[0].status, 'provisioning');
    const ns = await waitReady(dev.token, 'team-a');
    // The owner's kubectl reaches it (through their just-in-time account).
    await until(
      async () =>
        (await kubectl(['auth', 'can-i', 'create', 'deployments', '-n', 'team-a'], as(dev)))
          .code === 0,
      10_000,
      'the owner may create deployments in team-a',
    );
    const ms = Date.now() - t0;
    process.stderr.write(`# team-a asked → ready and usable by its owner in ${ms} ms\n`);
    assert.ok(ms <= 5000, `ready within 5 s (${ms} ms)`);
    assert.equal(ns.owner, owner);
    assert.equal(ns.yourRole, 'admin');

    const live = JSON.parse(await kubectlOk(['get', 'namespace', 'team-a', '-o', 'json'], admin()));
    assert.equal(live.metadata.labels['pod-security.kubernetes.io/enforce'], 'baseline');
    assert.equal(live.metadata.labels['kubegate.dev/namespace-profile'], 'dev');
    assert.equal(live.metadata.annotations['kubegate.dev/owner'], owner);
    const quota = JSON.parse(
      await kubectlOk(
        ['get', 'resourcequota', 'kubegate-quota', '-n', 'team-a', '-o', 'json'],
        admin(),
      ),
    );
    assert.deepEqual(quota.spec.hard, { pods: '2', 'requests.cpu': '1', 'requests.memory': '1Gi' });
    const limits = JSON.parse(
      await kubectlOk(
        ['get', 'limitrange', 'kubegate-limits', '-n', 'team-a', '-o', 'json'],
        admin(),
      ),
    );
    assert.equal(limits.spec.limits[0].default.cpu, '200m');
    const pols = JSON.parse(
      await kubectlOk(['get', 'networkpolicies', '-n', 'team-a', '-o', 'json'], admin()),
    );
    assert.deepEqual(pols.items.map((p: any) => p.metadata.name).sort(), [
      'kubegate-allow-same-namespace',
      'kubegate-default-deny',
    ]);

    // Theirs to deploy into; Forbidden elsewhere.
    await kubectlOk(
      ['create', 'deployment', 'web', '--image=registry.example/web:1', '-n', 'team-a'],
      as(dev),
    );
    const elsewhere = await kubectl(
      ['create', 'deployment', 'web', '--image=registry.example/web:1', '-n', 'shared'],
      as(dev),
    );
    assert.notEqual(elsewhere.code, 0);
    assert.match(elsewhere.stderr, /Forbidden|forbidden/);
    const other = await kubectl(['get', 'pods', '-n', 'default'], as(dev));
    assert.match(other.stderr, /forbidden/);

    // The apiserver enforces the quota: two pods fit, a third is refused.
    await until(
      async () =>
        (await kubectlOk(
          [
            'get',
            'resourcequota',
            'kubegate-quota',
            '-n',
            'team-a',
            '-o',
            'jsonpath={.status.hard.pods}',
          ],
          admin(),
        )) === '2',
      20_000,
      'the quota controller has counted team-a',
    );
    await kubectlOk(['delete', 'deployment', 'web', '-n', 'team-a', '--wait=true'], as(dev));
    await until(
      async () =>
        (await kubectlOk(
          [
            'get',
            'resourcequota',
            'kubegate-quota',
            '-n',
            'team-a',
            '-o',
            'jsonpath={.status.used.pods}',
          ],
          admin(),
        )) === '0',
      30_000,
      'the deployment pods are gone from the quota',
    );
    for (const p of ['one', 'two'])
      await kubectlOk(['run', p, '--image=registry.example/app:1', '-n', 'team-a'], as(dev));
    const third = await kubectl(
      ['run', 'three', '--image=registry.example/app:1', '-n', 'team-a'],
      as(dev),
    );
    assert.notEqual(third.code, 0, 'the third pod is refused');
    assert.match(third.stderr, /exceeded quota: kubegate-quota/);
  });

  test('the owner adds a colleague with edit, cannot give admin, and removing them ends their watch', async () => {
    const dev = await person(owner);
    const mate = await person(colleague);
    const before = await kubectl(['get', 'configmaps', '-n', 'team-a'], as(mate));
    assert.match(before.stderr, /forbidden/, 'no access before they are added');

    const refused = await api(
      dev.token,
      'PUT',
      `/api/v1/namespaces/dev/team-a/members/User/${colleague}`,
      { role: 'admin' },
    );
    assert.equal(refused.status, 403, refused.body);
    assert.match(refused.json.detail, /lets owners give "edit", "view", not "admin"/);
    const notOwner = await api(
      mate.token,
      'PUT',
      `/api/v1/namespaces/dev/team-a/members/User/${colleague}`,
      { role: 'edit' },
    );
    assert.equal(notOwner.status, 404, 'a stranger learns nothing of the namespace');

    // A second replica: the change must hold there too (it reaches the agent through the first).
    const replica = await stack.startReplica();
    const viaReplica = { kubeconfig: `${mate.file}-replica`, timeoutMs: 30_000 };
    writeFileSync(
      viaReplica.kubeconfig,
      readFileSync(mate.file, 'utf8').replaceAll(publicUrl, replica.publicUrl),
    );

    const added = await api(
      dev.token,
      'PUT',
      `/api/v1/namespaces/dev/team-a/members/User/${colleague}`,
      { role: 'edit' },
    );
    assert.equal(added.status, 200, added.body);
    const done = Date.now();
    for (const [where, k, cm] of [
      ['replica 1', as(mate), 'hello'],
      ['replica 2', viaReplica, 'hello-2'],
    ] as const) {
      let firstOk = 0;
      await until(
        async () => {
          const started = Date.now();
          const r = await kubectl(
            ['create', 'configmap', cm, '--from-literal=a=b', '-n', 'team-a'],
            k,
          );
          if (r.code === 0) firstOk = started;
          return r.code === 0;
        },
        10_000,
        `the colleague can write in team-a through ${where}`,
      );
      process.stderr.write(
        `# member added: through ${where} the first kubectl that worked started ${firstOk - done} ms after the change returned\n`,
      );
      assert.ok(
        firstOk - done <= 1000,
        `in effect within a second via ${where} (${firstOk - done} ms)`,
      );
    }
    const members = (await api(dev.token, 'GET', '/api/v1/namespaces/dev/team-a/members')).json
      .items;
    assert.deepEqual(
      members.map((m: any) => `${m.kind}:${m.name}:${m.role}:${m.owner}`),
      [`User:${owner}:admin:true`, `User:${colleague}:edit:false`],
    );

    // Their open watches, on both replicas, end when they are removed.
    const watches = [mate.file, viaReplica.kubeconfig].map((file) => {
      const child = spawn(
        kubectlPath(),
        ['--kubeconfig', file, 'get', 'configmaps', '-n', 'team-a', '-w'],
        { stdio: 'ignore' },
      );
      return {
        child,
        ended: new Promise<number>((res) => child.once('exit', () => res(Date.now()))),
      };
    });
    await new Promise((r) => setTimeout(r, 1500));
    for (const w of watches) assert.equal(w.child.exitCode, null, 'the watch is open');
    const removed = await api(
      dev.token,
      'DELETE',
      `/api/v1/namespaces/dev/team-a/members/User/${colleague}`,
    );
    assert.equal(removed.status, 204, removed.body);
    const t0 = Date.now();
    for (const [i, w] of watches.entries()) {
      const at = await Promise.race([
        w.ended,
        new Promise<number>((r) => setTimeout(() => r(Infinity), 5000)),
      ]);
      w.child.kill('SIGKILL');
      process.stderr.write(
        `# member removed: their watch on replica ${i + 1} ended after ${at - t0} ms\n`,
      );
      assert.ok(
        at - t0 <= 1000,
        `the watch on replica ${i + 1} ended within a second (${at - t0} ms)`,
      );
    }
    await replica.proxy.stop();
    const after = await kubectl(['get', 'configmaps', '-n', 'team-a'], as(mate));
    assert.match(after.stderr, /forbidden/);
  });

  test('a qa namespace waits for an approver; a denied one creates nothing, an approved one is made', async () => {
    const dev = await person(owner);
    const a = await person(adminEmail);
    const asked = await api(dev.token, 'POST', '/api/v1/namespaces', {
      name: 'qa-denied',
      profile: 'qa',
      clusters: ['dev'],
    });
    assert.equal(asked.status, 202, asked.body);
    assert.equal(asked.json.items[0].status, 'awaiting-approval');
    const denied = await api(a.token, 'POST', `/api/v1/approvals/${asked.json.approvalId}/deny`, {
      reason: 'not this sprint',
    });
    assert.equal(denied.status, 200, denied.body);
    await until(
      async () =>
        (await api(dev.token, 'GET', '/api/v1/namespaces/dev/qa-denied')).json?.status === 'denied',
      10_000,
      'qa-denied is denied',
    );
    // Give the reconciler passes to (wrongly) act, then look at the cluster.
    await new Promise((r) => setTimeout(r, 3000));
    const none = await kubectl(['get', 'namespace', 'qa-denied'], admin());
    assert.match(none.stderr, /NotFound/, 'a denied namespace is never created');

    // Approvers see what is asked, in the CLI as in the console.
    const pending = await api(dev.token, 'POST', '/api/v1/namespaces', {
      name: 'qa-look',
      profile: 'qa',
      clusters: ['dev'],
    });
    assert.equal(pending.status, 202, pending.body);
    const listed = await runKubegate(
      ['request', 'list', '--view', 'approvable', '--kind', 'namespace', '--kubeconfig', a.file],
      {
        DATABASE_URL: '',
        KUBECONFIG: '',
        KUBEGATE_SERVER: '',
        KUBEGATE_TOKEN: '',
      },
    );
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /create namespace qa-look@dev \(profile qa\)/);
    const withdrawn = await api(dev.token, 'DELETE', '/api/v1/namespaces/dev/qa-look');
    assert.equal(withdrawn.status, 202, withdrawn.body);
    assert.equal(withdrawn.json.status, 'retired', 'withdrawn before it was made');

    const second = await api(dev.token, 'POST', '/api/v1/namespaces', {
      name: 'qa-approved',
      profile: 'qa',
      clusters: ['dev'],
    });
    assert.equal(second.status, 202, second.body);
    const self = await api(
      dev.token,
      'POST',
      `/api/v1/approvals/${second.json.approvalId}/approve`,
      {},
    );
    assert.equal(self.status, 403, 'the requester cannot approve their own namespace');
    const ok = await api(a.token, 'POST', `/api/v1/approvals/${second.json.approvalId}/approve`, {
      reason: 'go',
    });
    assert.equal(ok.status, 200, ok.body);
    await waitReady(dev.token, 'qa-approved');
    await kubectlOk(['get', 'resourcequota', 'kubegate-quota', '-n', 'qa-approved'], admin());

    // Deleting it waits for an approver too; until then it stays, with its access.
    const del = await api(dev.token, 'DELETE', '/api/v1/namespaces/dev/qa-approved');
    assert.equal(del.status, 202, del.body);
    assert.equal(del.json.status, 'ready');
    assert.ok(del.json.retireApprovalId, JSON.stringify(del.json));
    const again = await api(dev.token, 'DELETE', '/api/v1/namespaces/dev/qa-approved');
    assert.equal(again.status, 409, 'one deletion request at a time');
    await kubectlOk(['get', 'configmaps', '-n', 'qa-approved'], as(dev));
    const yes = await api(
      a.token,
      'POST',
      `/api/v1/approvals/${del.json.retireApprovalId}/approve`,
      {
        reason: 'done testing',
      },
    );
    assert.equal(yes.status, 200, yes.body);
    await until(
      async () =>
        (await api(dev.token, 'GET', '/api/v1/namespaces/dev/qa-approved')).json?.status ===
        'retired',
      60_000,
      'qa-approved retired',
    );
    const gone = await kubectl(['get', 'namespace', 'qa-approved'], admin());
    assert.match(gone.stderr, /NotFound/);
  });

  test('drift: a deleted quota and an opened network policy are put back and audited', async () => {
    const a = await person(adminEmail);
    await kubectlOk(['delete', 'resourcequota', 'kubegate-quota', '-n', 'team-a'], admin());
    await kubectlOk(
      [
        'patch',
        'networkpolicy',
        'kubegate-default-deny',
        '-n',
        'team-a',
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { ingress: [{}] } }),
      ],
      admin(),
    );
    await until(
      async () =>
        (await kubectl(['get', 'resourcequota', 'kubegate-quota', '-n', 'team-a'], admin()))
          .code === 0,
      15_000,
      'the quota is back',
    );
    await until(
      async () => {
        const p = JSON.parse(
          await kubectlOk(
            ['get', 'networkpolicy', 'kubegate-default-deny', '-n', 'team-a', '-o', 'json'],
            admin(),
          ),
        );
        return p.spec.ingress === undefined;
      },
      15_000,
      'the deny policy is closed again',
    );
    let events: any[] = [];
    await until(
      async () => {
        const r = await api(
          a.token,
          'GET',
          '/api/v1/audit?resource=namespaces&verb=correct&limit=50',
        );
        events = r.json?.items ?? [];
        const text = JSON.stringify(events);
        return text.includes('kubegate-quota') && text.includes('kubegate-default-deny');
      },
      15_000,
      'both corrections are in the audit log',
    );
    const ns = (await api(a.token, 'GET', '/api/v1/namespaces/dev/team-a')).json;
    assert.ok(ns.drift >= 2, JSON.stringify(ns));
    // The drift counter, and the fleet's count (read from PostgreSQL every 10 s).
    let metrics = '';
    await until(
      async () => {
        metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
        return /kubegate_namespaces_managed\{profile="dev",status="ready"\} [1-9]/.test(metrics);
      },
      15_000,
      'the namespaces gauge counts team-a',
    );
    assert.match(
      metrics,
      /kubegate_namespace_drift_corrections_total\{profile="dev",kind="ResourceQuota"\} [1-9]/,
    );
    assert.match(
      metrics,
      /kubegate_namespace_drift_corrections_total\{profile="dev",kind="NetworkPolicy"\} [1-9]/,
    );
  });

  test('the owner retires team-a: its access goes at once and the cluster deletes it', async () => {
    const dev = await person(owner);
    const r = await api(dev.token, 'DELETE', '/api/v1/namespaces/dev/team-a');
    assert.equal(r.status, 202, r.body);
    assert.equal(r.json.status, 'retiring');
    const bindings = await stack.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM bindings b JOIN managed_namespaces m ON m.id = b.managed_namespace WHERE m.name = 'team-a'`,
    );
    assert.equal(bindings[0]!.n, 0, 'its bindings are gone');
    await until(
      async () =>
        (await api(dev.token, 'GET', '/api/v1/namespaces/dev/team-a')).json?.status === 'retired',
      60_000,
      'team-a retired',
    );
    const gone = await kubectl(['get', 'namespace', 'team-a'], admin());
    assert.match(gone.stderr, /NotFound/);
    // The name is free again.
    const again = await api(dev.token, 'POST', '/api/v1/namespaces', {
      name: 'team-a',
      profile: 'dev',
      clusters: ['dev'],
    });
    assert.equal(again.status, 201, again.body);
  });
});
