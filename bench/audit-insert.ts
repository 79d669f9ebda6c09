/**
 * What one audit event costs PostgreSQL to store, for each write path and index layout
 * (issue #23, item 2): a fresh database with the migrations applied, the
 * same events (the shape the proxy writes for a 1 KiB GET) inserted in
 * batches of 500 through the proxy's own insert, timed, with PostgreSQL's
 * CPU read from /proc. Layouts are interleaved over rounds, each on a table
 * emptied first. Run alone: `node dist/bench/audit-insert.js [events] [rounds]`.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { createPool, type Pool } from '../proxy/db/pool.js';
import { migrate } from '../proxy/db/migrate.js';
import { insertEvents } from '../proxy/audit/store.js';
import { microTime, type AuditEvent } from '../proxy/audit/event.js';
import { createDatabase, startPostgres } from '../test/support/postgres.js';

const total = Number(process.argv[2] ?? 40_000);
const rounds = Number(process.argv[3] ?? 3);

type Insert = (db: Pool, events: readonly AuditEvent[]) => Promise<unknown>;

/**
 * Columns taken out of the events in JavaScript and sent as one array per
 * column, so PostgreSQL parses no JSON document but the stored one (and, as
 * `json`, only checks it).
 */
const byColumns =
  (cast: 'json' | 'jsonb'): Insert =>
  async (db, events) => {
    const col = <T>(f: (e: AuditEvent) => T) => events.map(f);
    await db.query(
      `INSERT INTO audit_events (received_at, audit_id, stage, stage_at, source, level, verb,
            username, user_kind, groups, cluster, namespace, api_group, resource, subresource,
            name, code, decision, replica, event)
     SELECT r, a, s, st, src, l, v, u, uk, string_to_array(g, chr(31)), c, ns, ag, res, sub, n, code, d, rep, ev::${cast}
       FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
                   $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
                   $14::text[], $15::text[], $16::text[], $17::int[], $18::text[], $19::text[], $20::text[])
         AS t(r, a, s, st, src, l, v, u, uk, g, c, ns, ag, res, sub, n, code, d, rep, ev)
     ON CONFLICT DO NOTHING`,
      [
        col((e) => e.requestReceivedTimestamp),
        col((e) => e.auditID),
        col((e) => e.stage),
        col((e) => e.stageTimestamp),
        col((e) => e.source ?? 'kube'),
        col((e) => e.level),
        col((e) => e.verb ?? ''),
        col((e) => e.user.username ?? ''),
        col((e) => e.user.extra?.['kubegate.dev/kind']?.[0] ?? ''),
        col((e) => (e.user.groups ?? []).join('\x1f')),
        col((e) => e.cluster ?? ''),
        col((e) => e.objectRef?.namespace ?? ''),
        col((e) => e.objectRef?.apiGroup ?? ''),
        col((e) => e.objectRef?.resource ?? ''),
        col((e) => e.objectRef?.subresource ?? ''),
        col((e) => e.objectRef?.name ?? ''),
        col((e) => e.responseStatus?.code ?? null),
        col((e) => e.decision ?? ''),
        col((e) => e.replica ?? ''),
        col((e) => JSON.stringify(e)),
      ],
    );
  };

/** Write paths: the schema change each needs, and how a batch is sent. */
const layouts: Record<string, { sql: string; insert: Insert }> = {
  'as migrated': { sql: '', insert: insertEvents },
  'no groups GIN': { sql: 'DROP INDEX IF EXISTS audit_events_groups', insert: insertEvents },
  'BRIN on time, user and cluster indexes only': {
    sql: `DROP INDEX IF EXISTS audit_events_groups;
          DROP INDEX IF EXISTS audit_events_resource;
          DROP INDEX IF EXISTS audit_events_audit_id;
          CREATE INDEX audit_events_time_brin ON audit_events USING brin (received_at)`,
    insert: insertEvents,
  },
  'columns from JavaScript, event jsonb': { sql: '', insert: byColumns('jsonb') },
  'columns from JavaScript, event json': {
    sql: 'ALTER TABLE audit_events ALTER COLUMN event TYPE json',
    insert: byColumns('json'),
  },
  'columns, event json, no groups GIN': {
    sql: `ALTER TABLE audit_events ALTER COLUMN event TYPE json;
          DROP INDEX IF EXISTS audit_events_groups`,
    insert: byColumns('json'),
  },
};
const restore = `
  ALTER TABLE audit_events ALTER COLUMN event TYPE jsonb USING event::jsonb;
  DROP INDEX IF EXISTS audit_events_time_brin;
  CREATE INDEX IF NOT EXISTS audit_events_audit_id ON audit_events (audit_id);
  CREATE INDEX IF NOT EXISTS audit_events_resource ON audit_events (resource, verb, received_at DESC);
  CREATE INDEX IF NOT EXISTS audit_events_groups ON audit_events USING gin (groups)`;

