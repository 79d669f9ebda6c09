/**
 * The tunnel between agent and proxy: one mTLS connection, dialled by the
 * agent, carrying HTTP/2 with roles reversed (the agent is the HTTP/2 server,
 * the proxy the client). Each user request is one stream. These names are the
 * whole contract between the two programs.
 */
import type * as http2 from 'node:http2';
import type { SubjectKind } from './identity-key.js';

/**
 * ALPN. The tunnel listener refuses in the handshake any client without a
 * valid agent certificate, and offers `h2` (a tunnel) and `alpnRenew`
 * (certificate renewal: HTTP/1.1 requests, `renewPath` only, authenticated by
 * that same handshake). First enrollment has no certificate yet, so it has
 * its own listener, which asks for none and offers `http/1.1` (`enrollPath`
 * only). The renewal id is our own so that no generic HTTP/1.1 client ever
 * negotiates it: on the tunnel port `http/1.1` stays a handshake refusal.
 */
export const alpnTunnel = 'h2';
export const alpnEnroll = 'http/1.1';
export const alpnRenew = 'kubegate-renew/1';

/** First enrollment (enrollment listener) and renewal (tunnel listener, `alpnRenew`). */
export const enrollPath = '/enroll/v1';
export const renewPath = '/renew/v1';

/** Paths the proxy requests from the agent over the tunnel (never forwarded to the apiserver). */
export const helloPath = '/.kubegate/v1/hello';
export const controlPrefix = '/.kubegate/';
/**
 * Request header that marks a tunnel stream as a control message from the
 * proxy itself. The proxy sets it only on the control messages it originates
 * (hello, goaway, roles, grants, JIT users and accounts); a user request never
 * carries it: the front rebuilds request headers from an allow-list
 * (proxy/forward/headers.ts) that admits no `kg-` name, and the route stage
 * refuses the reserved path prefixes (proxy/route/kube-path.ts). The agent
 * answers a control path only on a stream with this marker and without a
 * user identity (agent/tunnel/control.ts `classifyStream`).
 */
export const hdrControl = 'kg-control';
export const hdrControlValue = '1';

/** Request headers the proxy adds on a tunnel stream; the agent trusts only these. */
export const hdrIdentity = 'kg-identity'; // base64url(JSON TunnelIdentity)
export const hdrAuditId = 'kg-audit-id';
export const hdrReplica = 'kg-replica';
/** The user's effective grants on this cluster: base64url(JSON TunnelGrant[]). */
export const hdrGrants = 'kg-grants';
/** Response header: the Kubernetes identity the request ran as on the cluster. */
export const hdrRanAs = 'kg-impersonated-as';
/** Request header: this stream is a connection upgrade (its value is the Upgrade header). */
export const hdrUpgrade = 'kg-upgrade';
/** Response header: the apiserver switched protocols (101); the stream now carries raw bytes. */
export const hdrUpgradeStatus = 'kg-upgrade-status';
/** Control paths (proxy → agent): role definitions, grant updates, the agent's JIT users. */
export const rolesPath = '/.kubegate/v1/roles';
export const grantsPath = '/.kubegate/v1/grants';
export const jitUsersPath = '/.kubegate/v1/jit-users';
/** Control path: what the agent holds on its cluster for JIT access (admin API view). */
export const jitAccountsPath = '/.kubegate/v1/jit-accounts';
/**
 * Control path (proxy → agent): this replica is draining; open a tunnel to
 * another replica, then close this one (existing streams may finish).
 */
export const goawayPath = '/.kubegate/v1/goaway';
/** Hello request header: how many live, non-draining replicas exist (agents spread over them). */
export const hdrReplicas = 'kg-replicas';
/** Hello answer status when the agent declines a tunnel (it already has one to that replica). */
export const helloDeclinedStatus = 421;
/**
 * Peer link (replica → replica, mTLS with replica certificates only): the
 * cluster a relayed tunnel stream is for, and how many relays it has passed.
 * Never accepted from the front: the front rebuilds headers from an allow-list.
 */
export const hdrPeerCluster = 'kg-peer-cluster';
export const hdrPeerHops = 'kg-peer-hops';
/** Response header the agent sets on its own errors (tunnel-level, not the apiserver's). */
export const hdrAgentError = 'kg-agent-error';
/**
 * Stream cancellation (proxy → agent) without RST_STREAM. The agent is the
 * HTTP/2 server of the tunnel, and nghttp2 (not tunable on Node 20, which an
 * agent of an older release may still run) ends a server session with GOAWAY after 1,000 resets received in a burst (33/s
 * after that): the "rapid reset" defence. A client dropping thousands of
 * watches at once would take the tunnel down with it. Beyond a reset budget
 * the proxy sends this request instead: header `kg-cancel`, body the ids of
 * streams on the same session, comma-separated; the agent resets them itself
 * (resets the server sends are not counted). Not under the control prefix:
 * it is handled with the request streams of its session.
 */
