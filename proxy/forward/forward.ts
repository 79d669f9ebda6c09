/**
 * Stage 6: forward one request over a tunnel stream and stream the answer
 * back. Response bodies are piped with back-pressure, and each chunk of a
 * watch goes out as soon as it arrives; there is no idle timeout on answers:
 * watches and `logs -f` end when the client or the apiserver ends them.
 * Request bodies are bounded (issue #17, item 7): a body of unknown length is
 * held (so one over the size limit never reaches the cluster) only while the
 * replica's body budget allows, per identity and per replica
 * (body-budget.ts), and streamed beyond it; a streamed body is charged for
 * what the tunnel has not taken yet and refused (429) past the bound; a body
 * that sends nothing for KUBEGATE_BODY_IDLE_TIMEOUT is answered 408. A
 * request waiting for its answer probes its tunnel (tunnel/health.ts), and
 * one whose tunnel died unanswered fails over when it is safe to send again.
 */
import * as http2 from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Writable } from 'node:stream';
import { KgError } from '../../common/errors.js';
import { hdrRanAs } from '../../common/tunnel-protocol.js';
import type { AnyResponse } from '../http/response.js';
import { followBody, idleTimer } from '../http/read-body.js';
import type { Tunnel } from '../tunnel/registry.js';
import { isHopByHopResponseHeader, upstreamHeaders } from './headers.js';
import { proxyMetrics } from '../metrics.js';
import { cancelTunnelStream } from './cancel.js';
import type { RequestContext } from '../context.js';
import type { AuditRecorder } from '../audit/recorder.js';
import type { BodyLease } from './body-budget.js';
import { TunnelDeadError, type TunnelHealth } from '../tunnel/health.js';
import {
  endStatus,
  frameGraceMs,
  watchEncoding,
  watchErrorEvent,
  watchScanner,
  type EndReason,
  type FrameScanner,
  type WatchEncoding,
} from './end-status.js';

export type AnyRequest = IncomingMessage | Http2ServerRequest;

export interface ForwardOptions {
  maxRequestBody: number;
  /** The request's audit record: bytes, bodies (at the policy's level), who it ran as. */
  audit?: AuditRecorder;
  /** The request body, already read (the approval gate buffers gated requests); sent as is. */
  body?: Buffer;
  /** The cluster's status, before it is passed on (the approval gate settles its approval). */
  onResponse?: (status: number) => void;
  /**
   * This request's charge on the replica's request-body budget (body-budget.ts):
   * a body of unknown length is held only while the charge is granted, and
   * streamed to the tunnel beyond it. Absent: held up to maxRequestBody.
   */
  lease?: BodyLease;
  /** A request body that sends nothing for this long is answered 408 and reset; 0: no limit. */
  bodyIdleMs?: number;
  /** Notices a dead tunnel while this request waits for its answer (tunnel/health.ts). */
  health?: TunnelHealth;
  /** Another tunnel for the request's cluster, none of `tried`: where a request fails over. */
  failover?: (tried: ReadonlySet<Tunnel>) => Promise<Tunnel | undefined>;
  /**
   * Receives the function that ends this request early (open-requests.ts):
   * unanswered, with a 401 Status; a watch, with a last ERROR event
   * (end-status.ts); any other answer is cut.
   */
  onEnd?: (end: (reason: EndReason) => void) => void;
}

function hasBody(req: AnyRequest): boolean {
  if ('stream' in req) return !req.stream.endAfterHeaders;
  return (
    req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
  );
}

/**
 * What goes over the tunnel as the body: all of it, read already (`held`);
 * the start of it, read while the budget allowed, and then the rest as it
 * arrives (`prefix`); or nothing read yet (`live`: streamed, or no body).
 */
type BodyPlan =
  | { kind: 'held'; body: Buffer }
  | { kind: 'prefix'; chunks: Buffer[]; seen: number }
  | { kind: 'live' };

/** Marks a watch whose encoding kubegate does not frame (ended cleanly, without an event). */
const unknownWatch: FrameScanner = { atBoundary: () => false, scan: (c) => c.length };

/** Methods that may be sent again over another tunnel when the first one died unanswered. */
const safeMethods = new Set(['GET', 'HEAD', 'OPTIONS']);

