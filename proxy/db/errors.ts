/**
 * What a database failure means. This is the one place that decides which
 * errors are an *outage* — the database cannot answer now, so the caller gets
 * a 503 with Retry-After and may try again — and which are the data's fault.
 * Anything else that reaches the error responder is a bug (a 500, logged).
 */
import { KgError, isKgError } from '../../common/errors.js';

/** Socket errors from the driver: refused, reset, timed out, broken pipe, host name not found. */
const outageSocketCodes: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  // The database host name does not resolve (DNS down, service not yet created):
  // nothing about the request is wrong, so it is retried like a refusal.
  'ENOTFOUND',
]);

/**
 * True when the database cannot answer now rather than refusing this request:
 * SQLSTATE class 08 (connection exception; the pool's own refusal while the
 * database is suspect carries 08006), 57P0x (the server is shutting down or
 * restarting), 57014 (statement timeout), the socket errors above, and the
 * driver's own timeouts and dropped connections, which carry no code.
 */
export function isOutage(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (code.startsWith('08') || code.startsWith('57P') || code === '57014') return true;
    if (outageSocketCodes.has(code)) return true;
  }
  return err instanceof Error && /timeout|Connection terminated/i.test(err.message);
}

/**
 * True for errors that retrying cannot fix: the data itself is refused
 * (SQLSTATE class 22, data exception; 23, integrity constraint violation).
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23)[0-9A-Z]{3}$/.test(code);
}

/** The 503 a client sees for a database outage. */
export function outageError(cause: unknown): KgError {
  return new KgError('KG_ERR_UNAVAILABLE', 'the kubegate database is unavailable; retry shortly', {
    cause,
    retryAfter: 2,
  });
}

/** Our own errors pass through; an outage becomes KG_ERR_UNAVAILABLE; the rest stays as it is (a bug). */
export function dbError(err: unknown): unknown {
  if (isKgError(err) || !isOutage(err)) return err;
  return outageError(err);
}
