/**
 * Single sign-on to kubectl, end to end with no browser and no mocks: an
 * HTTP client signs in at a real OpenID Provider (oidc-provider: login and
 * consent form posts), downloads the fleet kubeconfig from the page's
 * button, and the real kubectl uses it on two real clusters through the
 * proxy, tunnels and agents. Then what must end access does: token expiry,
 * revocation and user deactivation while a `kubectl get -w` is open (on two
 * replicas), and a robot token after its rotation overlap.
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
import { Browser } from '../support/browser.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { signIn } from '../support/sso.js';

let stack: Stack;
let idp: Idp;
let publicUrl: string;
let ca: string;

interface Kubeconfig {
  clusters: { name: string; cluster: { server: string } }[];
  contexts: { name: string }[];
  users: { user: { token: string } }[];
  'current-context': string;
}

function browser(): Browser {
  return new Browser({ ca });
}

/** Sign in as `email` and download the kubeconfig with the page's button; returns the file. */
async function download(
  b: Browser,
  email: string,
  query = '',
): Promise<{ file: string; kc: Kubeconfig; id: string }> {
  if (!b.cookie('127.0.0.1', '__Host-kg_session')) {
    const s = await signIn(b, publicUrl, email);
    assert.equal(s.result!.status, 303, s.result!.body);
  }
  const home = await b.request(`${publicUrl}/`);
  const href = /<a class="button" href="([^"]+)" download>Download kubeconfig<\/a>/.exec(
    home.body,
  )?.[1];
  assert.ok(href, `the page offers the download:\n${home.body}`);
  const r = await b.request(`${publicUrl}${href}${query}`);
  assert.equal(r.status, 200, r.body);
  const file = `${stack.dir}/sso-${email.replace(/\W/g, '_')}-${randomBytes(3).toString('hex')}.kubeconfig`;
  writeFileSync(file, r.body, { mode: 0o600 });
  return { file, kc: parse(r.body) as Kubeconfig, id: String(r.headers['x-kubegate-token-id']) };
}

async function contexts(file: string): Promise<string[]> {
  return (await kubectlOk(['config', 'get-contexts', '-o', 'name'], { kubeconfig: file }))
    .trim()
    .split('\n')
    .filter(Boolean);
}

/** `kubectl get configmaps -w` in the background; resolves `ended` with the time it exits. */
function openWatch(file: string, context: string) {
  const child = spawn(
    kubectlPath(),
    ['--kubeconfig', file, '--context', context, 'get', 'configmaps', '-n', 'default', '-w'],
    { stdio: 'ignore' },
  );
  const ended = new Promise<number>((resolve) => child.once('exit', () => resolve(Date.now())));
  return {
    ended,
    async isOpen(): Promise<boolean> {
      await new Promise((r) => setTimeout(r, 1500));
      return child.exitCode === null && child.signalCode === null;
    },
    kill: () => child.kill('SIGKILL'),
  };
}

async function endedWithin(ended: Promise<number>, t0: number, ms: number): Promise<number> {
  const at = await Promise.race([
    ended,
    new Promise<number>((r) => setTimeout(() => r(Infinity), ms)),
  ]);
  return at - t0;
}

async function refused(file: string, context: string): Promise<string> {
  const r = await kubectl(['--context', context, 'get', 'ns'], {
    kubeconfig: file,
    timeoutMs: 30_000,
  });
  assert.notEqual(r.code, 0, 'kubectl must fail');
  return r.stderr;
}