/** A send that failed because its tunnel was found dead (health.ts); forward() decides what next. */
class DeadTunnel extends Error {
  constructor(
    readonly dead: TunnelDeadError,
    /** Not answered, nothing of it is lost by sending it again: a safe method with no unread body. */
    readonly retryable: boolean,
  ) {
    super(dead.message);
  }
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
    proxyMetrics.dataplane.bodyRefusal('too_large');
    throw new KgError(
      'KG_ERR_BODY_TOO_LARGE',
      `request body of ${declared} bytes is larger than the limit of ${opts.maxRequestBody} bytes`,
    );
  }
  // A body of unknown length (chunked, or HTTP/2 without content-length) is
  // counted as it arrives and held here while the replica's body budget
  // allows (per identity and per replica, body-budget.ts): one byte over the
  // size limit is then a 413 and nothing of it crosses the tunnel. Beyond the
  // budget what was read goes first and the rest is streamed, with
  // back-pressure, and cut off at the limit (the stream is reset, so the
  // apiserver never decodes a partial body). A body the approval gate already
  // read (and checked) is sent exactly as read.
  const plan: BodyPlan = opts.body
    ? { kind: 'held', body: opts.body }
    : declared === undefined && hasBody(req)
      ? await holdBody(req, opts)
      : { kind: 'live' };
  const tried = new Set<Tunnel>();
  let from: Tunnel | undefined;
  for (let t = tunnel; ;) {
    try {
      return await send(ctx, req, res, t, opts, plan, from);
    } catch (err) {
      if (!(err instanceof DeadTunnel)) throw err;
      tried.add(t);
      const cluster = ctx.route!.cluster;
      if (!err.retryable) {
        proxyMetrics.dataplane.failover('not_retried');
        throw new KgError(
          'KG_ERR_UPSTREAM',
          `${err.message} while this request was in flight; it may have reached the cluster, so kubegate did not send it again: check its effect before you repeat it`,
          { cause: err.dead },
        );
      }
      const next = await opts.failover?.(tried);
      if (!next) {
        proxyMetrics.dataplane.failover('no_tunnel');
        // No Retry-After (client-go would retry silently for a long time; pipeline.ts).
        throw new KgError(
          'KG_ERR_CLUSTER_OFFLINE',
          `cluster "${cluster}" is unreachable: ${err.message}, and no other tunnel to it answers; retry when its agent is back`,
          { cause: err.dead },
        );
      }
      proxyMetrics.dataplane.failover('failed_over');
      ctx.log.warn(
        { cluster, from: t.id, to: next.id, toReplica: next.replica },
        'tunnel stopped answering: request sent again over another tunnel',
      );
      from = t;
      t = next;
    }
  }
}

/** The 408 for a body that stopped arriving; the client's stream is ended once it is answered. */
function bodyTimeout(idleMs: number): KgError {
  proxyMetrics.dataplane.bodyRefusal('idle');
  return new KgError(
    'KG_ERR_BODY_TIMEOUT',
    `the request body sent nothing for ${Math.round(idleMs / 1000)} s; the request was cancelled`,
  );
}

/**
 * Read a body of unknown length: a KgError 413 beyond the size limit, 408
 * when it stops arriving. Held whole while the budget grants each chunk;
 * otherwise what was read so far is handed on and the rest streamed.
 */
function holdBody(req: AnyRequest, opts: ForwardOptions): Promise<BodyPlan> {
  const limit = opts.maxRequestBody;
  const audit = opts.audit;
  const lease = opts.lease;
  return new Promise<BodyPlan>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    const stop = followBody(req, opts.bodyIdleMs, {
      chunk: (chunk) => {
        seen += chunk.length;
        if (audit) audit.bytesIn = seen;
        if (seen > limit) {
          // Stop collecting, but do not destroy the request: the 413 still has
          // to be written on its connection. Node discards the rest of the body.
          stop();
          chunks.length = 0;
          proxyMetrics.dataplane.bodyRefusal('too_large');
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
        if (lease && !lease.add(chunk.length)) {
          // The budget is spent: stream from here on (send() resumes the request).
          req.pause();
          stop();
          proxyMetrics.dataplane.streamedBody();
          resolve({ kind: 'prefix', chunks, seen });
        }
      },
      end: () => resolve({ kind: 'held', body: Buffer.concat(chunks) }),
      error: reject,
      idle: () => {
        chunks.length = 0;
        reject(bodyTimeout(opts.bodyIdleMs!));
      },
    });
  });
}

