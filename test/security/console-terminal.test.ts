/**
 * Attacks on the console's browser terminal (GET /api/v1/terminal, a
 * WebSocket with the session cookie), against a real stack (the dev IdP,
 * proxy, agent, a kube-apiserver with a kwok node whose pods really exec):
 *
 * - cross-site WebSocket hijacking: a foreign, missing or `null` Origin, or
 *   a cross-site fetch, is refused before anything else (403), never 101;
 * - no session: 401; a bearer token instead of the session: 400;
 * - query tricks: repeated, unknown or missing parameters, path traversal
 *   and encoded slashes in names, empty or oversized commands: 400 before
 *   the kube path; command words are argv, never parsed by a shell;
 * - outside the user's grants (another namespace, an unbound cluster): the
 *   kube path's 403, and the pods picker refuses as well;
 * - signing out ends an open terminal, and a closed terminal leaves no
 *   usable token behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { Browser } from '../support/browser.js';
import { signIn } from '../support/sso.js';
import { grant } from '../support/grants.js';
import { kubectlOk } from '../support/kubectl.js';
import { until } from '../support/http.js';
import { openTerminal, upgradeRequest } from '../support/terminal.js';

let stack: Stack;
let idp: Idp;
let publicUrl: string;
let ca: string;
let b: Browser;
let cookie: string;
let pod = '';
let secretPod = '';

const q = (p: Record<string, string | string[]>) => {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(p)) for (const x of [v].flat()) s.append(k, x);
  return s.toString();
};
const target = () => ({ cluster: 'dev', namespace: 'term', pod, container: 'busybox' });

async function upgrade(query: string, headers: Record<string, string> = {}) {
  return upgradeRequest(publicUrl, ca, `/api/v1/terminal?${query}`, {
    origin: publicUrl,
    cookie,
    ...headers,
  });
}

async function firstPod(ns: string): Promise<string> {
  return (
    await kubectlOk(['-n', ns, 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'], {
      kubeconfig: stack.cluster.kubeconfig,
    })
  ).trim();
}

describe('console terminal: hostile upgrades and queries', { timeout: 600_000 }, () => {
  before(async () => {
    const sso = await startStackIdp();
    idp = sso.idp;
    publicUrl = sso.publicUrl;
    stack = await startStack({
      clusters: [{ name: 'dev', nodes: 1 }],
      proxyEnv: sso.proxyEnv,
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await stack.sql(`INSERT INTO clusters (name) VALUES ('other')`);
    const admin = { kubeconfig: stack.cluster.kubeconfig };
    for (const ns of ['term', 'vault']) {
      await kubectlOk(['create', 'namespace', ns], admin);
      await kubectlOk(['-n', ns, 'create', 'deployment', 'shell', '--image=busybox'], admin);
    }
    for (const ns of ['term', 'vault'])
      await kubectlOk(['-n', ns, 'rollout', 'status', 'deployment/shell', '--timeout=120s'], {
        ...admin,
        timeoutMs: 130_000,
      });
    pod = await firstPod('term');
    secretPod = await firstPod('vault');
    await grant(stack, {
      groups: ['developers'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: ['term'],
    });
    b = new Browser({ ca });
    const s = await signIn(b, publicUrl, 'dev@example.com');
    assert.equal(s.result!.status, 303, s.result!.body);
    cookie = `__Host-kg_session=${b.cookie('127.0.0.1', '__Host-kg_session')}`;
  });
  after(async () => {
    await stack?.stop();
    await idp?.close();
  });

  test('the control case: a same-origin upgrade with the session switches, and typed commands run', async () => {
    const ok = await upgrade(q(target()));
    assert.equal(ok.status, 101, ok.body);
    assert.equal(ok.headers['sec-websocket-protocol'], 'v5.channel.k8s.io');
    const t = await openTerminal(publicUrl, ca, cookie, q(target()));
    t.resize(100, 30);
    t.type('echo hello-$((6 * 7)); stty size\r');
    await t.waitFor('hello-42');
    await t.waitFor('30 100');
    t.type('exit\r');
    await t.closed;
    assert.equal(t.status()?.status, 'Success');
  });

  test('cross-site WebSocket hijacking: a foreign, missing or null Origin, or a cross-site fetch, is refused', async () => {
    for (const headers of <Record<string, string>[]>[
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: publicUrl.replace('https:', 'http:') },
      { origin: `${publicUrl}.evil.example` },
      { origin: publicUrl, 'sec-fetch-site': 'cross-site' },
    ]) {
      const r = await upgrade(q(target()), headers);
      assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${r.body}`);
      assert.match(String(r.headers['content-type']), /problem\+json/);
    }
    const none = await upgradeRequest(publicUrl, ca, `/api/v1/terminal?${q(target())}`, {
      cookie,
    });
    assert.equal(none.status, 403, none.body);
    assert.match(none.body, /needs an Origin/);
  });

  test('no session is 401; a token instead of the session is refused', async () => {
    assert.equal((await upgrade(q(target()), { cookie: '' })).status, 401);
    const forged = await upgrade(q(target()), { cookie: `__Host-kg_session=${'A'.repeat(43)}` });
    assert.equal(forged.status, 401, forged.body);
    const kc = await stack.kubeconfig('dev@example.com', ['developers']);
    const token = /token: (kg_\S+)/.exec(readFileSync(kc, 'utf8'))![1]!;
    const bearer = await upgrade(q(target()), { cookie: '', authorization: `Bearer ${token}` });
    assert.equal(bearer.status, 400, bearer.body);
    assert.match(bearer.body, /use kubectl exec/);
  });

  test('query tricks are refused before the kube path', async () => {
    const cases: [Record<string, string | string[]>, RegExp][] = [
      [{ ...target(), pod: [pod, 'other'] }, /more than once: pod/],
      [{ ...target(), cluster: ['dev', 'other'] }, /more than once: cluster/],
      [{ ...target(), extra: 'x' }, /unknown query parameter/],
      [{ ...target(), pod: '' }, /pod is required/],
      [{ cluster: 'dev', namespace: 'term', pod }, /container is required/],
      [{ ...target(), pod: '..' }, /not a valid pod name/],
      [{ ...target(), pod: '../../secrets' }, /not a valid pod name/],
      [{ ...target(), pod: `${pod}/exec` }, /not a valid pod name/],
      [{ ...target(), namespace: 'term/../vault' }, /not a valid namespace name/],
      [{ ...target(), cluster: 'dev/../other' }, /not a valid cluster name/],
      [{ ...target(), container: 'busybox?command=id' }, /not a valid container name/],
      [{ ...target(), command: [''] }, /empty program/],
      [{ ...target(), command: ['sh', 'a\0b'] }, /NUL/],
      [{ ...target(), command: Array.from({ length: 65 }, () => 'x') }, /at most 64 arguments/],
      [{ ...target(), command: ['echo', 'x'.repeat(9000)] }, /at most 8192 bytes/],
    ];
    for (const [query, why] of cases) {
      const r = await upgrade(q(query));
      assert.equal(r.status, 400, `${JSON.stringify(query).slice(0, 200)}: ${r.body}`);
      assert.match(r.body, why);
    }
    // Encoded slashes and dots in the raw query decode to the same refused names.
    for (const raw of [
      `cluster=dev&namespace=term&pod=..%2F..%2Fsecrets&container=busybox`,
      `cluster=dev&namespace=term%2F..%2Fvault&pod=${pod}&container=busybox`,
      `cluster=dev&namespace=term&pod=${pod}%00&container=busybox`,
    ]) {
      const r = await upgrade(raw);
      assert.equal(r.status, 400, `${raw}: ${r.body}`);
    }
    // A path trick on the endpoint itself is not the terminal.
    const other = await upgradeRequest(
      publicUrl,
      ca,
      `/api/v1/terminal/../terminal?${q(target())}`,
      {
        origin: publicUrl,
        cookie,
      },
    );
    assert.notEqual(other.status, 101, other.body);
  });

  test('command words are argv: shell syntax in them is printed, never run', async () => {
    const word = '$(echo pwned);`echo pwned2`|echo pwned3&&echo pwned4';
    const t = await openTerminal(
      publicUrl,
      ca,
      cookie,
      q({ ...target(), command: ['echo', word] }),
    );
    await t.closed;
    assert.equal(t.output().trim(), word);
    assert.equal(t.status()?.status, 'Success');
  });

  test('outside the grants: another namespace or cluster is the kube path’s 403, and the picker refuses too', async () => {
    const ns = await upgrade(q({ ...target(), namespace: 'vault', pod: secretPod }));
    assert.equal(ns.status, 403, ns.body);
    assert.equal((JSON.parse(ns.body) as { kind: string }).kind, 'Status');
    assert.match(ns.body, /cannot create resource \\?"pods\/exec\\?"|pods\/exec/);
    const cluster = await upgrade(q({ ...target(), cluster: 'other' }));
    assert.equal(cluster.status, 403, cluster.body);
    const picker = await b.request(`${publicUrl}/api/v1/terminal/pods?cluster=dev&namespace=vault`);
    assert.equal(picker.status, 403, picker.body);
    assert.match(picker.body, /may not open a terminal/);
    const targets = JSON.parse((await b.request(`${publicUrl}/api/v1/terminal/targets`)).body) as {
      items: { name: string; namespaces: string[]; allNamespaces: boolean }[];
    };
    assert.deepEqual(
      targets.items.map((t) => [t.name, t.namespaces, t.allNamespaces]),
      [['dev', ['term'], false]],
    );
    // Every refusal on the kube path is an audit event of the user's.
    await until(
      async () =>
        (
          await stack.sql(
            `SELECT 1 FROM audit_events WHERE username = 'dev@example.com' AND namespace = 'vault'
                AND resource = 'pods' AND verb = 'create'`,
          )
        ).length > 0,
      10_000,
      'the refused exec is audited',
    );
  });

  test('a closed terminal leaves no usable token; signing out ends an open one', async () => {
    const live = () =>
      stack.sql<{ id: string }>(
        `SELECT id FROM api_tokens WHERE description LIKE 'console terminal %'
            AND revoked_at IS NULL AND expires_at > now()`,
      );
    await until(
      async () => (await live()).length === 0,
      10_000,
      'earlier terminals’ tokens revoked',
    );
    const t = await openTerminal(publicUrl, ca, cookie, q(target()));
    t.type('echo still-here\r');
    await t.waitFor('still-here');
    assert.equal((await live()).length, 1, 'one token while the terminal is open');
    const me = JSON.parse((await b.request(`${publicUrl}/api/v1/me`)).body) as {
      csrfToken: string;
    };
    const out = await b.post(
      `${publicUrl}/auth/logout`,
      { csrf: me.csrfToken },
      { origin: publicUrl },
    );
    assert.equal(out.status, 303, out.body);
    await t.closed;
    assert.match(String(t.status()?.message), /^session ended: kubegate ended this terminal/);
    assert.equal((await live()).length, 0);
    // Signed out, the same cookie opens nothing.
    assert.equal((await upgrade(q(target()))).status, 401);
  });
});
