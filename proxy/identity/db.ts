/**
 * Database access for identity: one transaction helper, and the mapping of
 * "the database cannot answer" to a 503 the client may retry (anything else
 * stays a bug, logged as one by the error responder).
 */
import { KgError, isKgError } from '../../common/errors.js';
import type { Pool, PoolClient } from '../db/pool.js';

/** A pool or a client inside a transaction. */
export type Queryable = Pick<PoolClient, 'query'>;

function unavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    // SQLSTATE class 08 (connection), 57P0x (shutdown), 57014 (statement timeout)
    if (code.startsWith('08') || code.startsWith('57P') || code === '57014') return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(code)) return true;
  }
  return err instanceof Error && /timeout|Connection terminated/i.test(err.message);
}

export function dbError(err: unknown): unknown {
  if (isKgError(err) || !unavailable(err)) return err;
  return new KgError('KG_ERR_UNAVAILABLE', 'the kubegate database is unavailable; retry shortly', {
    cause: err,
    retryAfter: 2,
  });
}

/** A query with outages mapped to 503. */
export async function q<R extends object>(
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

/** Run `fn` in one transaction; a connection that cannot roll back is discarded. */
export async function inTransaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  let c: PoolClient;
  try {
    c = await pool.connect();
  } catch (err) {
    throw dbError(err);
  }
  let broken: Error | undefined;
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw dbError(err);
  } finally {
    c.release(broken);
  }
}
