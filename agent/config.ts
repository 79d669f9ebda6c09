/**
 * The agent's configuration. In a cluster, the bootstrap YAML's Deployment
 * sets these from the bootstrap Secret; in tests the agent runs as a local
 * process with exactly the same variables.
 */
import { readFileSync } from 'node:fs';
import { KgError } from '../common/errors.js';
import { loadConfig, type ConfigOf, type Schema } from '../common/config.js';
import { workersProblem } from '../common/workers.js';

const sa = '/var/run/secrets/kubernetes.io/serviceaccount';

export const agentSchema = {
  cluster: {
    env: 'KUBEGATE_CLUSTER',
    type: 'string',
    required: true,
    doc: 'Name of this cluster as registered in kubegate.',
  },
  tunnelAddress: {
    env: 'KUBEGATE_TUNNEL_ADDRESS',
    type: 'string',
    required: true,
    doc: 'host:port of the proxy tunnel listener.',
  },
  tunnelServerName: {
    env: 'KUBEGATE_TUNNEL_SERVER_NAME',
    type: 'string',
    doc: 'TLS server name to expect on the tunnel listener (defaults to the host of tunnelAddress).',
  },
  enrollAddress: {
    env: 'KUBEGATE_ENROLL_ADDRESS',
    type: 'string',
    required: true,
    doc: "host:port of the proxy's enrollment listener, for first enrollment with the bootstrap token. Certificate renewal goes to tunnelAddress, with the current certificate.",
  },
  enrollServerName: {
    env: 'KUBEGATE_ENROLL_SERVER_NAME',
    type: 'string',
    doc: 'TLS server name to expect on the enrollment listener (defaults to the host of enrollAddress).',
  },
  proxyCaFile: {
    env: 'KUBEGATE_PROXY_CA_FILE',
    type: 'string',
    required: true,
    doc: 'The proxy CA pinned at enrollment; the agent refuses any proxy that does not chain to it.',
  },
  bootstrapTokenFile: {
    env: 'KUBEGATE_BOOTSTRAP_TOKEN_FILE',
    type: 'string',
    doc: 'File holding the one-time bootstrap token (used only when no identity Secret exists yet).',
  },
  apiserverUrl: {
    env: 'KUBEGATE_APISERVER_URL',
    type: 'url',
    doc: 'The apiserver; defaults to the in-cluster service address.',
  },
  apiserverCaFile: {
    env: 'KUBEGATE_APISERVER_CA_FILE',
    type: 'string',
    doc: "CA of the apiserver's serving certificate.",
  },
  apiserverTokenFile: {
    env: 'KUBEGATE_APISERVER_TOKEN_FILE',
    type: 'string',
    doc: "The agent's own ServiceAccount token (re-read as it rotates).",
  },
  namespace: {
    env: 'KUBEGATE_NAMESPACE',
    type: 'string',
    doc: 'Namespace of the agent and everything it creates.',
  },
  identitySecret: {
    env: 'KUBEGATE_IDENTITY_SECRET',
    type: 'string',
    doc: 'Secret that keeps the agent certificate and key between restarts.',
  },
  tunnels: {
    env: 'KUBEGATE_TUNNELS',
    type: 'int',
    doc: 'Tunnels to keep open to the proxy.',
    check: (v) =>
      (v as number) >= 1 && (v as number) <= 16 ? undefined : 'must be between 1 and 16',
  },
  reconnectBase: {
    env: 'KUBEGATE_RECONNECT_BASE',
    type: 'duration',
    doc: 'First reconnect delay; doubles per failure, with full jitter.',
  },
  reconnectMax: {
    env: 'KUBEGATE_RECONNECT_MAX',
    type: 'duration',
    doc: 'Cap of the reconnect delay.',
  },
  rebalanceInterval: {
    env: 'KUBEGATE_REBALANCE_INTERVAL',
    type: 'duration',
    doc: 'How often the agent checks that its tunnels reach distinct proxy replicas, and moves one that shares a replica when more are live.',
  },
  forwardMode: {
    env: 'KUBEGATE_FORWARD_MODE',
    type: 'string',
    doc: '`jit` (default): requests run as a just-in-time ServiceAccount per user; `impersonate`: as the user via impersonation headers.',
    check: (v) => (v === 'jit' || v === 'impersonate' ? undefined : 'must be jit or impersonate'),
  },
  jitIdle: {
    env: 'KUBEGATE_JIT_IDLE',
    type: 'duration',
    doc: 'A JIT account unused this long is deleted with its bindings.',
  },
  jitTokenSeconds: {
    env: 'KUBEGATE_JIT_TOKEN_SECONDS',
    type: 'int',
    doc: 'Lifetime of JIT account tokens (TokenRequest; at least 600).',
    check: (v) => ((v as number) >= 600 ? undefined : 'must be at least 600'),
  },
  jitCleanupInterval: {
    env: 'KUBEGATE_JIT_CLEANUP_INTERVAL',
    type: 'duration',
    doc: 'How often idle JIT accounts and orphaned bindings are swept.',
  },
  jitCeilingFile: {
    env: 'KUBEGATE_JIT_CEILING_FILE',
    type: 'string',
    doc: 'JSON list of PolicyRules: the agent refuses grants beyond them.',
  },
  metricsListen: {
    env: 'KUBEGATE_METRICS_LISTEN',
    type: 'string',
    doc: 'host:port of the internal Prometheus /metrics endpoint (plain HTTP). Unset: no metrics server.',
  },
  logLevel: { env: 'KUBEGATE_LOG_LEVEL', type: 'string', doc: 'pino log level.' },
  workers: {
    env: 'KUBEGATE_WORKERS',
    type: 'string',
    check: workersProblem,
    doc: 'Processes carrying this agent\'s tunnels and requests, so it uses more than one core: a number, or "auto" (one per core of the container\'s CPU limit, else per core available, at most 8). Each worker keeps KUBEGATE_TUNNELS tunnels; the identity and the just-in-time accounts stay in one process (the primary), which the workers ask; /metrics sums them.',
  },
} as const satisfies Schema;

