/**
 * The agent's two exchanges with the proxy for a certificate: enrollment
 * (the one-time bootstrap token and a CSR, at the enrollment listener, which
 * asks for no client certificate) and renewal (a CSR, at the tunnel listener
 * under ALPN `alpnRenew`, presenting the current certificate). Both are one
 * JSON POST over TLS 1.3 to a proxy that must chain to the pinned CA.
 */
import { isIP } from 'node:net';
import * as https from 'node:https';
import type * as tls from 'node:tls';
import { KgError } from '../../common/errors.js';
import { alpnEnroll, alpnRenew, enrollPath, renewPath } from '../../common/tunnel-protocol.js';
import { parseHostPort } from '../../common/config.js';
import type { AgentIdentity } from './store.js';

/** Where the proxy serves enrollment and renewal, and the CA it must chain to. */
export interface ProxyEndpoints {
  /** The proxy's enrollment listener (host:port) and the TLS name it must present. */
  enrollAddress: string;
  enrollServerName: string;
  /** The proxy's tunnel listener, where renewal is served, and its TLS name. */
  tunnelAddress: string;
  tunnelServerName: string;
  proxyCaPem: string;
}

export interface EnrollAnswer {
  certificate: string;
  notAfter: string;
}

/** Where a request goes: enrollment (no client certificate) or renewal (the current one). */
export interface Target {
  what: string;
  address: string;
  serverName: string;
  alpn: string;
  path: string;
  /** 401 from this target: enrollment's token is spent, renewal's certificate is not accepted. */
  refusedCode: 'KG_ERR_TOKEN_SPENT' | 'KG_ERR_UNAUTHENTICATED';
  client?: AgentIdentity;
}

export function enrollTarget(deps: ProxyEndpoints): Target {
  return {
    what: 'enrollment listener',
    address: deps.enrollAddress,
    serverName: deps.enrollServerName,
    alpn: alpnEnroll,
    path: enrollPath,
    refusedCode: 'KG_ERR_TOKEN_SPENT',
  };
}

export function renewTarget(deps: ProxyEndpoints, client: AgentIdentity): Target {
  return {
    what: 'tunnel listener (renewal)',
    address: deps.tunnelAddress,
    serverName: deps.tunnelServerName,
    alpn: alpnRenew,
    path: renewPath,
    refusedCode: 'KG_ERR_UNAUTHENTICATED',
    client,
  };
}

/** POST JSON over TLS 1.3 to a proxy listener, pinned CA, HTTP/1.1 under the target's ALPN. */
export function postJson(
  deps: ProxyEndpoints,
  target: Target,
  body: unknown,
): Promise<EnrollAnswer> {
  const { host, port } = parseHostPort(target.address);
  const { path, client } = target;
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const options: https.RequestOptions & tls.ConnectionOptions = {
      host,
      port,
      path,
      method: 'POST',
      servername: isIP(target.serverName) ? undefined : target.serverName,
      ca: deps.proxyCaPem,
      ALPNProtocols: [target.alpn],
      minVersion: 'TLSv1.3',
      cert: client?.certPem,
      key: client?.keyPem,
      agent: false,
      timeout: 15_000,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
    };
    const req = https.request(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: { message?: string } & Partial<EnrollAnswer> = {};
        try {
          parsed = JSON.parse(text) as typeof parsed;
        } catch {
          // keep the raw status below
        }
        if (res.statusCode === 200 && parsed.certificate && parsed.notAfter) {
          resolve({ certificate: parsed.certificate, notAfter: parsed.notAfter });
        } else {
          reject(
            new KgError(
              res.statusCode === 401 ? target.refusedCode : 'KG_ERR_UPSTREAM',
              `proxy refused ${path} (${res.statusCode}): ${parsed.message ?? text.slice(0, 200)}`,
            ),
          );
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (err) =>
      reject(
        new KgError(
          'KG_ERR_UPSTREAM',
          `cannot reach the proxy's ${target.what} at ${target.address}: ${err.message}`,
          { cause: err },
        ),
      ),
    );
    req.end(payload);
  });
}
