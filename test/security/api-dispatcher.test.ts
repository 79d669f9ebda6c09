/**
 * Attacks on the REST API's one dispatcher (proxy/http/routes.ts), with the
 * proxy's real route table (every feature's routes) in front of callers
 * named by a test header and no database behind them:
 *
 * - methods it does not take, Object.prototype names as HTTP/2 methods;
 * - repeated, dot and percent-encoded path segments, which must never reach
 *   another endpoint (no normalisation happens anywhere);
 * - bodies past the limit (declared and chunked), nested 20,000 deep, and
 *   of the wrong media type (an HTML form is how a cross-site page would
 *   post);
 * - the order of refusals: 404 and 405 before credentials, then 401, then
 *   the one 403 for a non-admin, the same wording on every feature.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import * as http2 from 'node:http2';
import { testApi } from '../support/route-table.js';

let server: Server;
let port = 0;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: Record<string, unknown>;
}

function send(
  method: string,
  path: string,
  opts: { who?: string; type?: string; body?: string | Buffer; chunked?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (opts.who) headers['x-test-caller'] = opts.who;
    if (opts.type) headers['content-type'] = opts.type;
    if (opts.body !== undefined && !opts.chunked)
      headers['content-length'] = String(Buffer.byteLength(opts.body));
    const req = request({ port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let json: Record<string, unknown> = {};
        try {
          json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    if (opts.chunked && opts.body !== undefined) {
      // Written in pieces with no Content-Length: the limit is enforced while streaming.
      const b = Buffer.from(opts.body);
      for (let i = 0; i < b.length; i += 64 * 1024) req.write(b.subarray(i, i + 64 * 1024));
      req.end();
    } else req.end(opts.body);
  });
}

function problem(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(String(r.headers['content-type']), /application\/problem\+json/);
  assert.equal(r.json.code, code, r.text);
}

before(async () => {
  server = createServer(testApi());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

describe('methods', () => {
  test('a method a route does not take is 405 with Allow, before any credentials', async () => {
    for (const [method, path, allow] of [
      ['TRACE', '/api/v1/roles', 'GET, POST'],
      ['OPTIONS', '/api/v1/me', 'GET'],
      ['PROPFIND', '/api/v1/clusters/x', 'GET, PATCH, DELETE'],
      ['PATCH', '/api/v1/audit', 'GET, HEAD'],
      ['HEAD', '/api/v1/console/binding-reach', 'POST'],
      ['PUT', '/api/v1/approvals/1/approve', 'POST'],
    ] as const) {
      for (const who of [undefined, 'dev', 'admin']) {
        const r = await send(method, path, who ? { who } : {});
        assert.equal(r.status, 405, `${method} ${path} as ${who}`);
        assert.equal(r.headers.allow, allow, `${method} ${path}`);
        assert.equal(r.headers['www-authenticate'], undefined);
      }
    }
  });

  test('HTTP/2 methods named after Object.prototype members are 405, not a crash', async () => {
    const h2 = http2.createServer(testApi());
    await new Promise<void>((r) => h2.listen(0, '127.0.0.1', r));
    const session = http2.connect(`http://127.0.0.1:${(h2.address() as { port: number }).port}`);
    try {
      for (const m of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
        const status = await new Promise<number>((resolve, reject) => {
          const s = session.request({
            ':method': m,
            ':path': '/api/v1/roles',
            'x-test-caller': 'admin',
          });
          s.on('response', (h) => resolve(Number(h[':status'])));
          s.on('error', reject);
          s.resume();
          s.end();
        });
        assert.equal(status, 405, m);
      }
    } finally {
      session.close();
      await new Promise<void>((r) => h2.close(() => r()));
    }
  });
});

describe('paths', () => {
  test('repeated, dot and encoded segments never reach another endpoint', async () => {
    const odd = [
      '/api/v1//clusters',
      '/api/v1/clusters//',
      '//api/v1/roles',
      '/api/v1/./roles',
      '/api/v1/roles/../users',
      '/api/v1/%2e%2e/api/v1/roles',
      '/api/v1/%2e%2e/',
      '/api/v1/roles%2fview',
      '/api/v1/roles%2F',
      '/api/v1/ROLES',
      '/api/v1/roles/',
      '/api/v1/users/x/tokens/../../../robots',
      '/api/v1/openapi.json/..',
      '/api/v1/console/clusters/.',
      '/api/v1/audit%00',
      '/api/v1/me;jsessionid=1',
      '/api/v1',
      '/api/v1/',
      '/api/v2/roles',
    ];
    for (const path of odd) {
      for (const who of [undefined, 'admin']) {
        const r = await send('GET', path, who ? { who } : {});
        problem(r, 404, 'KG_ERR_NOT_FOUND');
        assert.equal(r.headers['www-authenticate'], undefined, path);
      }
    }
  });

  test('an encoded parameter stays one segment of its own route', async () => {
    // `%2e%2e` and `..%2f..` are a role name here: the roles route answers (401
    // without credentials, the database's 503 with them), never the users route.
    for (const path of ['/api/v1/roles/%2e%2e', '/api/v1/roles/..%2f..%2fusers']) {
      const anon = await send('GET', path);
      problem(anon, 401, 'KG_ERR_UNAUTHENTICATED');
      const dev = await send('GET', path, { who: 'dev' });
      problem(dev, 403, 'KG_ERR_FORBIDDEN');
      const admin = await send('GET', path, { who: 'admin' });
      assert.equal(admin.status, 503, admin.text);
      assert.equal(admin.json.instance, path, 'the path is reported as sent');
    }
  });
});

describe('bodies', () => {
  const adminJson = { who: 'admin', type: 'application/json' };

  test('past the limit: 413, declared or streamed, on both body sizes', async () => {
    const big = JSON.stringify({ name: 'x', description: 'y'.repeat(2 * 1024 * 1024) });
    problem(
      await send('POST', '/api/v1/roles', { ...adminJson, body: big }),
      413,
      'KG_ERR_BODY_TOO_LARGE',
    );
    problem(
      await send('POST', '/api/v1/roles', { ...adminJson, body: big, chunked: true }),
      413,
      'KG_ERR_BODY_TOO_LARGE',
    );
    const medium = JSON.stringify({ role: 'x'.repeat(100 * 1024) });
    for (const chunked of [false, true])
      problem(
        await send('POST', '/api/v1/console/binding-reach', {
          ...adminJson,
          body: medium,
          chunked,
        }),
        413,
        'KG_ERR_BODY_TOO_LARGE',
      );
  });

  test('nested 20,000 deep: a 400, and the server keeps answering', async () => {
    const deep = '['.repeat(20_000) + ']'.repeat(20_000);
    const deepObject = '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000);
    for (const [path, body] of [
      ['/api/v1/roles', deep],
      ['/api/v1/bindings', deepObject],
      ['/api/v1/console/binding-reach', deepObject],
    ] as const) {
      const r = await send('POST', path, { ...adminJson, body });
      problem(r, 400, 'KG_ERR_BAD_REQUEST');
      assert.match(String(r.json.detail), /nested more than 64 levels/);
    }
    const ok = await send('GET', '/api/v1/openapi.json');
    assert.equal(ok.status, 200);
  });

  test('wrong media types: 415 everywhere a JSON body is read', async () => {
    const body = JSON.stringify({ name: 'x' });
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      'application/jsonx',
      'text/json',
    ]) {
      for (const path of ['/api/v1/roles', '/api/v1/console/binding-reach']) {
        const r = await send('POST', path, { who: 'admin', type, body });
        problem(r, 415, 'KG_ERR_UNSUPPORTED_MEDIA_TYPE');
      }
    }
    // No Content-Type at all.
    problem(
      await send('POST', '/api/v1/roles', { who: 'admin', body }),
      415,
      'KG_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
    // A merge patch is a JSON type only where a route says so (PATCH of a cluster).
    problem(
      await send('POST', '/api/v1/roles', {
        who: 'admin',
        type: 'application/merge-patch+json',
        body,
      }),
      415,
      'KG_ERR_UNSUPPORTED_MEDIA_TYPE',
    );
  });

  test('malformed JSON and a non-object where an object is required: 400', async () => {
    problem(
      await send('POST', '/api/v1/roles', { ...adminJson, body: '{"a":' }),
      400,
      'KG_ERR_BAD_REQUEST',
    );
    const arr = await send('POST', '/api/v1/console/binding-reach', { ...adminJson, body: '[1]' });
    problem(arr, 400, 'KG_ERR_BAD_REQUEST');
    assert.match(String(arr.json.detail), /must be a JSON object/);
  });

  test('a body is never read before the caller is known and allowed', async () => {
    const big = 'x'.repeat(2 * 1024 * 1024);
    problem(
      await send('POST', '/api/v1/roles', { type: 'text/plain', body: big }),
      401,
      'KG_ERR_UNAUTHENTICATED',
    );
    problem(
      await send('POST', '/api/v1/roles', { who: 'dev', type: 'text/plain', body: big }),
      403,
      'KG_ERR_FORBIDDEN',
    );
  });
});

describe('who may call', () => {
  test('401 names the Bearer scheme; the non-admin 403 reads the same on every feature', async () => {
    const anon = await send('GET', '/api/v1/console/clusters');
    problem(anon, 401, 'KG_ERR_UNAUTHENTICATED');
    assert.match(String(anon.headers['www-authenticate']), /^Bearer/);
    for (const [method, path] of [
      ['GET', '/api/v1/roles'],
      ['GET', '/api/v1/users'],
      ['POST', '/api/v1/console/binding-reach'],
    ] as const) {
      const r = await send(method, path, { who: 'dev', type: 'application/json', body: '{}' });
      problem(r, 403, 'KG_ERR_FORBIDDEN');
      assert.equal(
        r.json.detail,
        'User "dev" is not a kubegate admin: this needs membership of an admin group',
        `${method} ${path}`,
      );
    }
  });
});
