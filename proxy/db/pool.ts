/**
 * The PostgreSQL pool. Every query has a statement timeout so a hung database
 * can never stall a request forever (docs/security.md, "PostgreSQL down or
 * hung"). Given a `DbHealth`, the pool also refuses new work at once while
 * the database is suspect (a heartbeat overdue): callers fall back to memory
 * or fail closed instead of queueing behind a hang.
 */
import pg from 'pg';
import { DatabaseUnresponsiveError, type DbHealth } from './health.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface PoolOptions {
  url: string;
  max?: number;
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  applicationName?: string;
  /** Refuse new connections and queries while this says the database is hung. */
  health?: DbHealth;
}

export function createPool(opts: PoolOptions): pg.Pool {
  const statementMs = opts.statementTimeoutMs ?? 5000;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    statement_timeout: statementMs,
    query_timeout: statementMs + 1000,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
    idleTimeoutMillis: 30_000,
    application_name: opts.applicationName ?? 'kubegate',
  });
  // An idle client losing its connection must not crash the process; the next
  // query reconnects.
  pool.on('error', () => undefined);
  // Nor a checked-out one: pg-pool removes its listener at checkout, and a
  // connection the server ends between two statements of a transaction (the
  // database stopped or restarted) then emits an unhandled 'error'. With this
  // one, the next statement on it fails instead, and inTransaction releases
  // the connection as broken (test/integration/pool-connection-lost.test.ts).
  pool.on('connect', (client) => client.on('error', () => undefined));
  const health = opts.health;
  if (health) {
    // pg-pool's query() checks out a client through connect(callback), so
    // guarding connect guards both.
    const connect = pool.connect.bind(pool) as (
      cb?: (err: Error | undefined, client?: pg.PoolClient, done?: () => void) => void,
    ) => Promise<pg.PoolClient> | undefined;
    const guarded = (
      cb?: (err: Error | undefined, client?: pg.PoolClient, done?: () => void) => void,
    ): Promise<pg.PoolClient> | undefined => {
      if (!health.suspect) return connect(cb);
      const err = new DatabaseUnresponsiveError();
      if (cb) {
        process.nextTick(cb, err);
        return undefined;
      }
      return Promise.reject(err);
    };
    pool.connect = guarded as typeof pool.connect;
  }
  return pool;
}
