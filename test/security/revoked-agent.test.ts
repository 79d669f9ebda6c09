/**
 * Attack: an agent whose certificate should be dead keeps serving (issue #17
 * item 6). Before the fix there was no way to revoke an agent, a renewal
 * left the previous serial valid, and a disabled or deleted cluster kept
 * its live tunnels in the registry. On the real stack — PostgreSQL, a real
 * kube-apiserver, two proxy replicas, one agent process per replica — this
 * proves:
 *  - `kubegate admin cluster revoke-agent` closes every tunnel of the cluster
 *    on both replicas within 1 s (measured from the revocation's commit
 *    time to each replica's own log of the close, and printed); kubectl then
 *    gets a clean 503 "offline" Status; the agents' redials with the old
 *    certificate are refused, so is a renewal with it, and so is a bootstrap
 *    token minted before the revocation; the revocation is an admin audit
 *    event; only a new bootstrap token brings the agent back;
 *  - a renewal supersedes the certificate that asked for it: that serial can
 *    neither renew again nor open a tunnel;
 *  - disabling and deleting the cluster (REST, as an admin does it) close
 *    its tunnels on both replicas within 1 s;
 *  - the REST route is admin-only and answers problem JSON.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import type { Proc } from '../support/proc.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { createCsr, generateKeyPair } from '../../common/pki.js';
import { alpnRenew } from '../../common/tunnel-protocol.js';

const log = (m: string) => process.stderr.write(`# ${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let stack: Stack;
let replica: { proxy: Proc; env: NodeJS.ProcessEnv; publicUrl: string };
let ca: string;
let userToken: string;
let adminToken: string;
let kcMain: string;
let kcReplica: string;
const closeTimes: { what: string; replica: string; ms: number }[] = [];

const proxies = () => [
  { name: 'replica-1', proc: stack.proxy, front: stack.publicUrl },
  { name: 'replica-2', proc: replica.proxy, front: replica.publicUrl },
];
const agentKeys = () => ['dev', `dev@${replica.env.KUBEGATE_TUNNEL_ADDRESS}`];

/** Replicas holding a tunnel of `dev` (the replica registry every replica shares). */
async function holders(): Promise<string[]> {
  const rows = await stack.sql<{ replica_id: string }>(
    `SELECT DISTINCT replica_id FROM replica_tunnels WHERE cluster = 'dev'`,
  );
  return rows.map((r) => r.replica_id);
}

/** Both agents running, each with a tunnel up on its replica. */
async function bothUp(): Promise<void> {
  await until(
    async () => (await holders()).length === 2,
    60_000,
    'dev has tunnels on both replicas',
  );
}

async function startAgents(): Promise<void> {
  await stack.startAgent('dev');
  await stack.startAgent('dev', replica.env.KUBEGATE_TUNNEL_ADDRESS);
  await bothUp();
}

async function stopAgents(): Promise<void> {
  for (const k of agentKeys()) await stack.agents.get(k)?.stop();
}

/**
 * The next line of `proc`'s output matching `re` that was not there yet when
 * this was called (Proc.waitFor also returns lines printed earlier).
 */
function nextLine(proc: Proc, re: RegExp, timeoutMs: number): Promise<string> {
  const matching = () =>
    proc
      .output()
      .split('\n')
      .filter((l) => re.test(l));
  const seen = matching().length;
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      const now = matching();
      if (now.length > seen) {
        clearInterval(poll);
        resolve(now[seen]!);
      } else if (Date.now() - t0 > timeoutMs) {
        clearInterval(poll);
        reject(new Error(`no new line matching ${re} within ${timeoutMs} ms`));
      }
    }, 20);
  });
}

/**
 * Wait on both replicas for their log of closing dev's tunnels for `why`;
 * `since` is when the change committed (epoch ms). Registered before the
 * change is made, so no line is missed.
 */
function closedOnBoth(why: RegExp): { measure(since: number, what: string): Promise<void> } {
  const waits = proxies().map((p) => ({
    name: p.name,
    line: nextLine(
      p.proc,
      new RegExp(`"cluster":"dev".*"why":"${why.source}".*"msg":"tunnels closed"`),
      15_000,
    ),
  }));
  return {
    async measure(since, what) {
      for (const w of waits) {
        const at = Date.parse((JSON.parse(await w.line) as { time: string }).time);
        const ms = at - since;
        closeTimes.push({ what, replica: w.name, ms });
        log(`${what}: ${w.name} closed its dev tunnels ${ms} ms after the commit`);
        assert.ok(ms < 1000, `${what}: ${w.name} closed its tunnels after ${ms} ms (limit 1 s)`);
      }
      await until(
        async () => (await holders()).length === 0,
        5_000,
        'no replica lists a dev tunnel',
      );
    },
  };
}

