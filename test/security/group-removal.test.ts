/**
 * Attack: keep a group's access after being removed from it at the identity
 * provider (issue #17 item 13). Before the fix the groups of a sign-in were
 * frozen into every token it minted, for the token's whole life (up to
 * KUBEGATE_TOKEN_MAX_TTL, 7 days by default). On the real stack — a real
 * OpenID Provider (oidc-provider) issuing refresh tokens, PostgreSQL, a real
 * kube-apiserver, the real kubectl — this proves:
 *  - a user removed from a group at the provider loses what the group gave
 *    within the refresh interval (2 s here), for the token they already
 *    hold; a watch opened with the old groups ends;
 *  - a user removed from the provider altogether: the refresh is refused and
 *    every token of the sign-in is revoked, the browser session ends;
 *  - a token asked for with a ttl beyond the sign-in's bound
 *    (KUBEGATE_SSO_TOKEN_MAX_AGE from auth_time) is capped at the bound, and
 *    so is one minted with that token.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { Browser } from '../support/browser.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { signIn } from '../support/sso.js';
import { httpGet, until } from '../support/http.js';

const log = (m: string) => process.stderr.write(`# ${m}\n`);
let stack: Stack;
let idp: Idp;
let publicUrl: string;
let ca: string;
const refreshMs = 2000;

interface Download {
  file: string;
  token: string;
  id: string;
  expires: Date;
  capped: string | undefined;
}

async function signedIn(email: string): Promise<Browser> {
  const b = new Browser({ ca });
  const s = await signIn(b, publicUrl, email);
  assert.equal(s.result!.status, 303, s.result!.body);
  return b;
}

async function download(b: Browser, query = ''): Promise<Download> {
  const r = await b.request(`${publicUrl}/api/v1/kubeconfig${query}`);
  assert.equal(r.status, 200, r.body);
  return saved(r.body, r.headers);
}

function saved(body: string, headers: Record<string, string | string[] | undefined>): Download {
  const file = `${stack.dir}/sso-${randomBytes(4).toString('hex')}.kubeconfig`;
  writeFileSync(file, body, { mode: 0o600 });
  const kc = parse(body) as { users: { user: { token: string } }[] };
  return {
    file,
    token: kc.users[0]!.user.token,
    id: String(headers['x-kubegate-token-id']),
    expires: new Date(String(headers['x-kubegate-token-expires'])),
    capped: headers['x-kubegate-token-capped'] as string | undefined,
  };
}

const canWrite = async (file: string) =>
  (
    await kubectl(['auth', 'can-i', 'create', 'configmaps', '-n', 'default'], {
      kubeconfig: file,
    })
  ).stdout.trim() === 'yes';

describe('group removal at the identity provider reaches tokens already issued', () => {
  before(async () => {
    const sso = await startStackIdp({ refreshTokens: true });
    idp = sso.idp;
    publicUrl = sso.publicUrl;
    idp.addUser({ email: 'mover@example.com', name: 'Mo Ver', groups: ['developers', 'sre'] });
    idp.addUser({ email: 'leaver@example.com', name: 'Lee Ver', groups: ['sre'] });
    stack = await startStack({
      proxyEnv: { ...sso.proxyEnv, KUBEGATE_OIDC_REFRESH_INTERVAL: `${refreshMs}ms` },
      log,
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await grant(stack, { groups: ['developers'], role: 'view', clusters: ['dev'] });
    await grant(stack, { groups: ['sre'], role: 'edit', clusters: ['dev'] });
  });
  after(async () => {
    await stack?.stop();
    await idp?.close();
  });

  test('removed from a group at the provider: the refresh takes the group from the token already issued, and its open watch ends', async () => {
    const b = await signedIn('mover@example.com');
    const d = await download(b);
    assert.equal(await canWrite(d.file), true, 'control: sre may write');
    await kubectlOk(['create', 'configmap', 'mover-1', '-n', 'default'], { kubeconfig: d.file });
    const watch = spawn(
      kubectlPath(),
      ['--kubeconfig', d.file, 'get', 'configmaps', '-n', 'default', '-w'],
      { stdio: 'ignore' },
    );
    const watchEnded = new Promise<number>((r) => watch.once('exit', () => r(Date.now())));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(watch.exitCode, null, 'the watch is open');

    idp.users.get('mover@example.com')!.groups = ['developers'];
    const t0 = Date.now();
    const ms = await until(async () => !(await canWrite(d.file)), 30_000, 'write access gone');
    log(
      `group removal reached the issued token ${ms} ms after the change at the provider (refresh interval ${refreshMs} ms)`,
    );
    const w = await kubectl(['create', 'configmap', 'mover-2', '-n', 'default'], {
      kubeconfig: d.file,
    });
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /forbidden/i, w.stderr);
    // What the remaining group gives still works.
    assert.match(
      await kubectlOk(['get', 'configmap', 'mover-1', '-n', 'default'], { kubeconfig: d.file }),
      /mover-1/,
    );
    const ended = await Promise.race([
      watchEnded,
      new Promise<number>((r) => setTimeout(() => r(Infinity), 15_000)),
    ]);
    watch.kill('SIGKILL');
    assert.ok(Number.isFinite(ended), 'the watch opened with the old groups ended');
    log(`the open watch ended ${ended - t0} ms after the change at the provider`);

    const [tok] = await stack.sql<{ groups: string[] }>(
      'SELECT groups FROM api_tokens WHERE id = $1',
      [d.id],
    );
    assert.deepEqual(tok!.groups, ['developers']);
    const [u] = await stack.sql<{ groups: string[] }>(
      `SELECT groups FROM users WHERE username = 'mover@example.com'`,
    );
    assert.deepEqual(u!.groups, ['developers']);
    const ev = await stack.sql<{ event: { requestObject?: { groupsAfter?: string[] } } }>(
      `SELECT event FROM audit_events WHERE source = 'admin' AND resource = 'users'
          AND verb = 'update' AND name = 'mover@example.com'`,
    );
    assert.ok(ev.length >= 1, 'the group change is an admin audit event');
  });

  test('removed from the provider: the refused refresh revokes every token of the sign-in and ends its session', async () => {
    const b = await signedIn('leaver@example.com');
    const d = await download(b);
    assert.equal(await canWrite(d.file), true, 'control');
    idp.removeUser('leaver@example.com');
    const ms = await until(
      async () => {
        const r = await kubectl(['get', 'ns'], { kubeconfig: d.file });
        return r.code !== 0 && /Unauthorized|must be logged in/i.test(r.stderr);
      },
      30_000,
      'the token is refused',
    );
    log(`removal from the provider revoked the token within ${ms} ms`);
    const [tok] = await stack.sql<{ revoked_at: Date | null }>(
      'SELECT revoked_at FROM api_tokens WHERE id = $1',
      [d.id],
    );
    assert.ok(tok!.revoked_at, 'the token is revoked');
    const me = await b.request(`${publicUrl}/api/v1/me`);
    assert.equal(me.status, 401, `the session ended: ${me.status} ${me.body}`);
  });

  test('a token asked for beyond the sign-in bound is capped at it, and so is one minted with it', async () => {
    const b = await signedIn('dev@example.com');
    const d = await download(b, '?ttl=7d');
    const [s] = await stack.sql<{ expires_at: Date; auth_time: Date }>(
      `SELECT si.expires_at, si.auth_time FROM sso_signins si JOIN api_tokens t ON t.signin_id = si.id
        WHERE t.id = $1`,
      [d.id],
    );
    assert.ok(s, 'the token belongs to its sign-in');
    assert.equal(
      s.expires_at.getTime() - s.auth_time.getTime(),
      12 * 3_600_000,
      'default bound 12 h',
    );
    assert.equal(d.expires.getTime(), s.expires_at.getTime(), 'capped at the bound, not 7 days');
    assert.equal(d.capped, 'sso-sign-in');
    // Minting with that token (bearer): still the same bound and the same sign-in.
    const r = await httpGet(`${publicUrl}/api/v1/kubeconfig?ttl=7d`, { token: d.token, ca });
    assert.equal(r.status, 200, r.body);
    const child = saved(r.body, r.headers);
    assert.ok(
      child.expires.getTime() <= s.expires_at.getTime(),
      'a child token never outlives the bound',
    );
    const [c] = await stack.sql<{ same: boolean }>(
      `SELECT signin_id = (SELECT signin_id FROM api_tokens WHERE id = $2) AS same FROM api_tokens WHERE id = $1`,
      [child.id, d.id],
    );
    assert.equal(c!.same, true, 'the child token is refreshed with the same sign-in');
  });
});
