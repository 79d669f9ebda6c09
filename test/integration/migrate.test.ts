/** The migration runner against a real PostgreSQL. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { loadMigrations, migrate, type Migration } from '../../proxy/db/migrate.js';
import { KgError } from '../../common/errors.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';

let server: PgServer;
before(async () => {
  server = await startPostgres();
});
after(async () => {
  await server?.stop();
});

const m = (version: number, sql: string): Migration => ({
  version,
  name: `${String(version).padStart(4, '0')}_t.sql`,
  sql,
  checksum: createHash('sha256').update(sql).digest('hex'),
});

async function withPool<T>(fn: (p: Pool) => Promise<T>): Promise<T> {
  const pool = createPool({ url: await createDatabase(server) });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

test('the real migrations apply, and a re-run is a no-op', async () => {
  await withPool(async (pool) => {
    const first = await migrate(pool);
    assert.deepEqual(
      first.applied,
      loadMigrations().map((x) => x.name),
    );
    const second = await migrate(pool);
    assert.deepEqual(second.applied, []);
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM kg_schema_migrations');
    assert.equal(rows[0].n, loadMigrations().length);
  });
});

test('a changed, already-applied migration is refused with a clear message', async () => {
  await withPool(async (pool) => {
    await migrate(pool, [m(1, 'CREATE TABLE t1 (id int)')]);
    await assert.rejects(migrate(pool, [m(1, 'CREATE TABLE t1 (id bigint)')]), (err: unknown) => {
      assert.ok(err instanceof KgError);
      assert.match(err.message, /0001_t\.sql was changed after it was applied/);
      assert.match(err.message, /add a new migration/);
      return true;
    });
  });
});

test('a failing migration rolls back whole and is not recorded', async () => {
  await withPool(async (pool) => {
    await assert.rejects(
      migrate(pool, [m(1, 'CREATE TABLE ok1 (id int); CREATE TABLE broken (')]),
      KgError,
    );
    const { rows } = await pool.query(
      "SELECT to_regclass('ok1') AS t, (SELECT count(*)::int FROM kg_schema_migrations) AS n",
    );
    assert.equal(rows[0].t, null);
    assert.equal(rows[0].n, 0);
  });
});

test('replicas migrating at the same time apply each migration exactly once', async () => {
  const url = await createDatabase(server);
  const pools = [createPool({ url }), createPool({ url }), createPool({ url })];
  try {
    const ms = [m(1, 'CREATE TABLE once (id int)'), m(2, 'INSERT INTO once VALUES (1)')];
    const results = await Promise.all(pools.map((p) => migrate(p, ms)));
    assert.equal(results.flatMap((r) => r.applied).length, 2);
    const { rows } = await pools[0]!.query('SELECT count(*)::int AS n FROM once');
    assert.equal(rows[0].n, 1);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});
