/** Identity configuration rules, kubeconfig file names, cookies and the CSRF checks. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KgError } from '../../common/errors.js';
import { loadProxyConfig } from '../../proxy/config.js';
import { identitySettings } from '../../proxy/identity/settings.js';
import { kubeconfigFilename } from '../../proxy/identity/fleet.js';
import { readCookies, setCookie } from '../../proxy/identity/cookies.js';
import { checkBrowserRequest, type Caller } from '../../proxy/identity/caller.js';
import type { AnyRequest } from '../../proxy/forward/forward.js';

const env = {
  DATABASE_URL: 'postgres://x@db/kg',
  KUBEGATE_MASTER_KEY: 'k',
  KUBEGATE_PUBLIC_URL: 'https://kg.example.com',
  KUBEGATE_TUNNEL_ADDRESS: 'kg:8444',
};

function problems(extra: NodeJS.ProcessEnv): string {
  try {
    identitySettings(loadProxyConfig({ ...env, ...extra }));
    return '';
  } catch (err) {
    assert.ok(err instanceof KgError);
    assert.equal(err.code, 'KG_ERR_CONFIG');
    return err.message;
  }
}

test('settings: single sign-on off without an issuer; defaults are safe', () => {
  const s = identitySettings(loadProxyConfig(env));
  assert.equal(s.oidc, undefined);
  assert.equal(s.overage, 'refuse');
  assert.equal(s.sessionMaxAgeMs, 12 * 3_600_000);
  assert.equal(s.tokenMaxTtlMs, 7 * 86_400_000);
  assert.deepEqual([...s.adminGroups], ['kubegate-admins']);
});

test('settings: the redirect URI defaults to <publicUrl>/auth/callback', () => {
  const s = identitySettings(
    loadProxyConfig({
      ...env,
      KUBEGATE_OIDC_ISSUER_URL: 'https://idp.example',
      KUBEGATE_OIDC_CLIENT_ID: 'kg',
    }),
  );
  assert.equal(s.oidc?.redirectUrl.href, 'https://kg.example.com/auth/callback');
});

test('settings: every problem is reported together', () => {
  const msg = problems({
    KUBEGATE_OIDC_ISSUER_URL: 'http://idp.example',
    KUBEGATE_OIDC_REDIRECT_URL: 'https://evil.example/auth/callback',
    KUBEGATE_OIDC_SCOPES: 'email',
    KUBEGATE_TOKEN_TTL: '30d',
  });
  assert.match(msg, /ISSUER_URL must be https/);
  assert.match(msg, /CLIENT_ID is required/);
  assert.match(msg, /REDIRECT_URL must be https:\/\/kg\.example\.com\/auth\/callback/);
  assert.match(msg, /must include "openid"/);
  assert.match(msg, /TOKEN_TTL \(the default\) must not exceed/);
});

test('settings: an http issuer only with the explicit insecure flag; overage values checked', () => {
  const ok = {
    KUBEGATE_OIDC_ISSUER_URL: 'http://127.0.0.1:9999',
    KUBEGATE_OIDC_CLIENT_ID: 'kg',
    KUBEGATE_OIDC_ALLOW_INSECURE_ISSUER: 'true',
  };
  assert.equal(problems(ok), '');
  assert.match(problems({ ...ok, KUBEGATE_OIDC_ALLOW_INSECURE_ISSUER: 'false' }), /must be https/);
  assert.throws(
    () => loadProxyConfig({ ...env, KUBEGATE_OIDC_GROUPS_OVERAGE: 'allow' }),
    /must be "refuse" or "no-groups"/,
  );
  assert.match(
    problems({ KUBEGATE_PUBLIC_URL: 'http://kg.example.com' }),
    /PUBLIC_URL must be https/,
  );
});

test('kubeconfig file names are safe for any user name (property)', () => {
  assert.equal(kubeconfigFilename('admin@example.com'), 'kubegate-admin_example.com.kubeconfig');
  assert.equal(kubeconfigFilename('../../etc/passwd'), 'kubegate-etc_passwd.kubeconfig');
  assert.equal(kubeconfigFilename('"; x="'), 'kubegate-x_.kubeconfig');
  assert.equal(kubeconfigFilename(''), 'kubegate-user.kubeconfig');
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (u) => {
      const n = kubeconfigFilename(u);
      assert.match(
        n,
        /^kubegate-[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.kubeconfig$|^kubegate-user\.kubeconfig$/,
      );
    }),
  );
});

test('cookies: parsed from one or several headers; set with every protective attribute', () => {
  const c = readCookies(['a=1; __Host-kg_session=abc', 'b=2; a=9']);
  assert.equal(c.get('a'), '1');
  assert.equal(c.get('__Host-kg_session'), 'abc');
  assert.equal(c.get('b'), '2');
  assert.equal(
    setCookie('__Host-kg_session', 'v', 60.7),
    '__Host-kg_session=v; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax',
  );
});

const settings = identitySettings(loadProxyConfig(env));
function sessionCaller(csrf: string): Caller {
  return {
    via: 'session',
    kind: 'user',
    name: 'a',
    groups: [],
    admin: false,
    userId: 'u',
    robotId: undefined,
    tokenId: undefined,
    tokenExpiresAt: undefined,
    session: { csrfToken: csrf } as Caller['session'],
    actor: 'user:a',
  };
}
const req = (method: string, headers: Record<string, string>) =>
  ({ method, headers }) as unknown as AnyRequest;

const csrfTable: { name: string; method: string; headers: Record<string, string>; ok: boolean }[] =
  [
    { name: 'GET needs no token', method: 'GET', headers: {}, ok: true },
    {
      name: 'same-origin GET',
      method: 'GET',
      headers: { 'sec-fetch-site': 'same-origin' },
      ok: true,
    },
    {
      name: 'cross-site GET refused',
      method: 'GET',
      headers: { 'sec-fetch-site': 'cross-site' },
      ok: false,
    },
    {
      name: 'foreign Origin refused',
      method: 'GET',
      headers: { origin: 'https://evil.example' },
      ok: false,
    },
    { name: 'POST without token', method: 'POST', headers: {}, ok: false },
    {
      name: 'DELETE with wrong token',
      method: 'DELETE',
      headers: { 'x-csrf-token': 'nope' },
      ok: false,
    },
    { name: 'DELETE with token', method: 'DELETE', headers: { 'x-csrf-token': 'tok' }, ok: true },
    {
      name: 'POST with token and own Origin',
      method: 'POST',
      headers: { 'x-csrf-token': 'tok', origin: 'https://kg.example.com' },
      ok: true,
    },
    {
      name: 'token of another length',
      method: 'POST',
      headers: { 'x-csrf-token': 'tok2' },
      ok: false,
    },
  ];
for (const t of csrfTable) {
  test(`CSRF: ${t.name}`, () => {
    const run = () => checkBrowserRequest(req(t.method, t.headers), sessionCaller('tok'), settings);
    if (t.ok) run();
    else assert.throws(run, (e: unknown) => e instanceof KgError && e.status === 403);
  });
}

test('CSRF: bearer callers are not subject to it', () => {
  const c = { ...sessionCaller('tok'), via: 'token' as const, session: undefined };
  checkBrowserRequest(req('DELETE', { 'sec-fetch-site': 'cross-site' }), c, settings);
});
