/**
 * The proxy's configuration schema and defaults. Every field is documented
 * here once; the configuration reference in docs/ is generated from it.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { loadConfig, parseHostPort, type ConfigOf, type Schema } from '../common/config.js';
import { KgError } from '../common/errors.js';
import { workersProblem } from '../common/workers.js';
import { checkBucket, checkPrefix } from './recording/object-key.js';
import type { S3Settings } from './recording/s3-storage.js';

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
    doc: 'host:port of the tunnel listener that agents dial (mTLS: the handshake refuses any client without a valid agent certificate).',
  },
  enrollListen: {
    env: 'KUBEGATE_ENROLL_LISTEN',
    type: 'string',
    doc: 'host:port of the enrollment listener (TLS, HTTP/1.1, no client certificate): agents trade their one-time bootstrap token for a certificate here. Separate from the tunnel listener, which accepts only agent certificates and is where agents renew them.',
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
  enrollAddress: {
    env: 'KUBEGATE_ENROLL_ADDRESS',
    type: 'string',
    doc: 'host:port agents first enroll at (they renew on the tunnel address); written into bootstrap YAML. Default: the host of tunnelAddress with the port of enrollListen.',
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
  bodyBufferPerIdentity: {
    env: 'KUBEGATE_BODY_BUFFER_PER_IDENTITY',
    type: 'int',
    doc: 'Request-body bytes one user or robot may have held in memory on a replica at once (bodies of unknown length, held so that one over the size limit never reaches the cluster, and bodies the approval gate fingerprints). Beyond it, bodies of unknown length are streamed to the cluster instead and gated requests get 429.',
  },
  bodyBufferPerReplica: {
    env: 'KUBEGATE_BODY_BUFFER_PER_REPLICA',
    type: 'int',
    doc: 'Request-body bytes a replica holds in memory at once, over all identities (same rules as bodyBufferPerIdentity).',
  },
  bodyIdleTimeout: {
    env: 'KUBEGATE_BODY_IDLE_TIMEOUT',
    type: 'duration',
    doc: 'A request body that sends no bytes for this long is answered 408 and its stream reset (the request is cancelled on the cluster).',
  },
  tunnelProbeAfter: {
    env: 'KUBEGATE_TUNNEL_PROBE_AFTER',
    type: 'duration',
    doc: "A request that has waited this long for its response headers makes the proxy PING its tunnel (and the agent's other tunnels), so a silently dead agent is noticed while requests wait on it.",
  },
  tunnelProbeTimeout: {
    env: 'KUBEGATE_TUNNEL_PROBE_TIMEOUT',
    type: 'duration',
    doc: 'A tunnel that does not answer such a PING within this long is retired: requests that can be sent again safely (GET, HEAD, OPTIONS not yet answered) go to another tunnel, the others get a Status saying the tunnel stopped answering.',
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
  // --- Identity: OIDC single sign-on, sessions, tokens, robots (docs/sso.md) ---
  oidcIssuerUrl: {
    env: 'KUBEGATE_OIDC_ISSUER_URL',
    type: 'url',
    doc: 'Issuer URL of the company OpenID Provider; unset = single sign-on off (tokens from the CLI still work). Must be https unless oidcAllowInsecureIssuer.',
  },
  oidcClientId: {
    env: 'KUBEGATE_OIDC_CLIENT_ID',
    type: 'string',
    doc: 'OIDC client id registered for kubegate at the provider.',
  },
  oidcClientSecret: {
    env: 'KUBEGATE_OIDC_CLIENT_SECRET',
    type: 'string',
    secret: true,
    doc: 'OIDC client secret (client_secret_basic); unset = a public client (PKCE only).',
  },
  oidcScopes: {
    env: 'KUBEGATE_OIDC_SCOPES',
    type: 'list',
    doc: 'Scopes requested at sign-in; add the scope your provider needs to release the groups claim (e.g. "groups").',
  },
  oidcRedirectUrl: {
    env: 'KUBEGATE_OIDC_REDIRECT_URL',
    type: 'url',
    doc: 'The redirect URI registered at the provider; defaults to <publicUrl>/auth/callback. Never taken from Host or X-Forwarded-*.',
  },
  oidcUsernameClaim: {
    env: 'KUBEGATE_OIDC_USERNAME_CLAIM',
    type: 'string',
    doc: 'ID token / userinfo claim that becomes the kubegate (and Kubernetes) user name.',
  },
  oidcGroupsClaim: {
    env: 'KUBEGATE_OIDC_GROUPS_CLAIM',
    type: 'string',
    doc: "Claim holding the user's groups: a JSON array or a comma-separated string.",
  },
  oidcGroupsOverage: {
    env: 'KUBEGATE_OIDC_GROUPS_OVERAGE',
    type: 'string',
    check: (v) =>
      v === 'refuse' || v === 'no-groups'
        ? undefined
        : `must be "refuse" or "no-groups", got "${String(v)}"`,
    doc: 'When the provider says the groups did not fit in the token (overage: _claim_names/_claim_sources or hasgroups): "refuse" the sign-in, or sign in with "no-groups" (only bindings naming the user apply).',
  },
  oidcAllowInsecureIssuer: {
    env: 'KUBEGATE_OIDC_ALLOW_INSECURE_ISSUER',
    type: 'bool',
    doc: 'Allow an http:// issuer (a loopback dev or test provider only; never in production).',
  },
  sessionMaxAge: {
    env: 'KUBEGATE_SESSION_MAX_AGE',
    type: 'duration',
    doc: 'Longest a browser session lives after the user authenticated at the provider; then a fresh SSO sign-in is required.',
  },
  ssoTokenMaxAge: {
    env: 'KUBEGATE_SSO_TOKEN_MAX_AGE',
    type: 'duration',
    doc: 'A token minted through single sign-on (a kubeconfig downloaded after signing in, or minted with such a token) expires at most this long after the sign-in at the provider (auth_time), whatever ttl was asked for. Groups frozen into it are then at most this old, even when the provider gives no refresh token.',
  },
  oidcRefreshInterval: {
    env: 'KUBEGATE_OIDC_REFRESH_INTERVAL',
    type: 'duration',
    doc: "How often a sign-in's groups are re-read from the provider with its refresh token (when it issues one: add offline_access to KUBEGATE_OIDC_SCOPES for most providers). New groups reach the sign-in's tokens and sessions at once; a refused refresh (user removed or disabled, grant revoked) revokes every token of the sign-in.",
  },
  tokenMaxTtl: {
    env: 'KUBEGATE_TOKEN_MAX_TTL',
    type: 'duration',
    doc: 'Longest lifetime a user may ask for a kubeconfig token (tokenTtl is the default).',
  },
  robotTokenTtl: {
    env: 'KUBEGATE_ROBOT_TOKEN_TTL',
    type: 'duration',
    doc: 'Default lifetime of robot tokens.',
  },
  robotTokenMaxTtl: {
    env: 'KUBEGATE_ROBOT_TOKEN_MAX_TTL',
    type: 'duration',
    doc: 'Longest lifetime an admin may give a robot token.',
  },
  // --- Audit: every request one event, nothing lost (proxy/audit/) ---
  audit: {
    env: 'KUBEGATE_AUDIT',
    type: 'string',
    check: (v) =>
      v === 'on' || v === 'off' ? undefined : `must be "on" or "off", got "${String(v)}"`,
    doc: '"on" records every request. "off" records nothing and exists ONLY to measure the cost of audit (benchmark P8); never run a real proxy with it.',
  },
  auditSpoolDir: {
    env: 'KUBEGATE_AUDIT_SPOOL_DIR',
    type: 'string',
    doc: 'Directory of the local audit spool (events kept on disk while PostgreSQL is unreachable, replayed when it returns); one per proxy process, on a persistent volume in production. Default: a directory under the system temp dir derived from the database and listen address.',
  },
  auditSpoolMaxBytes: {
    env: 'KUBEGATE_AUDIT_SPOOL_MAX_BYTES',
    type: 'int',
    check: (v) => ((v as number) > 0 ? undefined : 'must be a positive number of bytes'),
    doc: 'When the spool holds this many bytes, new Kubernetes requests are refused with 503 rather than served without a record.',
  },
  auditStrict: {
    env: 'KUBEGATE_AUDIT_STRICT',
    type: 'bool',
    doc: "Write each request's event to the spool (fsync) before forwarding it, so even a crash loses no event of a forwarded request; costs a disk flush per request batch.",
  },
  auditRetention: {
    env: 'KUBEGATE_AUDIT_RETENTION',
    type: 'duration',
    doc: 'How long audit events are kept; whole days past it are dropped.',
  },
  auditPolicyFile: {
    env: 'KUBEGATE_AUDIT_POLICY_FILE',
    type: 'string',
    doc: 'An audit.k8s.io/v1 Policy (YAML or JSON; rules may name `clusters`) choosing Metadata, Request or RequestResponse per cluster, user, group, resource and verb. Unset: Metadata for everything.',
  },
  auditWebhookUrl: {
    env: 'KUBEGATE_AUDIT_WEBHOOK_URL',
    type: 'url',
    secret: true,
    doc: "Also POST events to this URL as audit.k8s.io/v1 EventList batches (as the apiserver's webhook backend does), retried with back-off.",
  },
  // --- Scale-out: replica registry, peer forwarding, drain (proxy/ha/) ---
  peerListen: {
    env: 'KUBEGATE_PEER_LISTEN',
    type: 'string',
    doc: 'host:port of the peer listener other replicas relay requests to (mTLS with replica certificates from the internal CA). Port 0 picks a free port.',
  },
  peerAddress: {
    env: 'KUBEGATE_PEER_ADDRESS',
    type: 'string',
    doc: 'host:port other replicas dial to reach this one (e.g. the pod IP); default: the peerListen host and the port it got.',
  },
  replicaHeartbeat: {
    env: 'KUBEGATE_REPLICA_HEARTBEAT',
    type: 'duration',
    doc: "How often a replica renews its registry row and re-reads the list of live replicas; where a remote cluster's tunnels are is looked up when a request needs it and trusted for this long.",
  },
  replicaStaleAfter: {
    env: 'KUBEGATE_REPLICA_STALE_AFTER',
    type: 'duration',
    doc: 'A replica whose heartbeat is older than this is gone: its rows (and its tunnels) are deleted by the others.',
  },
  drainTimeout: {
    env: 'KUBEGATE_DRAIN_TIMEOUT',
    type: 'duration',
    doc: 'On SIGTERM, how long in-flight requests may take to finish before open watches and exec sessions are ended (keep it below the pod termination grace period).',
  },
  runbookLease: {
    env: 'KUBEGATE_RUNBOOK_LEASE',
    type: 'duration',
    doc: 'How long a replica holds a runbook run it works on without renewing (renewed at a third of it). When a replica stops mid-run, another takes the run over after this: a step that was in flight is reported as unknown, never sent again.',
  },
  namespaceReconcile: {
    env: 'KUBEGATE_NAMESPACE_RECONCILE',
    type: 'duration',
    doc: 'How often each self-service namespace is checked against its profile (docs/namespaces.md): a quota, limit range or network policy someone deleted or changed on the cluster is put back, and the change audited, within this. Creating and deleting namespaces does not wait for it.',
  },
  // --- Session recording (docs/recording.md) ---
  recordingDefaultMode: {
    env: 'KUBEGATE_RECORDING_DEFAULT_MODE',
    type: 'string',
    check: (v) =>
      v === 'off' || v === 'best-effort' || v === 'required'
        ? undefined
        : `must be "off", "best-effort" or "required", got "${String(v)}"`,
    doc: 'How exec, attach and port-forward sessions that no recording policy names are recorded: off, best-effort (recorded when the store can take it; otherwise the session runs and its audit event says unrecorded) or required (a session whose recording cannot be started is refused, one whose recording fails is ended). Recording policies (`/api/v1/recording-policies`) override it per cluster and namespace; the strictest matching one wins.',
  },
  recordingViewerGroups: {
    env: 'KUBEGATE_RECORDING_VIEWER_GROUPS',
    type: 'list',
    doc: 'Groups whose members may list and download session recordings, besides the admin groups. Every download is audited.',
  },
  recordingStorage: {
    env: 'KUBEGATE_RECORDING_STORAGE',
    type: 'string',
    check: (v) =>
      v === 'postgres' || v === 's3' ? undefined : `must be "postgres" or "s3", got "${String(v)}"`,
    doc: 'Where new recordings are kept: "postgres" (the database kubegate already uses; nothing more to run) or "s3" (an S3-compatible object store: one encrypted object per session, settings below). Recordings already kept stay readable after a change.',
  },
  recordingS3Endpoint: {
    env: 'KUBEGATE_RECORDING_S3_ENDPOINT',
    type: 'url',
    doc: 'URL of an S3-compatible object store (MinIO, Ceph, versitygw, SeaweedFS…); unset: AWS S3 in recordingS3Region.',
  },
  recordingS3Bucket: {
    env: 'KUBEGATE_RECORDING_S3_BUCKET',
    type: 'string',
    check: (v) => checkBucket(v as string),
    doc: 'The bucket recordings are written to (it must exist); required with recordingStorage "s3".',
  },
  recordingS3Region: {
    env: 'KUBEGATE_RECORDING_S3_REGION',
    type: 'string',
    doc: "The bucket's region (S3-compatible stores mostly accept any).",
  },
  recordingS3Prefix: {
    env: 'KUBEGATE_RECORDING_S3_PREFIX',
    type: 'string',
    check: (v) => checkPrefix(v as string),
    doc: 'Key prefix of the recording objects (keys are <prefix>/<yyyy>/<mm>/<dd>/<recording id>.cast.enc).',
  },
  recordingS3AccessKeyId: {
    env: 'KUBEGATE_RECORDING_S3_ACCESS_KEY_ID',
    type: 'string',
    secret: true,
    doc: "Access key id for the object store; unset: the AWS SDK's default credential chain (AWS_* environment, web identity / IRSA, instance role…).",
  },
  recordingS3SecretAccessKey: {
    env: 'KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY',
    type: 'string',
    secret: true,
    doc: 'Secret access key for recordingS3AccessKeyId (set both or neither).',
  },
  recordingS3ForcePathStyle: {
    env: 'KUBEGATE_RECORDING_S3_FORCE_PATH_STYLE',
    type: 'bool',
    doc: 'Address the bucket in the path (https://host/bucket/key), as most S3-compatible stores want, rather than as a host name (https://bucket.host/key).',
  },
  recordingS3Sse: {
    env: 'KUBEGATE_RECORDING_S3_SSE',
    type: 'string',
    check: (v) =>
      v === '' || v === 'AES256' || v === 'aws:kms'
        ? undefined
        : `must be "AES256", "aws:kms" or empty, got "${String(v)}"`,
    doc: "Server-side encryption asked of the store for each object, on top of kubegate's own envelope encryption (every object is encrypted with a data key of its own, sealed by the master key): AES256, aws:kms, or empty for none.",
  },
  recordingS3SseKmsKeyId: {
    env: 'KUBEGATE_RECORDING_S3_SSE_KMS_KEY_ID',
    type: 'string',
    doc: 'The KMS key for recordingS3Sse "aws:kms" (unset: the bucket\'s default key).',
  },
  recordingRetention: {
    env: 'KUBEGATE_RECORDING_RETENTION',
    type: 'duration',
    check: (v) =>
      v === 0 || (v as number) >= 3_600_000
        ? undefined
        : 'must be at least 1h, or 0 to keep recordings until deleted',
    doc: 'How long recordings are kept after their session ended; a sweep (any replica, every 10 minutes) deletes older ones with their chunks or objects. 0 keeps them. The sweep also marks recordings left open by a replica that stopped as incomplete.',
  },
  metricsListen: {
    env: 'KUBEGATE_METRICS_LISTEN',
    type: 'string',
    doc: 'host:port of the internal Prometheus /metrics endpoint (plain HTTP). Unset: no metrics server.',
  },
  workers: {
    env: 'KUBEGATE_WORKERS',
    type: 'string',
    check: workersProblem,
    doc: 'Processes serving this replica, so it uses more than one core: a number, or "auto" (one per core of the container\'s CPU limit, else per core available, at most 8). Each worker is a replica of its own behind the shared front, tunnel and enrollment ports (replica id <replicaId>-w<n>, peer port peerListen + n, audit spool <dir>/worker-<n>); /metrics sums them.',
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
  enrollListen: '127.0.0.1:8445',
  tlsHosts: ['localhost', '127.0.0.1'],
  agentCertTtl: '24h',
  bootstrapTokenTtl: '1h',
  tokenTtl: '12h',
  tokenCacheTtl: '1s',
  maxRequestBody: 3 * 1024 * 1024,
  bodyBufferPerIdentity: 16 * 1024 * 1024,
  bodyBufferPerReplica: 128 * 1024 * 1024,
  bodyIdleTimeout: '30s',
  tunnelProbeAfter: '500ms',
  tunnelProbeTimeout: '2s',
  agentImage: 'ghcr.io/kubegate/kubegate:0.1.0',
  policyStaleAfter: '3s',
  adminGroups: ['kubegate-admins'],
  oidcScopes: ['openid', 'email', 'profile'],
  oidcUsernameClaim: 'email',
  oidcGroupsClaim: 'groups',
  oidcGroupsOverage: 'refuse',
  oidcAllowInsecureIssuer: false,
  sessionMaxAge: '12h',
  ssoTokenMaxAge: '12h',
  oidcRefreshInterval: '5m',
  tokenMaxTtl: '7d',
  robotTokenTtl: '90d',
  robotTokenMaxTtl: '365d',
  audit: 'on',
  auditSpoolMaxBytes: 1024 * 1024 * 1024,
  auditStrict: false,
  auditRetention: '90d',
  logLevel: 'info',
  migrateOnStart: false,
  workers: '1',
  peerListen: '127.0.0.1:0',
  replicaHeartbeat: '1s',
  replicaStaleAfter: '5s',
  drainTimeout: '20s',
  runbookLease: '30s',
  namespaceReconcile: '30s',
  recordingDefaultMode: 'best-effort',
  recordingViewerGroups: ['kubegate-auditors'],
  recordingStorage: 'postgres',
  recordingS3Region: 'us-east-1',
  recordingS3Prefix: 'recordings',
  recordingS3ForcePathStyle: false,
  recordingS3Sse: '',
  recordingRetention: '90d',
};

/** The object store settings, when recordings go to S3; throws KG_ERR_CONFIG naming what is missing. */
export function recordingS3Settings(c: ProxyConfig): S3Settings | undefined {
  if (c.recordingStorage !== 's3') return undefined;
  const problems: string[] = [];
  if (!c.recordingS3Bucket)
    problems.push(
      'KUBEGATE_RECORDING_S3_BUCKET (recordingS3Bucket) is required when KUBEGATE_RECORDING_STORAGE is "s3"',
    );
  if (!c.recordingS3AccessKeyId !== !c.recordingS3SecretAccessKey)
    problems.push(
      'KUBEGATE_RECORDING_S3_ACCESS_KEY_ID and KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY go together: set both, or neither for the default credential chain',
    );
  if (c.recordingS3SseKmsKeyId && c.recordingS3Sse !== 'aws:kms')
    problems.push('KUBEGATE_RECORDING_S3_SSE_KMS_KEY_ID needs KUBEGATE_RECORDING_S3_SSE=aws:kms');
  if (problems.length)
    throw new KgError('KG_ERR_CONFIG', `invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  return {
    endpoint: c.recordingS3Endpoint || undefined,
    bucket: c.recordingS3Bucket,
    region: c.recordingS3Region,
    prefix: c.recordingS3Prefix,
    accessKeyId: c.recordingS3AccessKeyId || undefined,
    secretAccessKey: c.recordingS3SecretAccessKey || undefined,
    forcePathStyle: c.recordingS3ForcePathStyle,
    sse: c.recordingS3Sse || undefined,
    sseKmsKeyId: c.recordingS3SseKmsKeyId || undefined,
  };
}

/** Where agents enroll: enrollAddress, or the tunnel host with the enrollment port. */
export function enrollAddressOf(c: {
  enrollAddress?: string;
  tunnelAddress: string;
  enrollListen: string;
}): string {
  if (c.enrollAddress) return c.enrollAddress;
  const host = parseHostPort(c.tunnelAddress).host;
  const port = parseHostPort(c.enrollListen).port;
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

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
