/**
 * Nothing lost, nothing twice, against a real PostgreSQL and a real disk:
 *
 * - PostgreSQL stopped in the middle of a burst and started again: every
 *   event arrives exactly once (spooled, then replayed, with no restart).
 * - A crash between "inserted" and "spool segment deleted": the replay
 *   inserts nothing twice.
 * - Spool full: new requests get 503 (through the real request pipeline),
 *   and are served again once the database is back.
 * - Strict mode and `kill -9`: a child process forwards requests, each to an
 *   upstream that records the Audit-Id it received, and is SIGKILLed mid-
 *   burst; after recovery every forwarded request has its event.
 *
 * This file is also the child of the last test (KG_AUDIT_CHILD=1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KgError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { newContext, type RequestContext } from '../../proxy/context.js';
import { routeKubeRequest } from '../../proxy/route/kube-path.js';
import { requestInfo } from '../../proxy/authz/request-info.js';
import { AuditLog } from '../../proxy/audit/audit-log.js';
import type { AuditEvent } from '../../proxy/audit/event.js';
import { createKubeHandler, type PipelineDeps } from '../../proxy/pipeline.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';

const log = createLogger({ name: 'test', level: 'silent' });
const day = 86_400_000;

function contextFor(target: string): RequestContext {
  const ctx = newContext('GET', target, '127.0.0.1', 'audit-test', log);
  ctx.route = routeKubeRequest(target);
  ctx.info = requestInfo('GET', ctx.route.kubePath, ctx.route.rawQuery);
  ctx.identity = {
    tokenId: 't',
    tokenHash: 'h',
    user: 'burst',
    kind: 'user',
    groups: ['load'],
    expiresAt: new Date(Date.now() + day),
  };
  ctx.decision = { allowed: true, reason: 'test' };
  return ctx;
}

/** One request's worth of audit: begin → admitted → complete. Returns its audit ID. */
async function oneRequest(audit: AuditLog, i: number): Promise<string> {
  const ctx = contextFor(`/k8s/durable/api/v1/namespaces/n/pods/p${i}`);
  const rec = audit.begin(ctx);
  await rec.admitted();
  rec.complete(200);
  return ctx.auditId;
}

