/**
 * Enrollment and renewal, served as HTTP/1.1 on the tunnel listener (ALPN
 * `http/1.1`). Enrollment trades a one-time bootstrap token and a CSR for a
 * short-lived client certificate naming the cluster. Renewal needs a valid
 * current agent certificate, and renews for that certificate's cluster only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { KgError, isKgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { clusterUri, enrollPath, renewPath } from '../../common/tunnel-protocol.js';
import type { CertificateAuthority } from '../../common/pki.js';
import type { ClusterStore } from '../clusters/cluster-store.js';
import { agentCertCluster } from './peer-cert.js';
import { proxyMetrics } from '../metrics.js';

export interface EnrollDeps {
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

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
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

function str(body: Record<string, unknown>, key: string): string {
  const v = body[key];
  if (typeof v !== 'string' || v === '')
    throw new KgError('KG_ERR_BAD_REQUEST', `"${key}" must be a non-empty string`);
  return v;
}

export function createEnrollServer(deps: EnrollDeps): Server {
  const issue = async (
    clusterId: string,
    cluster: string,
    csr: string,
  ): Promise<EnrollResponse> => {
    const issued = await deps.agentCa.signCsr(csr, {
      commonName: cluster,
      usage: 'client',
      ttlMs: deps.certTtlMs,
      uris: [clusterUri(cluster)],
    });
    await deps.clusters.recordAgentCert(clusterId, issued.serial, issued.notAfter);
    return { certificate: issued.certPem, notAfter: issued.notAfter.toISOString(), cluster };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'POST') throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', 'use POST');
    if (req.url === enrollPath) {
      const body = await readJson(req);
      const cluster = await deps.clusters.spendBootstrapToken(
        str(body, 'cluster'),
        str(body, 'token'),
      );
      const out = await issue(cluster.id, cluster.name, str(body, 'csr'));
      deps.log.info({ cluster: cluster.name, notAfter: out.notAfter }, 'agent enrolled');
      proxyMetrics.observeEnrollment('enrolled');
      return send(res, 200, out);
    }
    if (req.url === renewPath) {
      const socket = req.socket as TLSSocket;
      const who = socket.authorized ? agentCertCluster(socket.getPeerCertificate()) : undefined;
      if (!who || !(await deps.clusters.agentCertValid(who.cluster, who.serial))) {
        throw new KgError(
          'KG_ERR_UNAUTHENTICATED',
          'renewal needs a valid, unrevoked agent certificate for a registered cluster; re-enroll with a new bootstrap token',
        );
      }
      const body = await readJson(req);
      const cluster = await deps.clusters.get(who.cluster);
      if (!cluster)
        throw new KgError('KG_ERR_CLUSTER_NOT_FOUND', `cluster "${who.cluster}" is not registered`);
      const out = await issue(cluster.id, cluster.name, str(body, 'csr'));
      deps.log.info({ cluster: cluster.name, notAfter: out.notAfter }, 'agent certificate renewed');
      proxyMetrics.observeEnrollment('renewed');
      return send(res, 200, out);
    }
    throw new KgError('KG_ERR_NOT_FOUND', `no such endpoint ${req.url ?? ''}`);
  };

  const server = createServer({ requestTimeout: 15_000, headersTimeout: 10_000 }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      const e = isKgError(err)
        ? err
        : new KgError('KG_ERR_INTERNAL', 'internal error', { cause: err });
      if (!isKgError(err)) deps.log.error({ err }, 'enrollment failed (bug)');
      else deps.log.warn({ code: e.code, msg: e.message }, 'enrollment refused');
      if (isKgError(err)) proxyMetrics.observeEnrollment('refused');
      send(res, e.status, { code: e.code, message: e.message });
    });
  });
  return server;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
