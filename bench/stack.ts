/**
 * Kubegate under benchmark, from real parts: PostgreSQL, `kubegate migrate`,
 * proxy replicas and agent processes, configured by the CLI and by the same
 * variables the bootstrap YAML's Deployment sets. Authentication and
 * authorization are on as in production (bearer tokens, central bindings).
 *
 * Clusters come in two kinds: `addUpstreamCluster` points an agent at the
 * bench upstream (it also answers the agent's own API calls), and
 * `addRealCluster` at a real test cluster (kube-apiserver + etcd).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseAllDocuments } from 'yaml';
import pg from 'pg';
import { createDatabase, startPostgres, type PgServer } from '../test/support/postgres.js';
import { freePort } from '../test/support/ports.js';
import { runKubegate, startKubegate, type Proc } from '../test/support/proc.js';
import { startCluster, type TestCluster } from '../test/support/cluster.js';
import { kubectlOk } from '../test/support/kubectl.js';
import { probeNodeOptions } from './memory.js';

export interface Replica {
  name: string;
  proxy: Proc;
  env: NodeJS.ProcessEnv;
  publicUrl: string;
  frontPort: number;
  tunnelAddress: string;
  /** kill -9 and start again on the same ports; resolves once it listens. */
  restart(): Promise<Proc>;
  stop(): Promise<void>;
}

export interface Grant {
  users?: string[];
  groups?: string[];
  role: string;
  clusters?: string[];
  selector?: { matchLabels: Record<string, string> };
}

export interface BenchStack {
  dir: string;
  databaseUrl: string;
  masterKey: string;
  /** The first replica: every row but P10 and P11 goes through it. */
  main: Replica;
  /** CA of the proxy's serving certificates (front and tunnel listener). */
  proxyCaPem: string;
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  admin(args: string[]): Promise<string>;
  token(user: string, groups?: string[]): Promise<string>;
  grant(g: Grant): Promise<string>;
  /** Register `name` and return the agent env that points it at `apiserver`. */
  registerCluster(
    name: string,
    apiserver: { url: string; caFile: string; tokenFile: string },
  ): Promise<NodeJS.ProcessEnv>;
  /** Start an agent; `nodeOptions` defaults to the GC probe (none when `probe` is false). */
  startAgent(
    name: string,
    env: NodeJS.ProcessEnv,
    probe?: boolean,
    nodeOptions?: string,
  ): Promise<Proc>;
  addRealCluster(name: string): Promise<{ cluster: TestCluster; agent: Proc }>;
  startReplica(name: string, extraEnv?: NodeJS.ProcessEnv, nodeOptions?: string): Promise<Replica>;
  stop(): Promise<void>;
}

