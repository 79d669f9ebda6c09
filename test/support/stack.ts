/**
 * The whole kubegate stack on one machine, from real parts: PostgreSQL, the
 * real test cluster, `kubegate migrate`, a proxy process, clusters registered
 * with the CLI, their bootstrap YAML applied to the cluster with kubectl, and
 * agent processes configured exactly as the bootstrap Deployment would
 * configure them. Used by the end-to-end tests and by `make dev`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startCluster, type TestCluster } from './cluster.js';
import { createDatabase, startPostgres, type PgServer } from './postgres.js';
import { freePort } from './ports.js';
import { runKubegate, startKubegate, type Proc } from './proc.js';
import { kubectlOk } from './kubectl.js';
import pgLib from 'pg';

export interface StackCluster {
  name: string;
  labels?: Record<string, string>;
  /** Fake kwok nodes, so Pods run and exec/logs/port-forward work. */
  nodes?: number;
}

export interface StackOptions {
  /**
   * Clusters to register and attach, each a real test cluster of its own with
   * its own agent. Default: one named `dev`.
   */
  clusters?: StackCluster[];
  /** Keep state here instead of a temp dir (make dev). */
  dir?: string;
  proxyEnv?: NodeJS.ProcessEnv;
  /** Extra agent settings (e.g. a short JIT idle time). */
  agentEnv?: NodeJS.ProcessEnv;
  log?: (msg: string) => void;
  /** Reuse a running Postgres / cluster (several stacks in one suite). */
  pg?: PgServer;
  /**
   * `make dev`: its agents may be killed and are restarted by a supervisor, so
   * stop() does not fail when one ended by itself (tests never set this).
   */
  processesMayExit?: boolean;
}

