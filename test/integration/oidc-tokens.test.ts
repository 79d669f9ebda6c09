/**
 * Tokens, deactivation and robots through the identity API, against a real
 * PostgreSQL: listing and revoking one's own tokens, expiry, admins
 * deactivating a user (every token revoked and announced on
 * kubegate_tokens in the same transaction, sessions ended, new sign-ins and
 * late tokens refused), and robot tokens rotated with an overlap window.
 * Every replica acts on the kubegate_tokens notices (proxy/app.ts), so a
 * notice seen here is what ends open watches everywhere.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { run as kubegate } from '../../proxy/cli/main.js';
import { parse } from 'yaml';
import type { Browser } from '../support/browser.js';
import {
  addCluster,
  bind,
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
const notices: { hash: string; at: number }[] = [];
let adminToken: string;

async function noticeFor(hash: string, withinMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const n = notices.find((x) => x.hash === hash);
    if (n) return n.at;
    if (Date.now() - t0 > withinMs)
      throw new Error(`no kubegate_tokens notice within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function api(
  method: string,
  path: string,
  token: string,
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const r = await f.browser().request(`${publicUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(r.body) as Record<string, unknown>;
  } catch {
    // not JSON (a kubeconfig, or no body)
  }
  return { status: r.status, json, text: r.body };
}

async function ssoToken(b: Browser, email: string, ttl = ''): Promise<string> {
  await signIn(b, publicUrl, email);
  const r = await b.request(`${publicUrl}/api/v1/kubeconfig${ttl}`);
  assert.equal(r.status, 200, r.body);
  return (parse(r.body) as { users: { user: { token: string } }[] }).users[0]!.user.token;
}

before(async () => {
  w = await startIdentityWorld();
  f = await startIdentityFront(w);
  listener = new pg.Client({ connectionString: w.databaseUrl });
  await listener.connect();
  listener.on('notification', (n) => {
    if (n.channel === 'kubegate_tokens' && n.payload)
      notices.push({ hash: n.payload, at: Date.now() });
  });
  await listener.query('LISTEN kubegate_tokens');
  await addCluster(w.pool, 'dev');
  await addCluster(w.pool, 'prod');
  await bind(w.pool, { groups: ['developers'], role: 'view', clusters: ['dev'] });
  await bind(w.pool, { robots: ['argocd'], role: 'edit', clusters: ['prod'] });
  adminToken = await ssoToken(f.browser(), 'admin@example.com');
});
after(async () => {
  await listener?.end();
  await f?.close();
  await w?.stop();
});

describe('a user and their tokens', () => {
  test('list shows created, last used and expiry, never a secret; revoke is announced', async () => {
    const b = f.browser();
    const t1 = await ssoToken(b, 'dev@example.com', '?ttl=2h');
    const t2 = await ssoToken(b, 'dev@example.com');
    await api('GET', '/api/v1/me', t1); // marks t1 used
    const list = await api('GET', '/api/v1/tokens', t1);
    assert.equal(list.status, 200);
    assert.doesNotMatch(list.text, /kg_|hash/);
    const items = list.json.items as Record<string, unknown>[];
    const mine = items.find((i) => i.current === true)!;
    assert.ok(mine, 'the calling token is marked current');
    for (const k of ['id', 'createdAt', 'lastUsedAt', 'expiresAt', 'description', 'state'])
      assert.ok(k in mine, `has ${k}`);
    assert.ok(mine.lastUsedAt, 'last use recorded');
    assert.equal(mine.state, 'active');
    const id2 = (await f.lookup.authenticate(t2))!.tokenId;
    assert.ok(items.some((i) => i.id === id2));

    const del = await api('DELETE', `/api/v1/tokens/${id2}`, t1);
    assert.equal(del.status, 204);
    await noticeFor(sha256(t2), 1000);
    assert.equal(await f.lookup.authenticate(t2), undefined);
    assert.equal((await api('GET', '/api/v1/me', t2)).status, 401);
    const after = (await api('GET', '/api/v1/tokens?include=inactive', t1)).json.items as Record<
      string,
      unknown
    >[];
    assert.equal(after.find((i) => i.id === id2)?.state, 'revoked');
  });

  test("a user cannot revoke (or even see) someone else's token; an admin can", async () => {
    const dev = await ssoToken(f.browser(), 'dev@example.com');
    const other = await ssoToken(f.browser(), 'csv@example.com');
    const otherId = (await f.lookup.authenticate(other))!.tokenId;
    const r = await api('DELETE', `/api/v1/tokens/${otherId}`, dev);
    assert.equal(r.status, 404);
    assert.ok(await f.lookup.authenticate(other));
    assert.equal((await api('DELETE', `/api/v1/tokens/${otherId}`, adminToken)).status, 204);
    assert.equal(await f.lookup.authenticate(other), undefined);
    const log = await w.pool.query(
      `SELECT actor FROM admin_changes WHERE kind = 'token' AND name = $1`,
      [otherId],
    );
    assert.equal(log.rows[0]?.actor, 'user:admin@example.com');
  });

  test('an expired token is refused', async () => {
    const b = f.browser();
    const t = await ssoToken(b, 'dev@example.com', '?ttl=1s');
    assert.equal((await api('GET', '/api/v1/me', t)).status, 200);
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal(await f.lookup.authenticate(t), undefined);
    assert.equal((await api('GET', '/api/v1/me', t)).status, 401);
  });
});

describe('deactivation', () => {
  test('revokes every token (announced), ends sessions, refuses sign-in and late tokens', async () => {
    w.idp.addUser({ email: 'leaver@example.com', name: 'Lee Ver', groups: ['developers'] });
    const b = f.browser();
    const t = await ssoToken(b, 'leaver@example.com');
    // A token minted by the CLI for the same name (no user reference) goes too.
    const cli = await f.tokens.create({
      subject: 'leaver@example.com',
      kind: 'user',
      groups: [],
      ttlMs: 3_600_000,
    });
    const user = (await w.pool.query(`SELECT id FROM users WHERE username = 'leaver@example.com'`))
      .rows[0] as { id: string };

    const forbidden = await api('POST', `/api/v1/users/${user.id}/deactivate`, t);
    assert.equal(forbidden.status, 403, 'only admins deactivate');

    const t0 = Date.now();
    const r = await api('POST', '/api/v1/users/leaver@example.com/deactivate', adminToken);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.revokedTokens, 2);
    assert.equal(r.json.endedSessions, 1);
    assert.equal((r.json.user as { active: boolean }).active, false);
    const at = Math.max(await noticeFor(sha256(t), 1000), await noticeFor(sha256(cli.token), 1000));
    assert.ok(at - t0 < 1000, `announced within a second (${at - t0} ms)`);

    assert.equal(await f.lookup.authenticate(t), undefined);
    assert.equal(await f.lookup.authenticate(cli.token), undefined);
    assert.equal((await b.request(`${publicUrl}/api/v1/me`)).status, 401, 'the session ended');

    // A token that slipped in after the deactivation (a race) is still refused.
    const late = await f.tokens.create({
      subject: 'leaver@example.com',
      kind: 'user',
      groups: ['developers'],
      ttlMs: 3_600_000,
      userId: user.id,
    });
    assert.equal(await f.lookup.authenticate(late.token), undefined);

    const again = await signIn(f.browser(), publicUrl, 'leaver@example.com');
    assert.equal(again.result!.status, 403);
    assert.match(again.result!.body, /deactivated/);

    const log = await w.pool.query(
      `SELECT actor, action FROM admin_changes WHERE kind = 'user' AND name = 'leaver@example.com'`,
    );
    assert.deepEqual(log.rows, [{ actor: 'user:admin@example.com', action: 'update' }]);

    // Reactivated: they may sign in again; the old tokens stay revoked.
    assert.equal((await api('POST', `/api/v1/users/${user.id}/activate`, adminToken)).status, 200);
    const back = await signIn(f.browser(), publicUrl, 'leaver@example.com');
    assert.equal(back.result!.status, 303);
    assert.equal(await f.lookup.authenticate(t), undefined);
  });

  test('an admin cannot deactivate themselves; unknown users are 404', async () => {
    const r = await api('POST', '/api/v1/users/admin@example.com/deactivate', adminToken);
    assert.equal(r.status, 409);
    assert.equal(
      (await api('POST', '/api/v1/users/nobody@example.com/deactivate', adminToken)).status,
      404,
    );
  });

  test("an admin revokes all of a user's tokens at once", async () => {
    const a = await ssoToken(f.browser(), 'csv@example.com');
    const b = await ssoToken(f.browser(), 'csv@example.com');
    const list = await api('GET', '/api/v1/users/csv@example.com/tokens', adminToken);
    assert.ok((list.json.items as unknown[]).length >= 2);
    const r = await api('DELETE', '/api/v1/users/csv@example.com/tokens', adminToken);
    assert.equal(r.status, 200);
    assert.ok((r.json.revoked as number) >= 2);
    await noticeFor(sha256(a), 1000);
    await noticeFor(sha256(b), 1000);
    assert.equal(await f.lookup.authenticate(a), undefined);
    const users = await api('GET', '/api/v1/users', adminToken);
    assert.ok(
      (users.json.items as { username: string }[]).some((u) => u.username === 'csv@example.com'),
    );
    assert.equal((await api('GET', '/api/v1/users', a)).status, 401);
  });
});

describe('robots', () => {
  let robotToken: string;

  test('an admin creates a robot; its token carries its groups and reaches its bindings', async () => {
    const dev = await ssoToken(f.browser(), 'dev@example.com');
    assert.equal((await api('POST', '/api/v1/robots', dev, { name: 'nope' })).status, 403);
    const r = await api('POST', '/api/v1/robots', adminToken, {
      name: 'argocd',
      groups: ['deployers'],
      description: 'ArgoCD in the platform cluster',
      ttl: '30d',
    });
    assert.equal(r.status, 201, r.text);
    const token = (r.json.token as { token: string }).token;
    assert.match(token, /^kg_/);
    robotToken = token;
    const id = await f.lookup.authenticate(token);
    assert.equal(id?.kind, 'robot');
    assert.equal(id?.user, 'argocd');
    assert.deepEqual(id?.groups, ['deployers']);
    // Its kubeconfig: the robot binding reaches prod only.
    const kc = await api('GET', '/api/v1/kubeconfig', token);
    assert.equal(kc.status, 200, kc.text);
    const doc = parse(kc.text) as { contexts: { name: string }[] };
    assert.deepEqual(
      doc.contexts.map((c) => c.name),
      ['prod'],
    );

    assert.equal((await api('POST', '/api/v1/robots', adminToken, { name: 'argocd' })).status, 409);
    assert.equal(
      (await api('POST', '/api/v1/robots', adminToken, { name: 'Bad_Name' })).status,
      422,
    );
    assert.equal(
      (await api('POST', '/api/v1/robots', adminToken, { name: 'x', groups: ['system:masters'] }))
        .status,
      422,
    );
    assert.equal(
      (await api('POST', '/api/v1/robots', adminToken, { name: 'y', ttl: '9999d' })).status,
      422,
    );
    assert.equal(
      (await api('POST', '/api/v1/robots', adminToken, { name: 'z', extra: 1 })).status,
      422,
    );
  });

  test('rotation: both tokens work during the overlap, then the old one is revoked and announced', async () => {
    const old = robotToken;
    const r = await api('POST', '/api/v1/robots/argocd/rotate', adminToken, { overlap: '1500ms' });
    assert.equal(r.status, 200, r.text);
    assert.equal(
      r.json.superseded,
      2,
      'the first token, and the one its kubeconfig download minted',
    );
    const fresh = (r.json.token as { token: string }).token;
    assert.ok(await f.lookup.authenticate(old), 'old token valid during the overlap');
    assert.ok(await f.lookup.authenticate(fresh), 'new token valid at once');
    const until = Date.parse(String(r.json.previousValidUntil));
    assert.ok(Math.abs(until - (Date.now() + 1500)) < 1000);
    const announced = await noticeFor(sha256(old), 4000);
    assert.ok(announced >= until - 50, 'not revoked before the overlap ended');
    assert.ok(
      announced - until < 1000,
      `revoked within a second of the overlap end (${announced - until} ms)`,
    );
    assert.equal(await f.lookup.authenticate(old), undefined);
    assert.equal((await api('GET', '/api/v1/me', old)).status, 401);
    assert.ok(await f.lookup.authenticate(fresh));
    robotToken = fresh;
  });

  test('rotation with no overlap revokes at once; tokens list; delete revokes all', async () => {
    const r = await api('POST', '/api/v1/robots/argocd/rotate', adminToken, { overlap: '0s' });
    assert.equal(r.status, 200);
    await noticeFor(sha256(robotToken), 1000);
    assert.equal(await f.lookup.authenticate(robotToken), undefined);
    const current = (r.json.token as { token: string }).token;
    const list = await api('GET', '/api/v1/robots/argocd/tokens?include=inactive', adminToken);
    const states = (list.json.items as { state: string }[]).map((i) => i.state).sort();
    assert.deepEqual(states, ['active', 'revoked', 'revoked', 'revoked']);
    assert.equal((await api('GET', '/api/v1/robots', adminToken)).status, 200);
    assert.equal((await api('DELETE', '/api/v1/robots/argocd', adminToken)).status, 204);
    await noticeFor(sha256(current), 1000);
    assert.equal(await f.lookup.authenticate(current), undefined);
    assert.equal((await api('GET', '/api/v1/robots/argocd', adminToken)).status, 404);
    const log = await w.pool.query(
      `SELECT action FROM admin_changes WHERE kind = 'robot' AND name = 'argocd' ORDER BY id`,
    );
    assert.deepEqual(
      log.rows.map((x: { action: string }) => x.action),
      ['create', 'update', 'update', 'delete'],
    );
  });
});

describe('the admin CLI', () => {
  test('robot create and rotate, user deactivate: same stores, same notices', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-cli-'));
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = w.databaseUrl;
    try {
      await kubegate([
        'admin',
        'robot',
        'create',
        'ci-cli',
        '--group',
        'deployers',
        '--ttl',
        '1d',
        '--out',
        join(dir, 't1'),
      ]);
      const t1 = readFileSync(join(dir, 't1'), 'utf8').trim();
      const id = await f.lookup.authenticate(t1);
      assert.equal(id?.kind, 'robot');
      assert.deepEqual(id?.groups, ['deployers']);
      await kubegate([
        'admin',
        'robot',
        'rotate',
        'ci-cli',
        '--overlap',
        '0s',
        '--out',
        join(dir, 't2'),
      ]);
      const t2 = readFileSync(join(dir, 't2'), 'utf8').trim();
      await noticeFor(sha256(t1), 1000);
      assert.equal(await f.lookup.authenticate(t1), undefined);
      assert.equal((await f.lookup.authenticate(t2))?.user, 'ci-cli');
      await assert.rejects(
        kubegate(['admin', 'robot', 'create', 'ci-cli', '--ttl', '9999d']),
        /longer than/,
      );

      w.idp.addUser({ email: 'cli-leaver@example.com', name: 'C', groups: ['developers'] });
      const t = await ssoToken(f.browser(), 'cli-leaver@example.com');
      await kubegate(['admin', 'user', 'deactivate', 'cli-leaver@example.com']);
      await noticeFor(sha256(t), 1000);
      assert.equal(await f.lookup.authenticate(t), undefined);
      await assert.rejects(kubegate(['admin', 'user', 'frobnicate']), /unknown user command/);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
