/**
 * The agent's half of a request: one tunnel stream in, one apiserver request
 * out, streamed both ways. The request runs as the user's just-in-time
 * ServiceAccount (`KUBEGATE_FORWARD_MODE=jit`, the default) or, in
 * `impersonate` mode, as the user through impersonation headers — never as
 * the agent itself, never anonymously. Identity comes only from the proxy's
 * `kg-identity` header; any identity header that reached us otherwise is
 * dropped (defence in depth behind the proxy's allow-list).
 */
import * as http2 from 'node:http2';
import * as tls from 'node:tls';
import { PassThrough } from 'node:stream';
import { readFileSync } from 'node:fs';
import { Pool, type Dispatcher } from 'undici';
import { KgError, kubeStatus, type StatusReason } from '../../common/errors.js';
import type { JitAccess } from '../jit/jit-manager.js';
import { upgradeUpstream } from './upgrade.js';
import { canAnswer } from './can-answer.js';
import { hopByHopHeaders } from '../../common/hop-by-hop.js';
import { agentMetrics } from '../metrics.js';
import type { Logger } from '../../common/log.js';
import {
  clusterUserName,
  isSubjectKind,
  robotUserPrefix,
  runbookUserPrefix,
  type SubjectKind,
} from '../../common/identity-key.js';
import {
  decodeIdentity,
  hdrAgentError,
  hdrAuditId,
  hdrCancel,
  hdrIdentity,
  hdrGrants,
  hdrRanAs,
  hdrUpgrade,
  decodeGrants,
  isKubegateHeader,
  type TunnelGrant,
  type TunnelIdentity,
} from '../../common/tunnel-protocol.js';

export interface UpstreamDeps {
  apiserverUrl: string;
  caPem: string;
  tokenFile: string;
  /** Just-in-time accounts; absent = impersonation mode. */
  jit?: JitAccess;
  log: Logger;
}

interface Credential {
  headers: Record<string, string | string[]>;
  /** The kubegate subject of a JIT credential (to rebuild it if the apiserver refuses it). */
  user?: string;
  kind?: SubjectKind;
  /** The identity the apiserver sees, returned to the proxy for audit. */
  ranAs: string;
}

/** Request headers never passed on (identity, hop-by-hop, ours); plus the prefixes below. */
const dropRequest = new Set([...hopByHopHeaders, 'authorization', 'cookie', 'audit-id']);
/** Names arrive lower-case (HTTP/2 requires it; Node's parser enforces it). */
function droppedRequestHeader(name: string): boolean {
  return (
    name.charCodeAt(0) === 58 /* ':' */ ||
    dropRequest.has(name) ||
    name.startsWith('impersonate-') ||
    name.startsWith('x-remote-') ||
    name.startsWith('kg-')
  );
}
/**
 * Response headers never passed back: hop-by-hop, and anything in kubegate's
 * own namespace (`kg-…`, any case). A pod behind pods/proxy or services/proxy,
 * or an aggregated API server, chooses its response headers; only the agent
 * may say who a request ran as, or that an upgrade switched (audit record).
 */
export function droppedResponseHeader(name: string): boolean {
  return hopByHopHeaders.has(name.toLowerCase()) || isKubegateHeader(name);
}

/** Reject identities that could claim a Kubernetes system identity. */
export function identityProblem(id: TunnelIdentity | undefined): string | undefined {
  if (!id) return 'the request carries no kubegate identity';
  if (!id.user || id.user.startsWith('system:'))
    return `user name ${JSON.stringify(id.user)} is not allowed`;
  if (id.kind !== undefined && !isSubjectKind(id.kind))
    return `subject kind ${JSON.stringify(id.kind)} is not allowed`;
  // Robots and runbooks are impersonated under these prefixes; no person may claim them.
  if (
    (id.kind ?? 'user') === 'user' &&
    (id.user.startsWith(robotUserPrefix) || id.user.startsWith(runbookUserPrefix))
  )
    return `user name ${JSON.stringify(id.user)} is not allowed (reserved for robots and runbooks)`;
  const bad = id.groups.find((g) => !g || g.startsWith('system:'));
  return bad === undefined ? undefined : `group name ${JSON.stringify(bad)} is not allowed`;
}

