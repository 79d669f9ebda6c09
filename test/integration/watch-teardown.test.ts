/**
 * Many watches cancelled at once (a controller restarting) must not take the
 * cluster offline. The agent is the HTTP/2 server of its tunnel, and nghttp2
 * ends a server session after 1,000 stream resets received in a burst; the
 * proxy once reset one tunnel stream per cancelled watch, so 1,000+ dropped
 * watches tore the tunnel down for good (bench P4-teardown). Real proxy and
 * agent processes with one tunnel, real PostgreSQL; FakeApiserver
 * (test/support/fake-apiserver.ts) holds the watches open upstream.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
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

/** Above nghttp2's burst of 1,000 resets, on one tunnel. */
const watches = 1300;
/** Streams per client connection: below the front's own reset burst (it is a Node h2 server too). */
const perSession = 600;

let server: PgServer;
let fake: FakeApiserver;
let proxy: Proc;
let agent: Proc;
let db: pg.Client;
let port: number;
let ca: string;
let token: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function connect(): http2.ClientHttp2Session {
  const s = http2.connect(`https://127.0.0.1:${port}`, { ca, peerMaxConcurrentStreams: 10_000 });
  s.on('error', () => undefined);
  return s;
}

function openWatch(s: http2.ClientHttp2Session, i: number): Promise<http2.ClientHttp2Stream> {
  return new Promise((resolve, reject) => {
    const st = s.request({
      ':path': `/k8s/fake/api/v1/namespaces/n${i % 7}/configmaps?watch=true`,
      authorization: `Bearer ${token}`,
    });
    st.on('error', () => undefined);
    st.once('response', (h) =>
      h[':status'] === 200
        ? resolve(st)
        : reject(new Error(`watch ${i} answered ${String(h[':status'])}`)),
    );
    st.once('close', () => reject(new Error(`watch ${i} closed before its headers`)));
  });
}

async function getStatus(): Promise<number> {
  const s = connect();
  try {
    return await new Promise<number>((resolve) => {
      const st = s.request({
        ':path': '/k8s/fake/api/v1/namespaces/default/configmaps/probe',
        authorization: `Bearer ${token}`,
      });
      const timer = setTimeout(() => resolve(0), 3000);
      st.on('error', () => resolve(0));
      st.once('response', (h) => {
        clearTimeout(timer);
        resolve(Number(h[':status']));
      });
      st.resume();
    });
  } finally {
    s.destroy();
  }
}

describe('watches cancelled at once', { timeout: 240_000 }, () => {
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
        // One tunnel: every cancelled watch lands on the same agent session.
        KUBEGATE_TUNNELS: '1',
      },
      'agent',
    );
    await agent.waitFor(/"msg":"tunnel up"/);
    await proxy.waitFor(/"msg":"tunnel up"/);
  });
  after(async () => {
    await agent?.stop();
    await proxy?.stop();
    await db?.end();
    await fake?.close();
    await server?.stop();
  });

  test(`${watches} watches dropped together: the tunnel stays up and every watch ends upstream`, async () => {
    assert.equal(await getStatus(), 200, 'the cluster answers before');
    const sessions: http2.ClientHttp2Session[] = [];
    const streams: http2.ClientHttp2Stream[] = [];
    for (let i = 0; i < watches; i += 100) {
      if (i % perSession === 0) sessions.push(connect());
      const s = sessions[sessions.length - 1]!;
      const n = Math.min(100, watches - i);
      streams.push(
        ...(await Promise.all(Array.from({ length: n }, (_, k) => openWatch(s, i + k)))),
      );
    }
    for (let i = 0; i < 200 && fake.openWatches() < watches; i++) await sleep(100);
    assert.equal(fake.openWatches(), watches, 'every watch is open at the apiserver');

    for (const st of streams) st.close(http2.constants.NGHTTP2_CANCEL);

    // The cluster keeps answering; a tunnel torn down by the reset flood never came back.
    const t0 = Date.now();
    let status = 0;
    while (Date.now() - t0 < 30_000) {
      status = await getStatus();
      if (status === 200) break;
      await sleep(200);
    }
    process.stderr.write(`# after the cancel: ${status} within ${Date.now() - t0} ms\n`);
    assert.equal(status, 200, 'the cluster still answers after the watches were dropped');
    assert.doesNotMatch(proxy.output(), /"msg":"tunnel down"/, 'the tunnel stayed up');

    // Cancelled through kubegate means cancelled at the apiserver too.
    for (let i = 0; i < 300 && fake.openWatches() > 0; i++) await sleep(100);
    assert.equal(fake.openWatches(), 0, 'no watch is left open upstream');
    for (const s of sessions) s.destroy();
  });
});