function send(
  ctx: RequestContext,
  req: AnyRequest,
  res: AnyResponse,
  tunnel: Tunnel,
  opts: ForwardOptions,
  plan: BodyPlan,
  /** The tunnel this request was first sent over, when it failed over from a dead one. */
  failedOverFrom: Tunnel | undefined,
): Promise<void> {
  const route = ctx.route!;
  const headers = upstreamHeaders(req, ctx);
  const held = plan.kind === 'held' ? plan.body : undefined;
  if (held) headers['content-length'] = held.length;
  const withBody = held ? held.length > 0 : plan.kind === 'prefix' || hasBody(req);
  // Sent again elsewhere if its tunnel dies before answering: nothing of the
  // request is lost (no body being streamed) and running it twice is harmless.
  const retryable = safeMethods.has(req.method ?? 'GET') && (held !== undefined || !withBody);

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
    // While the answer has not started, the tunnel is probed now and then
    // (health.ts): a dead one is retired and its streams fail with TunnelDeadError.
    const health = opts.health;
    const probe = health
      ? setInterval(() => {
          if (!started && !settled) void health.suspect(tunnel);
        }, health.probeAfterMs)
      : undefined;
    let grace: NodeJS.Timeout | undefined;
    const done = (err?: KgError | DeadTunnel) => {
      if (settled) return;
      settled = true;
      clearInterval(probe);
      clearTimeout(grace);
      bodyIdle?.stop();
      tunnel.active--;
      if (err && started) opts.audit?.fail(err);
      if (err && !started) reject(err);
      else {
        if (err) res.destroy();
        resolve();
      }
    };
    const dead = (): DeadTunnel | undefined => {
      if (!health?.isDead(tunnel)) return undefined;
      return new DeadTunnel(
        new TunnelDeadError(route.cluster, health.timeoutMs),
        retryable && !started,
      );
    };

    // Client gone (ctrl-C on a watch, closed connection): cancel upstream,
    // within the tunnel's reset budget (cancel.ts). A stream that ended needs none.
    let ended = false;
    res.on('close', () => {
      if (!ended) cancelTunnelStream(tunnel, stream);
      done();
    });

    // Ended early (access revoked, proxy shutting down). A watch in an
    // encoding kubegate writes is ended between two events: what is in flight
    // of the current one is passed on (nothing after it), then an ERROR event
    // saying why, then a clean end; one that does not complete within
    // frameGraceMs is cut, as is any other answer under way.
    const isWatch = ctx.info?.verb === 'watch';
    /** Set once a watch answers 200: its encoding, and where its events begin and end. */
    let watchEnc: WatchEncoding | undefined;
    let scanner: FrameScanner | undefined;
    let stopping: (() => void) | undefined;
    opts.onEnd?.((reason) => {
      if (settled || stopping) return;
      if (!started) {
        cancelTunnelStream(tunnel, stream);
        if (reason.refused) done(new KgError('KG_ERR_UNAUTHENTICATED', reason.message));
        else res.destroy();
        return;
      }
      if (!reason.refused || !scanner) return void res.destroy();
      const enc = watchEnc;
      const err = new KgError('KG_ERR_UNAUTHENTICATED', reason.message);
      opts.audit?.fail(err);
      if (scanner === unknownWatch || !enc) {
        // A watch in an encoding kubegate cannot write: a clean end, no event.
        ended = true;
        cancelTunnelStream(tunnel, stream);
        res.end();
        return;
      }
      grace = setTimeout(() => res.destroy(), frameGraceMs);
      stopping = () => {
        ended = true;
        cancelTunnelStream(tunnel, stream);
        res.end(watchErrorEvent(enc, endStatus(reason)));
        done();
      };
      if (scanner.atBoundary()) stopping();
    });

    let bodyIdle: ReturnType<typeof idleTimer> | undefined;
    if (held) {
      if (held.length) stream.end(held);
    } else if (withBody) {
      let seen = plan.kind === 'prefix' ? plan.seen : 0;
      const audit = opts.audit;
      let bodyEnded = false;
      bodyIdle = idleTimer(opts.bodyIdleMs, () => {
        if (bodyEnded || settled) return;
        req.off('data', onData);
        cancelTunnelStream(tunnel, stream);
        done(bodyTimeout(opts.bodyIdleMs!));
      });
      // The body is read as it arrives (so nothing of it waits unaccounted in
      // the front's HTTP/2 flow-control window) and charged to the budget for
      // what the tunnel has not taken yet; past the bound the request is
      // refused (429) and its tunnel stream reset.
      const lease = opts.lease;
      const recharge = () => settled || !lease || lease.setTo(stream.writableLength);
      const overBudget = () => {
        req.off('data', onData);
        cancelTunnelStream(tunnel, stream);
        proxyMetrics.dataplane.bodyRefusal('budget');
        done(
          new KgError(
            'KG_ERR_BODY_BUDGET',
            `too many request-body bytes waiting for cluster "${route.cluster}" for you on this kubegate replica (at most ${lease?.budgetPerIdentity ?? 0} per identity); send fewer large requests at the same time`,
          ),
        );
      };
      const write = (chunk: Buffer) => {
        stream.write(chunk, () => void recharge());
        if (!recharge()) overBudget();
      };
      req.once('end', () => {
        bodyEnded = true;
        bodyIdle?.stop();
        if (!settled) stream.end();
      });
      const onData = (chunk: Buffer) => {
        if (settled) return;
        bodyIdle?.poke();
        seen += chunk.length;
        if (audit) {
          audit.bytesIn = seen;
          if (audit.wantsRequestBody) audit.requestChunk(chunk);
        }
        if (seen > opts.maxRequestBody) {
          req.off('data', onData);
          stream.close(http2.constants.NGHTTP2_CANCEL);
          proxyMetrics.dataplane.bodyRefusal('too_large');
          done(
            new KgError(
              'KG_ERR_BODY_TOO_LARGE',
              `request body is larger than the limit of ${opts.maxRequestBody} bytes`,
            ),
          );
          return;
        }
        write(chunk);
      };
      let prefix: Buffer | undefined;
      if (plan.kind === 'prefix') {
        // Read while the budget allowed holding it; from now on charged as streamed.
        lease?.release();
        prefix = Buffer.concat(plan.chunks);
        plan.chunks.length = 0;
      }
      // Once this executor has put the stream's error and close listeners on:
      // the start of the body first, then the rest as it arrives.
      queueMicrotask(() => {
        if (prefix && !settled) write(prefix);
        if (settled) return;
        req.on('data', onData);
        req.resume();
      });
    }

    stream.on('response', (h) => {
      if (settled) return;
      proxyMetrics.markHeaders(ctx);
      started = true;
      clearInterval(probe);
      health?.sawLife(tunnel);
      const out: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(h)) {
        if (value === undefined || isHopByHopResponseHeader(name)) continue;
        out[name] = value as string | string[];
      }
      out['audit-id'] = ctx.auditId;
      if (failedOverFrom) {
        // kubectl prints Warning headers: the user learns why it took a moment.
        const note = `299 - "kubegate: the tunnel to cluster ${route.cluster} stopped answering; this request was sent again over another tunnel"`;
        const prior = out.warning;
        out.warning = prior === undefined ? note : [...[prior].flat(), note];
      }
      opts.audit?.responseStarted(Number(h[':status']), h, hdrRanAs);
      opts.onResponse?.(Number(h[':status']));
      res.writeHead(Number(h[':status']), out);
      // Send headers now: a watch may not produce its first event for minutes.
      if ('flushHeaders' in res) res.flushHeaders();
      // A watch stream's event boundaries are followed, so it can be ended between two events.
      if (isWatch && Number(h[':status']) === 200) {
        watchEnc = watchEncoding(h['content-type']);
        scanner = watchEnc ? watchScanner(watchEnc) : unknownWatch;
      }
      stream.on('data', (chunk: Buffer) => {
        if (settled || ended) return;
        if (scanner && scanner !== unknownWatch) {
          const n = scanner.scan(chunk, stopping !== undefined);
          if (n < chunk.length) chunk = chunk.subarray(0, n);
        }
        if (chunk.length) {
          opts.audit?.responseChunk(chunk);
          if (!(res as Writable).write(chunk)) {
            stream.pause();
            res.once('drain', () => stream.resume());
          }
        }
        if (stopping && scanner?.atBoundary()) stopping();
      });
      stream.on('end', () => {
        ended = true;
        res.end();
        done();
      });
    });

    stream.on('error', (err) => {
      done(
        dead() ??
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
          dead() ??
            new KgError(
              'KG_ERR_UPSTREAM',
              `cluster "${route.cluster}": the agent closed the stream (code ${stream.rstCode ?? 0}); retry`,
            ),
        );
    });
  });
}