/** kubectl through both replicas: the clean 503 "offline" Status, over HTTP and as kubectl prints it. */
async function assertOffline(): Promise<void> {
  for (const p of proxies()) {
    const r = await httpGet(`${p.front}/k8s/dev/api/v1/namespaces`, { token: userToken, ca });
    assert.equal(r.status, 503, `${p.name}: ${r.status} ${r.body}`);
    const s = JSON.parse(r.body) as { kind: string; code: number; reason: string; message: string };
    assert.equal(s.kind, 'Status');
    assert.equal(s.reason, 'ServiceUnavailable');
    assert.match(s.message, /cluster "dev" is offline/);
  }
  for (const kc of [kcMain, kcReplica]) {
    const k = await kubectl(['get', 'ns'], { kubeconfig: kc, timeoutMs: 30_000 });
    assert.notEqual(k.code, 0);
    assert.match(k.stderr, /cluster "dev" is offline/, k.stderr);
  }
}

async function assertWorks(): Promise<void> {
  for (const kc of [kcMain, kcReplica])
    assert.match(await kubectlOk(['get', 'ns', 'default'], { kubeconfig: kc }), /default/);
}

/** The agent's stored identity (the Secret in the cluster). */
async function storedIdentity(): Promise<{ cert: string; key: string }> {
  const s = JSON.parse(
    await kubectlOk(
      ['get', 'secret', 'kubegate-agent-identity', '-n', 'kubegate-system', '-o', 'json'],
      { kubeconfig: stack.cluster.kubeconfig },
    ),
  ) as { data: Record<string, string> };
  const b = (k: string) => Buffer.from(s.data[k]!, 'base64').toString('utf8');
  return { cert: b('tls.crt'), key: b('tls.key') };
}

async function storeIdentity(id: { cert: string; key: string }): Promise<void> {
  const file = join(stack.dir, 'identity.json');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/tls',
      metadata: { name: 'kubegate-agent-identity', namespace: 'kubegate-system' },
      data: {
        'tls.crt': Buffer.from(id.cert).toString('base64'),
        'tls.key': Buffer.from(id.key).toString('base64'),
      },
    }),
  );
  await kubectlOk(['apply', '-f', file], { kubeconfig: stack.cluster.kubeconfig });
}

/** POST JSON over TLS as the agent does (enrollment port, or the tunnel port with the renewal ALPN). */
function agentPost(
  address: string,
  path: string,
  body: unknown,
  client?: { cert: string; key: string },
): Promise<{ status: number; body: string }> {
  const [host, port] = address.split(':');
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host,
        port: Number(port),
        path,
        method: 'POST',
        ca,
        cert: client?.cert,
        key: client?.key,
        ALPNProtocols: [client ? alpnRenew : 'http/1.1'],
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
      } as https.RequestOptions,
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const renew = async (id: { cert: string; key: string }) => {
  const pair = await generateKeyPair();
  const r = await agentPost(
    stack.env.KUBEGATE_TUNNEL_ADDRESS!,
    '/renew/v1',
    { csr: await createCsr('dev', pair) },
    id,
  );
  return { ...r, keyPem: pair.keyPem };
};

/**
 * Open a tunnel with `id` as an agent would (ALPN h2) and report whether the
 * proxy spoke HTTP/2 to it (it sends its connection preface and the hello
 * only to an accepted certificate) or closed the connection silently.
 */