describe('single sign-on to kubectl', { timeout: 900_000 }, () => {
  before(async () => {
    // The public URL and redirect URI are fixed before anything starts, like
    // a real deployment's DNS name registered at the provider.
    const sso = await startStackIdp();
    idp = sso.idp;
    publicUrl = sso.publicUrl;
    stack = await startStack({
      clusters: [
        { name: 'dev', labels: { env: 'dev' } },
        { name: 'prod', labels: { env: 'prod' } },
      ],
      proxyEnv: sso.proxyEnv,
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await grant(stack, { groups: ['kubegate-admins'], role: 'cluster-admin', selector: {} });
    await grant(stack, { groups: ['developers'], role: 'edit', clusters: ['dev'] });
    await grant(stack, { groups: ['deployers'], role: 'view', clusters: ['prod'] });
  });
  after(async () => {
    await stack?.stop();
    await idp?.close();
  });

  test('sign in with form posts, download the kubeconfig, kubectl works on both clusters', async () => {
    const b = browser();
    const { file, kc } = await download(b, 'admin@example.com');
    assert.deepEqual(await contexts(file), ['dev', 'prod']);
    assert.equal(kc['current-context'], 'dev');
    assert.deepEqual(
      kc.clusters.map((c) => c.cluster.server),
      [`${publicUrl}/k8s/dev`, `${publicUrl}/k8s/prod`],
    );
    for (const ctx of ['dev', 'prod']) {
      const k = { kubeconfig: file };
      assert.match(
        await kubectlOk(['--context', ctx, 'get', 'ns', '-o', 'name'], k),
        /namespace\/default/,
      );
      await kubectlOk(['--context', ctx, 'create', 'configmap', `sso-${ctx}`, '-n', 'default'], k);
    }
    // Each write landed on its own cluster.
    const direct = (name: string) => ({ kubeconfig: stack.clusters.get(name)!.kubeconfig });
    await kubectlOk(['get', 'configmap', 'sso-dev', '-n', 'default'], direct('dev'));
    await kubectlOk(['get', 'configmap', 'sso-prod', '-n', 'default'], direct('prod'));
    assert.notEqual(
      (await kubectl(['get', 'configmap', 'sso-prod', '-n', 'default'], direct('dev'))).code,
      0,
    );
  });

  test("a developer's contexts match their bindings exactly, and the clusters enforce them", async () => {
    const { file } = await download(browser(), 'dev@example.com');
    assert.deepEqual(await contexts(file), ['dev']);
    const k = { kubeconfig: file };
    await kubectlOk(['create', 'configmap', 'by-dev', '-n', 'default'], k);
    // prod is not in the kubeconfig, and pointing at it by hand is refused.
    const r = await kubectl(
      ['--server', `${publicUrl}/k8s/prod`, 'get', 'configmaps', '-n', 'default'],
      k,
    );
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Forbidden/);
    assert.match(r.stderr, /on cluster "prod"/);
  });

  test('spoofed Host and X-Forwarded-* do not change the kubeconfig server URLs', async () => {
    const b = browser();
    await signIn(b, publicUrl, 'admin@example.com');
    const r = await b.request(`${publicUrl}/api/v1/kubeconfig`, {
      headers: {
        host: 'evil.example:8443',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'http',
        forwarded: 'host=evil.example;proto=http',
      },
    });
    assert.equal(r.status, 200, r.body);
    const servers = (parse(r.body) as Kubeconfig).clusters.map((c) => c.cluster.server);
    assert.deepEqual(servers, [`${publicUrl}/k8s/dev`, `${publicUrl}/k8s/prod`]);
  });

  test('an expired token is refused by kubectl', async () => {
    const { file } = await download(browser(), 'dev@example.com', '?ttl=4s');
    await kubectlOk(['get', 'configmaps', '-n', 'default'], { kubeconfig: file });
    await new Promise((r) => setTimeout(r, 4500));
    assert.match(await refused(file, 'dev'), /Unauthorized|must be logged in/);
  });

  test('a revoked token: the open watches end on both replicas within a second', async () => {
    const replica = await stack.startReplica();
    await stack.startAgent('dev', replica.env.KUBEGATE_TUNNEL_ADDRESS);
    const b = browser();
    const { file, id } = await download(b, 'dev@example.com');
    const viaReplica = `${file}-replica`;
    writeFileSync(viaReplica, readFileSync(file, 'utf8').replaceAll(publicUrl, replica.publicUrl));
    await kubectlOk(['get', 'configmaps', '-n', 'default'], { kubeconfig: viaReplica });
    const w1 = openWatch(file, 'dev');
    const w2 = openWatch(viaReplica, 'dev');
    try {
      assert.ok((await w1.isOpen()) && (await w2.isOpen()), 'both watches are open');
      const csrf = String(
        (JSON.parse((await b.request(`${publicUrl}/api/v1/me`)).body) as { csrfToken: string })
          .csrfToken,
      );
      const t0 = Date.now();
      const del = await b.request(`${publicUrl}/api/v1/tokens/${id}`, {
        method: 'DELETE',
        headers: { 'x-csrf-token': csrf },
      });
      assert.equal(del.status, 204);
      const [ms1, ms2] = await Promise.all([
        endedWithin(w1.ended, t0, 3000),
        endedWithin(w2.ended, t0, 3000),
      ]);
      process.stderr.write(
        `# token revoked → watch ended after ${ms1} ms (replica 1), ${ms2} ms (replica 2)\n`,
      );
      assert.ok(ms1 <= 1000 && ms2 <= 1000, `watches ended within a second (${ms1} ms, ${ms2} ms)`);
      assert.match(await refused(file, 'dev'), /Unauthorized|must be logged in/);
      assert.match(await refused(viaReplica, 'dev'), /Unauthorized|must be logged in/);
    } finally {
      w1.kill();
      w2.kill();
    }
  });

  test('a deactivated user: the watch ends, kubectl and sign-in are refused', async () => {
    idp.addUser({ email: 'leaver@example.com', name: 'Lee Ver', groups: ['developers'] });
    const { file } = await download(browser(), 'leaver@example.com');
    const admin = (await download(browser(), 'admin@example.com')).kc.users[0]!.user.token;
    const w = openWatch(file, 'dev');
    try {
      assert.ok(await w.isOpen(), 'the watch is open');
      const t0 = Date.now();
      const r = await browser().request(`${publicUrl}/api/v1/users/leaver@example.com/deactivate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
      });
      assert.equal(r.status, 200, r.body);
      const ms = await endedWithin(w.ended, t0, 3000);
      process.stderr.write(`# user deactivated → watch ended after ${ms} ms\n`);
      assert.ok(ms <= 1000, `the watch ended within a second (${ms} ms)`);
    } finally {
      w.kill();
    }
    assert.match(await refused(file, 'dev'), /Unauthorized|must be logged in/);
    const again = await signIn(browser(), publicUrl, 'leaver@example.com');
    assert.equal(again.result!.status, 403);
    assert.match(again.result!.body, /deactivated/);
  });

  test('a robot: its kubeconfig works; after a rotation overlap the old token is refused and its watch ends', async () => {
    const admin = (await download(browser(), 'admin@example.com')).kc.users[0]!.user.token;
    const call = (method: string, path: string, token: string, body?: unknown) =>
      browser().request(`${publicUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
    const created = await call('POST', '/api/v1/robots', admin, {
      name: 'ci',
      groups: ['deployers'],
    });
    assert.equal(created.status, 201, created.body);
    const first = (JSON.parse(created.body) as { token: { token: string } }).token.token;
    const kcRes = await call('GET', '/api/v1/kubeconfig', first);
    assert.equal(kcRes.status, 200, kcRes.body);
    const file = `${stack.dir}/robot-ci.kubeconfig`;
    writeFileSync(file, kcRes.body, { mode: 0o600 });
    assert.deepEqual(await contexts(file), ['prod']);
    await kubectlOk(['get', 'configmaps', '-n', 'default'], { kubeconfig: file });

    const w = openWatch(file, 'prod');
    try {
      assert.ok(await w.isOpen());
      const overlapMs = 3000;
      const rot = await call('POST', '/api/v1/robots/ci/rotate', admin, {
        overlap: `${overlapMs}ms`,
      });
      assert.equal(rot.status, 200, rot.body);
      const rotated = JSON.parse(rot.body) as {
        token: { token: string };
        previousValidUntil: string;
      };
      const until = Date.parse(rotated.previousValidUntil);
      // During the overlap both work.
      await kubectlOk(['get', 'configmaps', '-n', 'default'], { kubeconfig: file });
      const fresh = `${file}-rotated`;
      writeFileSync(fresh, kcRes.body.replace(/token: kg_\S+/, `token: ${rotated.token.token}`), {
        mode: 0o600,
      });
      await kubectlOk(['get', 'configmaps', '-n', 'default'], { kubeconfig: fresh });
      const endedAt = await Promise.race([
        w.ended,
        new Promise<number>((r) => setTimeout(() => r(Infinity), overlapMs + 5000)),
      ]);
      process.stderr.write(
        `# robot rotation: old token's watch ended ${endedAt - until} ms after the overlap\n`,
      );
      assert.ok(endedAt >= until - 100, 'the watch lived through the overlap');
      assert.ok(
        endedAt - until <= 1000,
        `and ended within a second after it (${endedAt - until} ms)`,
      );
      assert.match(await refused(file, 'prod'), /Unauthorized|must be logged in/);
      await kubectlOk(['get', 'configmaps', '-n', 'default'], { kubeconfig: fresh });
    } finally {
      w.kill();
    }
  });

  test('sign-ins (allowed and refused), sign-outs and kubeconfig downloads are audit events, without secrets', async () => {
    type Row = { verb: string; username: string; code: number; event: AuditEventJson };
    type AuditEventJson = {
      sourceIPs: string[];
      userAgent: string;
      annotations: Record<string, string>;
      requestObject?: { tokenId?: string; clusters?: string[] };
    };
    const rows = await stack.sql<Row>(
      `SELECT verb, username, code, event FROM audit_events WHERE resource IN ('logins', 'kubeconfigs') ORDER BY received_at`,
    );
    const logins = rows.filter((r) => r.verb === 'login' && r.code === 200);
    assert.ok(logins.some((r) => r.username === 'admin@example.com'));
    assert.ok(
      logins.every((r) => r.event.sourceIPs[0] === '127.0.0.1' && r.event.userAgent !== ''),
    );
    // The deactivated user's sign-in was refused and recorded as such.
    const refused = rows.filter((r) => r.verb === 'login' && r.code === 403);
    assert.ok(
      refused.some((r) => /deactivated/.test(r.event.annotations['kubegate.dev/reason'] ?? '')),
      JSON.stringify(refused),
    );
    // Every kubeconfig token minted by single sign-on has its download event, naming the token by id.
    const minted = await stack.sql<{ id: string; subject: string }>(
      `SELECT id::text, subject FROM api_tokens WHERE description = 'kubeconfig (single sign-on)'`,
    );
    assert.ok(minted.length >= 3);
    const downloads = rows.filter((r) => r.verb === 'download');
    for (const t of minted) {
      const d = downloads.find((r) => r.event.requestObject?.tokenId === t.id);
      assert.ok(d, `download event for token ${t.id}`);
      assert.equal(d.username, t.subject);
    }
    assert.deepEqual(
      downloads.find((r) => r.username === 'dev@example.com')?.event.requestObject?.clusters,
      ['dev'],
    );
    // Sign out, and it is recorded.
    const b = browser();
    await signIn(b, publicUrl, 'dev@example.com');
    const me = JSON.parse((await b.request(`${publicUrl}/api/v1/me`)).body) as {
      csrfToken: string;
    };
    const out = await b.post(
      `${publicUrl}/auth/logout`,
      { csrf: me.csrfToken },
      { origin: publicUrl },
    );
    assert.equal(out.status, 303);
    const logouts = await stack.sql(
      `SELECT 1 FROM audit_events WHERE verb = 'logout' AND username = 'dev@example.com'`,
    );
    assert.equal(logouts.length, 1);
    // No token value anywhere in these events.
    const text = JSON.stringify(rows);
    assert.doesNotMatch(text, /kg_[A-Za-z0-9_-]{20,}/);
  });
});
