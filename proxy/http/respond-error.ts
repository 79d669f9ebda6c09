/**
 * The one place where an error becomes an HTTP response: a Kubernetes
 * `Status` on `/k8s/` (kubectl prints its message cleanly), problem JSON on
 * `/api/`, and the same problem JSON elsewhere. Unknown errors are a 500
 * logged as a bug, with no internals in the body.
 */
import { DatabaseUnresponsiveError } from '../db/health.js';
import { outageError } from '../db/errors.js';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { KgError, isKgError, kubeStatus, problemOf } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { endClientBodyAfterAnswer, lingerForRefusedBody } from './refused-body.js';
import type { AnyResponse } from './response.js';

export function toKgError(err: unknown): KgError {
  if (isKgError(err)) return err;
  // The pool's refusal while the database is suspect, raised by a caller that
  // queried the pool directly: an outage (db/errors.ts), so a 503 to retry.
  if (err instanceof DatabaseUnresponsiveError) return outageError(err);
  return new KgError('KG_ERR_INTERNAL', 'internal error; the proxy logged the details', {
    cause: err,
  });
}

export function respondError(
  res: AnyResponse,
  err: unknown,
  path: string,
  log: Logger,
  auditId?: string,
): void {
  const e = toKgError(err);
  if (!isKgError(err)) log.error({ err, path }, 'unexpected error (bug)');
  if (res.headersSent) {
    // Mid-stream failure: nothing valid can be written; end it so the client sees a broken stream, not a hang.
    res.destroy();
    return;
  }
  const kube = path.startsWith('/k8s/');
  const body = JSON.stringify(
    kube
      ? kubeStatus(
          e.status,
          e.reason,
          e.message,
          e.retryAfter ? { retryAfterSeconds: e.retryAfter } : undefined,
        )
      : problemOf(e, path.split('?')[0]),
  );
  const headers: Record<string, string | number> = {
    'content-type': kube ? 'application/json' : 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  };
  if (e.retryAfter) headers['retry-after'] = e.retryAfter;
  if (auditId) headers['audit-id'] = auditId;
  if (e.status === 401 && kube) headers['www-authenticate'] = 'Bearer realm="kubegate"';
  lingerForRefusedBody(res.req, res);
  res.writeHead(e.status, headers);
  res.end(body);
  // A body the client is still sending is read and dropped, then cut off.
  endClientBodyAfterAnswer(res.req, res);
}

/** The same error as a raw HTTP/1.1 response on an upgrade socket, then close it. */
export function writeStatusToSocket(socket: Duplex, err: unknown, auditId?: string): void {
  const e = toKgError(err);
  const body = JSON.stringify(kubeStatus(e.status, e.reason, e.message));
  const head = [
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}`,
    'content-type: application/json',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...(auditId ? [`audit-id: ${auditId}`] : []),
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}
