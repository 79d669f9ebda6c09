/**
 * The data layer's transaction and query helpers (proxy/db/query.ts) against
 * a scripted connection: statement order, transaction modes, rollback,
 * what happens to a connection that cannot roll back, and outage mapping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KgError } from '../../common/errors.js';
import type { Pool, PoolClient } from '../../proxy/db/pool.js';
import { inTransaction, inTransactionOn, query, type Queryable } from '../../proxy/db/query.js';

/** An error as pg or Node's socket layer raises it. */
function coded(code: string): Error {
  return Object.assign(new Error(`failed with ${code}`), { code });
}

interface Script {
  /** The statements sent, in order. */
  sent: string[];
  /** What release() was given, once per checkout. */
  released: (Error | boolean | undefined)[];
  client: PoolClient;
  pool: Pool;
}

/** A connection that answers every statement with `rows`, or fails those `fail` picks. */
function scripted(fail: (text: string) => Error | undefined = () => undefined): Script {
  const sent: string[] = [];
  const released: (Error | boolean | undefined)[] = [];
  const client = {
    query: async (text: string) => {
      sent.push(text);
      await Promise.resolve();
      const err = fail(text);
      if (err) throw err;
      return { rows: [{ text }] };
    },
    release: (err?: Error | boolean) => {
      released.push(err);
    },
  } as unknown as PoolClient;
  const pool = { connect: async () => client } as unknown as Pool;
  return { sent, released, client, pool };
}

test('inTransaction: BEGIN, the work, COMMIT, and the connection goes back to the pool', async () => {
  const s = scripted();
  const out = await inTransaction(s.pool, async (c) => {
    await c.query('SELECT 1');
    return 'done';
  });
  assert.equal(out, 'done');
  assert.deepEqual(s.sent, ['BEGIN', 'SELECT 1', 'COMMIT']);
  assert.deepEqual(s.released, [undefined]);
});

test('transaction modes: isolation level and read-only', async () => {
  const s = scripted();
  await inTransaction(s.pool, async () => undefined, {
    isolation: 'repeatable read',
    readOnly: true,
  });
  await inTransaction(s.pool, async () => undefined, { isolation: 'serializable' });
  await inTransaction(s.pool, async () => undefined, { readOnly: true });
  assert.deepEqual(s.sent, [
    'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY',
    'COMMIT',
    'BEGIN ISOLATION LEVEL SERIALIZABLE',
    'COMMIT',
    'BEGIN READ ONLY',
    'COMMIT',
  ]);
});

test('a failing step rolls back; a bug comes back as it is, an outage as a 503', async () => {
  const bug = new Error('boom');
  const s = scripted();
  await assert.rejects(
    inTransaction(s.pool, async (c) => {
      await c.query('UPDATE t SET x = 1');
      throw bug;
    }),
    (err) => err === bug,
  );
  assert.deepEqual(s.sent, ['BEGIN', 'UPDATE t SET x = 1', 'ROLLBACK']);
  assert.deepEqual(s.released, [undefined], 'a connection that rolled back is reusable');

  const down = scripted((t) => (t === 'COMMIT' ? coded('57P01') : undefined));
  await assert.rejects(
    inTransaction(down.pool, async () => 1),
    (err) => {
      assert.ok(err instanceof KgError);
      assert.equal(err.code, 'KG_ERR_UNAVAILABLE');
      assert.equal((err.cause as { code?: string }).code, '57P01');
      return true;
    },
  );
  assert.deepEqual(down.sent, ['BEGIN', 'COMMIT', 'ROLLBACK']);
});

test('a connection that cannot even roll back is discarded, not returned to the pool', async () => {
  const lost = coded('ECONNRESET');
  const s = scripted((t) => (t === 'SELECT 1' || t === 'ROLLBACK' ? lost : undefined));
  await assert.rejects(
    inTransaction(s.pool, (c) => c.query('SELECT 1')),
    (err) => err instanceof KgError && err.code === 'KG_ERR_UNAVAILABLE',
  );
  assert.equal(s.released.length, 1);
  assert.equal(s.released[0], lost, 'release(err) destroys the connection');
});

test('no connection to be had: an outage is a 503, and nothing is released', async () => {
  const pool = {
    connect: async () => {
      throw coded('ENOTFOUND');
    },
  } as unknown as Pool;
  await assert.rejects(
    inTransaction(pool, async () => 1),
    (err) => err instanceof KgError && err.code === 'KG_ERR_UNAVAILABLE',
  );
});

test('inTransactionOn: the same transaction on a held connection, errors as pg gave them', async () => {
  const s = scripted((t) => (t === 'SELECT 2' ? coded('08006') : undefined));
  const db: Queryable = s.client;
  assert.equal(
    await inTransactionOn(db, async (c) => (await c.query('SELECT 1')).rows.length, {
      isolation: 'repeatable read',
      readOnly: true,
    }),
    1,
  );
  await assert.rejects(
    inTransactionOn(db, (c) => c.query('SELECT 2')),
    (err) => !(err instanceof KgError) && (err as { code?: string }).code === '08006',
  );
  assert.deepEqual(s.sent, [
    'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY',
    'SELECT 1',
    'COMMIT',
    'BEGIN',
    'SELECT 2',
    'ROLLBACK',
  ]);
  assert.deepEqual(s.released, [], 'the caller keeps its connection');
});

test('query: the rows, with an outage mapped and anything else left alone', async () => {
  const s = scripted((t) =>
    t.includes('down') ? coded('ETIMEDOUT') : t.includes('dup') ? coded('23505') : undefined,
  );
  assert.deepEqual(await query<{ text: string }>(s.client, 'SELECT ok'), [{ text: 'SELECT ok' }]);
  await assert.rejects(
    query(s.client, 'SELECT down'),
    (err) => err instanceof KgError && err.code === 'KG_ERR_UNAVAILABLE',
  );
  await assert.rejects(
    query(s.client, 'INSERT dup'),
    (err) => !(err instanceof KgError) && (err as { code?: string }).code === '23505',
  );
});
