/**
 * The outgoing header set of a forwarded request, rebuilt from an allow-list
 * (docs/security.md, "Impersonation smuggling"). Client identity headers
 * (Authorization, Impersonate-*, X-Remote-*) are never copied; anything the
 * client named in `Connection` is dropped before the allow-list is applied,
 * so a client can never make hop-by-hop stripping remove *our* headers. We
 * read `rawHeaders`, because Node folds repeated headers in `req.headers`.
 */
import type * as http2 from 'node:http2';
import { hopByHopHeaders } from '../../common/hop-by-hop.js';
import {
  encodeIdentity,
  hdrAuditId,
  hdrGrants,
  hdrIdentity,
} from '../../common/tunnel-protocol.js';
import type { TokenIdentity } from '../authn/identity.js';
import type { RequestContext } from '../context.js';

/** End-to-end request headers that Kubernetes clients need upstream. */
const allowedRequest = new Set([
  'accept',
  'accept-encoding',
  'accept-language',
  'cache-control',
  'content-encoding',
  'content-length',
  'content-type',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-unmodified-since',
  'kubectl-command',
  'kubectl-session',
  'user-agent',
  'traceparent',
  'tracestate',
  'x-stream-protocol-version',
  'sec-websocket-key',
  'sec-websocket-protocol',
  'sec-websocket-version',
]);

/**
 * Pick the request headers to forward, from Node's rawHeaders (name, value,
 * name, value …). Returns lower-case names; repeated allowed headers keep
 * every value.
 */
export function forwardRequestHeaders(
  rawHeaders: readonly string[],
): Record<string, string | string[]> {
  const named = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === 'connection') {
      for (const token of rawHeaders[i + 1]!.split(',')) named.add(token.trim().toLowerCase());
    }
  }
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!allowedRequest.has(name) || named.has(name)) continue;
    const value = rawHeaders[i + 1]!;
    const prev = out[name];
    out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

/** Response headers from upstream that must not be relayed to the client (plus HTTP/2 pseudo headers and ours). */
export function isHopByHopResponseHeader(name: string): boolean {
  return hopByHopHeaders.has(name) || name.startsWith(':') || name.startsWith('kg-');
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

/** The headers that tell the agent who asks (identity, JIT grants) and name the audit event. */
export function setCallerHeaders(headers: http2.OutgoingHttpHeaders, ctx: RequestContext): void {
  headers[hdrIdentity] = encodedIdentity(ctx.identity!);
  if (ctx.grants) headers[hdrGrants] = ctx.grants;
  headers[hdrAuditId] = ctx.auditId;
}

/**
 * The headers of a request sent on to the agent: the client's, through the
 * allow-list; method and path (the cluster prefix removed, the query as sent);
 * who asks and the audit ID.
 */
export function upstreamHeaders(
  req: { method?: string | undefined; rawHeaders: string[] },
  ctx: RequestContext,
): http2.OutgoingHttpHeaders {
  const route = ctx.route!;
  const headers: http2.OutgoingHttpHeaders = forwardRequestHeaders(req.rawHeaders);
  headers[':method'] = req.method ?? 'GET';
  headers[':path'] = route.rawQuery ? `${route.kubePath}?${route.rawQuery}` : route.kubePath;
  setCallerHeaders(headers, ctx);
  return headers;
}