export type AgentConfig = ConfigOf<typeof agentSchema>;

function inClusterUrl(env: NodeJS.ProcessEnv): string | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) return undefined;
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function loadAgentConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return loadConfig(
    agentSchema,
    {
      apiserverUrl: inClusterUrl(env),
      apiserverCaFile: `${sa}/ca.crt`,
      apiserverTokenFile: `${sa}/token`,
      namespace: 'kubegate-system',
      identitySecret: 'kubegate-agent-identity',
      tunnels: 2,
      reconnectBase: '250ms',
      reconnectMax: '30s',
      rebalanceInterval: '30s',
      logLevel: 'info',
      workers: '1',
      forwardMode: 'jit',
      jitIdle: '30m',
      jitTokenSeconds: 600,
      jitCleanupInterval: '1m',
    },
    env,
  );
}

type FileSetting = {
  [K in keyof typeof agentSchema]: (typeof agentSchema)[K]['env'] extends `${string}_FILE`
    ? K
    : never;
}[keyof typeof agentSchema];

/** A configuration error about the file named by `setting`: names the variable, the file and the problem. */
export function configFileError(
  setting: FileSetting,
  file: string,
  problem: string,
  cause?: unknown,
): KgError {
  return new KgError('KG_ERR_CONFIG', `${agentSchema[setting].env} (${file}): ${problem}`, {
    cause,
  });
}

/** The text of the file named by `setting`; a clear configuration error when it cannot be read. */
export function readConfigFile(setting: FileSetting, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw configFileError(setting, file, `cannot be read: ${(err as Error).message}`, err);
  }
}

/** A CA bundle: the file must hold at least one PEM certificate. */
export function readCaFile(setting: FileSetting, file: string): string {
  const pem = readConfigFile(setting, file);
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw configFileError(setting, file, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  return pem;
}
