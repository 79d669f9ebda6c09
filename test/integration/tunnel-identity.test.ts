/**
 * Tunnel identity and enrollment (docs/security.md, "Tunnel identity"): one-time,
 * expiring bootstrap tokens on the enrollment port, which asks for no client
 * certificate and serves nothing else; the tunnel port refuses in the TLS
 * handshake every client without a valid agent certificate (none, foreign CA,
 * expired), for tunnels and for renewal alike, so no HTTP is ever spoken
 * there unauthenticated; renewal for the certificate's own cluster only, and
 * never for a revoked one; certificates that name exactly one cluster; the
 * agent refuses a proxy it did not pin; renewal before expiry. Real proxy and
 * agent processes, real PostgreSQL; the agent's apiserver is the
 * FakeApiserver (only its identity Secret is used here).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { X509Certificate, randomBytes } from 'node:crypto';
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
import { alpnRenew, clusterUri } from '../../common/tunnel-protocol.js';
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
  opts: { port?: number; path?: string; cert?: string; key?: string; alpn?: string } = {},
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
        ALPNProtocols: [opts.alpn ?? 'http/1.1'],
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

/** Renewal as the agent does it: the tunnel port, ALPN `alpnRenew`, the current certificate. */
function renew(
  body: unknown,
  ca: string,
  client: { cert?: string; key?: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  return enroll(body, ca, { ...client, port: tunnelPort, path: '/renew/v1', alpn: alpnRenew });
}

/** The cluster a certificate names, by CN and by URI SAN. */
function namesOf(certPem: string): { cn: string | undefined; uri: string | undefined } {
  const x = new X509Certificate(certPem);
  return {
    cn: /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1],
    uri: /URI:(\S+?)(?:,|$)/.exec(x.subjectAltName ?? '')?.[1],
  };
}

async function revokeAll(cluster: string): Promise<void> {
  // As ClusterStore.revokeAgentCerts does.
  const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 });
  try {
    await pool.query(
      `UPDATE agent_certs a SET revoked_at = now() FROM clusters c
        WHERE c.id = a.cluster_id AND c.name = $1`,
      [cluster],
    );
  } finally {
    await pool.end();
  }
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

