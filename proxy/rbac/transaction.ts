/**
 * The transaction every admin change runs in: the change itself, its
 * `admin_changes` row and the version check commit together or not at all,
 * so the change log can never disagree with the policy tables.
 */
import { KgError, isKgError } from '../../common/errors.js';
import type { Pool, PoolClient } from '../db/pool.js';
import type { ChangeKind } from './records.js';

/** What a store function needs from pg: a pool or a client inside a transaction. */
export type Queryable = Pick<PoolClient, 'query'>;

/**
 * pg errors that mean "the database cannot answer now" rather than "this is a
 * bug": connection failures (SQLSTATE class 08), shutdown (57P0x), statement
 * timeouts (57014) and socket errors. They become a 503 the client may retry.
 */
function unavailable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || code.startsWith('57P') || code === '57014') return true;
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(code))
      return true;
  }
  const msg = err instanceof Error ? err.message : '';
  return /timeout|Connection terminated/i.test(msg);
}

/** Our own errors pass through; a database outage becomes KG_ERR_UNAVAILABLE; the rest is a bug. */
export function dbError(err: unknown): unknown {
  if (isKgError(err) || !unavailable(err)) return err;
  return new KgError('KG_ERR_UNAVAILABLE', 'the kubegate database is unavailable; retry shortly', {
    cause: err,
    retryAfter: 2,
  });
}

/** Run `fn` in one transaction (READ COMMITTED, with row locks taken by `fn`). */
export async function inTransaction<T>(
  pool: Pool,
  fn: (client: PoolClient) => Promise<T>,
): Promise<T> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw dbError(err);
  }
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((e: Error) => {
      // A connection that cannot even roll back must not go back to the pool.
      broken = e;
    });
    throw dbError(err);
  } finally {
    client.release(broken);
  }
}

/** A plain query outside a transaction, with outages mapped like inTransaction. */
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

export interface Change {
  actor: string;
  action: 'create' | 'update' | 'delete';
  kind: ChangeKind;
  name: string;
  before: unknown;
  after: unknown;
}

/** Append one admin_changes row; call inside the transaction of the change it records. */
export async function recordChange(client: Queryable, c: Change): Promise<void> {
  await client.query(
    `INSERT INTO admin_changes (actor, action, kind, name, before, after)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      c.actor,
      c.action,
      c.kind,
      c.name,
      c.before === null ? null : JSON.stringify(c.before),
      c.after === null ? null : JSON.stringify(c.after),
    ],
  );
}

/**
 * Optimistic concurrency: refuse when the caller read an older version than
 * the one stored (RFC 9110 §13.1.1 If-Match). `expected` undefined = no check
 * (the CLI acting on a name the admin just typed).
 */
export function checkVersion(what: string, current: number, expected: number | undefined): void {
  if (expected === undefined || expected === current) return;
  throw new KgError(
    'KG_ERR_PRECONDITION_FAILED',
    `${what} is at version ${current}, not ${expected}: it changed since you read it; fetch it again and re-apply your change`,
    { details: { currentVersion: current } },
  );
}

/** A validation failure carrying every problem at once (problem JSON `problems`). */
export function invalid(what: string, problems: string[]): KgError {
  return new KgError('KG_ERR_VALIDATION', `${what} is invalid: ${problems.join('; ')}`, {
    details: { problems },
  });
}

/** Options every change takes: who acts, and the version they read (optimistic concurrency). */
export interface ChangeOptions {
  actor: string;
  version?: number;
}
