/**
 * Audit end to end: a scripted kubectl session through the real stack (gets,
 * lists, a watch, apply of a Secret twice, a delete, logs -f, exec, a denied
 * request, a bad token). kubectl -v=8 prints the `Audit-Id` of every response;
 * each must have exactly one ResponseComplete event in the database, with the
 * right user, cluster, verb and objectRef, valid against audit.k8s.io/v1, and
 * no event may exist that kubectl did not cause. The same events reach a
 * webhook receiver and the REST API (users see their own, admins all). The
 * audit policy keeps Secret bodies (RequestResponse), so redaction is what
 * stands between the Secret's value and the log: a search for the value and
 * for the tokens through every table of the database and the proxy and agent
 * logs finds nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet } from '../support/http.js';
import type { AuditEvent } from '../../proxy/audit/event.js';
import { kubeEventProblems } from '../../proxy/audit/event-shape.js';
import { run as kubegate } from '../../proxy/cli/main.js';

const ns = 'audit-e2e';
const secretOne = `s1-${randomBytes(12).toString('hex')}`;
const secretTwo = `s2-${randomBytes(12).toString('hex')}`;
const badToken = `kg_${randomBytes(32).toString('base64url')}`;

let stack: Stack;
let erin: string;
let erinToken: string;
let adminToken: string;
let ca: string;
let spoolDir: string;
let webhook: Server;
const delivered: Record<string, unknown>[] = [];

/** Every Audit-Id kubectl -v=8 printed, in order. */
function auditIds(stderr: string): string[] {
  return [...stderr.matchAll(/^\s*Audit-Id: ([0-9a-f-]{36})\s*$/gm)].map((m) => m[1]!);
}

interface Step {
  name: string;
  ids: string[];
  code: number | null;
  /** When kubectl ran: events kubectl did not print are attributed by time. */
  from: number;
  to: number;
}
const steps: Step[] = [];

async function run(name: string, args: string[], kubeconfig: string, timeoutMs = 60_000) {
  const from = Date.now();
  const r = await kubectl(['-v=8', ...args], { kubeconfig, timeoutMs });
  const step = { name, ids: auditIds(r.stderr), code: r.code, from, to: Date.now() };
  steps.push(step);
  return { ...r, ...step };
}

async function events(where: string, values: unknown[] = []): Promise<AuditEvent[]> {
  const rows = await stack.sql<{ event: AuditEvent }>(
    `SELECT event FROM audit_events WHERE ${where} ORDER BY received_at, stage`,
    values,
  );
  return rows.map((r) => r.event);
}

async function completeOf(id: string): Promise<AuditEvent> {
  const evs = await events(`audit_id = $1::uuid AND stage = 'ResponseComplete'`, [id]);
  assert.equal(evs.length, 1, `exactly one ResponseComplete for ${id}`);
  return evs[0]!;
}

function secretYaml(value: string): string {
  return `apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: ${ns}\ntype: Opaque\nstringData:\n  password: ${value}\n`;
}