export const cancelPath = '/.kg-cancel';
export const hdrCancel = 'kg-cancel';

/**
 * Header names in kubegate's own namespace (`kg-…`, any case). The agent
 * never passes such a header from the apiserver (or a pod or aggregated API
 * server behind it) to the proxy: only the agent itself says who a request
 * ran as (`kg-impersonated-as`) or that an upgrade switched (`kg-upgrade-status`).
 */
export function isKubegateHeader(name: string): boolean {
  return (
    name.length >= 3 &&
    (name.charCodeAt(0) | 0x20) === 0x6b /* k */ &&
    (name.charCodeAt(1) | 0x20) === 0x67 /* g */ &&
    name.charCodeAt(2) === 0x2d /* - */
  );
}

export interface TunnelIdentity {
  user: string;
  groups: string[];
  /** Users, robots and runbooks are distinct subjects; absent means user. */
  kind?: SubjectKind;
  uid?: string;
}

/** One effective binding: a role by content-addressed name (`edit@1a2b…`), where. */
export interface TunnelGrant {
  role: string;
  /** Empty: cluster-wide. */
  namespaces: string[];
}

/** Role definitions pushed to agents: `name@hash` → PolicyRule-shaped rules. */
export type TunnelRoles = Record<string, TunnelRule[]>;

export interface TunnelRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** A grant update for one user (empty grants: the account goes away). */
export interface GrantUpdate {
  user: string;
  groups: string[];
  kind?: SubjectKind;
  grants: TunnelGrant[];
}

export function encodeGrants(g: TunnelGrant[]): string {
  return Buffer.from(JSON.stringify(g)).toString('base64url');
}

export function decodeGrants(value: string): TunnelGrant[] | undefined {
  try {
    const v = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown;
    if (
      Array.isArray(v) &&
      v.every(
        (g) =>
          typeof g === 'object' &&
          g !== null &&
          typeof (g as TunnelGrant).role === 'string' &&
          Array.isArray((g as TunnelGrant).namespaces) &&
          (g as TunnelGrant).namespaces.every((n) => typeof n === 'string'),
      )
    ) {
      return v as TunnelGrant[];
    }
  } catch {
    // fall through
  }
  return undefined;
}

export function encodeIdentity(id: TunnelIdentity): string {
  return Buffer.from(JSON.stringify(id)).toString('base64url');
}

export function decodeIdentity(value: string): TunnelIdentity | undefined {
  try {
    const v = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as unknown;
    if (
      typeof v === 'object' &&
      v !== null &&
      typeof (v as TunnelIdentity).user === 'string' &&
      Array.isArray((v as TunnelIdentity).groups) &&
      (v as TunnelIdentity).groups.every((g) => typeof g === 'string')
    ) {
      return v as TunnelIdentity;
    }
  } catch {
    // fall through
  }
  return undefined;
}

export interface HelloResponse {
  cluster: string;
  agentVersion: string;
  agentId: string;
}

/**
 * HTTP/2 tuning for the tunnel: stream windows above the
 * 64 KiB default, so one stream can fill the pipe; a high stream limit, since
 * every watch is a stream; more session memory for many open streams. The
 * stream window is also what a stalled reader's stream holds (P5): 512 KiB
 * keeps that under P5's 1 MB (0.70 MiB held beyond direct, with the agent's
 * 256 KiB upstream window) and still fills the pipe on 200 MiB LISTs (P3 72%
 * of nginx 2-hop in the same run; docs/adr/0020-tunnel-stream-window-512-kib.md).
 */
export const tunnelStreamWindow = 512 * 1024;
export const tunnelSessionWindow = 64 * 1024 * 1024;
export const tunnelMaxStreams = 100_000;
export const tunnelMaxSessionMemoryMb = 256;

/** HTTP/2 options of the side that opens a tunnel session on a socket it holds: the proxy, to an agent or a peer replica. */
export const tunnelConnectOptions = (): Pick<
  http2.ClientSessionOptions,
  'settings' | 'peerMaxConcurrentStreams' | 'maxSessionMemory'
> => ({
  settings: { initialWindowSize: tunnelStreamWindow, enablePush: false },
  peerMaxConcurrentStreams: tunnelMaxStreams,
  maxSessionMemory: tunnelMaxSessionMemoryMb,
});

/** HTTP/2 options of the side that serves a tunnel session: the agent, a replica's peer listener. */
export const tunnelServeOptions = (): Pick<
  http2.ServerOptions,
  'settings' | 'maxSessionMemory'
> => ({
  settings: {
    initialWindowSize: tunnelStreamWindow,
    maxConcurrentStreams: tunnelMaxStreams,
    enablePush: false,
  },
  maxSessionMemory: tunnelMaxSessionMemoryMb,
});

/**
 * Widen a tunnel session's receive window (both sides) once its settings are
 * exchanged. A session can be destroyed by then (its peer killed at that
 * moment), and setLocalWindowSize throws on a destroyed session: in an event
 * listener that would end the process.
 */