function tunnelAccepted(id: { cert: string; key: string }): Promise<boolean> {
  const [host, port] = stack.env.KUBEGATE_TUNNEL_ADDRESS!.split(':');
  return new Promise((resolve) => {
    const s = tls.connect({
      host,
      port: Number(port),
      ca,
      cert: id.cert,
      key: id.key,
      ALPNProtocols: ['h2'],
    });
    const timer = setTimeout(() => s.destroy(), 5000);
    s.on('data', () => {
      clearTimeout(timer);
      resolve(true);
      s.destroy();
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
}

/** A fresh bootstrap YAML's one-time token. */
async function newBootstrapToken(): Promise<string> {
  const file = join(stack.dir, `bootstrap-${Date.now()}.yaml`);
  await stack.admin(['cluster', 'bootstrap', 'dev', '--out', file]);
  const secret = parseAllDocuments(readFileSync(file, 'utf8'))
    .map((d) => d.toJS() as { kind: string; stringData?: Record<string, string> })
    .find((o) => o.kind === 'Secret')!;
  return secret.stringData!.token!;
}

/** What an operator does after a revocation: a new token, the stored identity deleted, the agent restarted. */
async function reEnroll(): Promise<void> {
  await stopAgents();
  const token = await newBootstrapToken();
  writeFileSync(stack.agentEnv.get('dev')!.KUBEGATE_BOOTSTRAP_TOKEN_FILE!, token);
  await kubectlOk(
    ['delete', 'secret', 'kubegate-agent-identity', '-n', 'kubegate-system', '--ignore-not-found'],
    { kubeconfig: stack.cluster.kubeconfig },
  );
  // The first agent enrolls and stores the identity; the second (another
  // replica's tunnel address) starts from that stored identity.
  await startAgents();
}

/** The cluster's current version, for If-Match (the admin API's optimistic concurrency). */
async function versionOf(name: string): Promise<string> {
  const r = await api('GET', `/api/v1/clusters/${name}`, adminToken);
  assert.equal(r.status, 200, r.body);
  return `"${(JSON.parse(r.body) as { version: number }).version}"`;
}

async function api(method: string, path: string, token: string, body?: unknown, ifMatch?: string) {
  return new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      `${stack.publicUrl}${path}`,
      {
        method,
        ca,
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          ...(ifMatch ? { 'if-match': ifMatch } : {}),
          ...(payload
            ? {
                'content-type': 'application/merge-patch+json',
                'content-length': Buffer.byteLength(payload),
              }
            : {}),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: text,
            type: String(res.headers['content-type'] ?? ''),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

describe('revoked agent: revocation, renewal and cluster removal end every tunnel', () => {
  before(async () => {
    stack = await startStack({ log, agentEnv: { KUBEGATE_RECONNECT_MAX: '1s' } });
    replica = await stack.startReplica();
    // A second agent process for the same cluster dials the second replica,
    // so each replica holds its own tunnels of dev.
    await stack.startAgent('dev', replica.env.KUBEGATE_TUNNEL_ADDRESS);
    await bothUp();
    // By label, not by name: a binding naming the cluster would block its deletion.
    await grant(stack, {
      groups: ['ops'],
      role: 'cluster-admin',
      selector: { matchLabels: { env: 'dev' } },
    });
    kcMain = await stack.kubeconfig('alice', ['ops']);
    ca = Buffer.from(
      /certificate-authority-data: (\S+)/.exec(readFileSync(kcMain, 'utf8'))![1]!,
      'base64',
    ).toString('utf8');
    userToken = /token: (\S+)/.exec(readFileSync(kcMain, 'utf8'))![1]!;
    kcReplica = join(stack.dir, 'kubeconfig-replica');
    writeFileSync(
      kcReplica,
      readFileSync(kcMain, 'utf8').replaceAll(stack.publicUrl, replica.publicUrl),
    );
    adminToken = (
      await stack.admin(['token', 'create', '--user', 'root', '--group', 'kubegate-admins'])
    ).trim();
    await assertWorks();
  });

  after(async () => {
    if (closeTimes.length)
      log(
        `tunnel close after commit (ms): ${closeTimes.map((c) => `${c.what}/${c.replica}=${c.ms}`).join(', ')}`,
      );
    await stack?.stop();
  });

  test('revoke-agent: tunnels on both replicas close within 1 s; kubectl gets 503 offline; the old certificate, a renewal with it and an older bootstrap token are refused', async () => {
    const oldId = await storedIdentity();
    const olderToken = await newBootstrapToken(); // minted before the revocation, never used
    const closed = closedOnBoth(/agent revoked/);
    const refused = proxies().map((p) =>
      nextLine(
        p.proc,
        /is revoked, unknown or its cluster is disabled.*"msg":"tunnel refused"/,
        20_000,
      ),
    );
    const out = await stack.admin(['cluster', 'revoke-agent', 'dev']);
    assert.match(out, /^dev\trevoked [1-9]\d* certificate\(s\)\tvoided 1 bootstrap token\(s\)/);
    const [row] = await stack.sql<{ at: Date }>(
      `SELECT max(revoked_at) AS at FROM agent_certs WHERE revoke_reason = 'revoked'`,
    );
    await closed.measure(row!.at.getTime(), 'revoke-agent');
    await assertOffline();

    // The agents redial (back-off at most 1 s) with the revoked certificate: refused on both replicas.
    await Promise.all(refused);
    await sleep(2000);
    assert.deepEqual(await holders(), [], 'no tunnel came back');
    assert.equal(await tunnelAccepted(oldId), false, 'a tunnel with the revoked certificate');
    const r = await renew(oldId);
    assert.equal(r.status, 401, `renewal with the revoked certificate: ${r.body}`);
    const pair = await generateKeyPair();
    const e = await agentPost(stack.env.KUBEGATE_ENROLL_LISTEN!, '/enroll/v1', {
      cluster: 'dev',
      token: olderToken,
      csr: await createCsr('dev', pair),
    });
    assert.equal(e.status, 401, `a bootstrap token minted before the revocation: ${e.body}`);

    const events = await stack.sql<{ username: string; verb: string; name: string }>(
      `SELECT username, verb, name FROM audit_events
        WHERE source = 'admin' AND resource = 'agentcertificates'`,
    );
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0]!.verb, 'revoke');
    assert.equal(events[0]!.name, 'dev');
    assert.match(events[0]!.username, /^cli:/);
  });

  test('after a revocation only a new bootstrap token brings the agent back', async () => {
    await reEnroll();
    await assertWorks();
  });

  test('renewal supersedes the previous serial: it can neither renew again nor open a tunnel', async () => {
    const s1 = await storedIdentity();
    assert.equal(await tunnelAccepted(s1), true, 'control: the current certificate opens a tunnel');
    const first = await renew(s1);
    assert.equal(first.status, 200, first.body);
    const s2 = {
      cert: (JSON.parse(first.body) as { certificate: string }).certificate,
      key: first.keyPem,
    };
    const again = await renew(s1);
    assert.equal(again.status, 401, `the superseded certificate renewed again: ${again.body}`);
    assert.equal(await tunnelAccepted(s1), false, 'the superseded certificate opened a tunnel');
    assert.equal(await tunnelAccepted(s2), true, 'the renewed certificate opens a tunnel');
    // Tunnels the superseded certificate opened earlier keep running (until it expires).
    await assertWorks();
    // Hand the renewed identity to the agents, as their own renewal would.
    await stopAgents();
    await storeIdentity(s2);
    await startAgents();
    await assertWorks();
  });

  test('disabling the cluster closes its tunnels on both replicas within 1 s', async () => {
    const etag = await versionOf('dev');
    const version = Number(JSON.parse(etag));
    const closed = closedOnBoth(/cluster disabled/);
    const r = await api('PATCH', '/api/v1/clusters/dev', adminToken, { disabled: true }, etag);
    assert.equal(r.status, 200, r.body);
    const [row] = await stack.sql<{ at: Date }>(
      `SELECT updated_at AS at FROM clusters WHERE name = 'dev'`,
    );
    await closed.measure(row!.at.getTime(), 'disable');
    assert.equal((JSON.parse(r.body) as { version: number }).version, version + 1);
    await sleep(2000);
    assert.deepEqual(await holders(), [], 'a disabled cluster gets no tunnel back');
    const en = await api(
      'PATCH',
      '/api/v1/clusters/dev',
      adminToken,
      { disabled: false },
      await versionOf('dev'),
    );
    assert.equal(en.status, 200, en.body);
    await bothUp();
    await assertWorks();
  });

  test('REST revoke-agent: admins only, problem JSON, and it closes the tunnels on both replicas', async () => {
    const user = await api('POST', '/api/v1/clusters/dev/revoke-agent', userToken);
    assert.equal(user.status, 403, user.body);
    assert.match(user.type, /application\/problem\+json/);
    const missing = await api('POST', '/api/v1/clusters/nope/revoke-agent', adminToken);
    assert.equal(missing.status, 404, missing.body);
    assert.match(missing.type, /application\/problem\+json/);
    assert.deepEqual((await holders()).length, 2, 'refused calls closed nothing');

    const closed = closedOnBoth(/agent revoked/);
    const r = await api('POST', '/api/v1/clusters/dev/revoke-agent', adminToken);
    assert.equal(r.status, 200, r.body);
    const body = JSON.parse(r.body) as {
      revokedCertificates: number;
      revokedAt: string;
      next: string;
    };
    assert.ok(body.revokedCertificates >= 1);
    assert.match(body.next, /kubegate admin cluster bootstrap dev/);
    await closed.measure(Date.parse(body.revokedAt), 'REST revoke-agent');
    const [ev] = await stack.sql<{ username: string }>(
      `SELECT username FROM audit_events WHERE source = 'admin' AND resource = 'agentcertificates'
        ORDER BY received_at DESC LIMIT 1`,
    );
    assert.equal(ev!.username, 'root');
    await reEnroll();
  });

  test('deleting the cluster closes its tunnels on both replicas within 1 s', async () => {
    const closed = closedOnBoth(/cluster deleted/);
    const t0 = Date.now();
    const r = await api(
      'DELETE',
      '/api/v1/clusters/dev',
      adminToken,
      undefined,
      await versionOf('dev'),
    );
    assert.equal(r.status, 204, r.body);
    const [row] = await stack.sql<{ at: Date }>(
      `SELECT max(at) AS at FROM admin_changes WHERE kind = 'cluster' AND action = 'delete'`,
    );
    await closed.measure(row?.at ? row.at.getTime() : t0, 'delete');
    await sleep(2000);
    assert.deepEqual(await holders(), [], 'a deleted cluster gets no tunnel back');
  });
});