/**
 * Streams per HTTP/2 connection to the apiserver for watches. Below Go's
 * default SETTINGS_MAX_CONCURRENT_STREAMS (250) and the apiserver's own limit,
 * so no request ever waits for a stream slot the server will not grant; the
 * pool opens another connection instead.
 */
export const upstreamH2StreamsPerConnection = 100;
/**
 * Per-stream receive window towards the apiserver. A stalled watch reader
 * stops consuming here, so this (not a kernel socket buffer) is what the
 * apiserver may push ahead into the agent for one stream.
 */
export const upstreamH2StreamWindow = 256 * 1024;

/** The deprecated watch prefix: /api/v1/watch/… or /apis/<group>/<version>/watch/… */
const legacyWatchPath = /^\/(api\/[^/]+|apis\/[^/]+\/[^/]+)\/watch\//;

/** True for the requests that stay open: watches and followed logs. */
export function isLongRunning(path: string): boolean {
  const q = path.indexOf('?');
  if (legacyWatchPath.test(q < 0 ? path : path.slice(0, q))) return true;
  return q >= 0 && /(^|&)(watch|follow)=(1|true)(&|$)/.test(path.slice(q + 1));
}

export class Upstream {
  /** HTTP/1.1 for ordinary requests (bodies, writes; upgrades go through upgrade.ts). */
  private readonly pool: Pool;
  /**
   * HTTP/2 for long-running GETs: thousands of watches share a few TLS
   * connections (one HTTP/1.1 connection per watch cost ~78 KiB each), and a
   * stalled reader back-pressures the apiserver through per-stream flow
   * control. Writes stay on HTTP/1.1: undici holds a non-idempotent or
   * streamed-body request until the h2 connection is otherwise idle, which
   * would never happen on a connection full of watches.
   */
  private readonly watchPool: Pool;
  private token = '';
  private tokenReadAt = 0;
  /**
   * Decoded `kg-identity` and `kg-grants` values: the same few values arrive
   * on every request of a user (base64url + JSON.parse each time showed in
   * the profile). Bounded: cleared when full.
   */
  private readonly identities = new Map<string, TunnelIdentity | undefined>();
  private readonly grants = new Map<string, TunnelGrant[] | undefined>();
  /** Request streams open on each tunnel session, by stream id (for `cancelPath`). */
  private readonly open = new WeakMap<http2.Http2Session, Map<number, http2.ServerHttp2Stream>>();

  constructor(private readonly deps: UpstreamDeps) {
    // One TLS context (CA parsed once) for every connection to the apiserver.
    const secureContext = tls.createSecureContext({ ca: deps.caPem });
    this.pool = new Pool(deps.apiserverUrl, {
      connect: { secureContext, rejectUnauthorized: true },
      connections: null,
      pipelining: 1,
      keepAliveTimeout: 30_000,
    });
    this.watchPool = new Pool(deps.apiserverUrl, {
      connect: { secureContext, rejectUnauthorized: true },
      connections: null,
      allowH2: true,
      pipelining: upstreamH2StreamsPerConnection,
      maxConcurrentStreams: upstreamH2StreamsPerConnection,
      initialWindowSize: upstreamH2StreamWindow,
      // Room for every stream's window: stalled streams never starve the others.
      connectionWindowSize: upstreamH2StreamWindow * upstreamH2StreamsPerConnection,
      keepAliveTimeout: 30_000,
    });
  }

