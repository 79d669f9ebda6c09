/**
 * The PostgreSQL pool. Every query has a statement timeout so a hung database
 * can never stall a request forever (security.md, "Postgres down or hung").
 */
import pg from 'pg';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

export interface PoolOptions {
  url: string;
  max?: number;
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  applicationName?: string;
}

export function createPool(opts: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.max ?? 10,
    statement_timeout: opts.statementTimeoutMs ?? 5000,
    query_timeout: (opts.statementTimeoutMs ?? 5000) + 1000,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000,
    idleTimeoutMillis: 30_000,
    application_name: opts.applicationName ?? 'kubegate',
  });
  // An idle client losing its connection must not crash the process; the next
  // query reconnects.
  pool.on('error', () => undefined);
  return pool;
}
