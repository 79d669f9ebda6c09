/**
 * Single sign-on against a real OpenID Provider (oidc-provider), followed
 * by an HTTP client through every redirect and form post: the happy path,
 * each way a sign-in must be refused (state, nonce, PKCE, code replay, login
 * CSRF), the groups claim in each shape, the session cookie and its maximum
 * age, CSRF on browser calls, and URLs that never come from Host or
 * X-Forwarded-*. The public URL (kg.example.test) is not the address the
 * front listens on, so anything built from the request would show.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parse } from 'yaml';
import * as client from 'openid-client';
import type { Browser, Page } from '../support/browser.js';
import {
  addCluster,
  bind,
  publicHost,
  publicUrl,
  startIdentityFront,
  startIdentityWorld,
  type IdentityFront,
  type IdentityWorld,
} from '../support/identity-front.js';
import { signIn } from '../support/sso.js';

interface Kubeconfig {
  clusters: { name: string; cluster: { server: string; 'certificate-authority-data'?: string } }[];
  contexts: { name: string; context: { cluster: string; user: string } }[];
  users: { name: string; user: { token: string } }[];
  'current-context': string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

let w: IdentityWorld;
let f: IdentityFront;

before(async () => {
  w = await startIdentityWorld();
  f = await startIdentityFront(w);
  for (const c of ['dev', 'prod', 'staging', 'old']) await addCluster(w.pool, c);
  await w.pool.query(`UPDATE clusters SET disabled = true WHERE name = 'old'`);
  await bind(w.pool, {
    groups: ['kubegate-admins'],
    role: 'cluster-admin',
    clusters: ['dev', 'prod', 'old'],
  });
  await bind(w.pool, { groups: ['developers'], role: 'view', clusters: ['dev'] });
  await bind(w.pool, { groups: ['sre'], role: 'view', clusters: ['prod'] });
  await bind(w.pool, { users: ['csv@example.com'], role: 'edit', clusters: ['staging'] });
});
after(async () => {
  await f?.close();
  await w?.stop();
});

function noSession(b: Browser): void {
  assert.equal(b.cookie(publicHost, '__Host-kg_session'), undefined, 'no session cookie was set');
}

async function me(b: Browser): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await b.request(`${publicUrl}/api/v1/me`);
  return { status: r.status, body: JSON.parse(r.body) as Record<string, unknown> };
}

async function kubeconfigOf(b: Browser, query = ''): Promise<{ page: Page; kc: Kubeconfig }> {
  const page = await b.request(`${publicUrl}/api/v1/kubeconfig${query}`);
  assert.equal(page.status, 200, page.body);
  return { page, kc: parse(page.body) as Kubeconfig };
}

describe('sign-in, happy path', () => {
  test('the admin signs in through login and consent forms; the user is recorded', async () => {
    const b = f.browser();
    const s = await signIn(b, publicUrl, 'admin@example.com');
    assert.ok(s.loginFormShown);
    assert.equal(s.result!.status, 303);
    assert.equal(s.result!.headers.location, '/');
    // The authorization request: code flow, PKCE S256, state, nonce, configured redirect URI.
    const a = s.authorize.searchParams;
    assert.equal(a.get('response_type'), 'code');
    assert.equal(a.get('code_challenge_method'), 'S256');
    assert.match(a.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(a.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(a.get('nonce') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(a.get('redirect_uri'), `${publicUrl}/auth/callback`);
    // The cookie: __Host-, Secure, HttpOnly, SameSite=Lax; only its hash is stored.
    const set = ([] as string[]).concat(s.result!.headers['set-cookie'] ?? []);
    const sessionSet = set.find((c) => c.startsWith('__Host-kg_session='));
    assert.match(
      sessionSet ?? '',
      /^__Host-kg_session=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=\d+; Secure; HttpOnly; SameSite=Lax$/,
    );
    assert.ok(
      set.some((c) => /^__Host-kg_login=; Path=\/; Max-Age=0;/.test(c)),
      'login cookie cleared',
    );
    const cookie = b.cookie(publicHost, '__Host-kg_session')!;
    const stored = await w.pool.query('SELECT id_hash FROM sessions WHERE id_hash = $1', [
      sha256(cookie),
    ]);
    assert.equal(stored.rowCount, 1);
    assert.equal(
      (await w.pool.query('SELECT 1 FROM sessions WHERE id_hash = $1', [cookie])).rowCount,
      0,
    );

    const { rows } = await w.pool.query(
      `SELECT issuer, subject, username, email, name, groups, active, last_login_at FROM users WHERE username = $1`,
      ['admin@example.com'],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0].issuer, w.idp.issuer);
    assert.match(rows[0].subject, /^sub-[0-9a-f]{16}$/);
    assert.equal(rows[0].email, 'admin@example.com');
    assert.equal(rows[0].name, 'Ada Admin');
    assert.deepEqual(rows[0].groups, ['kubegate-admins']);
    assert.equal(rows[0].active, true);
    assert.ok(Date.now() - (rows[0].last_login_at as Date).getTime() < 60_000);

    const who = await me(b);
    assert.equal(who.status, 200);
    assert.equal(who.body.name, 'admin@example.com');
    assert.deepEqual(who.body.groups, ['kubegate-admins']);
    assert.equal(who.body.admin, true);
    assert.deepEqual(who.body.clusters, ['dev', 'prod']);
  });

  test('the page at / is server-rendered under a strict CSP, with the download button', async () => {
    const b = f.browser();
    const anon = await b.request(`${publicUrl}/`);
    assert.equal(anon.status, 200);
    assert.match(anon.body, /href="\/auth\/login"/);
    await signIn(b, publicUrl, 'dev@example.com');
    const page = await b.request(`${publicUrl}/`);
    assert.equal(page.status, 200);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /form-action 'self'/);
    // The web console's modules, from this origin only; nothing inline.
    assert.match(csp, /script-src 'self'/);
    assert.doesNotMatch(csp, /unsafe/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.doesNotMatch(anon.body, /<script/i);
    for (const m of page.body.matchAll(/<script[^>]*>/gi))
      assert.match(m[0], /^<script type="module" src="\/console\/assets\/[0-9a-f]{16}\/app\.js">$/);
    assert.doesNotMatch(page.body, /<script[^>]*>[^<]/i, 'no inline script');
    assert.match(page.body, /Dev Eloper/);
    assert.match(
      page.body,
      /<a class="button" href="\/api\/v1\/kubeconfig" download>Download kubeconfig<\/a>/,
    );
    assert.match(page.body, /<li><code>dev<\/code><\/li>/);
    assert.doesNotMatch(page.body, /<code>prod<\/code>/);
  });

  test('names from the provider are escaped in the page', async () => {
    w.idp.addUser({
      email: 'xss@example.com',
      name: '<script>alert(1)</script>',
      groups: ['developers'],
    });
    const b = f.browser();
    await signIn(b, publicUrl, 'xss@example.com');
    const page = await b.request(`${publicUrl}/`);
    assert.doesNotMatch(page.body, /<script>alert/);
    assert.match(page.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/);
  });

  test('the kubeconfig: one context per reachable cluster, a fresh kg_ token, a safe file name', async () => {
    const b = f.browser();
    await signIn(b, publicUrl, 'admin@example.com');
    const { page, kc } = await kubeconfigOf(b);
    assert.equal(
      page.headers['content-disposition'],
      'attachment; filename="kubegate-admin_example.com.kubeconfig"',
    );
    assert.equal(page.headers['cache-control'], 'no-store');
    // admins: dev and prod; 'old' is bound but disabled; staging is not bound
    assert.deepEqual(
      kc.contexts.map((c) => c.name),
      ['dev', 'prod'],
    );
    assert.deepEqual(
      kc.clusters.map((c) => c.cluster.server),
      [`${publicUrl}/k8s/dev`, `${publicUrl}/k8s/prod`],
    );
    assert.equal(
      Buffer.from(kc.clusters[0]!.cluster['certificate-authority-data']!, 'base64').toString(),
      w.caPem,
    );
    assert.equal(kc['current-context'], 'dev');
    assert.equal(kc.users.length, 1);
    const token = kc.users[0]!.user.token;
    assert.match(token, /^kg_[A-Za-z0-9_-]{43}$/);
    const id = await f.tokens.authenticate(token);
    assert.equal(id?.user, 'admin@example.com');
    assert.equal(id?.kind, 'user');
    assert.deepEqual(id?.groups, ['kubegate-admins']);
    assert.equal(id?.tokenId, page.headers['x-kubegate-token-id']);
    const row = await w.pool.query('SELECT user_id, hash FROM api_tokens WHERE id = $1', [
      id!.tokenId,
    ]);
    assert.ok(row.rows[0].user_id, 'the token references the user');
    assert.equal(row.rows[0].hash, sha256(token));
    // A second download is a second token.
    const again = await kubeconfigOf(b);
    assert.notEqual(again.kc.users[0]!.user.token, token);
  });

  test('a user bound by name reaches exactly that cluster, plus what their groups reach', async () => {
    const b = f.browser();
    await signIn(b, publicUrl, 'csv@example.com');
    const { kc } = await kubeconfigOf(b);
    assert.deepEqual(
      kc.contexts.map((c) => c.name),
      ['dev', 'prod', 'staging'],
    );
  });

  test('lifetime: ?ttl within the admin maximum; longer, malformed or unknown parameters refused', async () => {
    const b = f.browser();
    await signIn(b, publicUrl, 'dev@example.com');
    const { page } = await kubeconfigOf(b, '?ttl=1h');
    const exp = Date.parse(String(page.headers['x-kubegate-token-expires']));
    assert.ok(Math.abs(exp - (Date.now() + 3_600_000)) < 60_000, 'expires in about an hour');
    const def = await kubeconfigOf(b);
    const defExp = Date.parse(String(def.page.headers['x-kubegate-token-expires']));
    assert.ok(Math.abs(defExp - (Date.now() + 12 * 3_600_000)) < 60_000, 'default 12h');
    const tooLong = await b.request(`${publicUrl}/api/v1/kubeconfig?ttl=30d`);
    assert.equal(tooLong.status, 422);
    assert.match(tooLong.body, /longer than the maximum/);
    assert.equal((await b.request(`${publicUrl}/api/v1/kubeconfig?ttl=soon`)).status, 400);
    assert.equal((await b.request(`${publicUrl}/api/v1/kubeconfig?tll=1h`)).status, 400);
  });

  test('a token minted with a bearer token never outlives that token', async () => {
    const b = f.browser();
    await signIn(b, publicUrl, 'dev@example.com');
    const short = (await kubeconfigOf(b, '?ttl=10m')).kc.users[0]!.user.token;
    const shortExp = (await f.tokens.authenticate(short))!.expiresAt.getTime();
    const r = await b.request(`${publicUrl}/api/v1/kubeconfig?ttl=5d`, {
      headers: { authorization: `Bearer ${short}` },
    });
    assert.equal(r.status, 200, r.body);
    const exp = Date.parse(String(r.headers['x-kubegate-token-expires']));
    assert.ok(
      exp <= shortExp,
      `${new Date(exp).toISOString()} <= ${new Date(shortExp).toISOString()}`,
    );
    const minted = (parse(r.body) as Kubeconfig).users[0]!.user.token;
    assert.equal((await f.tokens.authenticate(minted))?.user, 'dev@example.com');
  });
});

describe('the groups claim, in every shape', () => {
  test('a comma-separated string becomes a list', async () => {
    const b = f.browser();
    await signIn(b, publicUrl, 'csv@example.com');
    assert.deepEqual((await me(b)).body.groups, ['developers', 'sre']);
  });

  test('a missing claim: signed in with no groups, and a clear log line', async () => {
    const b = f.browser();
    const s = await signIn(b, publicUrl, 'nogroups@example.com');
    assert.equal(s.result!.status, 303);
    const who = await me(b);
    assert.deepEqual(who.body.groups, []);
    assert.deepEqual(who.body.clusters, [], 'no groups, no bindings: nothing reachable');
    const line = f.logs.find(
      (l) => l.includes('nogroups@example.com') && l.includes('sent no \\"groups\\" claim'),
    );
    assert.ok(line, 'a warning names the user and the missing claim');
    assert.equal((JSON.parse(line) as { level: number }).level, 40);
  });

  for (const [email, marker] of [
    ['overage@example.com', '_claim_names'],
    ['hasgroups@example.com', 'hasgroups'],
  ] as const) {
    test(`an overage marker (${marker}) refuses the sign-in with a clear message`, async () => {
      const b = f.browser();
      const s = await signIn(b, publicUrl, email);
      assert.equal(s.result!.status, 403);
      assert.match(s.result!.body, /too many groups/);
      assert.match(s.result!.body, /groups overage/);
      noSession(b);
      const rows = await w.pool.query('SELECT 1 FROM users WHERE username = $1', [email]);
      assert.equal(rows.rowCount, 0, 'a refused sign-in records no user');
    });
  }

  test('with the no-groups fallback configured, an overage signs in with no groups', async () => {
    const g = await startIdentityFront(w, { KUBEGATE_OIDC_GROUPS_OVERAGE: 'no-groups' });
    try {
      const b = g.browser();
      const s = await signIn(b, publicUrl, 'overage@example.com');
      assert.equal(s.result!.status, 303, s.result!.body);
      assert.deepEqual((await me(b)).body.groups, []);
      assert.ok(g.logs.some((l) => l.includes('groups overage: signing in with no groups')));
    } finally {
      await g.close();
    }
  });

  test('groups named system:* are dropped; an unverified email is refused', async () => {
    w.idp.addUser({
      email: 'sneaky@example.com',
      name: 'S',
      groups: ['system:masters', 'developers'],
    });
    const b = f.browser();
    await signIn(b, publicUrl, 'sneaky@example.com');
    assert.deepEqual((await me(b)).body.groups, ['developers']);
    w.idp.addUser({
      email: 'unverified@example.com',
      name: 'U',
      groups: ['developers'],
      emailVerified: false,
    });
    const b2 = f.browser();
    const s = await signIn(b2, publicUrl, 'unverified@example.com');
    assert.equal(s.result!.status, 403);
    assert.match(s.result!.body, /not verified/);
    noSession(b2);
  });
});

describe('sign-ins that must be refused', () => {
  async function held(b: Browser, email = 'dev@example.com', tamper?: (u: URL) => URL) {
    return (
      await signIn(b, publicUrl, email, {
        holdCallback: true,
        ...(tamper ? { tamperAuthorize: tamper } : {}),
      })
    ).callback;
  }
  const loginRow = async (b: Browser) => {
    const cookie = b.cookie(publicHost, '__Host-kg_login')!;
    const { rows } = await w.pool.query('SELECT * FROM oidc_logins WHERE id_hash = $1', [
      sha256(cookie),
    ]);
    return { cookie, row: rows[0] as Record<string, unknown> };
  };

  test('missing state', async () => {
    const b = f.browser();
    const cb = await held(b);
    cb.searchParams.delete('state');
    const r = await b.request(cb);
    assert.equal(r.status, 400);
    assert.match(r.body, /no state parameter/);
    noSession(b);
  });

  test('wrong state', async () => {
    const b = f.browser();
    const cb = await held(b);
    cb.searchParams.set('state', client.randomState());
    const r = await b.request(cb);
    assert.equal(r.status, 400);
    assert.match(r.body, /does not match the sign-in this browser started/);
    noSession(b);
  });

  test('a callback in a browser that did not start the sign-in (login CSRF)', async () => {
    const victim = f.browser();
    const attacker = f.browser();
    const cb = await held(attacker, 'dev@example.com');
    const r = await victim.request(cb);
    assert.equal(r.status, 400);
    assert.match(r.body, /no sign-in is in progress in this browser/);
    noSession(victim);
  });

  test('a replayed callback, in the same browser, after it succeeded', async () => {
    const b = f.browser();
    const cb = await held(b);
    const { cookie } = await loginRow(b);
    assert.equal((await b.request(cb)).status, 303);
    b.setCookie(publicHost, '__Host-kg_login', cookie);
    const replay = await b.request(cb);
    assert.equal(replay.status, 400);
    assert.match(replay.body, /no sign-in is in progress/);
  });

  test('a replayed code is refused by the provider even when everything else matches', async () => {
    const b = f.browser();
    const cb = await held(b);
    const { cookie, row } = await loginRow(b);
    assert.equal((await b.request(cb)).status, 303);
    // Re-arm exactly the same sign-in (state, nonce, verifier): only the code's single use remains.
    await w.pool.query(
      `INSERT INTO oidc_logins (id_hash, state, nonce, code_verifier, expires_at) VALUES ($1, $2, $3, $4, $5)`,
      [row.id_hash, row.state, row.nonce, row.code_verifier, row.expires_at],
    );
    const b2 = f.browser();
    b2.setCookie(publicHost, '__Host-kg_login', cookie);
    const replay = await b2.request(cb);
    assert.equal(replay.status, 401);
    assert.match(replay.body, /invalid_grant/);
    noSession(b2);
  });

  test("an attacker's own sign-in cannot redeem a victim's code", async () => {
    const victim = f.browser();
    const cb = await held(victim);
    const attacker = f.browser();
    const start = await attacker.request(`${publicUrl}/auth/login`);
    const attackerState = new URL(start.headers.location!).searchParams.get('state')!;
    cb.searchParams.set('state', attackerState);
    const r = await attacker.request(cb);
    assert.equal(r.status, 401);
    assert.match(r.body, /invalid_grant/);
    noSession(attacker);
  });

  test('wrong nonce in the ID token', async () => {
    const b = f.browser();
    const cb = await held(b, 'dev@example.com', (u) => {
      u.searchParams.set('nonce', client.randomNonce());
      return u;
    });
    const r = await b.request(cb);
    assert.equal(r.status, 401);
    assert.match(r.body, /nonce/);
    noSession(b);
  });

  test('missing PKCE verifier', async () => {
    const b = f.browser();
    const cb = await held(b);
    const { row } = await loginRow(b);
    await w.pool.query(`UPDATE oidc_logins SET code_verifier = '' WHERE id_hash = $1`, [
      row.id_hash,
    ]);
    const r = await b.request(cb);
    assert.equal(r.status, 400);
    assert.match(r.body, /PKCE code verifier of this sign-in is missing/);
    noSession(b);
  });

  test('wrong PKCE verifier: the provider refuses the code', async () => {
    const b = f.browser();
    const cb = await held(b);
    const { row } = await loginRow(b);
    await w.pool.query(`UPDATE oidc_logins SET code_verifier = $2 WHERE id_hash = $1`, [
      row.id_hash,
      client.randomPKCECodeVerifier(),
    ]);
    const r = await b.request(cb);
    assert.equal(r.status, 401);
    assert.match(r.body, /invalid_grant/);
    noSession(b);
  });

  test('an authorization request stripped of PKCE is refused by the provider, and by kubegate', async () => {
    const b = f.browser();
    const cb = await held(b, 'dev@example.com', (u) => {
      u.searchParams.delete('code_challenge');
      u.searchParams.delete('code_challenge_method');
      return u;
    });
    assert.equal(cb.searchParams.get('error'), 'invalid_request');
    assert.equal(cb.searchParams.get('code'), null);
    const r = await b.request(cb);
    assert.equal(r.status, 401);
    assert.match(r.body, /PKCE/);
    noSession(b);
  });

  test('a user who cancels at the provider is not signed in', async () => {
    const b = f.browser();
    const start = await b.request(`${publicUrl}/auth/login`);
    const login = await b.follow(await b.request(start.headers.location!));
    const uid = /\/interaction\/([^/"]+)\/login/.exec(login.page.body)![1]!;
    const back = await b.follow(
      await b.request(new URL(`/interaction/${uid}/abort`, login.page.url)),
      (u) => u.pathname === '/auth/callback',
    );
    const r = await b.request(back.stoppedAt!);
    assert.equal(r.status, 401);
    assert.match(r.body, /access_denied/);
    noSession(b);
  });
});

describe('redirect URI and kubeconfig server URL never come from the request', () => {
  const spoofed = {
    host: 'evil.example',
    'x-forwarded-host': 'evil.example',
    'x-forwarded-proto': 'http',
    'x-forwarded-port': '8080',
    forwarded: 'for=203.0.113.9;host=evil.example;proto=http',
  };

  test('spoofed Host and X-Forwarded-* change nothing', async () => {
    const b = f.browser();
    // Sign in with every kubegate-bound request spoofed: the provider only
    // redeems the code for the registered redirect URI, so a URI built from
    // the request would fail here.
    const s = await signIn(b, publicUrl, 'admin@example.com', { headers: spoofed });
    assert.equal(s.authorize.origin, w.idp.issuer);
    assert.equal(s.authorize.searchParams.get('redirect_uri'), `${publicUrl}/auth/callback`);
    assert.equal(s.callback.origin, publicUrl);
    assert.equal(s.result!.status, 303, s.result!.body);
    assert.equal(s.result!.headers.location, '/');

    const kc = await b.request(`${publicUrl}/api/v1/kubeconfig`, { headers: spoofed });
    assert.equal(kc.status, 200, kc.body);
    const servers = (parse(kc.body) as Kubeconfig).clusters.map((c) => c.cluster.server);
    assert.deepEqual(servers, [`${publicUrl}/k8s/dev`, `${publicUrl}/k8s/prod`]);
    assert.doesNotMatch(kc.body, /evil|8080|http:/);
  });
});

describe('sessions', () => {
  test('the maximum session age ends the session and forces a fresh login at the provider', async () => {
    // Within the normal maximum, a second sign-in reuses the provider's session (no form):
    const b0 = f.browser();
    assert.equal((await signIn(b0, publicUrl, 'dev@example.com')).loginFormShown, true);
    assert.equal((await signIn(b0, publicUrl, 'dev@example.com')).loginFormShown, false);

    // 5 s: the sign-in and the first call must fit inside it even on a loaded
    // machine (the provider floors auth_time to whole seconds; at 2 s a slow
    // sign-in sometimes saw its first call refused).
    const short = await startIdentityFront(w, { KUBEGATE_SESSION_MAX_AGE: '5s' });
    try {
      const b = short.browser();
      const first = await signIn(b, publicUrl, 'dev@example.com');
      assert.equal(first.result!.status, 303);
      const cookie = b.cookie(publicHost, '__Host-kg_session')!;
      assert.equal((await me(b)).status, 200);
      // Well past the 5 s maximum: the provider counts auth_time in whole seconds.
      await new Promise((r) => setTimeout(r, 7000));
      // The server refuses the old session even if a client keeps sending the cookie.
      b.setCookie(publicHost, '__Host-kg_session', cookie);
      const expired = await me(b);
      assert.equal(expired.status, 401);
      assert.match(String(expired.body.detail), /not signed in \(or the session ended\)/);
      const home = await b.request(`${publicUrl}/`);
      assert.match(home.body, /Your session has ended/);
      // max_age makes the provider ask for the password again.
      const again = await signIn(b, publicUrl, 'dev@example.com');
      assert.equal(again.loginFormShown, true, 'the provider showed its login form again');
      assert.equal(again.result!.status, 303);
      assert.equal((await me(b)).status, 200);
    } finally {
      await short.close();
    }
  });

  test('CSRF: cookie calls that change state need the session token; cross-site calls are refused', async () => {
    const b = f.browser();
    await signIn(b, publicUrl, 'dev@example.com');
    const csrf = String((await me(b)).body.csrfToken);
    const mint = async () => {
      const { page, kc } = await kubeconfigOf(b);
      return { id: String(page.headers['x-kubegate-token-id']), token: kc.users[0]!.user.token };
    };
    const t = await mint();
    const del = (headers: Record<string, string>) =>
      b.request(`${publicUrl}/api/v1/tokens/${t.id}`, { method: 'DELETE', headers });

    const none = await del({});
    assert.equal(none.status, 403);
    assert.match(none.body, /CSRF/);
    assert.equal((await del({ 'x-csrf-token': csrf.slice(0, -1) + 'x' })).status, 403);
    assert.equal((await del({ 'x-csrf-token': csrf, origin: 'https://evil.example' })).status, 403);
    assert.equal((await del({ 'x-csrf-token': csrf, 'sec-fetch-site': 'cross-site' })).status, 403);
    assert.ok(await f.tokens.authenticate(t.token), 'refused calls changed nothing');

    const cross = await b.request(`${publicUrl}/api/v1/kubeconfig`, {
      headers: { 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(cross.status, 403);

    const ok = await del({
      'x-csrf-token': csrf,
      origin: publicUrl,
      'sec-fetch-site': 'same-origin',
    });
    assert.equal(ok.status, 204);
    assert.equal(await f.lookup.authenticate(t.token), undefined);

    // A bearer caller needs no CSRF token (browsers never send one by themselves).
    const t2 = await mint();
    const bearer = await b.request(`${publicUrl}/api/v1/tokens/${t2.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${t2.token}` },
    });
    assert.equal(bearer.status, 204);
  });

  test('sign-out needs the form token, then the session is gone server-side', async () => {
    const b = f.browser();
    await signIn(b, publicUrl, 'dev@example.com');
    const cookie = b.cookie(publicHost, '__Host-kg_session')!;
    const forged = await b.post(`${publicUrl}/auth/logout`, {});
    assert.equal(forged.status, 403);
    assert.equal((await me(b)).status, 200);
    const csrf = /name="csrf" value="([^"]+)"/.exec((await b.request(`${publicUrl}/`)).body)![1]!;
    const out = await b.post(`${publicUrl}/auth/logout`, { csrf });
    assert.equal(out.status, 303);
    noSession(b);
    b.setCookie(publicHost, '__Host-kg_session', cookie);
    assert.equal((await me(b)).status, 401);
  });

  test('without a session or token, the API answers 401 with a Bearer challenge', async () => {
    const b = f.browser();
    const r = await b.request(`${publicUrl}/api/v1/kubeconfig`);
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="kubegate"');
    assert.equal(r.headers['content-type'], 'application/problem+json');
    const bad = await b.request(`${publicUrl}/api/v1/kubeconfig`, {
      headers: { authorization: 'Bearer kg_' + 'A'.repeat(43) },
    });
    assert.equal(bad.status, 401);
  });
});
