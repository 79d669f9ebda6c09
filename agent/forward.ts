/**
 * The agent's half of a request: one tunnel stream in, one apiserver request
 * out, streamed both ways. Until just-in-time service accounts land, the
 * request runs as the authenticated user via impersonation — never as the
 * agent itself, never anonymously. Identity comes only from the proxy's
 * `kg-identity` header; any identity header that reached us otherwise is
 * dropped (defence in depth behind the proxy's allow-list).
 */
import * as http2 from 'node:http2';
import { PassThrough, pipeline } from 'node:stream';
import { readFileSync } from 'node:fs';
import { Pool } from 'undici';
import { kubeStatus } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import {
  decodeIdentity,
  hdrAgentError,
  hdrAuditId,
  hdrIdentity,
  type TunnelIdentity,
} from '../common/tunnel-protocol.js';

export interface UpstreamDeps {
  apiserverUrl: string;
  caPem: string;
  tokenFile: string;
  log: Logger;
}

const dropRequest =
  /^(authorization|cookie|proxy-authorization|impersonate-.*|x-remote-.*|kg-.*|connection|keep-alive|proxy-connection|transfer-encoding|upgrade|te|trailer|host|http2-settings|audit-id)$/i;
const dropResponse = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
]);

/** Reject identities that could claim a Kubernetes system identity. */
export function identityProblem(id: TunnelIdentity | undefined): string | undefined {
  if (!id) return 'the request carries no kubegate identity';
  if (!id.user || id.user.startsWith('system:'))
    return `user name ${JSON.stringify(id.user)} is not allowed`;
  const bad = id.groups.find((g) => !g || g.startsWith('system:'));
  return bad === undefined ? undefined : `group name ${JSON.stringify(bad)} is not allowed`;
}

export class Upstream {
  private readonly pool: Pool;
  private token = '';
  private tokenReadAt = 0;

  constructor(private readonly deps: UpstreamDeps) {
    this.pool = new Pool(deps.apiserverUrl, {
      connect: { ca: deps.caPem, rejectUnauthorized: true },
      connections: null,
      pipelining: 1,
      keepAliveTimeout: 30_000,
    });
  }

  /** The agent's ServiceAccount token, re-read at most every 30 s (projected tokens rotate). */
  private bearer(): string {
    const now = Date.now();
    if (now - this.tokenReadAt > 30_000) {
      this.token = readFileSync(this.deps.tokenFile, 'utf8').trim();
      this.tokenReadAt = now;
    }
    return this.token;
  }

  handle(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const identity = decodeIdentity(String(headers[hdrIdentity] ?? ''));
    const problem = identityProblem(identity);
    if (problem)
      return replyStatus(
        stream,
        403,
        'Forbidden',
        `kubegate agent refused the request: ${problem}`,
      );

    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(':') || value === undefined || dropRequest.test(name)) continue;
      out[name] = value as string | string[];
    }
    out['authorization'] = `Bearer ${this.bearer()}`;
    out['impersonate-user'] = identity!.user;
    if (identity!.groups.length) out['impersonate-group'] = identity!.groups;
    const auditId = headers[hdrAuditId];
    if (typeof auditId === 'string') out['audit-id'] = auditId;

    const abort = new AbortController();
    stream.on('close', () => abort.abort());
    const method = String(headers[':method']);
    // undici destroys a request body stream once it has sent it; hand it a
    // PassThrough so that never tears down the tunnel stream we answer on.
    let body: PassThrough | null = null;
    if (!stream.endAfterHeaders) {
      body = new PassThrough();
      stream.pipe(body);
    }
    this.pool
      .request({
        path: String(headers[':path']),
        method: method as 'GET',
        headers: out,
        body,
        signal: abort.signal,
        bodyTimeout: 0,
        headersTimeout: 0,
        maxRedirections: 0,
      } as Parameters<Pool['request']>[0])
      .then(({ statusCode, headers: h, body }) => {
        if (stream.destroyed) {
          body.destroy();
          return;
        }
        const resHeaders: http2.OutgoingHttpHeaders = { ':status': statusCode };
        for (const [name, value] of Object.entries(h)) {
          if (value === undefined || dropResponse.has(name)) continue;
          resHeaders[name] = value;
        }
        stream.respond(resHeaders);
        pipeline(body, stream, (err) => {
          if (err && !abort.signal.aborted)
            this.deps.log.debug({ err: err.message }, 'response stream ended early');
        });
      })
      .catch((err: Error) => {
        if (abort.signal.aborted || stream.destroyed) return;
        this.deps.log.warn({ err: err.message }, 'apiserver request failed');
        replyStatus(
          stream,
          502,
          'InternalError',
          `kubegate agent could not reach the apiserver: ${err.message}`,
        );
      });
    return undefined;
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export function replyStatus(
  stream: http2.ServerHttp2Stream,
  code: number,
  reason: 'Forbidden' | 'InternalError' | 'NotFound',
  message: string,
): void {
  if (stream.headersSent || stream.destroyed) return;
  const body = JSON.stringify(kubeStatus(code, reason, message));
  stream.respond({ ':status': code, 'content-type': 'application/json', [hdrAgentError]: '1' });
  stream.end(body);
}
