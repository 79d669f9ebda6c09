/**
 * Groups re-read from the identity provider (issue #17 item 13), through the
 * identity API against a real PostgreSQL and a real oidc-provider that
 * issues refresh tokens: a sign-in keeps its refresh token sealed, the
 * refresher updates the groups of the tokens it minted (announced on
 * kubegate_tokens, which is what ends open requests on every replica), a
 * refused refresh revokes them and ends the session, and every token minted
 * through a sign-in is capped at its bound. The same on the real stack with
 * kubectl: test/security/group-removal.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { parse } from 'yaml';
import type { Browser } from '../support/browser.js';
import {
  publicUrl,
  startIdentityFront,
  startIdentityWorld,
  type IdentityFront,
  type IdentityWorld,
} from '../support/identity-front.js';
import { signIn } from '../support/sso.js';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
let w: IdentityWorld;
let f: IdentityFront;
let listener: pg.Client;
const notices: string[] = [];

async function ssoToken(
  b: Browser,
  email: string,
  query = '',
): Promise<{ token: string; id: string; expires: Date; capped: unknown }> {
  if (!b.cookie('kg.example.test', '__Host-kg_session')) await signIn(b, publicUrl, email);
  const r = await b.request(`${publicUrl}/api/v1/kubeconfig${query}`);
  assert.equal(r.status, 200, r.body);
  return {
    token: (parse(r.body) as { users: { user: { token: string } }[] }).users[0]!.user.token,
    id: String(r.headers['x-kubegate-token-id']),
    expires: new Date(String(r.headers['x-kubegate-token-expires'])),
    capped: r.headers['x-kubegate-token-capped'],
  };
}

async function eventually(probe: () => Promise<boolean>, ms: number, what: string) {
  const t0 = Date.now();
  while (!(await probe())) {
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now() - t0;
}

before(async () => {
  w = await startIdentityWorld({ refreshTokens: true });
  w.idp.addUser({ email: 'mover@example.com', name: 'Mo', groups: ['developers', 'sre'] });
  w.idp.addUser({ email: 'leaver@example.com', name: 'Lee', groups: ['sre'] });
  f = await startIdentityFront(w, { KUBEGATE_OIDC_REFRESH_INTERVAL: '1s' });
  listener = new pg.Client({ connectionString: w.databaseUrl });
  await listener.connect();
  listener.on('notification', (n) => n.payload && notices.push(n.payload));
  await listener.query('LISTEN kubegate_tokens');
});
after(async () => {
  await listener?.end();
  await f?.close();
  await w?.stop();
});

describe('single sign-on groups follow the provider', () => {
  test('a group removed at the provider leaves the issued token within the refresh interval, announced', async () => {
    const b = f.browser();
    const t = await ssoToken(b, 'mover@example.com');
    assert.deepEqual((await f.lookup.authenticate(t.token))!.groups, ['developers', 'sre']);
    const [s] = await w.pool
      .query<{ refresh_sealed: string | null }>(
        'SELECT si.refresh_sealed FROM sso_signins si JOIN api_tokens t ON t.signin_id = si.id WHERE t.id = $1',
        [t.id],
      )
      .then((r) => r.rows);
    assert.ok(s?.refresh_sealed?.startsWith('v1:'), 'the refresh token is kept sealed');
    w.idp.users.get('mover@example.com')!.groups = ['developers'];
    const ms = await eventually(
      async () => (await f.lookup.authenticate(t.token))?.groups.join() === 'developers',
      10_000,
      'the token lost the group',
    );
    process.stderr.write(`# group removal reached the token in ${ms} ms (refresh interval 1 s)\n`);
    await eventually(
      async () => notices.includes(sha256(t.token)),
      2000,
      'announced on kubegate_tokens',
    );
    const me = await b.request(`${publicUrl}/api/v1/me`);
    assert.deepEqual((JSON.parse(me.body) as { groups: string[] }).groups, ['developers']);
  });

  test('a user removed at the provider: the refused refresh revokes the tokens and ends the session', async () => {
    const b = f.browser();
    const t = await ssoToken(b, 'leaver@example.com');
    w.idp.removeUser('leaver@example.com');
    await eventually(
      async () => (await f.lookup.authenticate(t.token)) === undefined,
      10_000,
      'the token is revoked',
    );
    await eventually(
      async () => notices.includes(sha256(t.token)),
      2000,
      'the revocation is announced',
    );
    const me = await b.request(`${publicUrl}/api/v1/me`);
    assert.equal(me.status, 401, me.body);
    const ev = await w.pool.query(
      `SELECT 1 FROM audit_events WHERE source = 'admin' AND verb = 'revoke' AND resource = 'tokens'
          AND name = 'leaver@example.com'`,
    );
    assert.equal(ev.rowCount, 1, 'audited');
  });

  test('a ttl beyond the sign-in bound is capped at it, and a token minted with it too', async () => {
    const b = f.browser();
    const t = await ssoToken(b, 'dev@example.com', '?ttl=7d');
    const [s] = (
      await w.pool.query<{ expires_at: Date; auth_time: Date }>(
        'SELECT si.expires_at, si.auth_time FROM sso_signins si JOIN api_tokens t ON t.signin_id = si.id WHERE t.id = $1',
        [t.id],
      )
    ).rows;
    assert.equal(s!.expires_at.getTime() - s!.auth_time.getTime(), 12 * 3_600_000);
    assert.equal(t.expires.getTime(), s!.expires_at.getTime());
    assert.equal(t.capped, 'sso-sign-in');
    const r = await f.browser().request(`${publicUrl}/api/v1/kubeconfig?ttl=7d`, {
      headers: { authorization: `Bearer ${t.token}` },
    });
    assert.equal(r.status, 200, r.body);
    assert.ok(new Date(String(r.headers['x-kubegate-token-expires'])) <= s!.expires_at);
  });
});
