/**
 * Stage 6: forward one request over a tunnel stream and stream the answer
 * back. Nothing is buffered: request and response bodies are piped with
 * back-pressure, and each chunk of a watch goes out as soon as it arrives.
 * There is no idle timeout: watches and `logs -f` end when the client or the
 * apiserver ends them.
 */
import * as http2 from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Writable } from 'node:stream';
import { KgError } from '../../common/errors.js';
import {
  encodeIdentity,
  hdrAuditId,
  hdrGrants,
  hdrIdentity,
  hdrRanAs,
} from '../../common/tunnel-protocol.js';
import type { AnyResponse } from '../http/respond-error.js';
import type { Tunnel } from '../tunnel/registry.js';
import { forwardRequestHeaders, isHopByHopResponseHeader } from './headers.js';
import { proxyMetrics } from '../metrics.js';
import { cancelTunnelStream } from './cancel.js';
import type { RequestContext } from '../context.js';
import type { TokenIdentity } from '../authn/token-store.js';
import type { AuditRecorder } from '../audit/recorder.js';

export type AnyRequest = IncomingMessage | Http2ServerRequest;

export interface ForwardOptions {
  maxRequestBody: number;
  /** The request's audit record: bytes, bodies (at the policy's level), who it ran as. */
  audit?: AuditRecorder;
  /** The request body, already read (the approval gate buffers gated requests); sent as is. */
  body?: Buffer;
  /** The cluster's status, before it is passed on (the approval gate settles its approval). */
  onResponse?: (status: number) => void;
}

function hasBody(req: AnyRequest): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  return (
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
  );
}

/**
 * Forward `req` over `tunnel`. Resolves when the response is complete (or the
 * client went away); rejects with a KgError only before the response started.
 */
export async function forward(
  ctx: RequestContext,
  req: AnyRequest,
  res: AnyResponse,
  tunnel: Tunnel,
  opts: ForwardOptions,
): Promise<void> {
  const declared = req.headers['content-length'];
  if (Number(declared ?? 0) > opts.maxRequestBody) {
    throw new KgError(
      'KG_ERR_BODY_TOO_LARGE',
      `request body of ${declared} bytes is larger than the limit of ${opts.maxRequestBody} bytes`,
    );
  }
  // A body of unknown length (chunked, or HTTP/2 without content-length) is
  // counted as it arrives and held here until it ends: one byte over the limit
  // is a 413 and nothing of it crosses the tunnel. The apiserver holds a body
  // in memory the same way before decoding it, up to the same limit.
  // A body the approval gate already read (and checked) is sent exactly as read.
  const held =
    opts.body ??
    (declared === undefined && hasBody(req)
      ? await holdBody(req, opts.maxRequestBody, opts.audit)
      : undefined);
  return send(ctx, req, res, tunnel, opts, held);
}

/** Read a body of unknown length up to `limit`; a KgError 413 beyond it. */
function holdBody(req: AnyRequest, limit: number, audit?: AuditRecorder): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (audit) audit.bytesIn = seen;
      if (seen > limit) {
        // Stop collecting, but do not destroy the request: the 413 still has
        // to be written on its connection. Node discards the rest of the body.
        req.off('data', onData);
        req.off('end', onEnd);
        chunks.length = 0;
        reject(
          new KgError(
            'KG_ERR_BODY_TOO_LARGE',
            `request body is larger than the limit of ${limit} bytes`,
          ),
        );
        return;
      }
      if (audit?.wantsRequestBody) audit.requestChunk(chunk);
      chunks.push(chunk);
    };
    const onEnd = () => resolve(Buffer.concat(chunks));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', reject);
  });
}

/**
 * The `kg-identity` value of a token identity, once per identity object (the
 * token cache hands out the same object for its lifetime; JSON + base64url
 * per request showed in the profile).
 */
const encodedIdentities = new WeakMap<TokenIdentity, string>();
function encodedIdentity(identity: TokenIdentity): string {
  let v = encodedIdentities.get(identity);
  if (v === undefined) {
    v = encodeIdentity({ user: identity.user, groups: identity.groups, kind: identity.kind });
    encodedIdentities.set(identity, v);
  }
  return v;
}