export async function startBenchStack(
  dir: string,
  log: (m: string) => void,
  proxyEnv: NodeJS.ProcessEnv = {},
): Promise<BenchStack> {
  mkdirSync(dir, { recursive: true });
  const cleanup: (() => Promise<unknown>)[] = [];
  const stop = async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  };
  try {
    log('starting PostgreSQL');
    const pgServer: PgServer = await startPostgres();
    cleanup.push(() => pgServer.stop());
    const databaseUrl = await createDatabase(pgServer, 'kgbench');
    const masterKey = randomBytes(32).toString('base64');
    const base: NodeJS.ProcessEnv = {
      DATABASE_URL: databaseUrl,
      KUBEGATE_MASTER_KEY: masterKey,
      KUBEGATE_LOG_LEVEL: 'info',
      ...proxyEnv,
    };
    const sqlPool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
    sqlPool.on('error', () => undefined);
    cleanup.push(() => sqlPool.end());
    const sql = async <T>(text: string, params: unknown[] = []) =>
      (await sqlPool.query(text, params)).rows as T[];

    const startReplica = async (
      name: string,
      extraEnv: NodeJS.ProcessEnv = {},
      nodeOptions = probeNodeOptions(),
    ): Promise<Replica> => {
      const frontPort = await freePort();
      const tunnelPort = await freePort();
      const enrollPort = await freePort();
      const env: NodeJS.ProcessEnv = {
        ...base,
        KUBEGATE_LISTEN: `127.0.0.1:${frontPort}`,
        KUBEGATE_TUNNEL_LISTEN: `127.0.0.1:${tunnelPort}`,
        KUBEGATE_ENROLL_LISTEN: `127.0.0.1:${enrollPort}`,
        KUBEGATE_PUBLIC_URL: `https://127.0.0.1:${frontPort}`,
        KUBEGATE_TUNNEL_ADDRESS: `127.0.0.1:${tunnelPort}`,
        KUBEGATE_REPLICA_ID: name,
        ...extraEnv,
      };
      const launch = async () => {
        const p = startKubegate(['proxy'], { ...env, NODE_OPTIONS: nodeOptions }, name);
        await p.waitFor(/kubegate proxy listening/, 30_000);
        return p;
      };
      const r: Replica = {
        name,
        proxy: await launch(),
        env,
        publicUrl: env.KUBEGATE_PUBLIC_URL!,
        frontPort,
        tunnelAddress: env.KUBEGATE_TUNNEL_ADDRESS!,
        async restart() {
          await r.proxy.stop('SIGKILL');
          r.proxy = await launch();
          return r.proxy;
        },
        stop: async () => {
          await r.proxy.stop();
          writeFileSync(join(dir, `${name}-${r.proxy.child.pid}.log`), r.proxy.output());
        },
      };
      cleanup.push(() => r.stop());
      return r;
    };

    // Called only once the main replica exists: the CLI needs its addresses.
    const admin = async (args: string[], env: NodeJS.ProcessEnv = main.env) => {
      const r = await runKubegate(['admin', ...args], { ...env, NODE_OPTIONS: '' });
      if (r.code !== 0) throw new Error(`kubegate admin ${args.join(' ')}: ${r.stderr}`);
      return r.stdout;
    };

    log('applying migrations');
    const m = await runKubegate(['migrate'], { ...base, NODE_OPTIONS: '' });
    if (m.code !== 0) throw new Error(`kubegate migrate failed: ${m.stderr}`);
    log('starting the proxy');
    const main = await startReplica('proxy-main');
    const proxyCaPem = (
      await sql<{ cert_pem: string }>("SELECT cert_pem FROM ca_keys WHERE name = 'server'")
    )[0]!.cert_pem;

    const registerCluster = async (
      name: string,
      apiserver: { url: string; caFile: string; tokenFile: string },
    ) => {
      const yamlFile = join(dir, `${name}-bootstrap.yaml`);
      await admin(['cluster', 'add', name, `--label=bench=${name}`, '--out', yamlFile]);
      const secret = parseAllDocuments(readFileSync(yamlFile, 'utf8'))
        .map((d) => d.toJS() as { kind?: string; stringData?: Record<string, string> })
        .find((o) => o?.kind === 'Secret' && o.stringData?.token);
      if (!secret?.stringData) throw new Error(`no bootstrap Secret in ${yamlFile}`);
      const s = secret.stringData;
      const adir = join(dir, `agent-${name}`);
      mkdirSync(adir, { recursive: true });
      writeFileSync(join(adir, 'ca.crt'), s['ca.crt']!);
      writeFileSync(join(adir, 'token'), s.token!, { mode: 0o600 });
      return {
        KUBEGATE_CLUSTER: s.cluster,
        KUBEGATE_TUNNEL_ADDRESS: s['tunnel-address'],
        KUBEGATE_TUNNEL_SERVER_NAME: s['tunnel-server-name'],
        KUBEGATE_ENROLL_ADDRESS: s['enroll-address'],
        KUBEGATE_PROXY_CA_FILE: join(adir, 'ca.crt'),
        KUBEGATE_BOOTSTRAP_TOKEN_FILE: join(adir, 'token'),
        KUBEGATE_APISERVER_URL: apiserver.url,
        KUBEGATE_APISERVER_CA_FILE: apiserver.caFile,
        KUBEGATE_APISERVER_TOKEN_FILE: apiserver.tokenFile,
        KUBEGATE_NAMESPACE: 'kubegate-system',
        KUBEGATE_LOG_LEVEL: 'info',
      } satisfies NodeJS.ProcessEnv;
    };

    const startAgent = async (
      name: string,
      env: NodeJS.ProcessEnv,
      probe = true,
      nodeOptions = probe ? probeNodeOptions() : '',
    ) => {
      const agent = startKubegate(
        ['agent'],
        { ...env, NODE_OPTIONS: nodeOptions },
        `agent-${name}`,
      );
      cleanup.push(async () => {
        await agent.stop();
        writeFileSync(join(dir, `agent-${name}-${agent.child.pid}.log`), agent.output());
      });
      await agent.waitFor(/"msg":"tunnel up"/, 30_000);
      return agent;
    };

    return {
      dir,
      databaseUrl,
      masterKey,
      main,
      proxyCaPem,
      sql,
      admin: (args) => admin(args),
      async token(user, groups = []) {
        const out = await admin([
          'token',
          'create',
          '--user',
          user,
          ...groups.map((g) => `--group=${g}`),
          '--ttl',
          '3h',
        ]);
        return out.trim();
      },
      async grant(g) {
        const subjects = [
          ...(g.groups ?? []).map((name) => ({ kind: 'Group', name })),
          ...(g.users ?? []).map((name) => ({ kind: 'User', name })),
        ];
        const rows = await sql<{ id: string }>(
          `INSERT INTO bindings (subjects, role, cluster_names, cluster_selector, namespaces, created_by)
           VALUES ($1, $2, $3, $4, '{}', 'bench') RETURNING id`,
          [
            JSON.stringify(subjects),
            g.role,
            g.clusters ?? [],
            g.selector ? JSON.stringify(g.selector) : null,
          ],
        );
        return rows[0]!.id;
      },
      registerCluster,
      startAgent,
      async addRealCluster(name) {
        log(`starting a real test cluster for "${name}"`);
        const cluster = await startCluster();
        cleanup.push(() => cluster.stop());
        const kube = { kubeconfig: cluster.kubeconfig };
        const adir = join(dir, `agent-${name}`);
        mkdirSync(adir, { recursive: true });
        const env = await registerCluster(name, {
          url: cluster.server,
          caFile: cluster.caFile,
          tokenFile: join(adir, 'sa-token'),
        });
        await kubectlOk(['apply', '-f', join(dir, `${name}-bootstrap.yaml`)], kube);
        const saToken = await kubectlOk(
          ['create', 'token', 'kubegate-agent', '-n', 'kubegate-system', '--duration=24h'],
          kube,
        );
        writeFileSync(join(adir, 'sa-token'), saToken.trim(), { mode: 0o600 });
        return { cluster, agent: await startAgent(name, env, false) };
      },
      startReplica,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
