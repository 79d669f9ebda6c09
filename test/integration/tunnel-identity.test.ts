/**
 * Tunnel identity and enrollment (security.md, "Tunnel identity"): one-time,
 * expiring bootstrap tokens; certificates that name exactly one cluster;
 * foreign CAs refused; the agent refuses a proxy it did not pin; renewal
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
import { CertificateAuthority, createCa, createCsr, generateKeyPair } from '../../common/pki.js';

let server: PgServer;
let fake: FakeApiserver;
let proxy: Proc;
let env: NodeJS.ProcessEnv;
let tunnelPort: number;
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
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = https.request(
      {
        host: '127.0.0.1',
        port: tunnelPort,
        path: '/enroll/v1',
        method: 'POST',
        ca,
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

describe('tunnel identity and enrollment', { timeout: 240_000 }, () => {
  before(async () => {
    server = await startPostgres();
    fake = await startFakeApiserver();
    const port = await freePort();
    tunnelPort = await freePort();
    env = {
      DATABASE_URL: await createDatabase(server),
      KUBEGATE_MASTER_KEY: randomBytes(32).toString('base64'),
      KUBEGATE_LISTEN: `127.0.0.1:${port}`,
      KUBEGATE_TUNNEL_LISTEN: `127.0.0.1:${tunnelPort}`,
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

  test('a client certificate from a foreign CA is refused', async () => {
    const foreign = await CertificateAuthority.load(await createCa('evil CA', 3_600_000));
    const leaf = await foreign.issueKeyAndCert({
      commonName: 'alpha',
      usage: 'client',
      ttlMs: 600_000,
      uris: ['spiffe://kubegate/cluster/alpha'],
    });
    const { ca } = await addCluster('hotel');
    const closed = await new Promise<boolean>((resolve) => {
      const s = tls.connect({
        host: '127.0.0.1',
        port: tunnelPort,
        ca,
        cert: leaf.certPem,
        key: leaf.keyPem,
        ALPNProtocols: ['h2'],
      });
      s.on('close', () => resolve(true));
      s.on('error', () => undefined);
      setTimeout(() => resolve(false), 5000);
    });
    assert.ok(closed, 'the proxy closed the connection');
    await proxy.waitFor(/agent certificate not accepted.*tunnel refused/, 5000);
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
