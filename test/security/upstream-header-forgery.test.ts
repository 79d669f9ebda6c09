/**
 * Attack (issue #17 item 8): whatever answers behind the apiserver — a pod
 * behind pods/proxy or services/proxy, an aggregated API server — chooses its
 * response headers. If the agent passed on headers in kubegate's own
 * namespace, such a backend could write `kg-impersonated-as` (who the
 * request ran as, in the audit record) or `kg-upgrade-status: 101` (make the
 * proxy treat a refused upgrade as switched, and pipe the connection).
 *
 * The backend here is FakeApiserver (test/support/fake-apiserver.ts), a
 * stand-in named as such: the real test cluster runs no containers (kwok), so
 * no pod could send these headers. It adds forged kg- headers, in mixed case,
 * to every answer it gives. Real proxy and agent processes, real PostgreSQL;
 * the agent runs in impersonation mode, so the real identity is the user's name.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseAllDocuments } from 'yaml';
import { startFakeApiserver, type FakeApiserver } from '../support/fake-apiserver.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';
import { freePort } from '../support/ports.js';
import { runKubegate, startKubegate, type Proc } from '../support/proc.js';
import { until } from '../support/http.js';

const forged = {
  'KG-Impersonated-As': 'system:admin',
  'kg-upgrade-status': '101',
  'Kg-Agent-Error': '1',
  'kg-upgrade': 'websocket',
};

let server: PgServer;
let fake: FakeApiserver;
let proxy: Proc;
let agent: Proc;
let db: pg.Client;
let port: number;
let ca: string;
let token: string;

/** One raw HTTP/1.1 exchange; resolves with the response head (and what followed it). */
function exchange(request: string): Promise<{ head: string; rest: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['http/1.1'] });
    let buf = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer; got ${JSON.stringify(buf.slice(0, 300))}`));
    }, 10_000);
    socket.on('data', (b: Buffer) => {
      buf += b.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      // Give the body a moment, then report what came.
      setTimeout(() => {
        clearTimeout(timer);
        socket.destroy();
        resolve({ head: buf.slice(0, end), rest: buf.slice(end + 4) });
      }, 200);
    });
    socket.on('error', reject);
    socket.on('secureConnect', () => socket.write(request));
  });
}

const get = (path: string) =>
  exchange(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
const upgrade = (path: string) =>
  exchange(
    `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n`,
  );

interface Stored {
  code: number | null;
  event: { impersonatedUser?: { username: string }; responseStatus?: { code?: number } };
}

/** The completed audit event of a request, once the writer has stored it. */
async function auditOf(auditId: string): Promise<Stored> {
  let row: Stored | undefined;
  await until(
    async () => {
      const r = await db.query<Stored>(
        `SELECT code, event FROM audit_events WHERE audit_id = $1 AND stage = 'ResponseComplete'`,
        [auditId],
      );
      row = r.rows[0];
      return row !== undefined;
    },
    10_000,
    `audit event ${auditId}`,
  );
  return row!;
}

const auditIdOf = (head: string) => /\r\naudit-id: (\S+)/i.exec(head)?.[1];

describe('upstream kg-* response headers are never trusted', { timeout: 180_000 }, () => {
  before(async () => {
    server = await startPostgres();
    const url = await createDatabase(server);
    fake = await startFakeApiserver({ responseHeaders: forged });
    port = await freePort();
    const tunnelPort = await freePort();
    const enrollPort = await freePort();
    const env = {
      DATABASE_URL: url,
      KUBEGATE_MASTER_KEY: randomBytes(32).toString('base64'),
      KUBEGATE_LISTEN: `127.0.0.1:${port}`,
      KUBEGATE_TUNNEL_LISTEN: `127.0.0.1:${tunnelPort}`,
      KUBEGATE_ENROLL_LISTEN: `127.0.0.1:${enrollPort}`,
      KUBEGATE_PUBLIC_URL: `https://127.0.0.1:${port}`,
      KUBEGATE_TUNNEL_ADDRESS: `127.0.0.1:${tunnelPort}`,
    };
    assert.equal((await runKubegate(['migrate'], env)).code, 0);
    const add = await runKubegate(
      ['admin', 'cluster', 'add', 'fake', '--forward-mode', 'impersonate'],
      env,
    );
    const secret = parseAllDocuments(add.stdout)
      .map((d) => d.toJS() as { kind: string; stringData?: Record<string, string> })
      .find((o) => o.kind === 'Secret')!;
    ca = secret.stringData!['ca.crt']!;
    token = (await runKubegate(['admin', 'token', 'create', '--user', 'uma'], env)).stdout.trim();
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(
      `INSERT INTO bindings (subjects, role, cluster_names) VALUES ('[{"kind":"User","name":"uma"}]', 'cluster-admin', '{fake}')`,
    );
    proxy = startKubegate(['proxy'], env, 'proxy');
    await proxy.waitFor(/kubegate proxy listening/);
    const dir = mkdtempSync(join(tmpdir(), 'kg-agent-'));
    for (const [f, v] of [
      ['ca.crt', ca],
      ['token', secret.stringData!.token!],
      ['sa-token', 'fake-agent-sa-token'],
      ['api-ca.crt', fake.caPem],
    ] as const)
      writeFileSync(join(dir, f), v);
    agent = startKubegate(
      ['agent'],
      {
        KUBEGATE_CLUSTER: 'fake',
        KUBEGATE_TUNNEL_ADDRESS: env.KUBEGATE_TUNNEL_ADDRESS,
        KUBEGATE_ENROLL_ADDRESS: secret.stringData!['enroll-address']!,
        KUBEGATE_PROXY_CA_FILE: join(dir, 'ca.crt'),
        KUBEGATE_BOOTSTRAP_TOKEN_FILE: join(dir, 'token'),
        KUBEGATE_APISERVER_URL: fake.url,
        KUBEGATE_APISERVER_CA_FILE: join(dir, 'api-ca.crt'),
        KUBEGATE_APISERVER_TOKEN_FILE: join(dir, 'sa-token'),
        KUBEGATE_FORWARD_MODE: 'impersonate',
      },
      'agent',
    );
    await agent.waitFor(/"msg":"tunnel up"/);
    await new Promise((r) => setTimeout(r, 300));
  });
  after(async () => {
    await agent?.stop();
    await proxy?.stop();
    await db?.end();
    await fake?.close();
    await server?.stop();
  });

  test('pods/proxy answer with forged kg- headers: the audit records who it really ran as', async () => {
    const { head } = await get('/k8s/fake/api/v1/namespaces/default/pods/web/proxy/');
    assert.match(head, /^HTTP\/1\.1 200 /);
    assert.doesNotMatch(head, /\r\nkg-/i, 'no kg- header reaches the client');
    const ev = await auditOf(auditIdOf(head)!);
    assert.equal(ev.event.impersonatedUser?.username, 'uma', 'the real identity, not system:admin');
    assert.equal(ev.code, 200);
    const req = fake.received.find((r) => r.url.includes('/pods/web/proxy/'))!;
    assert.equal(req.headers['impersonate-user'], 'uma');
  });

  test('a service refusing an upgrade with a forged kg-upgrade-status: 101 is not piped', async () => {
    // The fake refuses upgrades on anything but pods/echo with 400 (+ the forged headers).
    const { head, rest } = await upgrade(
      '/k8s/fake/api/v1/namespaces/default/services/web:80/proxy/ws',
    );
    assert.match(head, /^HTTP\/1\.1 400 /, `a refusal stays a refusal: ${head.split('\r\n')[0]}`);
    assert.doesNotMatch(head, /\r\nkg-/i);
    assert.equal(rest, '{}', 'the refusal body, whole');
    const ev = await auditOf(auditIdOf(head)!);
    assert.equal(ev.code, 400, 'audited as the refusal it was');
    assert.equal(ev.event.impersonatedUser?.username, 'uma');
  });

  test('a switched upgrade with a forged kg-impersonated-as: the audit records the real identity', async () => {
    const { head } = await upgrade(
      '/k8s/fake/api/v1/namespaces/default/pods/echo/exec?command=sh&stdin=true&stdout=true',
    );
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.doesNotMatch(head, /\r\nkg-/i);
    const ev = await auditOf(auditIdOf(head)!);
    assert.equal(ev.code, 101);
    assert.equal(ev.event.impersonatedUser?.username, 'uma');
  });
});
