/**
 * The audit event: the `audit.k8s.io/v1` Event as kube-apiserver writes it,
 * plus a few kubegate fields (cluster, replica, decision, reason, duration,
 * bytes) at the top level. Events with the same `auditID` are the stages of
 * one request; the same ID is returned to the client (`Audit-Id`) and sent to
 * the apiserver (`Audit-ID`), so this log and the cluster's own audit log join.
 *
 * Field set: k8s.io/apiserver/pkg/apis/audit/v1/types.go
 * https://github.com/kubernetes/kubernetes/blob/master/staging/src/k8s.io/apiserver/pkg/apis/audit/v1/types.go
 */

/** How much of a request is kept. `None` is not offered: every request is recorded. */
export type Level = 'Metadata' | 'Request' | 'RequestResponse';
export const levels: readonly Level[] = ['Metadata', 'Request', 'RequestResponse'];

/**
 * RequestReceived is only written for a strict-mode request whose proxy died
 * before the response completed (the outcome is then unknown).
 */
export type Stage = 'RequestReceived' | 'ResponseStarted' | 'ResponseComplete' | 'Panic';
export const stages: readonly Stage[] = [
  'RequestReceived',
  'ResponseStarted',
  'ResponseComplete',
  'Panic',
];

/**
 * `allow`: kubegate authorised the request (whatever the cluster answered);
 * `deny`: kubegate refused it (401, 403); `error`: refused before a decision
 * could be made (malformed path, body too large, unavailable).
 */
export type AuditDecision = 'allow' | 'deny' | 'error';
export const decisions: readonly AuditDecision[] = ['allow', 'deny', 'error'];

/**
 * `kube`: a Kubernetes API request through /k8s/; `admin`: a kubegate admin
 * action; `runbook`: an API call a runbook run made (proxy/runbooks/runner.ts).
 */
export type AuditSource = 'kube' | 'admin' | 'runbook';

/** authentication.k8s.io/v1 UserInfo. */
export interface UserInfo {
  username: string;
  uid?: string;
  groups?: string[];
  extra?: Record<string, string[]>;
}

/** audit.k8s.io/v1 ObjectReference; empty fields are omitted, as in Go's omitempty. */
export interface ObjectReference {
  resource?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiGroup?: string;
  apiVersion?: string;
  resourceVersion?: string;
  subresource?: string;
}

/** The metav1.Status the apiserver records as responseStatus. */
export interface ResponseStatus {
  metadata: Record<string, never>;
  status?: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  code: number;
}

export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: Level;
  auditID: string;
  stage: Stage;
  requestURI: string;
  verb: string;
  user: UserInfo;
  /** The Kubernetes identity the request ran as on the cluster (the JIT account). */
  impersonatedUser?: UserInfo;
  sourceIPs?: string[];
  userAgent?: string;
  objectRef?: ObjectReference;
  responseStatus?: ResponseStatus;
  requestObject?: unknown;
  responseObject?: unknown;
  /** metav1.MicroTime: RFC 3339 with microseconds, UTC. */
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations?: Record<string, string>;
  // --- kubegate fields ---
  source: AuditSource;
  /** The cluster named in the path; '' when the request never named one (or an admin action). */
  cluster: string;
  /** The proxy replica that served it. */
  replica: string;
  decision: AuditDecision;
  /** Why: the binding and role that allowed it, or the refusal. */
  reason: string;
  durationMs: number;
  bytesIn: number;
  bytesOut: number;
}

/** The audit.k8s.io/v1 Event JSON field names (TypeMeta included). */
export const kubeEventFields = [
  'kind',
  'apiVersion',
  'level',
  'auditID',
  'stage',
  'requestURI',
  'verb',
  'user',
  'impersonatedUser',
  'sourceIPs',
  'userAgent',
  'objectRef',
  'responseStatus',
  'requestObject',
  'responseObject',
  'requestReceivedTimestamp',
  'stageTimestamp',
  'annotations',
] as const;

/** The fields kubegate adds; `toKubeEvent` moves them into annotations. */
export const extensionFields = [
  'source',
  'cluster',
  'replica',
  'decision',
  'reason',
  'durationMs',
  'bytesIn',
  'bytesOut',
] as const;

/** The annotation prefix kubegate uses, on kube events and in `toKubeEvent`. */
export const annotationPrefix = 'kubegate.dev/';

/** metav1.MicroTime for a millisecond epoch time: `2006-01-02T15:04:05.000000Z`. */
export function microTime(ms: number): string {
  // toISOString is always `YYYY-MM-DDTHH:mm:ss.sssZ` here (years 0–9999); no regex per event.
  return `${new Date(ms).toISOString().slice(0, 23)}000Z`;
}

/** Milliseconds since the epoch of a MicroTime (or any ISO time). */
export function timeOf(micro: string): number {
  return Date.parse(micro);
}

/** The `kubegate.dev/kind` extra of a user: `user`, `robot`, or `cli` for admin commands. */
export const userKindKey = 'kubegate.dev/kind';

/**
 * A strict audit.k8s.io/v1 Event for consumers that reject unknown fields
 * (the apiserver's own webhook receivers, Falco's k8saudit): kubegate's
 * fields become `kubegate.dev/…` annotations.
 */
export function toKubeEvent(e: AuditEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of kubeEventFields) if (e[f] !== undefined) out[f] = e[f];
  out.annotations = {
    ...e.annotations,
    [`${annotationPrefix}source`]: e.source,
    [`${annotationPrefix}cluster`]: e.cluster,
    [`${annotationPrefix}replica`]: e.replica,
    [`${annotationPrefix}decision`]: e.decision,
    [`${annotationPrefix}reason`]: e.reason,
    [`${annotationPrefix}duration-ms`]: String(e.durationMs),
    [`${annotationPrefix}bytes-in`]: String(e.bytesIn),
    [`${annotationPrefix}bytes-out`]: String(e.bytesOut),
  };
  return out;
}

/** Cut a client-controlled string to a bound, saying so. */
export function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…[${text.length - max} more]`;
}
