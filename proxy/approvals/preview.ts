/**
 * What a gated request would change, for the approver: the live object
 * (GET) and the object the request would produce (the same request with
 * `dryRun=All`, which the apiserver runs through admission and defaulting
 * without storing anything), both fetched through the cluster's tunnel as
 * the requesting user's own JIT account — so the preview shows exactly what
 * that user may see, never more. Requests that are not about an object
 * (exec, attach, port-forward, proxy…) are never sent for a preview: they
 * are shown as text (request-text.ts), argv in order.
 */
import * as http2 from 'node:http2';
import type { RequestContext } from '../context.js';
import { forwardRequestHeaders, setCallerHeaders } from '../forward/headers.js';
import type { Tunnel } from '../tunnel/registry.js';
import { objectDiff } from './diff.js';
import { hasObjectPreview, requestText } from './request-text.js';

const maxResponse = 4 * 1024 * 1024;
const timeoutMs = 10_000;

interface Answer {
  status: number;
  body: unknown;
}

function ask(
  tunnel: Tunnel,
  ctx: RequestContext,
  headers: http2.OutgoingHttpHeaders,
  body?: Buffer,
): Promise<Answer> {
  setCallerHeaders(headers, ctx);
  headers.accept = 'application/json';
  delete headers['accept-encoding'];
  return new Promise((resolve, reject) => {
    const stream = tunnel.session.request(headers, { endStream: !body });
    const timer = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), timeoutMs);
    let status = 0;
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxResponse) stream.close(http2.constants.NGHTTP2_CANCEL);
      else chunks.push(c);
    });
    stream.on('end', () => {
      clearTimeout(timer);
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        parsed = undefined;
      }
      resolve({ status, body: parsed });
    });
    stream.on('close', () => {
      clearTimeout(timer);
      if (!status || size > maxResponse)
        reject(new Error(size > maxResponse ? 'answer too large' : 'no answer'));
    });
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    if (body) stream.end(body);
  });
}

function statusMessage(a: Answer): string {
  const m = (a.body as { message?: unknown } | undefined)?.message;
  return `HTTP ${a.status}${typeof m === 'string' ? `: ${m}` : ''}`;
}

/**
 * The diff the approver sees, as text; never throws (a preview that cannot
 * be made says why, and the approver decides without it).
 */
export async function previewDiff(
  tunnel: Tunnel | undefined,
  ctx: RequestContext,
  rawHeaders: readonly string[],
  body: Buffer,
): Promise<string> {
  const route = ctx.route!;
  const info = ctx.info!;
  // exec, attach, port-forward, proxy and the like are not objects: a "dry
  // run" of them would be the request itself (dryRun means nothing to a pod's
  // proxy), so they are shown as sent, without asking the cluster anything.
  if (!hasObjectPreview(info))
    return requestText(info, ctx.method, route.kubePath, route.rawQuery, body.length);
  if (!tunnel) return '(no preview: the cluster is offline)\n';
  try {
    let live: unknown;
    if (info.name && info.verb !== 'create') {
      const got = await ask(tunnel, ctx, { ':method': 'GET', ':path': route.kubePath });
      if (got.status === 200) live = got.body;
      else if (got.status !== 404)
        return `(no preview: reading the live object failed, ${statusMessage(got)})\n`;
    }
    let result: unknown;
    if (info.verb === 'create' || info.verb === 'update' || info.verb === 'patch') {
      const headers: http2.OutgoingHttpHeaders = forwardRequestHeaders(rawHeaders);
      headers[':method'] = ctx.method;
      headers[':path'] =
        `${route.kubePath}?${route.rawQuery ? `${route.rawQuery}&` : ''}dryRun=All`;
      headers['content-length'] = String(body.length);
      const dry = await ask(tunnel, ctx, headers, body);
      if (dry.status < 200 || dry.status >= 300)
        return `(no preview: the apiserver refused a dry run of this request, ${statusMessage(dry)})\n`;
      result = dry.body;
    } else if (info.verb !== 'delete') {
      return `(no preview for verb ${info.verb}: ${ctx.method} ${route.kubePath}${route.rawQuery ? `?${route.rawQuery}` : ''})\n`;
    }
    return objectDiff(live, result, info.resource);
  } catch (err) {
    return `(no preview: ${(err as Error).message})\n`;
  }
}
