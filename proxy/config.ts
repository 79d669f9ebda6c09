/**
 * The proxy's configuration schema and defaults. Every field is documented
 * here once; the configuration reference in docs/ is generated from it.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { loadConfig, type ConfigOf, type Schema } from '../common/config.js';

export const proxySchema = {
  databaseUrl: {
    env: 'DATABASE_URL',
    type: 'string',
    required: true,
    secret: true,
    doc: 'PostgreSQL connection URL shared by all replicas.',
  },
  masterKey: {
    env: 'KUBEGATE_MASTER_KEY',
    type: 'string',
    required: true,
    secret: true,
    doc: '32 random bytes, base64: seals the internal CA keys in the database.',
  },
  listen: {
    env: 'KUBEGATE_LISTEN',
    type: 'string',
    doc: 'host:port of the front server (kubectl, console, REST API; TLS, HTTP/2 and HTTP/1.1).',
  },
  tunnelListen: {
    env: 'KUBEGATE_TUNNEL_LISTEN',
    type: 'string',
    doc: 'host:port of the tunnel listener that agents dial (mTLS).',
  },
  publicUrl: {
    env: 'KUBEGATE_PUBLIC_URL',
    type: 'url',
    required: true,
    doc: 'The URL users reach the proxy at; used in kubeconfigs. Never taken from Host or X-Forwarded-*.',
  },
  tunnelAddress: {
    env: 'KUBEGATE_TUNNEL_ADDRESS',
    type: 'string',
    required: true,
    doc: 'host:port agents dial; written into bootstrap YAML.',
  },
  tlsCertFile: {
    env: 'KUBEGATE_TLS_CERT_FILE',
    type: 'string',
    doc: 'PEM certificate for the front server; when unset, one is issued by the internal server CA for tlsHosts.',
  },
  tlsKeyFile: {
    env: 'KUBEGATE_TLS_KEY_FILE',
    type: 'string',
    doc: 'PEM private key for tlsCertFile.',
  },
  tlsHosts: {
    env: 'KUBEGATE_TLS_HOSTS',
    type: 'list',
    doc: 'DNS names and IPs the internally issued serving certificate covers.',
  },
  replicaId: {
    env: 'KUBEGATE_REPLICA_ID',
    type: 'string',
    doc: 'Name of this replica (defaults to hostname plus a random suffix).',
  },
  agentCertTtl: {
    env: 'KUBEGATE_AGENT_CERT_TTL',
    type: 'duration',
    doc: 'Lifetime of agent client certificates; agents renew at two thirds.',
  },
  bootstrapTokenTtl: {
    env: 'KUBEGATE_BOOTSTRAP_TOKEN_TTL',
    type: 'duration',
    doc: 'Lifetime of one-time bootstrap tokens in bootstrap YAML.',
  },
  tokenTtl: {
    env: 'KUBEGATE_TOKEN_TTL',
    type: 'duration',
    doc: 'Default lifetime of kubeconfig tokens.',
  },
  tokenCacheTtl: {
    env: 'KUBEGATE_TOKEN_CACHE_TTL',
    type: 'duration',
    doc: 'How long a replica trusts a token lookup before asking the database again.',
  },
  maxRequestBody: {
    env: 'KUBEGATE_MAX_REQUEST_BODY',
    type: 'int',
    doc: 'Largest request body forwarded, in bytes (the apiserver limit is 3 MiB).',
  },
  agentImage: {
    env: 'KUBEGATE_AGENT_IMAGE',
    type: 'string',
    doc: 'Container image written into bootstrap YAML.',
  },
  policyStaleAfter: {
    env: 'KUBEGATE_POLICY_STALE_AFTER',
    type: 'duration',
    doc: 'When a replica cannot confirm its policy with the database for this long, it refuses Kubernetes requests (503) until it can.',
  },
  adminGroups: {
    env: 'KUBEGATE_ADMIN_GROUPS',
    type: 'list',
    doc: 'Groups whose members administer kubegate (clusters, roles, bindings).',
  },
  logLevel: {
    env: 'KUBEGATE_LOG_LEVEL',
    type: 'string',
    doc: 'pino log level: fatal, error, warn, info, debug, trace.',
  },
  migrateOnStart: {
    env: 'KUBEGATE_MIGRATE_ON_START',
    type: 'bool',
    doc: 'Apply pending migrations at start-up (dev); production runs `kubegate migrate` as a job.',
  },
} as const satisfies Schema;

export type ProxyConfig = ConfigOf<typeof proxySchema>;

export const proxyDefaults = {
  listen: '127.0.0.1:8443',
  tunnelListen: '127.0.0.1:8444',
  tlsHosts: ['localhost', '127.0.0.1'],
  agentCertTtl: '24h',
  bootstrapTokenTtl: '1h',
  tokenTtl: '12h',
  tokenCacheTtl: '1s',
  maxRequestBody: 3 * 1024 * 1024,
  agentImage: 'ghcr.io/kubegate/kubegate:0.1.0',
  policyStaleAfter: '3s',
  adminGroups: ['kubegate-admins'],
  logLevel: 'info',
  migrateOnStart: false,
};

export function loadProxyConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof typeof proxySchema, unknown>> = {},
): ProxyConfig {
  return loadConfig(
    proxySchema,
    { ...proxyDefaults, replicaId: `${hostname()}-${randomBytes(3).toString('hex')}` },
    env,
    overrides,
  );
}