describe('audit end to end', { timeout: 900_000 }, () => {
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-audit-e2e-'));
    spoolDir = join(dir, 'spool');
    const policy = join(dir, 'policy.yaml');
    writeFileSync(
      policy,
      [
        'apiVersion: audit.k8s.io/v1',
        'kind: Policy',
        'rules:',
        '- level: RequestResponse',
        '  clusters: [dev]',
        '  resources:',
        '  - group: ""',
        '    resources: [secrets, configmaps]',
        '',
      ].join('\n'),
    );
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        delivered.push(...(JSON.parse(body) as { items: Record<string, unknown>[] }).items);
        res.end();
      });
    });
    await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
    const wa = webhook.address();
    stack = await startStack({
      log: (m) => process.stderr.write(`# ${m}\n`),
      proxyEnv: {
        KUBEGATE_LOG_LEVEL: 'debug',
        KUBEGATE_AUDIT_POLICY_FILE: policy,
        KUBEGATE_AUDIT_SPOOL_DIR: spoolDir,
        KUBEGATE_AUDIT_WEBHOOK_URL: `http://127.0.0.1:${typeof wa === 'object' && wa ? wa.port : 0}/siem`,
      },
    });
    await kubectlOk(['create', 'namespace', ns], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, { users: ['erin'], role: 'edit', clusters: ['dev'], namespaces: [ns] });
    erin = await stack.kubeconfig('erin', ['staff']);
    const text = readFileSync(erin, 'utf8');
    erinToken = /token: (kg_\S+)/.exec(text)![1]!;
    ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(text)![1]!, 'base64').toString();
    const admin = await stack.kubeconfig('root', ['kubegate-admins']);
    adminToken = /token: (kg_\S+)/.exec(readFileSync(admin, 'utf8'))![1]!;
  });
  after(async () => {
    await stack?.stop();
    await new Promise<void>((r) => (webhook ? webhook.close(() => r()) : r()));
    if (spoolDir) rmSync(join(spoolDir, '..'), { recursive: true, force: true });
  });

  test('a scripted kubectl session: one ResponseComplete per HTTP request, correct and complete', async () => {
    const k = erin;
    const started = new Date();
    const list = await run('list pods', ['-n', ns, 'get', 'pods'], k);
    assert.equal(list.code, 0);
    const missing = await run('get missing', ['-n', ns, 'get', 'configmap', 'nope'], k);
    assert.equal(missing.code, 1);
    assert.equal(
      (await run('create cm', ['-n', ns, 'create', 'configmap', 'cm1', '--from-literal=k=v'], k))
        .code,
      0,
    );
    const file = join(stack.dir, 'secret.yaml');
    writeFileSync(file, secretYaml(secretOne));
    assert.equal((await run('apply secret', ['apply', '-f', file], k)).code, 0);
    writeFileSync(file, secretYaml(secretTwo));
    assert.equal((await run('re-apply secret', ['apply', '-f', file], k)).code, 0);
    assert.equal(
      (await run('get secret', ['-n', ns, 'get', 'secret', 'creds', '-o', 'yaml'], k)).code,
      0,
    );
    const watch = await run('watch', ['-n', ns, 'get', 'configmaps', '--watch'], k, 4000);
    assert.ok(watch.ids.length >= 1, 'the watch was answered');
    assert.equal((await run('delete cm', ['-n', ns, 'delete', 'configmap', 'cm1'], k)).code, 0);
    assert.equal(
      (await run('run pod', ['-n', ns, 'run', 'p1', '--image=busybox', '--restart=Never'], k)).code,
      0,
    );
    await run('logs -f', ['-n', ns, 'logs', '-f', 'p1'], k, 20_000);
    await run(
      'exec',
      ['-n', ns, 'exec', 'p1', '-c', 'p1', '--', 'cat', '/etc/hostname'],
      k,
      20_000,
    );
    const denied = await run('denied', ['-n', 'kube-system', 'get', 'pods'], k);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /Forbidden/);
    const bad = join(stack.dir, 'bad-kubeconfig');
    writeFileSync(bad, readFileSync(k, 'utf8').replace(erinToken, badToken));
    const unauth = await run('bad token', ['-n', ns, 'get', 'pods'], bad);
    assert.equal(unauth.code, 1);
    assert.match(unauth.stderr, /Unauthorized|logged in/);

    // Let the writer flush (~200 ms batches).
    await new Promise((r) => setTimeout(r, 1500));
    // kubectl answers some requests from its HTTP cache (OpenAPI documents),
    // printing the cached response with its old Audit-Id: no request reached
    // kubegate then, so an ID seen twice is one request.
    const all = [...new Set(steps.flatMap((s) => s.ids))];
    assert.ok(all.length >= 15, `${all.length} requests`);
    for (const s of steps)
      if (s.name !== 'exec') assert.ok(s.ids.length > 0, `${s.name}: no Audit-Id seen`);
    const byId = new Map<string, AuditEvent>();
    for (const id of all) byId.set(id, await completeOf(id));
    for (const e of byId.values()) {
      assert.deepEqual(kubeEventProblems(e, true), [], JSON.stringify(e));
      assert.equal(e.cluster, 'dev');
    }

    // Nothing kubectl did not cause: every event of the session is a printed
    // Audit-Id, except during `kubectl exec`, whose requests (the pod lookup,
    // the exec stream) -v=8 does not print; those are matched by time.
    const session = await events(
      `received_at >= $1 AND username IN ('erin', '') AND source = 'kube' AND stage = 'ResponseComplete'`,
      [started],
    );
    const exec = steps.find((x) => x.name === 'exec')!;
    const unprinted = session.filter((e) => !byId.has(e.auditID));
    const inExec = (e: AuditEvent) => {
      const t = Date.parse(e.requestReceivedTimestamp);
      return t >= exec.from && t <= exec.to;
    };
    assert.deepEqual(
      unprinted.filter((e) => !inExec(e)).map((e) => e.requestURI),
      [],
      'events without a request',
    );
    assert.equal(session.length, all.length + unprinted.length);
    const upgrades = session.filter((e) => e.objectRef?.subresource === 'exec');

    const find = (step: string, pred: (e: AuditEvent) => boolean) => {
      const s = steps.find((x) => x.name === step)!;
      const hit = s.ids.map((id) => byId.get(id)!).find(pred);
      assert.ok(hit, `${step}: no matching event among ${s.ids.length}`);
      return hit;
    };
    const l = find('list pods', (e) => e.verb === 'list');
    assert.equal(l.user.username, 'erin');
    assert.deepEqual(l.user.groups, ['staff']);
    assert.deepEqual(l.objectRef, {
      resource: 'pods',
      namespace: ns,
      apiGroup: '',
      apiVersion: 'v1',
    });
    assert.equal(l.decision, 'allow');
    assert.match(l.impersonatedUser!.username, /^system:serviceaccount:kubegate-system:kg-u-/);
    assert.ok(l.bytesOut > 0 && l.durationMs >= 0, 'the streamed body was counted');
    const g = find('get missing', (e) => e.verb === 'get' && e.objectRef?.name === 'nope');
    assert.equal(g.responseStatus!.code, 404);
    assert.equal(g.decision, 'allow');
    const c = find('apply secret', (e) => e.verb === 'create');
    assert.deepEqual(c.objectRef, {
      resource: 'secrets',
      namespace: ns,
      name: 'creds',
      apiGroup: '',
      apiVersion: 'v1',
    });
    assert.equal(c.level, 'RequestResponse');
    assert.ok(c.bytesIn > 0, 'the request body was counted');
    assert.deepEqual((c.requestObject as { stringData: unknown }).stringData, {
      password: '[redacted]',
    });
    assert.ok(c.responseObject, 'the response body was kept, redacted');
    find('re-apply secret', (e) => e.verb === 'patch' && e.objectRef?.name === 'creds');
    const w = find('watch', (e) => e.verb === 'watch');
    const wStages = (await events(`audit_id = $1::uuid`, [w.auditID])).map((e) => e.stage);
    assert.deepEqual(wStages.sort(), ['ResponseComplete', 'ResponseStarted']);
    const d = find('delete cm', (e) => e.verb === 'delete');
    assert.equal(d.objectRef!.name, 'cm1');
    const lf = find('logs -f', (e) => e.objectRef?.subresource === 'log');
    assert.deepEqual(
      (await events(`audit_id = $1::uuid`, [lf.auditID])).map((e) => e.stage).sort(),
      ['ResponseComplete', 'ResponseStarted'],
    );
    assert.ok(upgrades.length >= 1, 'exec was recorded');
    for (const u of upgrades) {
      assert.ok(inExec(u));
      assert.equal(u.verb, 'create');
      assert.equal(u.annotations!['kubegate.dev/command'], '["cat","/etc/hostname"]');
      assert.equal(u.annotations!['kubegate.dev/container'], 'p1');
      await completeOf(u.auditID);
    }
    const den = find('denied', (e) => e.responseStatus?.code === 403);
    assert.equal(den.decision, 'deny');
    assert.equal(den.user.username, 'erin');
    assert.equal(den.objectRef!.namespace, 'kube-system');
    assert.equal(den.annotations!['authorization.k8s.io/decision'], 'forbid');
    assert.equal(den.impersonatedUser, undefined);
    assert.ok(den.bytesOut > 0, 'the Status body was counted');
    const un = find('bad token', (e) => e.responseStatus?.code === 401);
    assert.equal(un.decision, 'deny');
    assert.equal(un.user.username, '');
  });

  test('the same events reach the webhook, as strict audit.k8s.io/v1 events', async () => {
    const want = new Set(steps.flatMap((s) => s.ids));
    const seen = () =>
      new Set(
        delivered.filter((e) => e.stage === 'ResponseComplete').map((e) => e.auditID as string),
      );
    for (let i = 0; i < 100 && [...want].some((id) => !seen().has(id)); i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(
      [...want].filter((id) => !seen().has(id)),
      [],
    );
    for (const e of delivered) assert.deepEqual(kubeEventProblems(e), []);
    const complete = delivered.filter(
      (e) => e.stage === 'ResponseComplete' && want.has(e.auditID as string),
    );
    assert.equal(complete.length, want.size, 'each once');
  });

  test('the REST API: erin sees her own events, an admin sees everyone; the CLI lists them', async () => {
    const mine = await httpGet(
      `${stack.publicUrl}/api/v1/audit?limit=1000&stage=ResponseComplete`,
      {
        token: erinToken,
        ca,
      },
    );
    assert.equal(mine.status, 200, mine.body);
    const items = (JSON.parse(mine.body) as { items: AuditEvent[] }).items;
    assert.ok(items.length > 0 && items.every((e) => e.user.username === 'erin'));
    const all = await httpGet(`${stack.publicUrl}/api/v1/audit/export?cluster=dev&code=401`, {
      token: adminToken,
      ca,
    });
    assert.equal(all.status, 200);
    const lines = all.body
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEvent);
    const badIds = steps.find((s) => s.name === 'bad token')!.ids;
    assert.ok(
      badIds.every((id) => lines.some((e) => e.auditID === id)),
      'the 401s, seen by the admin',
    );
    const other = await httpGet(`${stack.publicUrl}/api/v1/audit?user=root`, {
      token: erinToken,
      ca,
    });
    assert.equal(other.status, 403);
    const out = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => (text += b.toString()));
    await kubegate(
      ['admin', 'audit', 'list', '--user', 'erin', '--verb', 'delete', '--since', '1h'],
      {
        stdout: out,
        stderr: new PassThrough(),
        env: { DATABASE_URL: stack.databaseUrl },
      },
    );
    assert.match(text, /erin\s+dev\s+delete\s+configmaps audit-e2e\/cm1\s+200\s+allow/);
  });

  test('admin actions are events in the same log: a kubeconfig issued by the CLI names its token, not the token', async () => {
    const rows = await stack.sql<{
      username: string;
      name: string;
      event: { requestObject: { tokenId: string } };
    }>(
      `SELECT username, name, event FROM audit_events WHERE verb = 'create' AND resource = 'kubeconfigs' AND source = 'admin'`,
    );
    const forErin = rows.filter((r) => r.name === 'erin');
    assert.equal(forErin.length, 1, 'the one kubeconfig the suite issued for erin');
    const tokenId = forErin[0]!.event.requestObject.tokenId;
    const [tok] = await stack.sql<{ subject: string }>(
      `SELECT subject FROM api_tokens WHERE id = $1`,
      [tokenId],
    );
    assert.equal(tok?.subject, 'erin');
    assert.match(forErin[0]!.username, /^cli:/);
  });

  test('no token and no Secret value anywhere in the database or the logs', async () => {
    // Stop the proxy first, so its logs are complete and the spool is flushed.
    await stack.proxy.stop();
    const needles = [
      secretOne,
      secretTwo,
      Buffer.from(secretOne).toString('base64'),
      Buffer.from(secretTwo).toString('base64'),
      erinToken,
      adminToken,
      badToken,
    ];
    const tables = await stack.sql<{ s: string; t: string }>(
      `SELECT table_schema AS s, table_name AS t FROM information_schema.tables
        WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`,
    );
    assert.ok(
      tables.some((t) => t.t.startsWith('audit_events_p')),
      'audit partitions are searched',
    );
    let dumped = 0;
    for (const { s, t } of tables) {
      const rows = await stack.sql<{ r: string }>(`SELECT x::text AS r FROM "${s}"."${t}" x`);
      for (const { r } of rows) {
        dumped += r.length;
        for (const n of needles)
          assert.ok(!r.includes(n), `${s}.${t} holds a secret: ${n.slice(0, 6)}…`);
      }
    }
    assert.ok(dumped > 10_000, `searched ${dumped} characters of the database`);
    const logs = [stack.proxy.output(), ...[...stack.agents.values()].map((a) => a.output())].join(
      '\n',
    );
    assert.ok(logs.length > 1000);
    for (const n of needles)
      assert.ok(!logs.includes(n), `the logs hold a secret: ${n.slice(0, 6)}…`);
    // The values were really sent: the cluster has them.
    const data = await kubectlOk(
      ['-n', ns, 'get', 'secret', 'creds', '-o', 'jsonpath={.data.password}'],
      {
        kubeconfig: stack.cluster.kubeconfig,
      },
    );
    assert.equal(Buffer.from(data, 'base64').toString(), secretTwo);
  });
});
