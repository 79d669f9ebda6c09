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
import type { RequestContext } from '../context.js';
import type { AuditRecorder } from '../audit/recorder.js';

export type AnyRequest = IncomingMessage | Http2ServerRequest;

export interface ForwardOptions {
  maxRequestBody: number;
  /** The request's audit record: bytes, bodies (at the policy's level), who it ran as. */
  audit?: AuditRecorder;
  /** The request body, already read (the approval gate buffers gated requests); sent as is. */
  body?: Buffer;
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
export function forward(
  ctx: RequestContext,
  req: AnyRequest,
  res: AnyResponse,
  tunnel: Tunnel,
  opts: ForwardOptions,
): Promise<void> {
  const route = ctx.route!;
  const identity = ctx.identity!;
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > opts.maxRequestBody) {
    throw new KgError(
      'KG_ERR_BODY_TOO_LARGE',
      `request body of ${declared} bytes is larger than the limit of ${opts.maxRequestBody} bytes`,
    );
  }
  const headers: http2.OutgoingHttpHeaders = forwardRequestHeaders(req.rawHeaders);
  headers[':method'] = req.method ?? 'GET';
  headers[':path'] = route.rawQuery ? `${route.kubePath}?${route.rawQuery}` : route.kubePath;
  headers[hdrIdentity] = encodeIdentity({
    user: identity.user,
    groups: identity.groups,
    kind: identity.kind,
  });
  if (ctx.grants) headers[hdrGrants] = ctx.grants;
  headers[hdrAuditId] = ctx.auditId;
  const withBody = opts.body ? opts.body.length > 0 : hasBody(req);
  if (opts.body) headers['content-length'] = String(opts.body.length);

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

    // Client gone (ctrl-C on a watch, closed connection): cancel upstream.
    res.on('close', () => {
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      done();
    });

    if (opts.body) {
      if (withBody) stream.end(opts.body);
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
