/**
 * What enrollment (enroll-server.ts, enrollment port) and renewal
 * (renew-server.ts, tunnel port) share: a small JSON-over-HTTP/1.1 server fed
 * TLS sockets by a listener, a bounded JSON body, and issuing an agent
 * certificate for a cluster the proxy chose (never the CSR's subject).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { KgError, isKgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { clusterUri } from '../../common/tunnel-protocol.js';
import type { CertificateAuthority } from '../../common/pki.js';
import type { ClusterStore } from '../clusters/cluster-store.js';
import { proxyMetrics } from '../metrics.js';

export interface CertIssueDeps {
  clusters: ClusterStore;
  agentCa: CertificateAuthority;
  certTtlMs: number;
  log: Logger;
}

export interface EnrollResponse {
  certificate: string;
  notAfter: string;
  cluster: string;
}

const maxBody = 16 * 1024;
/**
 * A whole exchange (one small JSON request, one answer) on a handed-over
 * socket. Node enforces `headersTimeout`/`requestTimeout` only for servers
 * that listen themselves (its connection tracking starts on 'listening'), so
 * sockets emitted into these servers get an idle timeout and this deadline.
 */
const idleTimeoutMs = 10_000;
const connectionDeadlineMs = 30_000;

export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBody)
      throw new KgError(
        'KG_ERR_BODY_TOO_LARGE',
        `enrollment requests are at most ${maxBody} bytes`,
      );
    chunks.push(chunk as Buffer);
  }
  try {
    const v = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v))
      return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new KgError('KG_ERR_BAD_REQUEST', 'body must be a JSON object');
}

export function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '')
    throw new KgError('KG_ERR_BAD_REQUEST', `"${key}" must be a non-empty string`);
  return v;
}

/** Sign the CSR's key into a certificate naming `cluster` and record its serial. */
export async function issueAgentCert(
  deps: CertIssueDeps,
  clusterId: string,
  cluster: string,
  csr: string,
): Promise<EnrollResponse> {
  const issued = await deps.agentCa.signCsr(csr, {
    commonName: cluster,
    usage: 'client',
    ttlMs: deps.certTtlMs,
    uris: [clusterUri(cluster)],
  });
  await deps.clusters.recordAgentCert(clusterId, issued.serial, issued.notAfter);
  return { certificate: issued.certPem, notAfter: issued.notAfter.toISOString(), cluster };
}

/**
 * Renewal: sign a certificate for `cluster` and, in the same transaction,
 * supersede the certificate `oldSerial` that asked for it (the previous
 * serial can then neither open a tunnel nor renew again).
 */
export async function renewAgentCert(
  deps: CertIssueDeps,
  cluster: string,
  oldSerial: string,
  csr: string,
): Promise<EnrollResponse> {
  const issued = await deps.clusters.renewAgentCert(cluster, oldSerial, () =>
    deps.agentCa.signCsr(csr, {
      commonName: cluster,
      usage: 'client',
      ttlMs: deps.certTtlMs,
      uris: [clusterUri(cluster)],
    }),
  );
  return { certificate: issued.certPem, notAfter: issued.notAfter.toISOString(), cluster };
}

export function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** An HTTP/1.1 server answering KgErrors as `{code, message}` with their status. */
export function createJsonServer(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  log: Logger,
): Server {
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = isKgError(err)
        ? err
        : new KgError('KG_ERR_INTERNAL', 'internal error', { cause: err });
      if (!isKgError(err)) log.error({ err }, 'enrollment failed (bug)');
      else log.warn({ code: e.code, msg: e.message }, 'enrollment refused');
      if (isKgError(err)) proxyMetrics.observeEnrollment('refused');
      send(res, e.status, { code: e.code, message: e.message });
    });
  });
  server.setTimeout(idleTimeoutMs);
  return server;
}

/** Hands TLS sockets to an HTTP server, each for a bounded time; `closeAll` ends them. */
export class SocketHandover {
  private readonly open = new Set<TLSSocket>();

  constructor(private readonly server: Server) {}

  accept(socket: TLSSocket): void {
    this.open.add(socket);
    const deadline = setTimeout(() => socket.destroy(), connectionDeadlineMs);
    deadline.unref();
    socket.once('close', () => {
      clearTimeout(deadline);
      this.open.delete(socket);
    });
    this.server.emit('connection', socket);
  }

  /** Idle keep-alive connections must not hold a listener's close open. */
  closeAll(): void {
    for (const s of this.open) s.destroy();
  }
}
