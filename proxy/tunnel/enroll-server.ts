/**
 * First enrollment, served as HTTP/1.1 on the enrollment listener
 * (enroll-listener.ts): a one-time bootstrap token and a CSR are traded for a
 * short-lived client certificate naming the token's cluster. Nothing here
 * trusts a client certificate (the listener asks for none): renewal lives on
 * the tunnel port (renew-server.ts), and a renewal request arriving here is
 * told so.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { KgError } from '../../common/errors.js';
import { alpnRenew, enrollPath, renewPath } from '../../common/tunnel-protocol.js';
import { proxyMetrics } from '../metrics.js';
import {
  createJsonServer,
  issueAgentCert,
  readJson,
  send,
  str,
  type CertIssueDeps,
} from './cert-http.js';

export type EnrollDeps = CertIssueDeps;

/** The refusal for a renewal sent to the enrollment port (the agent logs the message). */
export const renewalNotHere =
  'certificate renewal is not served on the enrollment port: renew on the tunnel port ' +
  `(the agent's KUBEGATE_TUNNEL_ADDRESS) with ALPN "${alpnRenew}", presenting the current agent certificate`;

export function createEnrollServer(deps: EnrollDeps): Server {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.url === renewPath) throw new KgError('KG_ERR_MISDIRECTED', renewalNotHere);
    if (req.url !== enrollPath)
      throw new KgError('KG_ERR_NOT_FOUND', `no such endpoint ${req.url ?? ''}`);
    if (req.method !== 'POST') throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', 'use POST');
    const body = await readJson(req);
    const cluster = await deps.clusters.spendBootstrapToken(
      str(body, 'cluster'),
      str(body, 'token'),
    );
    const out = await issueAgentCert(deps, cluster.id, cluster.name, str(body, 'csr'));
    deps.log.info({ cluster: cluster.name, notAfter: out.notAfter }, 'agent enrolled');
    proxyMetrics.observeEnrollment('enrolled');
    send(res, 200, out);
  };
  return createJsonServer(handle, deps.log);
}