export interface Stack {
  dir: string;
  pg: PgServer;
  /** The first cluster's control plane. */
  cluster: TestCluster;
  /** Every cluster's control plane, by registered name. */
  clusters: Map<string, TestCluster>;
  databaseUrl: string;
  env: NodeJS.ProcessEnv;
  publicUrl: string;
  proxy: Proc;
  agents: Map<string, Proc>;
  agentEnv: Map<string, NodeJS.ProcessEnv>;
  /** `kubegate admin …` against this stack's database. */
  admin(args: string[]): Promise<string>;
  /** Write a fleet kubeconfig for a user; returns its path. */
  kubeconfig(user: string, groups?: string[], ttl?: string): Promise<string>;
  /** Start (or restart) the agent of a cluster, optionally against another replica's tunnel listener. */
  /** Start (again) the agent of `cluster`, optionally at another tunnel address or with extra env. */
  startAgent(cluster: string, tunnelAddress?: string, extraEnv?: NodeJS.ProcessEnv): Promise<Proc>;
  /** Register one more cluster (a new real control plane) and attach its agent. */
  addCluster(c: StackCluster): Promise<void>;
  /** Another proxy replica sharing the database; returns its env and process. */
  startReplica(): Promise<{ proxy: Proc; env: NodeJS.ProcessEnv; publicUrl: string }>;
  /** Run SQL against the stack's database (tests only). */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const log = opts.log ?? (() => undefined);
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'kg-stack-'));
  mkdirSync(dir, { recursive: true });
  const cleanup: (() => Promise<unknown>)[] = [];
  // kubegate's own processes: none may end under a test unless the test ends it (issue #17).
  const watched: Proc[] = [];
  const stop = async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
    if (!opts.dir) rmSync(dir, { recursive: true, force: true });
  };
  const stopAndCheck = async () => {
    await stop();
    if (opts.processesMayExit) return;
    const died = watched.map((p) => p.unexpectedExit()).filter((m) => m !== undefined);
    if (died.length)
      throw new Error(`a kubegate process ended during the test:\n${died.join('\n---\n')}`);
  };
  try {
    log('starting PostgreSQL');
    const pg = opts.pg ?? (await startPostgres());
    if (!opts.pg) cleanup.push(() => pg.stop());
    const databaseUrl = await createDatabase(pg);
    const clusters = new Map<string, TestCluster>();

    const env: NodeJS.ProcessEnv = {
      DATABASE_URL: databaseUrl,
      KUBEGATE_MASTER_KEY: randomBytes(32).toString('base64'),
      ...(await proxyPortEnv()),
      KUBEGATE_LOG_LEVEL: 'info',
      // Below proc.stop()'s 10 s before SIGKILL, so a stopped proxy drains and flushes.
      KUBEGATE_DRAIN_TIMEOUT: '5s',
      ...opts.proxyEnv,
    };
    const admin = async (args: string[]) => {
      const r = await runKubegate(['admin', ...args], env);
      if (r.code !== 0)
        throw new Error(`kubegate admin ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.stdout;
    };
    log('applying migrations');
    const m = await runKubegate(['migrate'], env);
    if (m.code !== 0) throw new Error(`kubegate migrate failed: ${m.stderr}`);

    log('starting the proxy');
    const proxy = await startProxy(env, 'proxy', opts.proxyEnv ?? {});
    watched.push(proxy);
    cleanup.push(() => proxy.stop());

    const agents = new Map<string, Proc>();
    const agentEnv = new Map<string, NodeJS.ProcessEnv>();
    const attach = async (c: StackCluster) => {
      log(`starting a test cluster for "${c.name}" (kube-apiserver, etcd, controller-manager)`);
      const cluster = await startCluster(c.nodes ? { nodes: c.nodes, timeoutMs: 180_000 } : {});
      cleanup.push(() => cluster.stop());
      clusters.set(c.name, cluster);
      const admKube = { kubeconfig: cluster.kubeconfig };
      log(`registering cluster "${c.name}" and applying its bootstrap YAML`);
      const yamlFile = join(dir, `${c.name}-bootstrap.yaml`);
      await admin([
        'cluster',
        'add',
        c.name,
        ...Object.entries(c.labels ?? {}).map(([k, v]) => `--label=${k}=${v}`),
        '--out',
        yamlFile,
      ]);
      await kubectlOk(['apply', '-f', yamlFile], admKube);
      // The agent reads what the Deployment would mount: the bootstrap Secret and a ServiceAccount token.
      const secret = JSON.parse(
        await kubectlOk(
          ['get', 'secret', 'kubegate-agent-bootstrap', '-n', 'kubegate-system', '-o', 'json'],
          admKube,
        ),
      ) as { data: Record<string, string> };
      const val = (k: string) => Buffer.from(secret.data[k]!, 'base64').toString('utf8');
      const adir = join(dir, `agent-${c.name}`);
      mkdirSync(adir, { recursive: true });
      writeFileSync(join(adir, 'ca.crt'), val('ca.crt'));
      writeFileSync(join(adir, 'token'), val('token'), { mode: 0o600 });
      const saToken = await kubectlOk(
        ['create', 'token', 'kubegate-agent', '-n', 'kubegate-system', '--duration=24h'],
        admKube,
      );
      writeFileSync(join(adir, 'sa-token'), saToken.trim(), { mode: 0o600 });
      agentEnv.set(c.name, {
        KUBEGATE_CLUSTER: val('cluster'),
        KUBEGATE_TUNNEL_ADDRESS: val('tunnel-address'),
        KUBEGATE_TUNNEL_SERVER_NAME: val('tunnel-server-name'),
        KUBEGATE_ENROLL_ADDRESS: val('enroll-address'),
        KUBEGATE_PROXY_CA_FILE: join(adir, 'ca.crt'),
        KUBEGATE_BOOTSTRAP_TOKEN_FILE: join(adir, 'token'),
        KUBEGATE_APISERVER_URL: cluster.server,
        KUBEGATE_APISERVER_CA_FILE: cluster.caFile,
        KUBEGATE_APISERVER_TOKEN_FILE: join(adir, 'sa-token'),
        KUBEGATE_NAMESPACE: 'kubegate-system',
        KUBEGATE_LOG_LEVEL: 'info',
        ...opts.agentEnv,
      });
    };
    for (const c of opts.clusters ?? [{ name: 'dev', labels: { env: 'dev' } }]) await attach(c);

    const startAgent = async (
      name: string,
      tunnelAddress?: string,
      extraEnv: NodeJS.ProcessEnv = {},
    ) => {
      const base = agentEnv.get(name);
      const e = base && { ...base, ...extraEnv };
      if (!e) throw new Error(`no cluster ${name} in this stack`);
      log(`starting the agent for "${name}"`);
      const agent = startKubegate(
        ['agent'],
        tunnelAddress ? { ...e, KUBEGATE_TUNNEL_ADDRESS: tunnelAddress } : e,
        `agent-${name}`,
      );
      watched.push(agent);
      agents.set(tunnelAddress ? `${name}@${tunnelAddress}` : name, agent);
      await agent.waitFor(/"msg":"tunnel up"/, 30_000);
      return agent;
    };
    for (const name of agentEnv.keys()) await startAgent(name);
    cleanup.push(async () => {
      for (const a of agents.values()) await a.stop();
    });

    const sqlPool = new pgLib.Pool({ connectionString: databaseUrl, max: 2 });
    sqlPool.on('error', () => undefined); // the database may be stopped on purpose
    cleanup.unshift(() => sqlPool.end());
    return {
      dir,
      pg,
      cluster: clusters.values().next().value!,
      clusters,
      databaseUrl,
      env,
      publicUrl: env.KUBEGATE_PUBLIC_URL!, // proxyEnv may move the front
      proxy,
      agents,
      agentEnv,
      admin,
      async kubeconfig(user, groups = [], ttl = '1h') {
        const file = join(dir, `kubeconfig-${user}-${randomBytes(3).toString('hex')}`);
        await admin([
          'kubeconfig',
          '--user',
          user,
          ...groups.map((g) => `--group=${g}`),
          '--ttl',
          ttl,
          '--out',
          file,
        ]);
        return file;
      },
      startAgent,
      async addCluster(c) {
        await attach(c);
        await startAgent(c.name);
      },
      async startReplica() {
        const renv = {
          ...env,
          ...(await proxyPortEnv()),
          // Its own metrics port, if the first replica serves metrics (never the same one).
          ...(env.KUBEGATE_METRICS_LISTEN
            ? { KUBEGATE_METRICS_LISTEN: `127.0.0.1:${await freePort()}` }
            : {}),
        };
        const replica = await startProxy(renv, 'proxy-replica', {});
        watched.push(replica);
        cleanup.push(() => replica.stop());
        return { proxy: replica, env: renv, publicUrl: renv.KUBEGATE_PUBLIC_URL };
      },
      async sql<T>(text: string, params: unknown[] = []) {
        return (await sqlPool.query(text, params)).rows as T[];
      },
      stop: stopAndCheck,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

const portKeys = [
  'KUBEGATE_LISTEN',
  'KUBEGATE_TUNNEL_LISTEN',
  'KUBEGATE_ENROLL_LISTEN',
  'KUBEGATE_PUBLIC_URL',
  'KUBEGATE_TUNNEL_ADDRESS',
] as const;

/** A proxy's listeners (front, tunnel, enrollment) on loopback ports picked now. */
async function proxyPortEnv(): Promise<Record<(typeof portKeys)[number], string>> {
  const front = await freePort();
  const tunnel = await freePort();
  const enroll = await freePort();
  return {
    KUBEGATE_LISTEN: `127.0.0.1:${front}`,
    KUBEGATE_TUNNEL_LISTEN: `127.0.0.1:${tunnel}`,
    KUBEGATE_ENROLL_LISTEN: `127.0.0.1:${enroll}`,
    KUBEGATE_PUBLIC_URL: `https://127.0.0.1:${front}`,
    KUBEGATE_TUNNEL_ADDRESS: `127.0.0.1:${tunnel}`,
  };
}

/**
 * Start a proxy and wait until it listens. A port from freePort is free when
 * picked, but another test process beside this one can bind it first (seen as
 * EADDRINUSE with two end-to-end files running at once); the proxy is then
 * started again on new ports, up to three times in all, and `env` is updated
 * in place so everything that uses it sees the ports in use. Ports the test
 * chose itself (`fixed`) are never changed.
 */
async function startProxy(
  env: NodeJS.ProcessEnv,
  name: string,
  fixed: NodeJS.ProcessEnv,
): Promise<Proc> {
  const ownPorts = !portKeys.some((k) => k in fixed);
  for (let attempt = 1; ; attempt++) {
    const proc = startKubegate(['proxy'], env, name);
    try {
      await proc.waitFor(/kubegate proxy listening/, 30_000);
      return proc;
    } catch (err) {
      await proc.stop();
      if (!ownPorts || attempt >= 3 || !String(err).includes('EADDRINUSE')) throw err;
      Object.assign(env, await proxyPortEnv());
    }
  }
}
