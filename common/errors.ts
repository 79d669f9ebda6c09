/**
 * The one error catalogue for kubegate. Every failure we raise on purpose is a
 * KgError with a stable `code` (KG_ERR_*), an HTTP status and, for the
 * Kubernetes API surface, the `metav1.Status` reason kubectl understands.
 * Third-party errors are wrapped with `cause`; strings are never thrown.
 */

/** metav1.StatusReason values we emit (k8s.io/apimachinery/pkg/apis/meta/v1/types.go). */
export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'RequestEntityTooLarge'
  | 'TooManyRequests'
  | 'ServiceUnavailable'
  | 'InternalError'
  | 'Timeout'
  | 'Conflict'
  | 'Invalid'
  | 'NotAcceptable'
  | 'UnsupportedMediaType';

interface CatalogueEntry {
  status: number;
  reason: StatusReason;
  title: string;
}

const entry = (status: number, reason: StatusReason, title: string): CatalogueEntry => ({
  status,
  reason,
  title,
});

/** code → HTTP status, Kubernetes reason and a human title (problem JSON `title`). */
export const catalogue = {
  KG_ERR_BAD_PATH: entry(400, 'BadRequest', 'Malformed request path'),
  KG_ERR_BAD_REQUEST: entry(400, 'BadRequest', 'Bad request'),
  KG_ERR_VALIDATION: entry(422, 'Invalid', 'Validation failed'),
  KG_ERR_UNAUTHENTICATED: entry(401, 'Unauthorized', 'Unauthorized'),
  KG_ERR_FORBIDDEN: entry(403, 'Forbidden', 'Forbidden'),
  KG_ERR_NOT_FOUND: entry(404, 'NotFound', 'Not found'),
  KG_ERR_CLUSTER_NOT_FOUND: entry(404, 'NotFound', 'Cluster not found'),
  KG_ERR_METHOD_NOT_ALLOWED: entry(405, 'MethodNotAllowed', 'Method not allowed'),
  KG_ERR_CONFLICT: entry(409, 'Conflict', 'Conflict'),
  // A request sent to a listener that does not serve it (RFC 9110 §15.5.20),
  // e.g. agent certificate renewal on the enrollment port.
  KG_ERR_MISDIRECTED: entry(421, 'BadRequest', 'Misdirected request'),
  // Optimistic concurrency on the admin API (RFC 9110 §13.1.1, RFC 6585 §3).
  KG_ERR_PRECONDITION_FAILED: entry(412, 'Conflict', 'Precondition failed'),
  KG_ERR_PRECONDITION_REQUIRED: entry(428, 'BadRequest', 'Precondition required'),
  KG_ERR_NOT_ACCEPTABLE: entry(406, 'NotAcceptable', 'Not acceptable'),
  KG_ERR_UNSUPPORTED_MEDIA_TYPE: entry(415, 'UnsupportedMediaType', 'Unsupported media type'),
  KG_ERR_BODY_TOO_LARGE: entry(413, 'RequestEntityTooLarge', 'Request body too large'),
  KG_ERR_RATE_LIMITED: entry(429, 'TooManyRequests', 'Too many requests'),
  // No request-body bytes for KUBEGATE_BODY_IDLE_TIMEOUT (issue #17, item 7).
  KG_ERR_BODY_TIMEOUT: entry(408, 'Timeout', 'Request body timed out'),
  // The per-identity or per-replica bound on request bodies held in memory.
  KG_ERR_BODY_BUDGET: entry(429, 'TooManyRequests', 'Too many request bodies held'),
  KG_ERR_TOKEN_SPENT: entry(401, 'Unauthorized', 'Bootstrap token not valid'),
  KG_ERR_CLUSTER_OFFLINE: entry(503, 'ServiceUnavailable', 'Cluster offline'),
  KG_ERR_UPSTREAM: entry(502, 'InternalError', 'Upstream failed'),
  KG_ERR_UNAVAILABLE: entry(503, 'ServiceUnavailable', 'Service unavailable'),
  KG_ERR_CONFIG: entry(500, 'InternalError', 'Invalid configuration'),
  KG_ERR_INTERNAL: entry(500, 'InternalError', 'Internal error'),
} satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof catalogue;

export interface KgErrorOptions {
  cause?: unknown;
  /** Seconds for a Retry-After header (503, 429). */
  retryAfter?: number;
  /** Extra machine-readable detail for problem JSON (never secrets). */
  details?: Record<string, unknown>;
}

export class KgError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly reason: StatusReason;
  readonly retryAfter: number | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: KgErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KgError';
    this.code = code;
    this.status = catalogue[code].status;
    this.reason = catalogue[code].reason;
    this.retryAfter = options.retryAfter;
    this.details = options.details;
  }
}

export function isKgError(err: unknown): err is KgError {
  return err instanceof KgError;
}

/** A validation failure carrying every problem at once (problem JSON `problems`). */
export function invalid(what: string, problems: string[]): KgError {
  return new KgError('KG_ERR_VALIDATION', `${what} is invalid: ${problems.join('; ')}`, {
    details: { problems },
  });
}

/** A Kubernetes `metav1.Status` object as the apiserver writes it. */
export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  code: number;
  details?: { name?: string; group?: string; kind?: string; retryAfterSeconds?: number };
}

/** Build the Status body kubectl prints as `Error from server (<Reason>): <message>`. */
export function kubeStatus(
  code: number,
  reason: StatusReason,
  message: string,
  details?: KubeStatus['details'],
): KubeStatus {
  const s: KubeStatus = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
  };
  if (details) s.details = details;
  return s;
}

/** RFC 9457 problem details, used on the REST API (`/api/`). */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  [extra: string]: unknown;
}

export function problemOf(err: KgError, instance?: string): Problem {
  const p: Problem = {
    type: `https://kubegate.dev/problems/${err.code.toLowerCase().replace(/_/g, '-')}`,
    title: catalogue[err.code].title,
    status: err.status,
    detail: err.message,
    code: err.code,
    ...(err.details ?? {}),
  };
  if (instance) p.instance = instance;
  return p;
}