/** Until the proxy has logged at least `count` lines matching `re`. */
async function waitForCount(re: RegExp, count: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (linesOf(proxy.output(), re) < count) {
    if (Date.now() > until)
      assert.fail(`${linesOf(proxy.output(), re)} lines matching ${re}, wanted ${count}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('tunnel identity and enrollment', { timeout: 360_000 }, () => {
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
    // Nor can it renew: renewal is behind the same handshake.
    const renewalsRefused = linesOf(proxy.output(), /"msg":"enrollment refused"/);
    assertRefusedInHandshake(
      await tunnelHandshake({
        ca,
        cert: leaf.certPem,
        key: leaf.keyPem,
        ALPNProtocols: [alpnRenew],
      }),
      'foreign CA, renewal',
      undefined,
    );
    const csr = await createCsr('alpha', await generateKeyPair());
    await assert.rejects(renew({ csr }, ca, { cert: leaf.certPem, key: leaf.keyPem }));
    assert.equal(
      linesOf(proxy.output(), /"msg":"enrollment refused"/),
      renewalsRefused,
      'the renewal handler never saw it',
    );
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

  test('renewal is served on the tunnel port with the current certificate, for its own cluster', async () => {
    const l = await addCluster('lima');
    const pair = await generateKeyPair();
    const first = await enroll(
      { cluster: 'lima', token: l.token, csr: await createCsr('lima', pair) },
      l.ca,
    );
    assert.equal(first.status, 200);
    const cert = String(first.body.certificate);
    const next = await generateKeyPair();
    const renewed = await renew({ csr: await createCsr('lima', next) }, l.ca, {
      cert,
      key: pair.keyPem,
    });
    assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
    assert.equal(renewed.body.cluster, 'lima');
    const newCert = String(renewed.body.certificate);
    assert.notEqual(newCert, cert);
    assert.deepEqual(namesOf(newCert), { cn: 'lima', uri: clusterUri('lima') });
    // The renewed certificate is a working identity: it renews in turn.
    const again = await renew({ csr: await createCsr('lima', await generateKeyPair()) }, l.ca, {
      cert: newCert,
      key: next.keyPem,
    });
    assert.equal(again.status, 200);
    // The renewal ALPN serves renewal only: enrollment there is sent to its own port.
    const misdirected = await enroll({ cluster: 'lima', token: 'kgb_x', csr: 'x' }, l.ca, {
      port: tunnelPort,
      alpn: alpnRenew,
      cert,
      key: pair.keyPem,
    });
    assert.equal(misdirected.status, 421);
    assert.match(String(misdirected.body.message), /enrollment port/);
  });

  test('a renewal on the enrollment port is refused with where renewal lives, certificate or not', async () => {
    const m = await addCluster('mike');
    const pair = await generateKeyPair();
    const first = await enroll(
      { cluster: 'mike', token: m.token, csr: await createCsr('mike', pair) },
      m.ca,
    );
    assert.equal(first.status, 200);
    const cert = String(first.body.certificate);
    const csr = await createCsr('mike', await generateKeyPair());
    const renewedBefore = linesOf(proxy.output(), /"msg":"agent certificate renewed"/);
    for (const client of [{}, { cert, key: pair.keyPem }]) {
      const r = await enroll({ csr }, m.ca, { ...client, path: '/renew/v1' });
      assert.equal(r.status, 421);
      assert.equal(r.body.code, 'KG_ERR_MISDIRECTED');
      assert.match(String(r.body.message), /renew on the tunnel port/);
      assert.match(String(r.body.message), new RegExp(alpnRenew));
    }
    assert.equal(
      linesOf(proxy.output(), /"msg":"agent certificate renewed"/),
      renewedBefore,
      'nothing was renewed on the enrollment port',
    );
    // The renewal ALPN is not offered there at all, nor is `h2`.
    for (const alpn of [alpnRenew, 'h2']) {
      const h = await tunnelHandshake({
        ca: m.ca,
        cert,
        key: pair.keyPem,
        port: enrollPort,
        ALPNProtocols: [alpn],
      });
      assert.equal(h.received, 0, `no ${alpn} from the enrollment port`);
      assert.match(
        h.alert ?? String(h.error?.message),
        /no application protocol|alert number 120/i,
      );
    }
    // First enrollment there still needs no certificate (the first test enrolls
    // without one too); the same certificate renews on the tunnel port.
    assert.equal((await renew({ csr }, m.ca, { cert, key: pair.keyPem })).status, 200);
  });

  test('renewal without a certificate is refused in the tunnel handshake', async () => {
    const { ca } = await addCluster('oscar');
    const refusedBefore = linesOf(proxy.output(), /"msg":"enrollment refused"/);
    assertRefusedInHandshake(
      await tunnelHandshake({ ca, ALPNProtocols: [alpnRenew] }),
      'renewal without a certificate',
      /certificate required|CERTIFICATE_REQUIRED|alert number 116/i,
    );
    const csr = await createCsr('oscar', await generateKeyPair());
    await assert.rejects(
      renew({ csr }, ca, {}),
      /alert|certificate required|socket hang up|ECONNRESET/i,
    );
    assert.equal(
      linesOf(proxy.output(), /"msg":"enrollment refused"/),
      refusedBefore,
      'no HTTP request reached the renewal handler',
    );
  });

  test('an expired or revoked certificate cannot renew, and revoked ones carry no tunnel', async () => {
    const p = await addCluster('papa');
    const pair = await generateKeyPair();
    const first = await enroll(
      { cluster: 'papa', token: p.token, csr: await createCsr('papa', pair) },
      p.ca,
    );
    assert.equal(first.status, 200);
    const cert = String(first.body.certificate);
    const csr = await createCsr('papa', await generateKeyPair());
    // The control for the refusals below: a current, recorded agent certificate
    // passes the handshake on the tunnel port and the proxy speaks HTTP/2 to it.
    const good = await tunnelHandshake({ ca: p.ca, cert, key: pair.keyPem });
    assert.ok(good.received > 0, `the proxy answered over TLS: ${good.error?.message ?? ''}`);

    // Expired (from the real agent CA, 1 s life, backdated): refused in the handshake.
    const db = new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 });
    try {
      const cas = await loadCas(db, parseMasterKey(env.KUBEGATE_MASTER_KEY!));
      const short = await cas.agent.issueKeyAndCert({
        commonName: 'papa',
        usage: 'client',
        ttlMs: 1000,
        uris: [clusterUri('papa')],
      });
      await new Promise((r) => setTimeout(r, 1500));
      const expiredBefore = linesOf(
        proxy.output(),
        /CERT_HAS_EXPIRED.*tunnel TLS handshake refused/,
      );
      assertRefusedInHandshake(
        await tunnelHandshake({
          ca: p.ca,
          cert: short.certPem,
          key: short.keyPem,
          ALPNProtocols: [alpnRenew],
        }),
        'expired certificate, renewal',
        undefined,
      );
      await assert.rejects(renew({ csr }, p.ca, { cert: short.certPem, key: short.keyPem }));
      // Both attempts above were refused for the expiry, in the handshake.
      await waitForCount(/CERT_HAS_EXPIRED.*tunnel TLS handshake refused/, expiredBefore + 2, 5000);
    } finally {
      await db.end();
    }

    // Revoked: past the handshake, the serial check refuses the tunnel and the renewal.
    await revokeAll('papa');
    const revoked = await tunnelHandshake({ ca: p.ca, cert, key: pair.keyPem });
    assert.equal(revoked.received, 0, 'no HTTP/2 for a revoked certificate');
    await proxy.waitFor(
      /certificate [0-9A-Fa-f:]+ for cluster papa is revoked.*tunnel refused/,
      5000,
    );
    const renewRevoked = await renew({ csr }, p.ca, { cert, key: pair.keyPem });
    assert.equal(renewRevoked.status, 401);
    assert.equal(renewRevoked.body.code, 'KG_ERR_UNAUTHENTICATED');
    // The enrollment port never opens a tunnel, even for a valid agent certificate.
    const h2 = await tunnelHandshake({ ca: p.ca, cert, key: pair.keyPem, port: enrollPort });
    assert.equal(h2.received, 0, 'no HTTP/2 from the enrollment port');
  });

  test('a certificate for cluster A never renews for cluster B', async () => {
    const q = await addCluster('quebec');
    await addCluster('romeo');
    const pair = await generateKeyPair();
    const first = await enroll(
      { cluster: 'quebec', token: q.token, csr: await createCsr('quebec', pair) },
      q.ca,
    );
    assert.equal(first.status, 200);
    const client = { cert: String(first.body.certificate), key: pair.keyPem };
    // A CSR asking for romeo: the proxy sets the subject, so it is quebec's.
    const pair2 = await generateKeyPair();
    const asked = await renew({ csr: await createCsr('romeo', pair2) }, q.ca, client);
    assert.equal(asked.status, 200);
    assert.equal(asked.body.cluster, 'quebec');
    assert.deepEqual(namesOf(String(asked.body.certificate)), {
      cn: 'quebec',
      uri: clusterUri('quebec'),
    });
    // A body naming romeo is refused outright (asked with the renewed
    // certificate: the first one was superseded by its renewal).
    const named = await renew(
      { cluster: 'romeo', csr: await createCsr('romeo', await generateKeyPair()) },
      q.ca,
      { cert: String(asked.body.certificate), key: pair2.keyPem },
    );
    assert.equal(named.status, 403);
    assert.equal(named.body.code, 'KG_ERR_FORBIDDEN');
    // The renewal superseded the first certificate: it renews nothing any more.
    const again = await renew(
      { csr: await createCsr('quebec', await generateKeyPair()) },
      q.ca,
      client,
    );
    assert.equal(again.status, 401, 'a superseded certificate renewed again');
    assert.equal(again.body.code, 'KG_ERR_UNAUTHENTICATED');
    assert.match(proxy.output(), /"cluster":"quebec".*"msg":"agent certificate renewed"/);
    assert.doesNotMatch(proxy.output(), /"cluster":"romeo"[^\n]*"msg":"agent certificate renewed"/);
  });

  test('the enrollment port ends a stalled request (idle timeout) and a dribbling one (deadline)', async () => {
    const { ca } = await addCluster('sierra');
    // Headers that never end: one connection silent, one sending a header line every 2 s.
    const hold = (drip: boolean) =>
      new Promise<{ ms: number; byServer: boolean }>((resolve) => {
        const t0 = Date.now();
        const s = tls.connect({
          host: '127.0.0.1',
          port: enrollPort,
          ca,
          ALPNProtocols: ['http/1.1'],
        });
        let ticker: NodeJS.Timeout | undefined;
        s.on('secureConnect', () => {
          s.write('POST /enroll/v1 HTTP/1.1\r\nhost: x\r\n');
          if (drip) ticker = setInterval(() => s.write('x-slow: 1\r\n'), 2000);
        });
        s.on('error', () => undefined);
        const giveUp = setTimeout(() => s.destroy(), 50_000);
        s.on('close', () => {
          clearInterval(ticker);
          clearTimeout(giveUp);
          const ms = Date.now() - t0;
          resolve({ ms, byServer: ms < 50_000 });
        });
      });
    const [stalled, dribbling] = await Promise.all([hold(false), hold(true)]);
    assert.ok(
      stalled.byServer && stalled.ms >= 9_000 && stalled.ms < 25_000,
      `stalled: ${stalled.ms} ms`,
    );
    // Never idle for 10 s, so only the 30 s deadline ends it.
    assert.ok(
      dribbling.byServer && dribbling.ms >= 29_000 && dribbling.ms < 45_000,
      `dribbling: ${dribbling.ms} ms`,
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