function send(
  ctx: RequestContext,
  req: AnyRequest,
  res: AnyResponse,
  tunnel: Tunnel,
  opts: ForwardOptions,
  held: Buffer | undefined,
): Promise<void> {
  const route = ctx.route!;
  const identity = ctx.identity!;
  const headers: http2.OutgoingHttpHeaders = forwardRequestHeaders(req.rawHeaders);
  headers[':method'] = req.method ?? 'GET';
  headers[':path'] = route.rawQuery ? `${route.kubePath}?${route.rawQuery}` : route.kubePath;
  headers[hdrIdentity] = encodedIdentity(identity);
  if (ctx.grants) headers[hdrGrants] = ctx.grants;
  headers[hdrAuditId] = ctx.auditId;
  if (held) headers['content-length'] = held.length;
  const withBody = held ? held.length > 0 : hasBody(req);

  return new Promise<void>((resolve, reject) => {
    let stream: http2.ClientHttp2Stream;
    try {
      proxyMetrics.markSent(ctx);
      stream = tunnel.session.request(headers, { endStream: !withBody });
    } catch (err) {
      reject(
        new KgError(
          'KG_ERR_CLUSTER_OFFLINE',
          `cluster "${route.cluster}" tunnel is closing; retry`,
          { cause: err, retryAfter: 1 },
        ),
      );
      return;
    }
    tunnel.active++;
    let started = false;
    let settled = false;
    const done = (err?: KgError) => {
      if (settled) return;
      settled = true;
      tunnel.active--;
      if (err && started) opts.audit?.fail(err);
      if (err && !started) reject(err);
      else {
        if (err) res.destroy();
        resolve();
      }
    };

    // Client gone (ctrl-C on a watch, closed connection): cancel upstream,
    // within the tunnel's reset budget (cancel.ts). A stream that ended needs none.
    let ended = false;
    res.on('close', () => {
      if (!ended) cancelTunnelStream(tunnel, stream);
      done();
    });

    if (held) {
      if (held.length) stream.end(held);
    } else if (withBody) {
      let seen = 0;
      const audit = opts.audit;
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (audit) {
          audit.bytesIn = seen;
          if (audit.wantsRequestBody) audit.requestChunk(chunk);
        }
        if (seen > opts.maxRequestBody) {
          req.unpipe(stream);
          stream.close(http2.constants.NGHTTP2_CANCEL);
          done(
            new KgError(
              'KG_ERR_BODY_TOO_LARGE',
              `request body is larger than the limit of ${opts.maxRequestBody} bytes`,
            ),
          );
        }
      });
      req.pipe(stream);
    }

    stream.on('response', (h) => {
      proxyMetrics.markHeaders(ctx);
      started = true;
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(h)) {
        if (value === undefined || isHopByHopResponseHeader(name)) continue;
        out[name] = value as string | string[];
      }
      out['audit-id'] = ctx.auditId;
      opts.audit?.responseStarted(Number(h[':status']), h, hdrRanAs);
      opts.onResponse?.(Number(h[':status']));
      res.writeHead(Number(h[':status']), out);
      // Send headers now: a watch may not produce its first event for minutes.
      if ('flushHeaders' in res) res.flushHeaders();
      stream.on('data', (chunk: Buffer) => {
        opts.audit?.responseChunk(chunk);
        if (!(res as Writable).write(chunk)) {
          stream.pause();
          res.once('drain', () => stream.resume());
        }
      });
      stream.on('end', () => {
        ended = true;
        res.end();
        done();
      });
    });

    stream.on('error', (err) => {
      done(
        new KgError(
          'KG_ERR_UPSTREAM',
          `cluster "${route.cluster}": the tunnel stream failed (${err.message}); retry`,
          { cause: err },
        ),
      );
    });
    stream.on('close', () => {
      if (!settled)
        done(
          new KgError(
            'KG_ERR_UPSTREAM',
            `cluster "${route.cluster}": the agent closed the stream (code ${stream.rstCode ?? 0}); retry`,
          ),
        );
    });
  });
}
