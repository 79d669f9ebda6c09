/**
 * Tunnel identity and enrollment (security.md, "Tunnel identity"): one-time,
 * expiring bootstrap tokens on the enrollment port; the tunnel port refuses
 * in the TLS handshake every client without a valid agent certificate (none,
 * foreign CA, expired) so no HTTP is ever spoken there; certificates that
 * name exactly one cluster; the agent refuses a proxy it did not pin; renewal
 * before expiry. Real proxy and agent processes, real PostgreSQL; the agent's
 * apiserver is the FakeApiserver (only its identity Secret is used here).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startFakeApiserver, type FakeApiserver } from '../support/fake-apiserver.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';
import { freePort } from '../support/ports.js';
import { runKubegate, startKubegate, type Proc } from '../support/proc.js';
import pg from 'pg';
import { CertificateAuthority, createCa, createCsr, generateKeyPair } from '../../common/pki.js';
import { clusterUri } from '../../common/tunnel-protocol.js';
import { loadCas } from '../../proxy/pki/ca-store.js';
import { parseMasterKey } from '../../proxy/pki/master-key.js';

let server: PgServer;
let fake: FakeApiserver;
let proxy: Proc;
let env: NodeJS.ProcessEnv;
let tunnelPort: number;
let enrollPort: number;
const procs: Proc[] = [];
const dir = mkdtempSync(join(tmpdir(), 'kg-tid-'));

async function addCluster(name: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const r = await runKubegate(['admin', 'cluster', 'add', name], { ...env, ...extraEnv });
  assert.equal(r.code, 0, r.stderr);
  const secret = parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as { kind: string; stringData?: Record<string, string> })
    .find((o) => o.kind === 'Secret')!;
  return { token: secret.stringData!.token!, ca: secret.stringData!['ca.crt']! };
}

function enroll(
  body: unknown,
  ca: string,
  opts: { port?: number; path?: string; cert?: string; key?: string } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = https.request(
      {
        host: '127.0.0.1',
        port: opts.port ?? enrollPort,
        path: opts.path ?? '/enroll/v1',
        method: 'POST',
        ca,
        cert: opts.cert,
        key: opts.key,
        ALPNProtocols: ['http/1.1'],
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      } as https.RequestOptions,
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(text) as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function agentFor(cluster: string, token: string, ca: string, extra: NodeJS.ProcessEnv = {}): Proc {
  const d = mkdtempSync(join(dir, `agent-${cluster}-`));
  writeFileSync(join(d, 'ca.crt'), ca);
  writeFileSync(join(d, 'token'), token);
  writeFileSync(join(d, 'sa'), 'fake-sa-token');
  writeFileSync(join(d, 'api-ca.crt'), fake.caPem);
  const p = startKubegate(
    ['agent'],
    {
      KUBEGATE_CLUSTER: cluster,
      KUBEGATE_TUNNEL_ADDRESS: `127.0.0.1:${tunnelPort}`,
      KUBEGATE_ENROLL_ADDRESS: `127.0.0.1:${enrollPort}`,
      KUBEGATE_PROXY_CA_FILE: join(d, 'ca.crt'),
      KUBEGATE_BOOTSTRAP_TOKEN_FILE: join(d, 'token'),
      KUBEGATE_APISERVER_URL: fake.url,
      KUBEGATE_APISERVER_CA_FILE: join(d, 'api-ca.crt'),
      KUBEGATE_APISERVER_TOKEN_FILE: join(d, 'sa'),
      KUBEGATE_FORWARD_MODE: 'impersonate',
      KUBEGATE_IDENTITY_SECRET: `identity-${cluster}`,
      KUBEGATE_RECONNECT_MAX: '1s',
      ...extra,
    },
    `agent-${cluster}`,
  );
  procs.push(p);
  return p;
}

interface Handshake {
  /** The TLS alert the client received, if any (its description, e.g. "certificate required"). */
  alert?: string;
  error?: NodeJS.ErrnoException;
  /** Application bytes received: any at all would mean something past TLS answered. */
  received: number;
  /** The server ended the connection (rather than our 5 s timeout). */
  closedByServer: boolean;
}

/**
 * Connect to the tunnel port (or `port`) and, once TLS 1.3 lets the client
 * speak, send an HTTP/2 preface and an HTTP/1.1 request. With TLS 1.3 the
 * server checks the client certificate after the client's Finished, so a
 * refusal shows as an alert that ends the connection before any byte of
 * application data comes back.
 */