function event(i: number, at: number): AuditEvent {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: randomUUID(),
    stage: 'ResponseComplete',
    requestURI: '/api/v1/namespaces/default/configmaps/bench-1k',
    verb: 'get',
    user: {
      username: `user-${i % 50}@example.com`,
      groups: ['developers', 'system:authenticated'],
      extra: { 'kubegate.dev/kind': ['user'] },
    },
    sourceIPs: ['127.0.0.1'],
    userAgent: 'h2load nghttp2/1.52.0',
    objectRef: {
      resource: 'configmaps',
      namespace: 'default',
      name: 'bench-1k',
      apiGroup: '',
      apiVersion: 'v1',
    },
    responseStatus: { metadata: {}, code: 200 },
    requestReceivedTimestamp: microTime(at),
    stageTimestamp: microTime(at + 1),
    annotations: { 'authorization.k8s.io/decision': 'allow' },
    source: 'kube',
    cluster: 'bench',
    replica: 'r1',
    decision: 'allow',
    reason: 'allowed by binding "b" (role "view")',
    durationMs: 1,
    bytesIn: 0,
    bytesOut: 1100,
  };
}

/** CPU seconds (user + system) of every postgres process, from /proc. */
function postgresCpu(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!comm.startsWith('postgres')) continue;
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks / 100;
}

async function main() {
  const pg = await startPostgres();
  const url = await createDatabase(pg, 'kgbench');
  const pool = createPool({ url, max: 2, statementTimeoutMs: 60_000 });
  await migrate(pool);
  const results: Record<string, { ms: number[]; cpu: number[]; node: number[] }> = {};
  const names = Object.keys(layouts);
  for (let r = 0; r < rounds; r++) {
    for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) {
      await pool.query('TRUNCATE audit_events');
      await pool.query(restore);
      if (layouts[name]!.sql) await pool.query(layouts[name]!.sql);
      await pool.query('CHECKPOINT');
      const now = Date.now();
      const events = Array.from({ length: total }, (_, i) => event(i, now + i));
      const cpu0 = postgresCpu();
      const own0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < events.length; i += 500)
        await layouts[name]!.insert(pool, events.slice(i, i + 500));
      const ms = performance.now() - t0;
      const cpu = postgresCpu() - cpu0;
      const own = process.cpuUsage(own0);
      const node = (own.user + own.system) / 1e6;
      (results[name] ??= { ms: [], cpu: [], node: [] }).ms.push(ms);
      results[name].cpu.push(cpu);
      results[name].node.push(node);
      process.stdout.write(
        `round ${r + 1} ${name}: ${total} events in ${ms.toFixed(0)} ms, PostgreSQL ${((cpu * 1e6) / total).toFixed(1)} µs CPU per event\n`,
      );
    }
  }
  for (const [name, v] of Object.entries(results)) {
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    process.stdout.write(
      `${name}: median ${((med(v.ms) * 1000) / total).toFixed(1)} µs wall, ${((med(v.cpu) * 1e6) / total).toFixed(1)} µs PostgreSQL CPU, ${((med(v.node) * 1e6) / total).toFixed(1)} µs Node CPU (the writer's side) per event\n`,
    );
  }
  await pool.end();
  await pg.stop();
}

void main();
