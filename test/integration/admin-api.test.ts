/**
 * The admin REST API over real HTTP against a real PostgreSQL: bearer
 * authentication (401), admin groups only (403), problem JSON for every
 * error, ETag/If-Match (428, 412), body rules (415, 413, 400, 422 with every
 * problem), pagination round trips, role deletion blocked by use, the
 * change log, and cluster registration with its bootstrap YAML.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import * as http2 from 'node:http2';
import { parseAllDocuments } from 'yaml';
import { KgError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { TokenStore } from '../../proxy/authn/token-store.js';
import { ClusterStore } from '../../proxy/clusters/cluster-store.js';
import { createApiHandler } from '../../proxy/api/router.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';

let pg: PgServer;
let pool: Pool;
let http: Server;
let base: string;
let handler: ReturnType<typeof createApiHandler>;
let adminToken: string;
let devToken: string;
let robotAdminToken: string;

const caPem = '-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n';

before(async () => {
  pg = await startPostgres();
  pool = createPool({ url: await createDatabase(pg) });
  await migrate(pool);
  const tokens = new TokenStore(pool);
  const mint = async (subject: string, groups: string[], kind: 'user' | 'robot' = 'user') =>
    (await tokens.create({ subject, kind, groups, ttlMs: 3_600_000 })).token;
  adminToken = await mint('alice', ['staff', 'kg-admins']);
  devToken = await mint('bob', ['dev']);
  robotAdminToken = await mint('deployer', ['platform'], 'robot');
  handler = createApiHandler({
    pool,
    tokens,
    adminGroups: ['kg-admins', 'platform'],
    log: createLogger({ name: 'test', level: 'silent' }),
    bootstrap: {
      tunnelAddress: 'tunnel.example.com:8444',
      enrollAddress: 'tunnel.example.com:8445',
      serverCaPem: caPem,
      bootstrapTokenTtlMs: 600_000,
      agentImage: 'example/agent:test',
    },
  });
  http = createServer(handler);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const addr = http.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});

after(async () => {
  await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
  await pool?.end();
  await pg?.stop();
});

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function call(
  method: string,
  path: string,
  opts: {
    token?: string | null;
    body?: unknown;
    raw?: string;
    type?: string;
    ifMatch?: string;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? adminToken : opts.token;
  if (token) headers.authorization = `Bearer ${token}`;
  if (opts.ifMatch !== undefined) headers['if-match'] = opts.ifMatch;
  let payload: string | undefined;
  if (opts.raw !== undefined || opts.body !== undefined) {
    payload = opts.raw ?? JSON.stringify(opts.body);
    headers['content-type'] = opts.type ?? 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body: payload });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : {} };
}

function problem(r: Reply, status: number, code: string): Record<string, unknown> {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.equal(r.headers.get('content-type'), 'application/problem+json');
  assert.equal(r.body.status, status);
  assert.equal(r.body.code, code);
  assert.equal(typeof r.body.detail, 'string');
  return r.body;
}

const rules = [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }];
const binding = (over: Record<string, unknown> = {}) => ({
  subjects: [{ kind: 'Group', name: 'dev' }],
  role: 'view',
  clusters: { names: ['c1'] },
  ...over,
});

describe('authentication and authorization', () => {
  test('no token or a bad token is 401 problem JSON with a Bearer challenge', async () => {
    for (const token of [null, 'kg_' + 'x'.repeat(43), 'not-a-token']) {
      const r = await call('GET', '/api/v1/roles', { token });
      problem(r, 401, 'KG_ERR_UNAUTHENTICATED');
      assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="kubegate"');
      assert.equal(r.body.instance, '/api/v1/roles');
    }
  });

  test('an authenticated non-admin is 403 on every endpoint and method, and changes nothing', async () => {
    const before = (await pool.query('SELECT count(*)::int AS n FROM roles')).rows[0].n;
    const attempts: [string, string, unknown?][] = [
      ['GET', '/api/v1/roles'],
      ['POST', '/api/v1/roles', { name: 'sneaky', rules }],
      ['GET', '/api/v1/bindings'],
      ['POST', '/api/v1/bindings', binding({ role: 'cluster-admin' })],
      ['GET', '/api/v1/clusters'],
      ['POST', '/api/v1/clusters', { name: 'sneaky' }],
      ['GET', '/api/v1/changes'],
      ['GET', '/api/v1/nowhere'],
    ];
    for (const [method, path, body] of attempts) {
      const r = await call(method, path, { token: devToken, body });
      problem(r, 403, 'KG_ERR_FORBIDDEN');
      assert.match(String(r.body.detail), /User "bob" is not a kubegate admin/);
      assert.doesNotMatch(
        String(r.body.detail),
        /kg-admins/,
        'admin group names are not disclosed',
      );
    }
    assert.equal((await pool.query('SELECT count(*)::int AS n FROM roles')).rows[0].n, before);
  });

  test('a member of any admin group is an admin, robots included', async () => {
    assert.equal((await call('GET', '/api/v1/roles')).status, 200);
    assert.equal((await call('GET', '/api/v1/roles', { token: robotAdminToken })).status, 200);
  });

  test('unknown endpoints are 404 and wrong methods 405 with Allow', async () => {
    problem(await call('GET', '/api/v1/widgets'), 404, 'KG_ERR_NOT_FOUND');
    problem(await call('GET', '/api/v1/roles/'), 404, 'KG_ERR_NOT_FOUND');
    const r = await call('PATCH', '/api/v1/roles/view', { body: {} });
    problem(r, 405, 'KG_ERR_METHOD_NOT_ALLOWED');
    assert.equal(r.headers.get('allow'), 'GET, PUT, DELETE');
  });
});

describe('roles', () => {
  test('create, read, replace and delete with ETag / If-Match', async () => {
    const created = await call('POST', '/api/v1/roles', {
      body: { name: 'pod-reader', description: 'pods', rules },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.headers.get('etag'), '"1"');
    assert.equal(created.headers.get('location'), '/api/v1/roles/pod-reader');
    assert.equal(created.headers.get('cache-control'), 'no-store');
    assert.equal(created.body.builtin, false);
    assert.equal(created.body.createdBy, 'user:alice');

    const got = await call('GET', '/api/v1/roles/pod-reader');
    assert.equal(got.status, 200);
    assert.equal(got.headers.get('etag'), '"1"');
    assert.deepEqual(got.body.rules, rules);

    const put = { ...got.body, description: 'pods, read' };
    problem(
      await call('PUT', '/api/v1/roles/pod-reader', { body: put }),
      428,
      'KG_ERR_PRECONDITION_REQUIRED',
    );
    problem(
      await call('PUT', '/api/v1/roles/pod-reader', { body: put, ifMatch: '*' }),
      428,
      'KG_ERR_PRECONDITION_REQUIRED',
    );
    problem(
      await call('PUT', '/api/v1/roles/pod-reader', { body: put, ifMatch: 'W/"1"' }),
      400,
      'KG_ERR_BAD_REQUEST',
    );
    const updated = await call('PUT', '/api/v1/roles/pod-reader', { body: put, ifMatch: '"1"' });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.headers.get('etag'), '"2"');
    assert.equal(updated.body.description, 'pods, read');

    const stale = await call('PUT', '/api/v1/roles/pod-reader', { body: put, ifMatch: '"1"' });
    problem(stale, 412, 'KG_ERR_PRECONDITION_FAILED');
    assert.equal(stale.body.currentVersion, 2);

    problem(await call('DELETE', '/api/v1/roles/pod-reader'), 428, 'KG_ERR_PRECONDITION_REQUIRED');
    problem(
      await call('DELETE', '/api/v1/roles/pod-reader', { ifMatch: '"1"' }),
      412,
      'KG_ERR_PRECONDITION_FAILED',
    );
    const del = await call('DELETE', '/api/v1/roles/pod-reader', { ifMatch: '"2"' });
    assert.equal(del.status, 204);
    problem(await call('GET', '/api/v1/roles/pod-reader'), 404, 'KG_ERR_NOT_FOUND');
  });

  test('built-ins are listed and readable but read-only', async () => {
    const list = await call('GET', '/api/v1/roles');
    const items = list.body.items as { name: string; builtin: boolean }[];
    assert.deepEqual(
      items.filter((r) => r.builtin).map((r) => r.name),
      ['admin', 'cluster-admin', 'edit', 'view'],
    );
    const view = await call('GET', '/api/v1/roles/view');
    assert.equal(view.headers.get('etag'), '"0"');
    problem(
      await call('PUT', '/api/v1/roles/view', { body: { rules }, ifMatch: '"0"' }),
      409,
      'KG_ERR_CONFLICT',
    );
    problem(await call('DELETE', '/api/v1/roles/view', { ifMatch: '"0"' }), 409, 'KG_ERR_CONFLICT');
  });

  test('validation is 422 with every problem; unknown fields are named', async () => {
    const r = await call('POST', '/api/v1/roles', {
      body: {
        name: 'edit',
        colour: 'red',
        shape: 1,
        rules: [{ verbs: ['get'], resources: ['pods'] }],
      },
    });
    problem(r, 422, 'KG_ERR_VALIDATION');
    const problems = r.body.problems as string[];
    assert.ok(Array.isArray(problems));
    assert.ok(
      problems.some((p) => /unknown field\(s\): colour, shape/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /"edit" is a built-in role/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /^rules\[0\]\.apiGroups/.test(p)),
      problems.join('\n'),
    );
    assert.equal(problems.length, 3, problems.join('\n'));
  });

  test('delete is refused (409) while a binding uses the role', async () => {
    await call('POST', '/api/v1/roles', { body: { name: 'busy', rules } });
    const b = await call('POST', '/api/v1/bindings', { body: binding({ role: 'busy' }) });
    assert.equal(b.status, 201, JSON.stringify(b.body));
    const r = await call('DELETE', '/api/v1/roles/busy', { ifMatch: '"1"' });
    problem(r, 409, 'KG_ERR_CONFLICT');
    assert.deepEqual(r.body.bindings, [b.body.id]);
    assert.equal(
      (await call('DELETE', `/api/v1/bindings/${String(b.body.id)}`, { ifMatch: '"1"' })).status,
      204,
    );
    assert.equal((await call('DELETE', '/api/v1/roles/busy', { ifMatch: '"1"' })).status, 204);
  });
});

describe('request bodies', () => {
  test('JSON only (415), at most 1 MiB (413), well-formed (400), an object (422)', async () => {
    problem(
      await call('POST', '/api/v1/roles', {
        raw: 'name=x',
        type: 'application/x-www-form-urlencoded',
      }),
      415,
      'KG_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
    problem(
      await call('POST', '/api/v1/roles', { raw: '{}', type: 'text/plain' }),
      415,
      'KG_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
    problem(
      await call('POST', '/api/v1/roles', { raw: '{}', type: 'application/json; charset=latin1' }),
      415,
      'KG_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
    const big = JSON.stringify({ name: 'big', description: 'x'.repeat(1024 * 1024), rules });
    problem(await call('POST', '/api/v1/roles', { raw: big }), 413, 'KG_ERR_BODY_TOO_LARGE');
    problem(await call('POST', '/api/v1/roles', { raw: '{"name": ' }), 400, 'KG_ERR_BAD_REQUEST');
    const arr = await call('POST', '/api/v1/roles', { raw: '[1]' });
    problem(arr, 422, 'KG_ERR_VALIDATION');
    // A body just under the limit is read whole (and refused only for what it says).
    const near = JSON.stringify({ name: 'near', description: 'x'.repeat(1000 * 1000), rules });
    const r = await call('POST', '/api/v1/roles', {
      raw: near,
      type: 'application/json; charset=utf-8',
    });
    problem(r, 422, 'KG_ERR_VALIDATION');
    assert.deepEqual(r.body.problems, ['description: must be at most 1000 characters']);
  });

  test('a chunked body without Content-Length is cut off at the limit too', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        // Far more than 1 MiB if nobody stops it; the server must answer first.
        if (sent++ >= 64) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await fetch(`${base}/api/v1/roles`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { code: string }).code, 'KG_ERR_BODY_TOO_LARGE');
  });
});

describe('bindings', () => {
  test('validation reports selector, expiry and subject problems together', async () => {
    const r = await call('POST', '/api/v1/bindings', {
      body: {
        subjects: [{ kind: 'Group', name: 'system:masters' }],
        role: 'view',
        clusters: {
          selector: { matchExpressions: [{ key: 'env', operator: 'Exists', values: ['a'] }] },
        },
        expiresAt: new Date(Date.now() - 1000).toISOString(),
        extra: true,
      },
    });
    problem(r, 422, 'KG_ERR_VALIDATION');
    const problems = r.body.problems as string[];
    assert.equal(problems.length, 4, problems.join('\n'));
    for (const re of [
      /unknown field\(s\): extra/,
      /system:/,
      /must be empty for operator Exists/,
      /not in the future/,
    ]) {
      assert.ok(
        problems.some((p) => re.test(p)),
        `${re}\n${problems.join('\n')}`,
      );
    }
  });

  test('pagination round trip: every binding once, in order, following continue', async () => {
    await pool.query('TRUNCATE bindings');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call('POST', '/api/v1/bindings', {
        body: binding({ subjects: [{ kind: 'User', name: `pager-${i}` }], reason: `#${i}` }),
      });
      assert.equal(r.status, 201);
      assert.equal(r.headers.get('location'), `/api/v1/bindings/${String(r.body.id)}`);
      ids.push(r.body.id as string);
    }
    const seen: string[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const q = `limit=2${next ? `&continue=${encodeURIComponent(next)}` : ''}`;
      const r = await call('GET', `/api/v1/bindings?${q}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      seen.push(...(r.body.items as { id: string }[]).map((b) => b.id));
      next = r.body.continue as string | undefined;
      pages++;
    } while (next);
    assert.deepEqual(seen, ids);
    assert.equal(pages, 3);
    const one = await call('GET', '/api/v1/bindings?subject=pager-3&subjectKind=User');
    assert.deepEqual(
      (one.body.items as { id: string }[]).map((b) => b.id),
      [ids[3]],
    );
    assert.equal(one.body.continue, undefined);
  });

  test('list parameters are checked', async () => {
    for (const q of [
      'limit=0',
      'limit=501',
      'limit=ten',
      'subjct=x',
      'continue=%21%21',
      'subjectKind=Team&subject=x',
      'limit=1&limit=2',
    ]) {
      problem(await call('GET', `/api/v1/bindings?${q}`), 400, 'KG_ERR_BAD_REQUEST');
    }
    assert.equal((await call('GET', '/api/v1/bindings?limit=500')).status, 200);
    problem(await call('GET', '/api/v1/roles/view?x=1'), 400, 'KG_ERR_BAD_REQUEST');
  });

  test('PUT replaces with If-Match; a stale ETag is 412; a bad id is 404', async () => {
    const c = await call('POST', '/api/v1/bindings', { body: binding() });
    const path = `/api/v1/bindings/${String(c.body.id)}`;
    const got = await call('GET', path);
    assert.equal(got.headers.get('etag'), '"1"');
    const edited = { ...got.body, role: 'edit', namespaces: ['team-a'] };
    problem(await call('PUT', path, { body: edited }), 428, 'KG_ERR_PRECONDITION_REQUIRED');
    const ok = await call('PUT', path, { body: edited, ifMatch: '"1"' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.role, 'edit');
    assert.equal(ok.headers.get('etag'), '"2"');
    problem(
      await call('PUT', path, { body: edited, ifMatch: '"1"' }),
      412,
      'KG_ERR_PRECONDITION_FAILED',
    );
    problem(await call('GET', '/api/v1/bindings/nope'), 404, 'KG_ERR_NOT_FOUND');
    problem(
      await call('DELETE', '/api/v1/bindings/00000000-0000-4000-8000-000000000000', {
        ifMatch: '"1"',
      }),
      404,
      'KG_ERR_NOT_FOUND',
    );
  });

  test('preview shows the bindings in effect for an identity on a cluster', async () => {
    await call('POST', '/api/v1/clusters', { body: { name: 'pv', labels: { env: 'pv' } } });
    const mine = await call('POST', '/api/v1/bindings', {
      body: binding({
        subjects: [{ kind: 'Group', name: 'pv-team' }],
        clusters: { selector: { matchLabels: { env: 'pv' } } },
      }),
    });
    const r = await call('GET', '/api/v1/bindings/preview?user=zoe&group=pv-team&cluster=pv');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(
      (r.body.items as { id: string }[]).map((b) => b.id),
      [mine.body.id],
    );
    const none = await call('GET', '/api/v1/bindings/preview?user=zoe&cluster=pv');
    assert.deepEqual(none.body.items, []);
    problem(
      await call('GET', '/api/v1/bindings/preview?user=zoe&cluster=absent'),
      404,
      'KG_ERR_CLUSTER_NOT_FOUND',
    );
  });
});

describe('clusters', () => {
  test('POST registers and returns bootstrap YAML whose token enrolls once', async () => {
    const r = await call('POST', '/api/v1/clusters', {
      body: { name: 'eu-west', labels: { env: 'prod' }, description: 'EU west' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.headers.get('etag'), '"1"');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    assert.equal(r.body.name, 'eu-west');
    const docs = parseAllDocuments(String(r.body.bootstrapYaml)).map(
      (d) => d.toJS() as Record<string, unknown>,
    );
    const secret = docs.find((d) => d.kind === 'Secret') as { stringData: Record<string, string> };
    assert.equal(secret.stringData.cluster, 'eu-west');
    assert.equal(secret.stringData['tunnel-address'], 'tunnel.example.com:8444');
    assert.equal(secret.stringData['tunnel-server-name'], 'tunnel.example.com');
    assert.equal(secret.stringData['ca.crt'], caPem);
    const deployment = JSON.stringify(docs.find((d) => d.kind === 'Deployment'));
    assert.match(deployment, /example\/agent:test/);
    const enroll = new ClusterStore(pool);
    assert.equal(
      (await enroll.spendBootstrapToken('eu-west', secret.stringData.token!)).name,
      'eu-west',
    );
    problem(
      await call('POST', '/api/v1/clusters', { body: { name: 'eu-west' } }),
      409,
      'KG_ERR_CONFLICT',
    );
    const bad = await call('POST', '/api/v1/clusters', {
      body: { name: 'EU', labels: { 'no good': 'x' } },
    });
    problem(bad, 422, 'KG_ERR_VALIDATION');
    assert.equal((bad.body.problems as string[]).length, 2);
  });

  test('PATCH is a merge patch with If-Match; DELETE too', async () => {
    await call('POST', '/api/v1/clusters', {
      body: { name: 'patchme', labels: { a: '1', b: '2' } },
    });
    const p = '/api/v1/clusters/patchme';
    problem(
      await call('PATCH', p, { body: { disabled: true } }),
      428,
      'KG_ERR_PRECONDITION_REQUIRED',
    );
    const r = await call('PATCH', p, {
      body: { labels: { a: null, c: '3' }, disabled: true },
      type: 'application/merge-patch+json',
      ifMatch: '"1"',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.labels, { b: '2', c: '3' });
    assert.equal(r.body.disabled, true);
    assert.equal(r.headers.get('etag'), '"2"');
    problem(
      await call('PATCH', p, { body: { disabled: false }, ifMatch: '"1"' }),
      412,
      'KG_ERR_PRECONDITION_FAILED',
    );
    problem(
      await call('PATCH', p, { body: { name: 'x' }, ifMatch: '"2"' }),
      422,
      'KG_ERR_VALIDATION',
    );
    assert.equal((await call('DELETE', p, { ifMatch: '"2"' })).status, 204);
    problem(await call('GET', p), 404, 'KG_ERR_CLUSTER_NOT_FOUND');
  });
});

describe('change log', () => {
  test('every change is listed with actor, before and after; newest first, paged', async () => {
    const c = await call('POST', '/api/v1/roles', { body: { name: 'audited', rules } });
    await call('PUT', '/api/v1/roles/audited', {
      body: { description: 'v2', rules },
      ifMatch: c.headers.get('etag')!,
      token: robotAdminToken,
    });
    await call('DELETE', '/api/v1/roles/audited', { ifMatch: '"2"' });
    const r = await call('GET', '/api/v1/changes?kind=role&name=audited&limit=2');
    assert.equal(r.status, 200);
    const items = r.body.items as {
      action: string;
      actor: string;
      before: { description?: string } | null;
      after: { description?: string } | null;
    }[];
    assert.deepEqual(
      items.map((i) => [i.action, i.actor]),
      [
        ['delete', 'user:alice'],
        ['update', 'robot:deployer'],
      ],
    );
    assert.equal(items[1]!.before?.description, '');
    assert.equal(items[1]!.after?.description, 'v2');
    assert.equal(items[0]!.after, null);
    const rest = await call(
      'GET',
      `/api/v1/changes?kind=role&name=audited&continue=${String(r.body.continue)}`,
    );
    const older = rest.body.items as { action: string; before: unknown }[];
    assert.deepEqual(
      older.map((i) => i.action),
      ['create'],
    );
    assert.equal(older[0]!.before, null);
    problem(await call('GET', '/api/v1/changes?kind=secret'), 400, 'KG_ERR_BAD_REQUEST');
  });
});

describe('over HTTP/2 (as the front server serves it)', () => {
  // The timeout turns a hung stream (the bug this guards against) into a failure.
  test(
    'the same handler answers h2 streams, including a refused oversized body',
    { timeout: 20_000 },
    async () => {
      const h2 = http2.createServer(handler);
      await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
      const addr = h2.address();
      const session = http2.connect(
        `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
      );
      const request = (path: string, method: string, body?: string) =>
        new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
          const s = session.request({
            ':method': method,
            ':path': path,
            authorization: `Bearer ${adminToken}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          });
          let status = 0;
          let text = '';
          s.on('response', (h) => (status = Number(h[':status'])));
          s.setEncoding('utf8');
          s.on('data', (d: string) => (text += d));
          s.on('end', () => resolve({ status, body: text ? JSON.parse(text) : {} }));
          s.on('error', reject);
          // A write error after the server refused the body is expected; the response is what counts.
          if (body !== undefined) s.end(body);
          else s.end();
        });
      try {
        const created = await request(
          '/api/v1/roles',
          'POST',
          JSON.stringify({ name: 'via-h2', rules }),
        );
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const big = await request(
          '/api/v1/roles',
          'POST',
          JSON.stringify({ name: 'x', description: 'y'.repeat(2 * 1024 * 1024), rules }),
        );
        assert.equal(big.status, 413);
        assert.equal(big.body.code, 'KG_ERR_BODY_TOO_LARGE');
        const after = await request('/api/v1/roles/via-h2', 'GET');
        assert.equal(after.status, 200, 'the session survives a refused stream');
        // HTTP/2 allows any method token; one naming an Object.prototype member must not reach it.
        for (const m of ['constructor', 'toString', 'hasOwnProperty']) {
          const odd = await request('/api/v1/roles', m);
          assert.equal(odd.status, 405, m);
        }
      } finally {
        session.close();
        await new Promise<void>((resolve) => h2.close(() => resolve()));
      }
    },
  );
});

describe('composition with other /api/ endpoints', () => {
  test('unserved paths go to the fallback unauthenticated; a custom caller resolver is used', async () => {
    const composed = createApiHandler({
      pool,
      tokens: new TokenStore(pool),
      adminGroups: ['kg-admins'],
      log: createLogger({ name: 'test', level: 'silent' }),
      bootstrap: {
        tunnelAddress: 'x:1',
        enrollAddress: 'x:2',
        serverCaPem: caPem,
        bootstrapTokenTtlMs: 1000,
        agentImage: 'x',
      },
      authenticate: async (req) => {
        const who = req.headers['x-test-user'];
        if (who === 'root')
          return { user: 'root', kind: 'user', groups: ['kg-admins'], actor: 'user:root' };
        if (who === 'guest')
          return { user: 'guest', kind: 'user', groups: [], actor: 'user:guest' };
        throw new KgError('KG_ERR_UNAUTHENTICATED', 'no test user');
      },
      fallback: (_req, res) => {
        res.writeHead(299, { 'content-type': 'application/json' });
        res.end('{"from":"fallback"}');
      },
    });
    const srv = createServer(composed);
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const addr = srv.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    try {
      const other = await fetch(`${url}/api/v1/me`);
      assert.equal(other.status, 299);
      assert.deepEqual(await other.json(), { from: 'fallback' });
      assert.equal((await fetch(`${url}/api/v1/roles`)).status, 401);
      assert.equal(
        (await fetch(`${url}/api/v1/roles`, { headers: { 'x-test-user': 'guest' } })).status,
        403,
      );
      const created = await fetch(`${url}/api/v1/roles`, {
        method: 'POST',
        headers: { 'x-test-user': 'root', 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'via-hook', rules }),
      });
      assert.equal(created.status, 201);
      assert.equal(((await created.json()) as { createdBy: string }).createdBy, 'user:root');
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });
});
