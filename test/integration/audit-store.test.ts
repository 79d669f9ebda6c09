/**
 * The audit table against a real PostgreSQL: batched inserts through the
 * writer (one INSERT per 500 events), idempotent replays, partitions created
 * on demand and ahead and dropped past the retention, strict-mode orphans
 * inserted only when nothing of their request is stored, admin actions in
 * the same log (the admin_changes trigger and recordAdminEvent, both
 * transactional), every filter and the cursor, the REST API (own events for
 * users, all for admins, NDJSON export), the CLI, and the webhook sink.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../common/log.js';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { TokenStore } from '../../proxy/authn/token-store.js';
import { insertEvents, insertOrphans } from '../../proxy/audit/store.js';
import { queryEvents, exportEvents, parseFilter } from '../../proxy/audit/query.js';
import { PartitionMaintainer } from '../../proxy/audit/partitions.js';
import { recordAdminEvent } from '../../proxy/audit/admin-events.js';
import { createAuditApiHandler } from '../../proxy/audit/api.js';
import { AuditWriter } from '../../proxy/audit/writer.js';
import { Spool } from '../../proxy/audit/spool.js';
import { IntentJournal } from '../../proxy/audit/intents.js';
import { WebhookSink } from '../../proxy/audit/webhook.js';
import { microTime, type AuditEvent } from '../../proxy/audit/event.js';
import { kubeEventProblems } from '../../proxy/audit/event-shape.js';
import { run as kubegate } from '../../proxy/cli/main.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';

const log = createLogger({ name: 'test', level: 'silent' });
let pg: PgServer;
let pool: Pool;
let databaseUrl: string;

function event(over: Partial<AuditEvent> & { at?: number } = {}): AuditEvent {
  const at = over.at ?? Date.now();
  const e: AuditEvent = {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: randomUUID(),
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/pods',
    verb: 'list',
    user: { username: 'alice', groups: ['dev'], extra: { 'kubegate.dev/kind': ['user'] } },
    sourceIPs: ['127.0.0.1'],
    userAgent: 'test',
    objectRef: { resource: 'pods', namespace: 'default', apiGroup: '', apiVersion: 'v1' },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: microTime(at),
    stageTimestamp: microTime(at + 1),
    annotations: {},
    source: 'kube',
    cluster: 'dev',
    replica: 'r1',
    decision: 'allow',
    reason: 'test',
    durationMs: 1,
    bytesIn: 0,
    bytesOut: 0,
  };
  delete (over as { at?: number }).at;
  return { ...e, ...over };
}

async function count(where = 'true', values: unknown[] = []): Promise<number> {
  const r = await pool.query<{ n: string }>(
    `SELECT count(*) AS n FROM audit_events WHERE ${where}`,
    values,
  );
  return Number(r.rows[0]!.n);
}

before(async () => {
  pg = await startPostgres();
  databaseUrl = await createDatabase(pg);
  pool = createPool({ url: databaseUrl });
  await migrate(pool);
});

after(async () => {
  await pool?.end();
  await pg?.stop();
});

describe('storage', () => {
  test('a batch is one statement; a replay of stored events inserts nothing', async () => {
    const evs = Array.from({ length: 300 }, () => event({ cluster: 'batch' }));
    assert.equal(await insertEvents(pool, evs), 300);
    assert.equal(await insertEvents(pool, evs), 0);
    assert.equal(await count('cluster = $1', ['batch']), 300);
    // The stored event is the event.
    const r = await pool.query<{ event: AuditEvent }>(
      'SELECT event FROM audit_events WHERE audit_id = $1',
      [evs[7]!.auditID],
    );
    assert.deepEqual(r.rows[0]!.event, evs[7]);
  });

  test('the writer batches: 2,000 events in at most 5 INSERTs', async () => {
    const d = mkdtempSync(join(tmpdir(), 'kg-writer-'));
    let calls = 0;
    const writer = new AuditWriter({
      insert: (e) => {
        calls++;
        return insertEvents(pool, e);
      },
      insertOrphans: (e) => insertOrphans(pool, e),
      spool: await Spool.open(join(d, 'events')),
      intents: await IntentJournal.open(join(d, 'intents')),
      log,
    });
    for (let i = 0; i < 2000; i++) writer.enqueue(event({ cluster: 'writer' }));
    await writer.flush();
    assert.ok(calls <= 5, `${calls} inserts`);
    assert.equal(await count('cluster = $1', ['writer']), 2000);
    // A lone event is flushed by the timer, without anyone calling flush.
    writer.start();
    const lone = event({ cluster: 'lone' });
    writer.enqueue(lone);
    for (let i = 0; i < 100 && (await count('cluster = $1', ['lone'])) === 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    writer.stop();
    assert.equal(await count('cluster = $1', ['lone']), 1);
  });

  test('partitions: made on demand for any day, made ahead, dropped after the retention', async () => {
    const day = 86_400_000;
    const old = event({ at: Date.now() - 100 * day, cluster: 'old' });
    assert.equal(
      await insertEvents(pool, [old]),
      1,
      'an event from 100 days ago gets its partition',
    );
    const m = new PartitionMaintainer(pool, { retentionMs: 30 * day, aheadDays: 5, log });
    const { dropped } = await m.run();
    assert.equal(dropped.length, 1);
    assert.equal(await count('cluster = $1', ['old']), 0);
    const parts = await pool.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'audit_events'::regclass ORDER BY 1`,
    );
    const ahead = new Date(Date.now() + 5 * day).toISOString().slice(0, 10).replace(/-/g, '');
    assert.ok(
      parts.rows.some((r) => r.name === `audit_events_p${ahead}`),
      'five days ahead',
    );
    assert.equal(await count('cluster = $1', ['batch']), 300, 'recent partitions are kept');
  });

  test('a runtime role without CREATE still gets partitions made and dropped', async () => {
    const day = 86_400_000;
    const pw = randomUUID();
    await pool.query(`CREATE ROLE kg_runtime LOGIN PASSWORD '${pw}'`);
    await pool.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    await pool.query('GRANT USAGE ON SCHEMA public TO kg_runtime');
    await pool.query('GRANT SELECT, INSERT ON audit_events TO kg_runtime');
    const url = new URL(databaseUrl);
    url.username = 'kg_runtime';
    url.password = pw;
    const rt = createPool({ url: url.toString() });
    try {
      await assert.rejects(rt.query('CREATE TABLE nope (x int)'), /permission denied/);
      const far = event({ at: Date.now() + 20 * day, cluster: 'runtime' });
      const old = event({ at: Date.now() - 200 * day, cluster: 'runtime' });
      assert.equal(await insertEvents(rt, [far, old]), 2, 'partitions made on demand');
      const m = new PartitionMaintainer(rt, { retentionMs: 150 * day, log });
      const { dropped } = await m.run();
      assert.equal(dropped.length, 1);
      assert.equal(await count('cluster = $1', ['runtime']), 1);
    } finally {
      await rt.end();
    }
  });

  test('strict-mode orphans are inserted only when nothing of their request is stored', async () => {
    const done = event({ cluster: 'orphans' });
    await insertEvents(pool, [done]);
    const intentOfDone = { ...done, stage: 'RequestReceived' as const, responseStatus: undefined };
    const lost = event({ cluster: 'orphans', stage: 'RequestReceived', responseStatus: undefined });
    assert.equal(await insertOrphans(pool, [intentOfDone, lost]), 1);
    const r = await pool.query<{ stage: string; event: AuditEvent }>(
      `SELECT stage, event FROM audit_events WHERE cluster = 'orphans' ORDER BY stage`,
    );
    assert.deepEqual(
      r.rows.map((x) => x.stage),
      ['RequestReceived', 'ResponseComplete'],
    );
    assert.match(r.rows[0]!.event.annotations!['kubegate.dev/incomplete']!, /forwarded/);
    assert.equal(await insertOrphans(pool, [lost]), 0, 'and only once');
  });

  test('a row the database refuses is quarantined, the rest of its batch is stored', async () => {
    const d = mkdtempSync(join(tmpdir(), 'kg-quarantine-'));
    const writer = new AuditWriter({
      insert: (e) => insertEvents(pool, e),
      insertOrphans: (e) => insertOrphans(pool, e),
      spool: await Spool.open(join(d, 'events')),
      intents: await IntentJournal.open(join(d, 'intents')),
      log,
    });
    writer.enqueue(event({ cluster: 'poison' }));
    writer.enqueue({ ...event({ cluster: 'poison' }), auditID: 'not-a-uuid' });
    writer.enqueue(event({ cluster: 'poison' }));
    await writer.flush();
    assert.equal(await count('cluster = $1', ['poison']), 2);
    assert.equal(writer.stats().quarantined, 1);
    assert.equal(writer.stats().databaseDown, false);
  });
});

describe('admin actions', () => {
  test('an admin_changes row is an audit event in the same transaction', async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO admin_changes (actor, action, kind, name, before, after) VALUES ('user:root', 'create', 'role', 'gone', NULL, '{"rules":[]}')`,
      );
      await client.query('ROLLBACK');
      await client.query(
        `INSERT INTO admin_changes (actor, action, kind, name, before, after) VALUES ('user:root', 'update', 'cluster', 'prod', '{"labels":{}}', '{"labels":{"env":"prod"}}')`,
      );
    } finally {
      client.release();
    }
    assert.equal(
      await count(`source = 'admin' AND name = 'gone'`),
      0,
      'rolled back with its change',
    );
    const r = await pool.query<{ event: AuditEvent }>(
      `SELECT event FROM audit_events WHERE source = 'admin' AND name = 'prod'`,
    );
    const e = r.rows[0]!.event;
    assert.deepEqual(kubeEventProblems(e, true), []);
    assert.equal(e.verb, 'update');
    assert.equal(e.user.username, 'root');
    assert.equal(e.cluster, 'prod');
    assert.deepEqual(e.objectRef, {
      apiGroup: 'kubegate.dev',
      apiVersion: 'v1',
      resource: 'clusters',
      name: 'prod',
    });
    assert.deepEqual((e.requestObject as { after: unknown }).after, { labels: { env: 'prod' } });
  });

  test('recordAdminEvent: logins, downloads, refusals; detail redacted', async () => {
    await recordAdminEvent(pool, {
      actor: 'user:bob',
      verb: 'download',
      resource: 'kubeconfigs',
      name: '',
      detail: {
        clusters: ['dev'],
        token: { kind: 'TokenRequest', status: { token: 'kg_' + 'z'.repeat(43) } },
      },
      sourceIp: '10.0.0.9',
      userAgent: 'Mozilla/5.0',
    });
    await recordAdminEvent(pool, {
      actor: 'user:mallory',
      verb: 'login',
      resource: 'logins',
      code: 403,
    });
    const r = await pool.query<{ event: AuditEvent; decision: string }>(
      `SELECT event, decision FROM audit_events WHERE source = 'admin' AND resource IN ('kubeconfigs', 'logins') ORDER BY resource`,
    );
    assert.equal(r.rows.length, 2);
    assert.ok(!JSON.stringify(r.rows).includes('z'.repeat(43)));
    assert.deepEqual(r.rows[0]!.event.sourceIPs, ['10.0.0.9']);
    assert.equal(r.rows[1]!.decision, 'deny');
    for (const row of r.rows) assert.deepEqual(kubeEventProblems(row.event, true), []);
  });
});

describe('queries', () => {
  const base = Date.now() - 3_600_000;
  const seeded: AuditEvent[] = [];
  before(async () => {
    const users = ['ann', 'ben', 'cat'];
    for (let i = 0; i < 60; i++) {
      seeded.push(
        event({
          at: base + i * 1000,
          user: {
            username: users[i % 3]!,
            groups: i % 2 ? ['ops'] : ['dev'],
            extra: { 'kubegate.dev/kind': ['user'] },
          },
          cluster: i % 4 === 0 ? 'prod' : 'stage',
          verb: i % 5 === 0 ? 'delete' : 'get',
          objectRef:
            i % 6 === 0
              ? {
                  resource: 'deployments',
                  apiGroup: 'apps',
                  namespace: 'web',
                  name: 'x',
                  apiVersion: 'v1',
                  subresource: 'scale',
                }
              : {
                  resource: 'pods',
                  apiGroup: '',
                  namespace: i % 2 ? 'web' : 'db',
                  apiVersion: 'v1',
                },
          responseStatus: { metadata: {}, code: i % 7 === 0 ? 403 : 200 },
          decision: i % 7 === 0 ? 'deny' : 'allow',
          stage: i % 10 === 9 ? 'ResponseStarted' : 'ResponseComplete',
        }),
      );
    }
    await insertEvents(pool, seeded);
  });

  const window = () => ({ from: new Date(base - 1), to: new Date(base + 61_000) });
  const expect = (pred: (e: AuditEvent) => boolean) =>
    seeded
      .filter(pred)
      .map((e) => e.auditID + e.stage)
      .sort();
  const got = async (f: Parameters<typeof queryEvents>[1]) =>
    (await queryEvents(pool, { ...window(), ...f }, { limit: 1000 })).items
      .map((e) => e.auditID + e.stage)
      .sort();

  test('every filter selects exactly what it names', async () => {
    assert.deepEqual(
      await got({ user: 'ann' }),
      expect((e) => e.user.username === 'ann'),
    );
    assert.deepEqual(
      await got({ group: 'ops' }),
      expect((e) => e.user.groups!.includes('ops')),
    );
    assert.deepEqual(
      await got({ cluster: 'prod' }),
      expect((e) => e.cluster === 'prod'),
    );
    assert.deepEqual(
      await got({ namespace: 'db' }),
      expect((e) => e.objectRef!.namespace === 'db'),
    );
    assert.deepEqual(
      await got({ resource: 'deployments.apps/scale' }),
      expect((e) => e.objectRef!.resource === 'deployments'),
    );
    assert.deepEqual(
      await got({ resource: 'pods' }),
      expect((e) => e.objectRef!.resource === 'pods'),
    );
    assert.deepEqual(
      await got({ verb: 'delete' }),
      expect((e) => e.verb === 'delete'),
    );
    assert.deepEqual(
      await got({ decision: 'deny' }),
      expect((e) => e.decision === 'deny'),
    );
    assert.deepEqual(
      await got({ code: '4xx' }),
      expect((e) => e.responseStatus!.code === 403),
    );
    assert.deepEqual(
      await got({ code: '200' }),
      expect((e) => e.responseStatus!.code === 200),
    );
    assert.deepEqual(
      await got({ stage: 'ResponseStarted' }),
      expect((e) => e.stage === 'ResponseStarted'),
    );
    assert.deepEqual(
      await got({ auditId: seeded[3]!.auditID }),
      expect((e) => e === seeded[3]),
    );
    assert.deepEqual(
      await got({ user: 'ben', cluster: 'stage', verb: 'get' }),
      expect((e) => e.user.username === 'ben' && e.cluster === 'stage' && e.verb === 'get'),
    );
    assert.deepEqual(
      await got({ from: new Date(base + 10_000), to: new Date(base + 20_000) }),
      expect(
        (e) =>
          Date.parse(e.requestReceivedTimestamp) >= base + 10_000 &&
          Date.parse(e.requestReceivedTimestamp) < base + 20_000,
      ),
    );
  });

  test('the cursor walks every event once, newest first', async () => {
    const seen: AuditEvent[] = [];
    let cont: string | undefined;
    do {
      const page = await queryEvents(pool, window(), { limit: 7, continue: cont });
      seen.push(...page.items);
      cont = page.continue;
    } while (cont);
    assert.equal(seen.length, 60);
    assert.equal(new Set(seen.map((e) => e.auditID)).size, 60);
    const times = seen.map((e) => Date.parse(e.requestReceivedTimestamp));
    assert.deepEqual(
      times,
      [...times].sort((a, b) => b - a),
    );
    let exported = 0;
    for await (const page of exportEvents(pool, window(), 11)) exported += page.length;
    assert.equal(exported, 60);
    assert.throws(
      () => parseFilter((n) => ({ code: '6xx', decision: 'maybe', since: 'yesterday' })[n]),
      (err: Error) => ['code', 'decision', 'since'].every((k) => err.message.includes(k)),
    );
    await assert.rejects(queryEvents(pool, {}, { continue: 'bm9wZQ' }), /continue token/);
  });
});

describe('REST API and CLI', () => {
  let server: Server;
  let base: string;
  let adminToken: string;
  let userToken: string;
  const mine = Array.from({ length: 3 }, () =>
    event({
      user: { username: 'dora', groups: ['dev'], extra: { 'kubegate.dev/kind': ['user'] } },
      cluster: 'api',
    }),
  );
  const robotSameName = event({
    user: { username: 'dora', groups: [], extra: { 'kubegate.dev/kind': ['robot'] } },
    cluster: 'api',
  });
  const others = Array.from({ length: 4 }, () => event({ cluster: 'api' }));

  before(async () => {
    const tokens = new TokenStore(pool);
    adminToken = (
      await tokens.create({ subject: 'root', kind: 'user', groups: ['kg-admins'], ttlMs: 600_000 })
    ).token;
    userToken = (
      await tokens.create({ subject: 'dora', kind: 'user', groups: ['dev'], ttlMs: 600_000 })
    ).token;
    await insertEvents(pool, [...mine, robotSameName, ...others]);
    const handler = createAuditApiHandler({ pool, tokens, adminGroups: ['kg-admins'], log });
    server = createServer((req, res) => {
      if (!handler(req, res)) {
        res.writeHead(418);
        res.end('not mine');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const a = server.address();
    base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const get = async (path: string, token?: string) => {
    const res = await fetch(base + path, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    return {
      status: res.status,
      type: res.headers.get('content-type') ?? '',
      text: await res.text(),
      headers: res.headers,
    };
  };

  test('admins see every event; users only their own', async () => {
    const all = JSON.parse((await get('/api/v1/audit?cluster=api&limit=50', adminToken)).text) as {
      items: AuditEvent[];
    };
    assert.equal(all.items.length, 8);
    const own = await get('/api/v1/audit?cluster=api', userToken);
    assert.equal(own.status, 200);
    const ids = (JSON.parse(own.text) as { items: AuditEvent[] }).items
      .map((e) => e.auditID)
      .sort();
    assert.deepEqual(
      ids,
      mine.map((e) => e.auditID).sort(),
      'not the robot of the same name, not others',
    );
    const other = await get('/api/v1/audit?user=root', userToken);
    assert.equal(other.status, 403);
    assert.match(other.type, /problem\+json/);
  });

  test('errors are problem JSON: 401, 400, 405; other paths are not taken', async () => {
    const no = await get('/api/v1/audit');
    assert.equal(no.status, 401);
    assert.match(no.type, /problem\+json/);
    assert.match(no.headers.get('www-authenticate') ?? '', /Bearer/);
    const bad = await get('/api/v1/audit?code=abc&verbs=get', adminToken);
    assert.equal(bad.status, 400);
    assert.match(bad.text, /verbs/);
    const post = await fetch(base + '/api/v1/audit', {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}` },
    });
    assert.equal(post.status, 405);
    assert.equal((await get('/api/v1/auditx', adminToken)).status, 418);
    assert.equal((await get('/api/v1/roles', adminToken)).status, 418);
  });

  test('export: NDJSON of every match, also as strict audit.k8s.io/v1', async () => {
    const r = await get('/api/v1/audit/export?cluster=api', adminToken);
    assert.equal(r.status, 200);
    assert.match(r.type, /application\/x-ndjson/);
    const lines = r.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEvent);
    assert.equal(lines.length, 8);
    const k = await get('/api/v1/audit/export?cluster=api&format=kube', userToken);
    const strict = k.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(strict.length, 3);
    for (const e of strict) assert.deepEqual(kubeEventProblems(e), []);
  });

  test('kubegate admin audit list and export', async () => {
    const out = new PassThrough();
    const err = new PassThrough();
    let text = '';
    out.on('data', (b: Buffer) => (text += b.toString()));
    const env = { DATABASE_URL: databaseUrl };
    await kubegate(
      ['admin', 'audit', 'list', '--cluster', 'api', '--user', 'dora', '--since', '1h'],
      {
        stdout: out,
        stderr: err,
        env,
      },
    );
    const rows = text.trim().split('\n');
    assert.match(rows[0]!, /^TIME\s+USER\s+CLUSTER/);
    assert.equal(rows.length, 1 + 4);
    text = '';
    await kubegate(['admin', 'audit', 'export', '--cluster', 'api', '--format', 'kube'], {
      stdout: out,
      stderr: err,
      env,
    });
    assert.equal(text.trim().split('\n').length, 8);
    await assert.rejects(
      kubegate(['admin', 'audit', 'list', '--bogus', 'x'], { stdout: out, stderr: err, env }),
      /--bogus/,
    );
  });
});

describe('webhook sink', () => {
  test('retries until the receiver takes the batch; each event arrives once, in order', async () => {
    let calls = 0;
    const got: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        calls++;
        if (calls <= 2) {
          res.writeHead(503);
          res.end();
          return;
        }
        const list = JSON.parse(body) as {
          kind: string;
          apiVersion: string;
          items: Record<string, unknown>[];
        };
        assert.equal(list.kind, 'EventList');
        assert.equal(list.apiVersion, 'audit.k8s.io/v1');
        for (const e of list.items) {
          assert.deepEqual(kubeEventProblems(e), []);
          got.push(e.auditID as string);
        }
        res.writeHead(200);
        res.end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const a = receiver.address();
    const sink = new WebhookSink({
      url: `http://user:pw@127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/audit`,
      log,
      batchMax: 10,
      maxBackoffMs: 50,
    });
    assert.ok(!sink.target.includes('pw'));
    const evs = Array.from({ length: 25 }, () => event());
    sink.push(evs.slice(0, 12));
    sink.push(evs.slice(12));
    for (let i = 0; i < 200 && got.length < 25; i++) await new Promise((r) => setTimeout(r, 25));
    await sink.close();
    await new Promise<void>((r) => receiver.close(() => r()));
    assert.deepEqual(
      got,
      evs.map((e) => e.auditID),
    );
    assert.equal(sink.failures, 2);
    assert.equal(sink.dropped, 0);
  });
});
