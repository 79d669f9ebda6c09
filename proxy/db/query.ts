/**
 * How feature code talks to PostgreSQL: a typed query and a transaction
 * helper, both mapping outages to a 503 the client may retry (errors.ts).
 * Each feature folder keeps its own SQL; this module only runs it.
 */
import type { Pool, PoolClient } from './pool.js';
import { dbError } from './errors.js';

/** What a store function needs from pg: a pool, or a client inside a transaction. */
export type Queryable = Pick<PoolClient, 'query'>;

export interface TransactionOptions {
  /** PostgreSQL's default is READ COMMITTED. */
  isolation?: 'read committed' | 'repeatable read' | 'serializable';
  /** Refuse writes inside the transaction. */
  readOnly?: boolean;
}

function begin(o: TransactionOptions): string {
  const modes: string[] = [];
  if (o.isolation) modes.push(`ISOLATION LEVEL ${o.isolation.toUpperCase()}`);
  if (o.readOnly) modes.push('READ ONLY');
  return modes.length ? `BEGIN ${modes.join(', ')}` : 'BEGIN';
}

/** BEGIN, `fn`, COMMIT; on any failure ROLLBACK and rethrow what failed, unchanged. */
async function run<C extends Queryable, T>(
  client: C,
  fn: (client: C) => Promise<T>,
  opts: TransactionOptions,
  rollbackFailed: (err: Error) => void,
): Promise<T> {
  try {
    await client.query(begin(opts));
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(rollbackFailed);
    throw err;
  }
}

/**
 * Run `fn` in one transaction on a pool connection (READ COMMITTED unless
 * `opts` says otherwise; row locks are `fn`'s to take). Outages become
 * KG_ERR_UNAVAILABLE. A connection that cannot even roll back is discarded
 * rather than returned to the pool.
 */
export async function inTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
  opts: TransactionOptions = {},
): Promise<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw dbError(err);
  }
  let broken: Error | undefined;
  try {
    return await run(client, fn, opts, (e) => (broken = e));
  } catch (err) {
    throw dbError(err);
  } finally {
    client.release(broken);
  }
}

/**
 * `inTransaction` on a connection the caller holds and looks after itself
 * (the policy listener's, the migration lock's). Errors come back as pg gave
 * them: that caller has its own failure handling and logs the driver's words.
 * A failed ROLLBACK is left for that connection's next use to reveal.
 */
export function inTransactionOn<C extends Queryable, T>(
  client: C,
  fn: (client: C) => Promise<T>,
  opts: TransactionOptions = {},
): Promise<T> {
  return run(client, fn, opts, () => undefined);
}

/** One statement outside a transaction (or on a transaction's client); its rows, with outages mapped. */
export async function query<R extends object>(
  db: Queryable,
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  try {
    return (await db.query<R>(text, values)).rows;
  } catch (err) {
    throw dbError(err);
  }
}