  private decoded<T>(cache: Map<string, T>, value: string, decode: (v: string) => T): T {
    if (cache.has(value)) return cache.get(value)!;
    const d = decode(value);
    if (cache.size >= 1000) cache.clear();
    cache.set(value, d);
    return d;
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
    if (headers[hdrCancel] !== undefined) return this.cancelStreams(stream);
    const session = stream.session;
    let open = session && this.open.get(session);
    if (session && !open) this.open.set(session, (open = new Map()));
    // A server stream has its id from the peer's HEADERS frame.
    const id = stream.id!;
    open?.set(id, stream);
    const ended = agentMetrics.openStream();
    stream.once('close', () => {
      ended();
      open?.delete(id);
    });
    const identity = this.decoded(
      this.identities,
      String(headers[hdrIdentity] ?? ''),
      decodeIdentity,
    );
    const problem = identityProblem(identity);
    if (problem) {
      return replyStatus(
        stream,
        403,
        'Forbidden',
        `kubegate agent refused the request: ${problem}`,
      );
    }
    // Hold the request body while the credential is prepared (a first request
    // may create the JIT account): paused, it back-pressures the tunnel stream.
    let body: PassThrough | null = null;
    // (An upgrade's stream is not a body: after a 101 it is piped raw.)
    if (!stream.endAfterHeaders && !headers[hdrUpgrade]) {
      body = new PassThrough();
      stream.pipe(body);
    }
    this.credential(identity!, headers).then(
      (cred) =>
        headers[hdrUpgrade]
          ? this.sendUpgrade(stream, headers, cred)
          : this.send(stream, headers, cred, body),
      (err: unknown) => {
        const e =
          err instanceof KgError
            ? err
            : new KgError('KG_ERR_INTERNAL', 'internal error', { cause: err });
        if (!(err instanceof KgError)) this.deps.log.error({ err }, 'credential failed (bug)');
        replyStatus(stream, e.status, e.reason, e.message, e.retryAfter);
      },
    );
    return undefined;
  }

  /**
   * The proxy asks us to reset streams of this session (common/tunnel-protocol.ts,
   * `cancelPath`): resets we send do not count against nghttp2's limit on
   * resets received, which a burst of cancelled watches would exceed.
   */
  private cancelStreams(stream: http2.ServerHttp2Stream): void {
    const open = stream.session && this.open.get(stream.session);
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 1024 * 1024) chunks.push(c);
    });
    stream.once('end', () => {
      let n = 0;
      for (const part of Buffer.concat(chunks).toString('latin1').split(',')) {
        const s = open?.get(Number(part));
        if (s && !s.closed) {
          s.close(http2.constants.NGHTTP2_CANCEL);
          n++;
        }
      }
      if (!canAnswer(stream)) return;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end(String(n));
    });
  }

  /** How this request authenticates to the apiserver: a JIT account, or impersonation. */
  private async credential(
    identity: TunnelIdentity,
    headers: http2.IncomingHttpHeaders,
  ): Promise<Credential> {
    if (this.deps.jit) {
      const grants = this.decoded(this.grants, String(headers[hdrGrants] ?? ''), decodeGrants);
      if (!grants)
        throw new KgError(
          'KG_ERR_FORBIDDEN',
          'kubegate agent refused the request: it carries no grants',
        );
      const c = await this.deps.jit.credentialFor(
        identity.user,
        identity.groups,
        grants,
        identity.kind ?? 'user',
      );
      return {
        headers: { authorization: `Bearer ${c.token}` },
        ranAs: c.username,
        user: identity.user,
        kind: identity.kind ?? 'user',
      };
    }
    // A robot is impersonated as kubegate:robot:<name>, never as a person of that name.
    const user = clusterUserName(identity.kind ?? 'user', identity.user);
    const h: Record<string, string | string[]> = {
      authorization: `Bearer ${this.bearer()}`,
      'impersonate-user': user,
    };
    if (identity.groups.length) h['impersonate-group'] = identity.groups;
    return { headers: h, ranAs: user };
  }

  private sendUpgrade(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    cred: Credential,
  ): void {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(headers)) {
      if (value === undefined || droppedRequestHeader(name)) continue;
      out[name] = value as string | string[];
    }
    Object.assign(out, cred.headers);
    const auditId = headers[hdrAuditId];
    if (typeof auditId === 'string') out['audit-id'] = auditId;
    upgradeUpstream(
      { url: new URL(this.deps.apiserverUrl), caPem: this.deps.caPem, log: this.deps.log },
      stream,
      headers,
      out,
      cred.ranAs,
    );
  }

  private send(
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    cred: Credential,
    body: PassThrough | null,
  ): void {
    if (stream.destroyed) return;
    const out: Record<string, string | string[]> = {};
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || droppedRequestHeader(name)) continue;
      out[name] = value;
    }
    Object.assign(out, cred.headers);
    const auditId = headers[hdrAuditId];
    if (typeof auditId === 'string') out['audit-id'] = auditId;

    const method = String(headers[':method']);
    const path = String(headers[':path']);
    const pool =
      method === 'GET' && body === null && isLongRunning(path) ? this.watchPool : this.pool;
    pool.dispatch(
      {
        path,
        method: method as 'GET',
        headers: out,
        body,
        bodyTimeout: 0,
        headersTimeout: 0,
      },
      new Relay(this, stream, cred, method),
    );
  }

  /** The answer came (metrics; a refused JIT token is rebuilt next time). */
  answered(method: string, status: number, sentAt: number, cred: Credential): void {
    agentMetrics.observeUpstream(method, status, (performance.now() - sentAt) / 1000);
    if (status === 401 && cred.user) this.deps.jit?.invalidate(cred.kind ?? 'user', cred.user);
  }

  failed(method: string, sentAt: number, err: Error): void {
    this.deps.log.warn({ err: err.message }, 'apiserver request failed');
    agentMetrics.observeUpstream(method, 502, (performance.now() - sentAt) / 1000);
  }

  async close(): Promise<void> {
    await Promise.all([this.pool.close(), this.watchPool.close()]);
  }
}

