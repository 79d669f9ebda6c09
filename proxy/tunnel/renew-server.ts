/**
 * Agent certificate renewal, served as HTTP/1.1 on the tunnel listener to
 * connections that negotiated ALPN `alpnRenew` (listener.ts hands them here).
 * The tunnel listener's handshake has already refused every client without a
 * certificate chaining to the agent CA, or with an expired one; this adds
 * what TLS cannot know: the certificate names exactly one cluster, its serial
 * is recorded, unrevoked and its cluster enabled. The new certificate names
 * that cluster, whatever the CSR or the body say, and the one that asked for
 * it is superseded (revoked) in the same transaction.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { KgError } from '../../common/errors.js';
import { enrollPath, renewPath } from '../../common/tunnel-protocol.js';
import { proxyMetrics } from '../metrics.js';
import { agentCertCluster } from './peer-cert.js';
import {
  createJsonServer,
  renewAgentCert,
  readJson,
  send,
  SocketHandover,
  str,
  type CertIssueDeps,
} from './cert-http.js';

export interface RenewServer {
  /** A TLS socket from the tunnel listener that negotiated `alpnRenew`. */
  accept(socket: TLSSocket): void;
  /** End open renewal connections (shutdown). */
  close(): void;
}

export function createRenewServer(deps: CertIssueDeps): RenewServer {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.url === enrollPath)
      throw new KgError(
        'KG_ERR_MISDIRECTED',
        'first enrollment is served on the enrollment port (KUBEGATE_ENROLL_ADDRESS), not the tunnel port',
      );
    if (req.url !== renewPath)
      throw new KgError('KG_ERR_NOT_FOUND', `no such endpoint ${req.url ?? ''}`);
    if (req.method !== 'POST') throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', 'use POST');
    const socket = req.socket as TLSSocket;
    // The handshake already required this; checked again so a change of TLS
    // options can never let an unauthenticated client renew.
    const who = socket.authorized ? agentCertCluster(socket.getPeerCertificate()) : undefined;
    if (!who || !(await deps.clusters.agentCertValid(who.cluster, who.serial))) {
      throw new KgError(
        'KG_ERR_UNAUTHENTICATED',
        'renewal needs a valid, unrevoked agent certificate for a registered, enabled cluster; re-enroll with a new bootstrap token',
      );
    }
    const body = await readJson(req);
    // The agent sends only a CSR; a body that names a cluster must name this one.
    if (body.cluster !== undefined && body.cluster !== who.cluster)
      throw new KgError(
        'KG_ERR_FORBIDDEN',
        `this certificate renews for cluster "${who.cluster}" only`,
      );
    const cluster = await deps.clusters.get(who.cluster);
    if (!cluster)
      throw new KgError('KG_ERR_CLUSTER_NOT_FOUND', `cluster "${who.cluster}" is not registered`);
    // The presenting certificate is superseded in the same transaction that
    // records the new one: a copy of the old key renews nothing and opens no
    // tunnel afterwards (tunnels it already opened run until it expires).
    const out = await renewAgentCert(deps, cluster.name, who.serial, str(body, 'csr'));
    deps.log.info(
      { cluster: cluster.name, notAfter: out.notAfter, superseded: who.serial },
      'agent certificate renewed',
    );
    proxyMetrics.observeEnrollment('renewed');
    send(res, 200, out);
  };
  const handover = new SocketHandover(createJsonServer(handle, deps.log));
  return {
    accept: (socket) => handover.accept(socket),
    close: () => handover.closeAll(),
  };
}