function tunnelHandshake(opts: tls.ConnectionOptions & { port?: number }): Promise<Handshake> {
  return new Promise((resolve) => {
    const out: Handshake = { received: 0, closedByServer: true };
    const s = tls.connect({
      host: '127.0.0.1',
      ALPNProtocols: ['h2'],
      ...opts,
      port: opts.port ?? tunnelPort,
    });
    s.on('secureConnect', () => {
      s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      s.write('GET /enroll/v1 HTTP/1.1\r\nhost: x\r\n\r\n');
    });
    s.on('data', (c: Buffer) => (out.received += c.length));
    s.on('error', (err: NodeJS.ErrnoException) => {
      out.error = err;
      const m = /alert (?:number \d+|[a-z ]+)|tlsv1[3]? alert ([a-z ]+)/i.exec(err.message);
      if (m || /ALERT/.test(err.code ?? '')) out.alert = m?.[0] ?? err.code;
    });
    const timer = setTimeout(() => {
      out.closedByServer = false;
      s.destroy();
    }, 5000);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/**
 * Refused at the TLS layer: the server ends the connection, nothing above
 * TLS ever answers. `alert`: OpenSSL's own refusal (no certificate, wrong
 * ALPN) arrives as a TLS alert; a certificate that fails verification is
 * dropped by Node's TLS right after the handshake (no alert API), which the
 * proxy's log then names.
 */
function assertRefusedInHandshake(h: Handshake, what: string, alert: RegExp | undefined): void {
  assert.ok(h.closedByServer, `${what}: the proxy ended the connection`);
  assert.equal(h.received, 0, `${what}: no application byte came back`);
  if (alert) assert.match(h.alert ?? `no alert (${h.error?.message})`, alert, what);
}

const linesOf = (text: string, re: RegExp) => text.split('\n').filter((l) => re.test(l)).length;

describe('tunnel identity and enrollment', { timeout: 240_000 }, () => {
  before(async () => {
    server = await startPostgres();
    fake = await startFakeApiserver();
    const port = await freePort();
    tunnelPort = await freePort();
    enrollPort = await freePort();
    env = {
      DATABASE_URL: await createDatabase(server),
      KUBEGATE_MASTER_KEY: randomBytes(32).toString('base64'),
      KUBEGATE_LISTEN: `127.0.0.1:${port}`,
      KUBEGATE_TUNNEL_LISTEN: `127.0.0.1:${tunnelPort}`,
      KUBEGATE_ENROLL_LISTEN: `127.0.0.1:${enrollPort}`,
      KUBEGATE_PUBLIC_URL: `https://127.0.0.1:${port}`,
      KUBEGATE_TUNNEL_ADDRESS: `127.0.0.1:${tunnelPort}`,
      KUBEGATE_AGENT_CERT_TTL: '20s',
    };
    assert.equal((await runKubegate(['migrate'], env)).code, 0);
    proxy = startKubegate(['proxy'], env, 'proxy');
    await proxy.waitFor(/kubegate proxy listening/);
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await proxy?.stop();
    await fake?.close();
    await server?.stop();
  });

  test('a bootstrap token works once, only for its cluster, and not after it expires', async () => {
    const a = await addCluster('alpha');
    await addCluster('beta');
    const csr = await createCsr('whatever', await generateKeyPair());
    const wrongCluster = await enroll({ cluster: 'beta', token: a.token, csr }, a.ca);
    assert.equal(wrongCluster.status, 401);
    const first = await enroll({ cluster: 'alpha', token: a.token, csr }, a.ca);
    assert.equal(first.status, 200);
    assert.match(String(first.body.certificate), /BEGIN CERTIFICATE/);
    const again = await enroll({ cluster: 'alpha', token: a.token, csr }, a.ca);
    assert.equal(again.status, 401);
    assert.equal(again.body.code, 'KG_ERR_TOKEN_SPENT');
    assert.match(String(again.body.message), /already used or expired/);
    const short = await addCluster('gamma', { KUBEGATE_BOOTSTRAP_TOKEN_TTL: '1s' });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(
      (await enroll({ cluster: 'gamma', token: short.token, csr }, short.ca)).status,
      401,
    );
  });

  test('the agent renews its certificate before expiry and keeps its tunnel', async () => {
    const d = await addCluster('delta');
    const agent = agentFor('delta', d.token, d.ca);
    await agent.waitFor(/"msg":"tunnel up"/);
    const t0 = Date.now();
    await agent.waitFor(/agent certificate renewed/, 30_000); // 20 s certificates renew at two thirds
    // The first certificate expires 20 s after enrollment; the proxy then closes its
    // tunnels, and the agent is back at once with the renewed certificate.
    await new Promise((r) => setTimeout(r, Math.max(0, 22_000 - (Date.now() - t0))));
    const ups = agent
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"tunnel up"')).length;
    assert.ok(
      ups >= 3,
      `tunnels re-established with the renewed certificate (${ups} tunnel-up lines)`,
    );
    assert.match(proxy.output(), /"cluster":"delta".*"msg":"agent certificate renewed"/);
  });

  test('a certificate for one cluster never carries another cluster', async () => {
    const e = await addCluster('echo');
    await addCluster('foxtrot');
    const a = agentFor('echo', e.token, e.ca);
    await a.waitFor(/"msg":"tunnel up"/);
    await a.stop('SIGKILL');
    // Same stored identity (the echo certificate), but the agent claims to be "foxtrot".
    const impostor = agentFor('foxtrot', 'unused', e.ca, {
      KUBEGATE_IDENTITY_SECRET: 'identity-echo',
    });
    await proxy.waitFor(
      /agent says it serves \\"foxtrot\\" but its certificate names \\"echo\\"/,
      15_000,
    );
    // The proxy never registers it: no tunnel for foxtrot, and the impostor is cut off.
    assert.doesNotMatch(proxy.output(), /"cluster":"foxtrot"[^\n]*"msg":"tunnel up"/);
    await impostor.stop('SIGKILL');
  });

  test('the tunnel port refuses in the handshake a client with no certificate: an alert, no HTTP', async () => {
    const { ca } = await addCluster('hotel');
    const refusedBefore = linesOf(proxy.output(), /"msg":"tunnel refused"/);
    assertRefusedInHandshake(
      await tunnelHandshake({ ca, ALPNProtocols: ['h2'] }),
      'no certificate',
      /certificate required|CERTIFICATE_REQUIRED|alert number 116/i,
    );
    assertRefusedInHandshake(
      await tunnelHandshake({ ca, ALPNProtocols: ['http/1.1'] }),
      'enrollment ALPN on the tunnel port',
      /no application protocol|NO_APPLICATION_PROTOCOL|alert number 120/i,
    );
    // Enrollment (no certificate) is not served on the tunnel port at all...
    await assert.rejects(
      enroll({ cluster: 'hotel', token: 'kgb_x', csr: 'x' }, ca, { port: tunnelPort }),
      /alert|socket hang up|ECONNRESET/i,
    );
    // ...but on its own port, where it works.
    const hotel = await addCluster('hotel2');
    const csr = await createCsr('hotel2', await generateKeyPair());
    assert.equal(
      (await enroll({ cluster: 'hotel2', token: hotel.token, csr }, hotel.ca)).status,
      200,
    );
    await proxy.waitFor(/peer did not return a certificate.*tunnel TLS handshake refused/, 5000);
    assert.equal(
      linesOf(proxy.output(), /"msg":"tunnel refused"/),
      refusedBefore,
      'nothing got past the handshake',
    );
  });

  test('a client certificate from a foreign CA is refused in the handshake', async () => {
    const foreign = await CertificateAuthority.load(await createCa('evil CA', 3_600_000));
    const leaf = await foreign.issueKeyAndCert({
      commonName: 'alpha',
      usage: 'client',
      ttlMs: 600_000,
      uris: ['spiffe://kubegate/cluster/alpha'],
    });
    const { ca } = await addCluster('juliett');
    const refusedBefore = linesOf(proxy.output(), /"msg":"tunnel refused"/);
    const h = await tunnelHandshake({ ca, cert: leaf.certPem, key: leaf.keyPem });
    assertRefusedInHandshake(h, 'foreign CA', undefined);
    await proxy.waitFor(
      /"err":"UNABLE_TO_(GET_ISSUER_CERT|VERIFY_LEAF_SIGNATURE)[A-Z_]*".*tunnel TLS handshake refused/,
      5000,
    );
    assert.equal(linesOf(proxy.output(), /"msg":"tunnel refused"/), refusedBefore);
    // Nor can it renew: the enrollment port answers, and refuses.
    const csr = await createCsr('alpha', await generateKeyPair());
    const renew = await enroll({ csr }, ca, {
      path: '/renew/v1',
      cert: leaf.certPem,
      key: leaf.keyPem,
    });
    assert.equal(renew.status, 401);
  });

  test('an expired agent certificate from the real agent CA is refused in the handshake', async () => {
    const { ca } = await addCluster('kilo');
    const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 });
    try {
      const cas = await loadCas(pool, parseMasterKey(env.KUBEGATE_MASTER_KEY!));
      // Issued backdated by a minute for clock skew: a 1 s lifetime is over at once... almost.
      const short = await cas.agent.issueKeyAndCert({
        commonName: 'kilo',
        usage: 'client',
        ttlMs: 1000,
        uris: [clusterUri('kilo')],
      });
      await new Promise((r) => setTimeout(r, 1500));
      assertRefusedInHandshake(
        await tunnelHandshake({ ca, cert: short.certPem, key: short.keyPem }),
        'expired certificate',
        undefined,
      );
      await proxy.waitFor(/CERT_HAS_EXPIRED.*tunnel TLS handshake refused/, 5000);
      // The control: a valid certificate from the same CA gets through the handshake
      // (the proxy then refuses it for its unknown serial, after TLS).
      const valid = await cas.agent.issueKeyAndCert({
        commonName: 'kilo',
        usage: 'client',
        ttlMs: 600_000,
        uris: [clusterUri('kilo')],
      });
      await tunnelHandshake({ ca, cert: valid.certPem, key: valid.keyPem });
      await proxy.waitFor(
        /kilo is revoked, unknown or its cluster is disabled.*tunnel refused/,
        5000,
      );
    } finally {
      await pool.end();
    }
  });

  test('renewal works on the enrollment port with a current certificate, and only with one; revoked ones are refused', async () => {
    const l = await addCluster('lima');
    const pair = await generateKeyPair();
    const first = await enroll(
      { cluster: 'lima', token: l.token, csr: await createCsr('lima', pair) },
      l.ca,
    );
    assert.equal(first.status, 200);
    const cert = String(first.body.certificate);
    const csr = await createCsr('lima', await generateKeyPair());
    const renewed = await enroll({ csr }, l.ca, { path: '/renew/v1', cert, key: pair.keyPem });
    assert.equal(renewed.status, 200);
    assert.equal(renewed.body.cluster, 'lima');
    assert.notEqual(renewed.body.certificate, cert);
    const anonymous = await enroll({ csr }, l.ca, { path: '/renew/v1' });
    assert.equal(anonymous.status, 401);
    // The control for the refusals above: a current, recorded agent certificate
    // passes the handshake on the tunnel port and the proxy speaks HTTP/2 to it.
    const good = await tunnelHandshake({ ca: l.ca, cert, key: pair.keyPem });
    assert.ok(good.received > 0, `the proxy answered over TLS: ${good.error?.message ?? ''}`);
    // Revoked (as ClusterStore.revokeAgentCerts does): past the handshake,
    // the serial check refuses the tunnel, and renewal is refused too.
    const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 });
    try {
      await pool.query(
        `UPDATE agent_certs a SET revoked_at = now() FROM clusters c
          WHERE c.id = a.cluster_id AND c.name = 'lima'`,
      );
    } finally {
      await pool.end();
    }
    const revoked = await tunnelHandshake({ ca: l.ca, cert, key: pair.keyPem });
    assert.equal(revoked.received, 0, 'no HTTP/2 for a revoked certificate');
    await proxy.waitFor(
      /certificate [0-9A-Fa-f:]+ for cluster lima is revoked.*tunnel refused/,
      5000,
    );
    const renewRevoked = await enroll({ csr }, l.ca, { path: '/renew/v1', cert, key: pair.keyPem });
    assert.equal(renewRevoked.status, 401);
    // The enrollment port never opens a tunnel, even for a valid agent certificate.
    const h2 = await tunnelHandshake({ ca: l.ca, cert, key: pair.keyPem, port: enrollPort });
    assert.equal(h2.received, 0, 'no HTTP/2 from the enrollment port');
    assert.match(
      h2.alert ?? String(h2.error?.message),
      /no application protocol|alert number 120/i,
    );
  });

  test('the agent refuses a proxy that does not chain to its pinned CA', async () => {
    const i = await addCluster('india');
    const other = await createCa('not the proxy', 3_600_000);
    const agent = agentFor('india', i.token, other.certPem);
    const code = await new Promise<number | null>((r) => agent.child.once('exit', r));
    assert.equal(code, 1);
    assert.match(
      agent.output(),
      /cannot reach the proxy.*(self-signed|unable to verify|certificate)/i,
    );
    // The token was never sent, so it is still good.
    const csr = await createCsr('x', await generateKeyPair());
    assert.equal((await enroll({ cluster: 'india', token: i.token, csr }, i.ca)).status, 200);
  });
});