/**
 * One apiserver answer relayed onto its tunnel stream, as an undici dispatch
 * handler: no promise, response Readable or pipeline per request (they were
 * a third of the agent's CPU on small GETs), back-pressure by pausing the
 * dispatch, and the upstream request is aborted only if the tunnel stream
 * closes before the answer ended.
 */
class Relay implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined;
  private finished = false;
  private readonly sentAt = performance.now();

  constructor(
    private readonly up: Upstream,
    private readonly stream: http2.ServerHttp2Stream,
    private readonly cred: Credential,
    private readonly method: string,
  ) {
    stream.once('close', this.onStreamClose);
  }

  private readonly onStreamClose = (): void => {
    if (!this.finished) this.controller?.abort(new Error('the tunnel stream closed'));
  };

  private readonly onDrain = (): void => this.controller?.resume();

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.stream.closed || this.stream.destroyed)
      controller.abort(new Error('the tunnel stream closed'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: http2.IncomingHttpHeaders,
  ): void {
    if (statusCode < 200) return; // informational
    this.up.answered(this.method, statusCode, this.sentAt, this.cred);
    const stream = this.stream;
    if (!canAnswer(stream)) {
      controller.abort(new Error('the tunnel stream closed'));
      return;
    }
    const resHeaders: http2.OutgoingHttpHeaders = { ':status': statusCode };
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined || droppedResponseHeader(name)) continue;
      resHeaders[name] = value;
    }
    // Ours, after the upstream's (none of which is in our namespace any more).
    resHeaders[hdrRanAs] = this.cred.ranAs;
    stream.respond(resHeaders);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.stream.destroyed) return;
    if (!this.stream.write(chunk)) {
      controller.pause();
      this.stream.once('drain', this.onDrain);
    }
  }

  onResponseEnd(): void {
    this.finished = true;
    if (!this.stream.destroyed) this.stream.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const ours = !this.finished && (this.stream.closed || this.stream.destroyed);
    this.finished = true;
    if (ours) return; // we aborted it: the tunnel stream is gone
    if (this.stream.headersSent) {
      // Cut short mid-answer: reset, so the proxy cannot take it for complete.
      if (!this.stream.closed) this.stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    this.up.failed(this.method, this.sentAt, err);
    replyStatus(
      this.stream,
      502,
      'InternalError',
      `kubegate agent could not reach the apiserver: ${err.message}`,
    );
  }
}

export function replyStatus(
  stream: http2.ServerHttp2Stream,
  code: number,
  reason: StatusReason,
  message: string,
  retryAfter?: number,
): void {
  if (stream.headersSent || !canAnswer(stream)) return;
  const body = JSON.stringify(
    kubeStatus(code, reason, message, retryAfter ? { retryAfterSeconds: retryAfter } : undefined),
  );
  stream.respond({
    ':status': code,
    'content-type': 'application/json',
    [hdrAgentError]: '1',
    ...(retryAfter ? { 'retry-after': String(retryAfter) } : {}),
  });
  stream.end(body);
}
