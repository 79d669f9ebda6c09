/**
 * Identity in-process for integration tests, with real parts and no
 * cluster: embedded PostgreSQL with the real migrations, the real test
 * OpenID Provider, and the real front server (TLS, h2 + http/1.1) with the
 * identity handler mounted exactly as app.ts mounts it. The public URL is
 * `https://kg.example.test` — deliberately not the address the front listens
 * on — and each Browser maps it to its front, the way DNS and a load
 * balancer would.
 */
import { Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../common/log.js';
import { CertificateAuthority, createCa } from '../../common/pki.js';
import { KgError } from '../../common/errors.js';
import { loadProxyConfig } from '../../proxy/config.js';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { TokenStore } from '../../proxy/authn/token-store.js';
import { startFront, type Front } from '../../proxy/front/server.js';
import { respondError } from '../../proxy/http/respond-error.js';
import { createIdentityHandler, type IdentityHandler } from '../../proxy/identity/handler.js';
import { Browser } from './browser.js';
import { startIdp, idpProxyEnv, type Idp, type IdpClient } from './idp.js';
import { createDatabase, startPostgres, type PgServer } from './postgres.js';

export const publicUrl = 'https://kg.example.test';
export const publicHost = 'kg.example.test';

export interface IdentityWorld {
  pg: PgServer;
  databaseUrl: string;
  pool: Pool;
  idp: Idp;
  client: IdpClient;
  caPem: string;
  ca: CertificateAuthority;
  stop(): Promise<void>;
}

export async function startIdentityWorld(
  opts: { refreshTokens?: boolean } = {},
): Promise<IdentityWorld> {
  const pg = await startPostgres();
  const databaseUrl = await createDatabase(pg);
  const pool = createPool({ url: databaseUrl, max: 4 });
  await migrate(pool);
  const client: IdpClient = {
    clientId: 'kubegate',
    clientSecret: randomBytes(16).toString('hex'),
    redirectUris: [`${publicUrl}/auth/callback`],
  };
  const idp = await startIdp({ clients: [client], refreshTokens: opts.refreshTokens });
  const caKeys = await createCa('kubegate test CA', 86_400_000);
  const ca = await CertificateAuthority.load(caKeys);
  return {
    pg,
    databaseUrl,
    pool,
    idp,
    client,
    caPem: caKeys.certPem,
    ca,
    async stop() {
      await idp.close();
      await pool.end();
      await pg.stop();
    },
  };
}

export interface IdentityFront {
  front: Front;
  handler: IdentityHandler;
  tokens: TokenStore;
  /** Token lookups without a cache, for assertions right after a revocation. */
  lookup: TokenStore;
  /** Every log line the identity handler wrote (JSON). */
  logs: string[];
  /** A fresh browser that reaches this front at the public URL. */
  browser(): Browser;
  close(): Promise<void>;
}

/** A front with identity mounted; `env` overrides KUBEGATE_* settings. */
export async function startIdentityFront(
  w: IdentityWorld,
  env: NodeJS.ProcessEnv = {},
): Promise<IdentityFront> {
  const config = loadProxyConfig({
    DATABASE_URL: w.databaseUrl,
    KUBEGATE_MASTER_KEY: randomBytes(32).toString('base64'),
    KUBEGATE_PUBLIC_URL: publicUrl,
    KUBEGATE_TUNNEL_ADDRESS: '127.0.0.1:1',
    ...idpProxyEnv(w.idp, w.client),
    ...env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logs.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  const log = createLogger({ name: 'identity-test', level: 'debug', destination: sink });
  const tokens = new TokenStore(w.pool, config.tokenCacheTtl);
  const handler = createIdentityHandler({
    config,
    pool: w.pool,
    tokens,
    caPem: w.caPem,
    log,
    reapIntervalMs: 100,
  });
  const serving = await w.ca.issueKeyAndCert({
    commonName: publicHost,
    usage: 'server',
    ttlMs: 86_400_000,
    dnsNames: [publicHost, 'evil.example'],
    ips: ['127.0.0.1'],
  });
  const front = await startFront({
    host: '127.0.0.1',
    port: 0,
    certPem: serving.certPem,
    keyPem: serving.keyPem,
    log,
    kube: (req, res) =>
      respondError(res, new KgError('KG_ERR_NOT_FOUND', 'no clusters here'), req.url ?? '/', log),
    upgrade: (_req, socket) => socket.destroy(),
    identity: handler.handle,
    ready: () => true,
  });
  return {
    front,
    handler,
    tokens,
    lookup: new TokenStore(w.pool, 0),
    logs,
    browser: () =>
      new Browser({ ca: w.caPem, resolve: { [`${publicHost}:443`]: `127.0.0.1:${front.port}` } }),
    async close() {
      await Promise.all([front.close(), handler.close()]);
    },
  };
}

/** Insert a cluster row (no agent: these tests never forward). */
export async function addCluster(
  pool: Pool,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await pool.query('INSERT INTO clusters (name, labels) VALUES ($1, $2)', [name, labels]);
}

/** Insert a binding, as test/support/grants.ts does for a stack. */
export async function bind(
  pool: Pool,
  b: { groups?: string[]; users?: string[]; robots?: string[]; role: string; clusters: string[] },
): Promise<string> {
  const subjects = [
    ...(b.groups ?? []).map((name) => ({ kind: 'Group', name })),
    ...(b.users ?? []).map((name) => ({ kind: 'User', name })),
    ...(b.robots ?? []).map((name) => ({ kind: 'Robot', name })),
  ];
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO bindings (subjects, role, cluster_names, created_by) VALUES ($1, $2, $3, 'test') RETURNING id`,
    [JSON.stringify(subjects), b.role, b.clusters],
  );
  return rows[0]!.id;
}