async function runChild(): Promise<void> {
  const pool = createPool({ url: process.env.DATABASE_URL! });
  const audit = await AuditLog.open({
    pool,
    log,
    replica: 'child',
    spoolDir: process.env.KG_SPOOL_DIR!,
    spoolMaxBytes: 1 << 30,
    strict: true,
    retentionMs: 90 * day,
    flushIntervalMs: 1500,
    maintainPartitions: false,
  });
  const upstream = process.env.KG_UPSTREAM!;
  const server = createServer((req, res) => {
    const ctx = contextFor(req.url!);
    const rec = audit.begin(ctx, req.headers).watch(res);
    (async () => {
      // 5. audit: on disk before forwarding (strict)
      await rec.admitted();
      // 6. forward
      const r = await fetch(`${upstream}/forwarded`, { headers: { 'audit-id': ctx.auditId } });
      await r.text();
      res.end('ok');
    })().catch((err: unknown) => {
      rec.fail(err);
      res.statusCode = 503;
      res.end();
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const a = server.address();
    process.stdout.write(`ready ${typeof a === 'object' && a ? a.port : 0}\n`);
  });
}

if (process.env.KG_AUDIT_CHILD) {
  await runChild();
} else {
  let pg: PgServer;
  let pool: Pool;
  let databaseUrl: string;

  before(async () => {
    pg = await startPostgres();
    databaseUrl = await createDatabase(pg);
    pool = createPool({ url: databaseUrl, connectTimeoutMs: 1000 });
    await migrate(pool);
  });
  after(async () => {
    await pool?.end();
    await pg?.stop();
  });

  const ids = async (where: string, values: unknown[] = []) =>
    (
      await pool.query<{ a: string; s: string }>(
        `SELECT audit_id::text AS a, stage AS s FROM audit_events WHERE ${where}`,
        values,
      )
    ).rows;

  describe('durability', { timeout: 180_000 }, () => {
    test('PostgreSQL stopped during a burst and started again: every event once', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kg-burst-'));
      const audit = await AuditLog.open({
        pool,
        log,
        replica: 'burst',
        spoolDir: dir,
        spoolMaxBytes: 1 << 30,
        retentionMs: 90 * day,
        maintainPartitions: false,
      });
      const sent: string[] = [];
      let i = 0;
      const burst = async (ms: number) => {
        const until = Date.now() + ms;
        while (Date.now() < until) {
          for (let k = 0; k < 20; k++) sent.push(await oneRequest(audit, i++));
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      await burst(700);
      const paused = pg.pause();
      await burst(1500);
      await paused;
      await burst(1500); // the database is down for all of these
      const down = audit.stats();
      await pg.resume();
      await burst(700);
      assert.ok(await audit.drain(60_000), 'the spool drains once the database is back');
      const s = audit.stats();
      await audit.close();
      assert.ok(down.databaseDown, 'the writer noticed the outage');
      assert.ok(s.spooled > 0 && s.replayed > 0, JSON.stringify(s));
      const rows = await ids(`cluster = 'durable'`);
      assert.equal(rows.length, sent.length, 'every event arrived, none twice');
      assert.deepEqual(new Set(rows.map((r) => r.a)), new Set(sent));
      assert.equal(s.spoolBytes, 0);
    });

    test('a replay after a crash between insert and segment removal inserts nothing twice', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kg-replay-'));
      const evs: AuditEvent[] = [];
      const probe = await AuditLog.open({
        pool,
        log,
        replica: 'probe',
        spoolDir: join(dir, 'probe'),
        spoolMaxBytes: 1 << 30,
        retentionMs: 90 * day,
        maintainPartitions: false,
      });
      // Real events, captured on their way to the writer.
      const ctxs = Array.from({ length: 50 }, (_, k) =>
        contextFor(`/k8s/replayed/api/v1/pods/x${k}`),
      );
      for (const c of ctxs) probe.begin(c).complete(200);
      await probe.drain(10_000);
      await probe.close();
      evs.push(
        ...(
          await pool.query<{ event: AuditEvent }>(
            `SELECT event FROM audit_events WHERE cluster = 'replayed'`,
          )
        ).rows.map((r) => r.event),
      );
      assert.equal(evs.length, 50);
      // The segment the dead process did not get to delete.
      mkdirSync(join(dir, 'events'), { recursive: true });
      writeFileSync(
        join(dir, 'events', '000000000001.jsonl'),
        evs.map((e) => JSON.stringify(e) + '\n').join(''),
      );
      const audit = await AuditLog.open({
        pool,
        log,
        replica: 'after-crash',
        spoolDir: dir,
        spoolMaxBytes: 1 << 30,
        retentionMs: 90 * day,
        maintainPartitions: false,
      });
      assert.ok(await audit.drain(10_000));
      assert.equal(audit.stats().replayed, 50);
      await audit.close();
      assert.equal((await ids(`cluster = 'replayed'`)).length, 50);
    });

    test('spool full: new requests get 503 through the pipeline; served again after recovery', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kg-full-'));
      const audit = await AuditLog.open({
        pool,
        log,
        replica: 'full',
        spoolDir: dir,
        spoolMaxBytes: 30_000,
        retentionMs: 90 * day,
        maintainPartitions: false,
        flushIntervalMs: 50,
      });
      // Only the audit stage runs before the refusal: the other stages are never reached.
      const deps = { audit, log, maxRequestBody: 1 << 20 } as unknown as PipelineDeps;
      const handler = createKubeHandler(deps);
      const server: Server = createServer((req, res) => handler(req, res));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const a = server.address();
      const url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}/k8s/full/api/v1/pods`;
      await pg.pause();
      const accepted: string[] = [];
      let refusal: KgError | undefined;
      for (let i = 0; i < 2000 && !refusal; i++) {
        try {
          accepted.push(await oneRequest(audit, i));
        } catch (err) {
          refusal = err as KgError;
        }
        if (i % 20 === 19) await audit.flush();
      }
      assert.ok(refusal, 'refused before 2000 events');
      assert.equal(refusal.code, 'KG_ERR_UNAVAILABLE');
      assert.equal(refusal.status, 503);
      assert.ok(audit.stats().spoolBytes >= 30_000);
      const res = await fetch(url);
      assert.equal(res.status, 503);
      assert.ok(res.headers.get('audit-id'));
      assert.equal(res.headers.get('retry-after'), '5');
      const body = (await res.json()) as { kind: string; reason: string; message: string };
      assert.equal(body.kind, 'Status');
      assert.equal(body.reason, 'ServiceUnavailable');
      assert.match(body.message, /audit/);
      await pg.resume();
      assert.ok(await audit.drain(60_000));
      const after = await fetch(url);
      assert.notEqual(
        after.status,
        503,
        'admitted again (and then refused by the stub deps, not audit)',
      );
      await new Promise<void>((r) => server.close(() => r()));
      assert.ok(await audit.drain(10_000));
      await audit.close();
      const rows = await ids(`cluster = 'durable' AND audit_id = ANY($1::uuid[])`, [accepted]);
      assert.equal(rows.length, accepted.length, 'every accepted request has its event');
      assert.ok(audit.stats().refused >= 2);
    });

    test('strict mode and kill -9: every forwarded request has its event', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'kg-strict-'));
      const forwarded = new Set<string>();
      const upstream = createServer((req: IncomingMessage, res) => {
        forwarded.add(String(req.headers['audit-id']));
        setTimeout(() => res.end('{}'), 2);
      });
      await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
      const ua = upstream.address();
      const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
        env: {
          ...Object.fromEntries(
            Object.entries(process.env).filter(([k]) => !k.startsWith('NODE_TEST')),
          ),
          KG_AUDIT_CHILD: '1',
          DATABASE_URL: databaseUrl,
          KG_SPOOL_DIR: dir,
          KG_UPSTREAM: `http://127.0.0.1:${typeof ua === 'object' && ua ? ua.port : 0}`,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      const port = await new Promise<number>((resolve, reject) => {
        child.stdout!.on('data', (b: Buffer) => {
          out += b.toString();
          const m = /ready (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
        void exited.then(() => reject(new Error(`child exited: ${out}`)));
      });
      let killed = false;
      const loops = Array.from({ length: 8 }, async (_, l) => {
        for (let i = 0; !killed; i++) {
          await fetch(`http://127.0.0.1:${port}/k8s/strict/api/v1/namespaces/n/pods/l${l}-${i}`)
            .then((r) => r.text())
            .catch(() => undefined);
        }
      });
      while (forwarded.size < 400) await new Promise((r) => setTimeout(r, 5));
      child.kill('SIGKILL');
      killed = true;
      await exited;
      await Promise.all(loops);
      await new Promise<void>((r) => upstream.close(() => r()));
      const recovered = await AuditLog.open({
        pool,
        log,
        replica: 'recovery',
        spoolDir: dir,
        spoolMaxBytes: 1 << 30,
        retentionMs: 90 * day,
        maintainPartitions: false,
      });
      assert.ok(await recovered.drain(30_000));
      const s = recovered.stats();
      await recovered.close();
      const rows = await ids(`cluster = 'strict'`);
      const stored = new Set(rows.map((r) => r.a));
      const missing = [...forwarded].filter((id) => !stored.has(id));
      assert.deepEqual(
        missing,
        [],
        `${missing.length} of ${forwarded.size} forwarded requests have no event`,
      );
      assert.ok(s.orphansRecovered > 0, 'the kill left requests only the strict record knew about');
      const incomplete = rows.filter((r) => r.s === 'RequestReceived').map((r) => r.a);
      const complete = new Set(rows.filter((r) => r.s === 'ResponseComplete').map((r) => r.a));
      // Whether any ResponseComplete reached the database before the kill depends on
      // the machine's load; the strict records must have covered the rest.
      assert.ok(incomplete.length > 0, `${incomplete.length} / ${complete.size}`);
      assert.deepEqual(
        incomplete.filter((id) => complete.has(id)),
        [],
        'a request with its ResponseComplete gets no RequestReceived record',
      );
    });
  });
}
