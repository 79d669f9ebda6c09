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

/** code → HTTP status, Kubernetes reason and a human title (problem JSON `title`). */
export const catalogue = {
  KG_ERR_BAD_PATH: { status: 400, reason: 'BadRequest', title: 'Malformed request path' },
  KG_ERR_BAD_REQUEST: { status: 400, reason: 'BadRequest', title: 'Bad request' },
  KG_ERR_VALIDATION: { status: 422, reason: 'Invalid', title: 'Validation failed' },
  KG_ERR_UNAUTHENTICATED: { status: 401, reason: 'Unauthorized', title: 'Unauthorized' },
  KG_ERR_FORBIDDEN: { status: 403, reason: 'Forbidden', title: 'Forbidden' },
  KG_ERR_NOT_FOUND: { status: 404, reason: 'NotFound', title: 'Not found' },
  KG_ERR_CLUSTER_NOT_FOUND: { status: 404, reason: 'NotFound', title: 'Cluster not found' },
  KG_ERR_METHOD_NOT_ALLOWED: {
    status: 405,
    reason: 'MethodNotAllowed',
    title: 'Method not allowed',
  },
  KG_ERR_CONFLICT: { status: 409, reason: 'Conflict', title: 'Conflict' },
  // A request sent to a listener that does not serve it (RFC 9110 §15.5.20),
  // e.g. agent certificate renewal on the enrollment port.
  KG_ERR_MISDIRECTED: { status: 421, reason: 'BadRequest', title: 'Misdirected request' },
  // Optimistic concurrency on the admin API (RFC 9110 §13.1.1, RFC 6585 §3).
  KG_ERR_PRECONDITION_FAILED: {
    status: 412,
    reason: 'Conflict',
    title: 'Precondition failed',
  },
  KG_ERR_PRECONDITION_REQUIRED: {
    status: 428,
    reason: 'BadRequest',
    title: 'Precondition required',
  },
  KG_ERR_NOT_ACCEPTABLE: { status: 406, reason: 'NotAcceptable', title: 'Not acceptable' },
  KG_ERR_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    reason: 'UnsupportedMediaType',
    title: 'Unsupported media type',
  },
  KG_ERR_BODY_TOO_LARGE: {
    status: 413,
    reason: 'RequestEntityTooLarge',
    title: 'Request body too large',
  },
  KG_ERR_RATE_LIMITED: { status: 429, reason: 'TooManyRequests', title: 'Too many requests' },
  // No request-body bytes for KUBEGATE_BODY_IDLE_TIMEOUT (issue #17, item 7).
  KG_ERR_BODY_TIMEOUT: { status: 408, reason: 'Timeout', title: 'Request body timed out' },
  // The per-identity or per-replica bound on request bodies held in memory.
  KG_ERR_BODY_BUDGET: {
    status: 429,
    reason: 'TooManyRequests',
    title: 'Too many request bodies held',
  },
  KG_ERR_TOKEN_SPENT: { status: 401, reason: 'Unauthorized', title: 'Bootstrap token not valid' },
  KG_ERR_CLUSTER_OFFLINE: {
    status: 503,
    reason: 'ServiceUnavailable',
    title: 'Cluster offline',
  },
  KG_ERR_UPSTREAM: { status: 502, reason: 'InternalError', title: 'Upstream failed' },
  KG_ERR_UNAVAILABLE: {
    status: 503,
    reason: 'ServiceUnavailable',
    title: 'Service unavailable',
  },
  KG_ERR_CONFIG: { status: 500, reason: 'InternalError', title: 'Invalid configuration' },
  KG_ERR_INTERNAL: { status: 500, reason: 'InternalError', title: 'Internal error' },
} as const satisfies Record<string, CatalogueEntry>;

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