export function widenTunnelWindow(session: http2.Http2Session): void {
  session.on('localSettings', () => {
    if (!session.destroyed) session.setLocalWindowSize(tunnelSessionWindow);
  });
}
export const tunnelPingIntervalMs = 15_000;
export const tunnelPingTimeoutMs = 10_000;
/**
 * How long a retired tunnel (moved to another replica, make before break) may
 * keep carrying the streams it had: it closes with its last stream, or at this
 * bound. 15 minutes outlasts every client-go informer watch (5–10 min each, then
 * re-watched) with room to spare; a kubectl `get -w`, `logs -f` or exec older
 * than that is ended, as a drain would end it
 * (docs/adr/0021-a-retired-tunnel-lingers-with-its-streams.md).
 */
export const tunnelRetireLingerMs = 15 * 60_000;

/** The URI SAN that names a proxy replica in a replica peer certificate. */
export function replicaUri(replicaId: string): string {
  return `spiffe://kubegate/replica/${encodeURIComponent(replicaId)}`;
}

/** The URI SAN that names a cluster in an agent certificate. */
export function clusterUri(cluster: string): string {
  return `spiffe://kubegate/cluster/${cluster}`;
}

/** One JIT account as the agent sees it on its cluster (for admins; never a token). */
export interface JitAccountView {
  /** The kubegate user (or robot) name; absent when the account predates this agent's memory and carries no name. */
  user?: string;
  /** The subject kind; absent for a legacy account (named before the kind was part of it). */
  kind?: SubjectKind;
  /** `system:serviceaccount:<namespace>:<name>`. */
  serviceAccount: string;
  createdAt?: string;
  lastUsedAt?: string;
  /** When idle clean-up deletes it unless it is used again. */
  idleExpiresAt?: string;
  /** When the agent's in-memory token for it expires (absent: none held now). */
  tokenExpiresAt?: string;
  bindings: {
    kind: 'ClusterRoleBinding' | 'RoleBinding';
    namespace?: string;
    name: string;
    clusterRole: string;
  }[];
}

/** The answer to `jitAccountsPath`. */
export interface JitAccountsReport {
  mode: 'jit' | 'impersonate';
  namespace?: string;
  idleSeconds?: number;
  accounts: JitAccountView[];
  stats?: {
    accounts: number;
    created: number;
    deleted: number;
    tokenRequests: number;
    reconcileErrors: number;
  };
}

/**
 * Control path (proxy → agent): the managed namespaces the agent keeps as
 * desired (self-service namespaces). The proxy sends every managed namespace
 * of the cluster each reconcile period and single ones right after a change;
 * namespaces not listed are left alone. Answered with one result per entry,
 * in the same order (`NamespacesReply`).
 */
export const namespacesPath = '/.kubegate/v1/namespaces';
/** The most entries one namespaces message may carry. */
export const maxNamespacesPerMessage = 500;
/**
 * Labels on every namespace kubegate manages: the agent writes (and deletes)
 * only namespaces carrying both, and its admission fence holds it to that.
 */
export const managedByLabel = 'app.kubernetes.io/managed-by';
export const managedNamespaceLabel = 'kubegate.dev/managed-namespace';
/** Objects the agent keeps inside a managed namespace are named with this prefix. */
export const managedObjectPrefix = 'kubegate-';

/** The kinds of object a managed namespace may hold, with their API versions. */
export const managedObjectKinds = {
  ResourceQuota: 'v1',
  LimitRange: 'v1',
  NetworkPolicy: 'networking.k8s.io/v1',
} as const;
export type ManagedObjectKind = keyof typeof managedObjectKinds;

/** One object the agent keeps in a managed namespace, as the profile says. */
export interface ManagedObject {
  apiVersion: 'v1' | 'networking.k8s.io/v1';
  kind: ManagedObjectKind;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: Record<string, unknown>;
}

export interface NamespaceDesired {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  objects: ManagedObject[];
  /** Delete the namespace (and so everything in it). */
  retire?: boolean;
}

export interface NamespacesRequest {
  namespaces: NamespaceDesired[];
}

/** An object the agent found not as desired and set right (or removed). */
export interface NamespaceObjectChange {
  kind: string;
  name: string;
  change: 'created' | 'updated' | 'deleted';
}

export interface NamespaceResult {
  name: string;
  /** `retiring`: deleted, still Terminating; `gone`: no longer exists. */
  state: 'ready' | 'retiring' | 'gone' | 'error';
  /**
   * The Namespace object itself: `created`, `updated` (its labels or
   * annotations were set right; when retiring, the delete was sent in this
   * pass) or `unchanged`.
   */
  namespaceChange: 'created' | 'updated' | 'unchanged';
  /** Objects that were not as desired; empty when all were. */
  changes: NamespaceObjectChange[];
  /** With state `error`: one clear sentence. */
  error?: string;
}

export interface NamespacesReply {
  results: NamespaceResult[];
}
