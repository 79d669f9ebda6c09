/**
 * A switched (101) upgrade carried end to end: client → proxy → tunnel →
 * agent → FakeApiserver (test/support/fake-apiserver.ts; the real cluster has
 * no kubelet to say 101). Real proxy and agent processes, real PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { parseAllDocuments } from 'yaml';
import { startFakeApiserver, type FakeApiserver } from '../support/fake-apiserver.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';
import { freePort } from '../support/ports.js';
import { runKubegate, startKubegate, type Proc } from '../support/proc.js';

let server: PgServer;
let fake: FakeApiserver;
let proxy: Proc;
let agent: Proc;
let db: pg.Client;
let port: number;
let ca: string;
let token: string;

const key = 'dGhlIHNhbXBsZSBub25jZQ==';

function open(path: string): Promise<{ socket: tls.TLSSocket; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['http/1.1'] });
    let buf = '';
    const onData = (b: Buffer) => {
      buf += b.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        socket.off('data', onData);
        resolve({ socket, head: buf.slice(0, end) });
      }
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.on('secureConnect', () =>
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n`,
      ),
    );
  });
}

function readExactly(socket: tls.TLSSocket, n: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const onData = (b: Buffer) => {
      got += b.toString('latin1');
      if (got.length >= n) {
        socket.off('data', onData);
        resolve(got);
      }
    };
    socket.on('data', onData);
  });
}

describe('upgrades through the tunnel (101)', { timeout: 120_000 }, () => {
  before(async () => {
    server = await startPostgres();
    const url = await createDatabase(server);
    fake = await startFakeApiserver();
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
    const add = await runKubegate(['admin', 'cluster', 'add', 'fake'], env);
    const secret = parseAllDocuments(add.stdout)
      .map((d) => d.toJS() as { kind: string; stringData?: Record<string, string> })
      .find((o) => o.kind === 'Secret')!;
    ca = secret.stringData!['ca.crt']!;
    token = (await runKubegate(['admin', 'token', 'create', '--user', 'uma'], env)).stdout.trim();
    db = new pg.Client({ connectionString: url });
    await db.connect();
    await db.query(
      `INSERT INTO bindings (subjects, role, cluster_names) VALUES ('[{"kind":"User","name":"uma"}]', 'admin', '{fake}')`,
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

  test('101 with the WebSocket handshake relayed; bytes flow both ways, 1 MiB included', async () => {
    const { socket, head } = await open(
      '/k8s/fake/api/v1/namespaces/default/pods/echo/exec?command=sh&stdin=true&stdout=true',
    );
    assert.match(head, /^HTTP\/1\.1 101 Switching Protocols/);
    const accept = createHash('sha1')
      .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    assert.match(head, new RegExp(`sec-websocket-accept: ${accept.replace(/[+/]/g, '\\$&')}`, 'i'));
    assert.match(head, /sec-websocket-protocol: v5\.channel\.k8s\.io/i);
    const auditId = /audit-id: (\S+)/i.exec(head)![1];
    socket.write('hello');
    assert.equal(await readExactly(socket, 5), 'HELLO');
    const big = 'abcdefgh'.repeat(128 * 1024);
    const back = readExactly(socket, big.length);
    socket.write(big);
    assert.equal(await back, big.toUpperCase());
    socket.destroy();

    const req = fake.received.find((r) => r.url.includes('/pods/echo/exec'))!;
    assert.equal(req.headers['impersonate-user'], 'uma');
    assert.equal(
      req.headers['authorization'],
      'Bearer fake-agent-sa-token',
      'the agent credential, never the kg_ token',
    );
    assert.equal(req.headers['audit-id'], auditId);
    assert.equal(req.headers['sec-websocket-protocol'], 'v5.channel.k8s.io');
  });

  test('an open exec session ends within a second when the grant is removed', async () => {
    const { socket } = await open('/k8s/fake/api/v1/namespaces/default/pods/echo/exec?command=sh');
    socket.write('ping');
    assert.equal(await readExactly(socket, 4), 'PING');
    const closed = new Promise<number>((r) => socket.once('close', () => r(Date.now())));
    const t0 = Date.now();
    await db.query('DELETE FROM bindings');
    const ms =
      (await Promise.race([
        closed,
        new Promise<number>((r) => setTimeout(() => r(Infinity), 3000)),
      ])) - t0;
    process.stderr.write(`# grant removed → exec session closed after ${ms} ms\n`);
    assert.ok(ms <= 1000, `closed within a second (${ms} ms)`);
  });
});
