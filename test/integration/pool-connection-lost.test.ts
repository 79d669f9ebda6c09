/**
 * A pooled connection that dies while it is checked out — the database
 * stopped or restarted between two statements of a transaction — must not
 * end the proxy. pg emits 'error' on such a client, and pg-pool removes its
 * own listener at checkout: without one of ours that is an unhandled 'error'
 * event and the process exits (seen once in the e2e loop: e2e/rbac's
 * "database stopped" test, the proxy exited with code 1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pgLib from 'pg';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { inTransaction } from '../../proxy/db/query.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';

describe('a pooled connection lost while checked out', () => {
  let pg: PgServer;
  let url: string;
  let pool: Pool;
  let admin: pgLib.Client;

  before(async () => {
    pg = await startPostgres();
    url = await createDatabase(pg, 'kglost');
    pool = createPool({ url });
    admin = new pgLib.Client({ connectionString: url });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
    await pool?.end();
    await pg?.stop();
  });

  test('between two statements of a transaction: the transaction fails, the process lives, the pool recovers', async () => {
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const outcome = await inTransaction(pool, async (c) => {
        const { rows } = await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        // The server ends this connection while no statement of ours runs on it.
        await admin.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await new Promise((r) => setTimeout(r, 300));
        await c.query('SELECT 1');
        return 'committed';
      }).catch((err: unknown) => err);
      assert.ok(outcome instanceof Error, `the transaction failed (got ${String(outcome)})`);
      assert.deepEqual(
        uncaught.map((e) => e.message),
        [],
        'no uncaught error: the process would have exited',
      );
      // The broken connection was not returned to the pool: the next work succeeds.
      const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
      assert.equal(rows[0]!.one, 1);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
