/**
 * The request path for `/k8s/<cluster>/…`, assembled in one place. Reading
 * this function tells a newcomer how a Kubernetes API request flows through
 * kubegate.
 */
import type { Logger } from '../common/log.js';
import { KgError, kubeStatus } from '../common/errors.js';
import { newContext, type RequestContext } from './context.js';
import { refuseReservedPath, routeKubeRequest } from './route/kube-path.js';
import { authenticate } from './authn/authenticate.js';
import type { TokenStore } from './authn/token-store.js';
import { requestInfo } from './authz/request-info.js';
import { authorize, forbiddenMessage } from './authz/authorizer.js';
import type { PolicyStore } from './authz/policy-store.js';
import { accessReview, rulesReview, selfReviewKind, userReview } from './authz/self-review.js';
import { bodyType, negotiate } from './authz/negotiate.js';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { decodeReview } from './authz/review-protobuf.js';
import { grantsHeader } from './jit/grant-sync.js';
import { proxyMetrics } from './metrics.js';
import { hdrRanAs } from '../common/tunnel-protocol.js';
import { forward, type AnyRequest } from './forward/forward.js';
import { respondError, toKgError, writeStatusToSocket } from './http/respond-error.js';
import type { AnyResponse } from './http/response.js';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { checkUpgrade, forwardUpgrade } from './forward/upgrade.js';
import { readBody } from './http/read-body.js';
import type { Tunnel, TunnelRegistry } from './tunnel/registry.js';
import type { OpenRequest, OpenRequests } from './open-requests.js';
import type { EndReason } from './forward/end-status.js';
import type { AuditLog } from './audit/audit-log.js';
import type { AuditRecorder } from './audit/recorder.js';
import type { ApprovalGate } from './approvals/gate.js';
import { budgetKey, type BodyBudget } from './forward/body-budget.js';
import type { TunnelHealth } from './tunnel/health.js';
import type { SessionRecorder } from './recording/recorder.js';
import type { TokenIdentity } from './authn/identity.js';
import { requestWhole } from './tunnel/control-request.js';
import { setCallerHeaders } from './forward/headers.js';

export interface PipelineDeps {
  tokens: TokenStore;
  policy: PolicyStore;
  registry: TunnelRegistry;
  /** Tunnels held by other replicas (proxy/ha/peer-router.ts), when none is local. */
  peers?: { pick(cluster: string): Promise<Tunnel | undefined> };
  open: OpenRequests;
  maxRequestBody: number;
  audit: AuditLog;
  log: Logger;
  /** Stage 4b, approval-gated actions (proxy/approvals/gate.ts); absent = no gate. */
  gate?: ApprovalGate;
  /** Request bodies held in memory, bounded per identity and per replica (forward/body-budget.ts). */
  bodies?: BodyBudget;
  /** A request body that sends nothing for this long is answered 408; 0 or absent: no limit. */
  bodyIdleMs?: number;
  /** Notices dead tunnels while requests wait on them (tunnel/health.ts). */
  health?: TunnelHealth;
  /** Records exec, attach and port-forward sessions (proxy/recording/); absent = none. */
  recorder?: SessionRecorder;
}

/** A new request's context: method, target, source and user agent as received. */
function contextOf(req: AnyRequest, log: Logger): RequestContext {
  return newContext(
    req.method ?? 'GET',
    req.url ?? '/',
    req.socket.remoteAddress ?? '',
    req.headers['user-agent'] ?? '',
    log,
  );
}

export function createKubeHandler(deps: PipelineDeps): (req: AnyRequest, res: AnyResponse) => void {
  return (req, res) => {
    const ctx = contextOf(req, deps.log);
    proxyMetrics.beginRequest(ctx);
    res.once('close', () => proxyMetrics.endRequest(ctx, res.statusCode));
    // The audit record (stage 5) opens first and completes when the response
    // closes, so every outcome — refusals included — is one event. It throws
    // (503) only when the event could not be kept: nothing is done then.
    let audit: AuditRecorder;
    try {
      audit = deps.audit.begin(ctx, req.headers).watch(res);
    } catch (err) {
      respondError(res, err, ctx.rawTarget, ctx.log, ctx.auditId);
      return;
    }
    run(deps, ctx, req, res, audit).catch((err: unknown) => {
      audit.fail(err);
      respondError(res, err, ctx.rawTarget, ctx.log, ctx.auditId);
    });
  };
}

/**
 * Connection upgrades (exec, attach, port-forward, proxy): the same stages
 * 1–4 run, so a denial is a denial; then the upgrade is carried through the
 * tunnel (proxy/forward/upgrade.ts), and only a 101 is ever piped. The audit
 * record completes when the connection ends, or with the refusal.
 */
export function createUpgradeHandler(
  deps: PipelineDeps,
): (req: AnyRequest, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    const ctx = contextOf(req, deps.log);
    let recorder: AuditRecorder | undefined;
    let settled = false;
    const go = async () => {
      const audit = (recorder = deps.audit.begin(ctx, req.headers));
      if (!ctx.rawTarget.startsWith('/k8s/'))
        throw new KgError('KG_ERR_BAD_REQUEST', 'upgrades are only accepted on /k8s/ paths');
      const { route, identity, info, cluster } = await admit(deps, ctx, req, { upgrade: true });
      const upgrade = checkUpgrade(req as IncomingMessage, info);
      // 5. audit: as for every request (strict mode: on disk before forwarding)
      await audit.admitted();
      // 4b. approval gate (e.g. exec in production); upgrades carry no body
      await deps.gate?.check(ctx, req, cluster, { readBody: false });
      const tunnel = await pickTunnel(deps, route.cluster);
      // The session's recording (its policy may refuse the session here, before the upgrade).
      let endNow: ((reason: EndReason) => void) | undefined;
      const tap = await deps.recorder?.start(ctx, info, cluster, identity, (message) => {
        if (endNow)
          endNow({
            message,
            refused: true,
            status: kubeStatus(503, 'ServiceUnavailable', message),
          });
        else socket.destroy();
      });
      // exec and port-forward sessions end when the grant or token does.
      const open = trackOpen(deps, ctx, { cluster: route.cluster, identity, info }, 'upgrade', () =>
        socket.destroy(),
      );
      let status = 0;
      try {
        status = await forwardUpgrade(
          ctx,
          req as IncomingMessage,
          socket,
          head,
          tunnel,
          upgrade,
          (st, h) => audit?.responseStarted(st, h, hdrRanAs),
          deps.health,
          (end) => {
            endNow = end;
            open.onEnd(end);
          },
          tap,
        );
        settled = true;
        audit.complete(status);
      } finally {
        open.untrack();
        tap?.end(status);
      }
    };
    go().catch((err: unknown) => {
      if (settled) return; // already answered and recorded
      recorder?.fail(err);
      writeStatusToSocket(socket, err, ctx.auditId);
      recorder?.complete(toKgError(err).status);
    });
  };
}

/** The most of an answer `readAs` keeps. */
const maxReadBytes = 8 * 1024 * 1024;

/**
 * A GET on a cluster as an identity the caller has already authenticated
 * (the console's terminal pickers, as the signed-in user): the same stages
 * as any request — audit, route, request info, authorize, audit admitted,
 * the approval gate, tunnel pick — and the answer read whole (at most
 * 8 MiB, else 502). `target` is `/k8s/<cluster>/<kube path>[?query]`.
 * Refusals throw as they would for kubectl; any other answer is returned.
 */
export async function readAs(
  deps: PipelineDeps,
  who: { identity: TokenIdentity; sourceIp: string; userAgent: string },
  target: string,
): Promise<{ status: number; json: unknown }> {
  const ctx = newContext('GET', target, who.sourceIp, who.userAgent, deps.log);
  const headers = { 'user-agent': who.userAgent };
  const audit = deps.audit.begin(ctx, headers);
  let status = 0;
  try {
    const req = { method: 'GET', headers, socket: { remoteAddress: who.sourceIp } };
    const { route, cluster } = await admit(deps, ctx, req as unknown as AnyRequest, {
      identity: who.identity,
    });
    await audit.admitted();
    await deps.gate?.check(ctx, req as unknown as AnyRequest, cluster, { readBody: false });
    const tunnel = await pickTunnel(deps, route.cluster);
    const out: Record<string, string> = {
      ':method': 'GET',
      ':path': route.rawQuery ? `${route.kubePath}?${route.rawQuery}` : route.kubePath,
      accept: 'application/json',
      'user-agent': who.userAgent,
    };
    setCallerHeaders(out, ctx);
    const a = await requestWhole(tunnel.session, out, {
      timeoutMs: 30_000,
      what: `GET ${route.kubePath}`,
      maxBytes: maxReadBytes,
    }).catch((err: unknown) => {
      throw new KgError('KG_ERR_UPSTREAM', `cluster "${route.cluster}": ${String(err)}`, {
        cause: err,
      });
    });
    if (a.truncated)
      throw new KgError(
        'KG_ERR_UPSTREAM',
        `cluster "${route.cluster}" answered more than ${maxReadBytes} bytes`,
      );
    status = a.status;
    let json: unknown;
    try {
      json = JSON.parse(a.body.toString('utf8'));
    } catch {
      json = undefined;
    }
    return { status, json };
  } catch (err) {
    audit.fail(err);
    status = toKgError(err).status;
    throw err;
  } finally {
    audit.complete(status);
  }
}

/** Stages 1–4: route, authenticate, request info, authorize. Throws on any refusal. */
async function admit(
  deps: PipelineDeps,
  ctx: RequestContext,
  req: AnyRequest,
  opts: { upgrade?: boolean; identity?: TokenIdentity } = {},
) {
  // 1. route: the cluster and the kube path, from the validated raw target
  const route = (ctx.route = routeKubeRequest(ctx.rawTarget));
  // …never a path reserved for kubegate's own control channel (404)
  refuseReservedPath(route.kubePath);
  // 2. authenticate: bearer token → identity (or one the caller already
  // authenticated: the console's reads as its signed-in user, readAs below)
  const identity = (ctx.identity =
    opts.identity ??
    (await authenticate(deps.tokens, req.headers.authorization, req.socket.remoteAddress ?? '')));
  // 3. request info: method + path + query → the Kubernetes authorization tuple
  // (an upgrade on a */proxy subresource is `create`: it opens a stream)
  const info = (ctx.info = requestInfo(ctx.method, route.kubePath, route.rawQuery, opts));
  // 4. authorize: central RBAC from the live snapshot; deny by default, fail closed
  const policy = deps.policy.current();
  const cluster = policy.clusters.get(route.cluster);
  const decision =
    cluster && !cluster.disabled
      ? authorize(policy.snapshot, identity, info, cluster, new Date())
      : undefined;
  ctx.decision = decision;
  if (!decision?.allowed) {
    throw new KgError('KG_ERR_FORBIDDEN', forbiddenMessage(identity, info, route.cluster));
  }
  // What the agent needs to run it as the user's JIT account on the cluster.
  ctx.grants = grantsHeader(policy.snapshot, identity, cluster!, new Date());
  return { route, identity, info, policy, cluster: cluster! };
}

async function run(
  deps: PipelineDeps,
  ctx: RequestContext,
  req: AnyRequest,
  res: AnyResponse,
  audit: AuditRecorder,
): Promise<void> {
  const { route, identity, info, policy, cluster } = await admit(deps, ctx, req);
  // 5. audit: the audit policy sets what is kept of this request; in strict
  // mode its event is on disk before we act on it.
  await audit.admitted();
  // Self reviews (kubectl auth can-i, kubectl auth whoami) are answered here,
  // from the same policy and identity, negotiated as the apiserver would.
  const review = selfReviewKind(info);
  if (review)
    return answerSelfReview(review, ctx, req, res, audit, { identity, info, policy, cluster });
  // Request bodies held in memory (gated, or of unknown length) are charged
  // to the identity and the replica while they are held (body-budget.ts).
  const lease = deps.bodies?.lease(budgetKey(identity));
  try {
    // 4b. approval gate: an allowed request a gate policy names runs only once
    // approved, exactly as approved; only such requests are read into memory.
    const gated = deps.gate
      ? await deps.gate.check(ctx, req, cluster, {
          readBody: true,
          bodyRead: (b) => audit.requestBodyRead(b),
          bounds: {
            lease,
            idleMs: deps.bodyIdleMs,
            onRefused: (reason) => proxyMetrics.dataplane.bodyRefusal(reason),
          },
        })
      : {};
    // 6. forward: over a tunnel to the cluster's agent, while the grant lasts
    const tunnel = await pickTunnel(deps, route.cluster).catch((err: unknown) => {
      gated.notSent?.(); // an approval spent on a request that never left is given back
      throw err;
    });
    const open = trackOpen(deps, ctx, { cluster: route.cluster, identity, info }, 'request', () =>
      res.destroy(),
    );
    try {
      await forward(ctx, req, res, tunnel, {
        maxRequestBody: deps.maxRequestBody,
        audit,
        body: gated.body,
        onResponse: gated.settle,
        lease,
        bodyIdleMs: deps.bodyIdleMs,
        health: deps.health,
        failover: (tried) => failoverTunnel(deps, route.cluster, tried),
        onEnd: open.onEnd,
      });
    } catch (err) {
      if (toKgError(err).code === 'KG_ERR_CLUSTER_OFFLINE') gated.notSent?.();
      throw err;
    } finally {
      open.untrack();
    }
  } finally {
    lease?.release();
  }
  if (deps.log.isLevelEnabled('debug'))
    ctx.log.debug({ status: res.statusCode, ms: Date.now() - ctx.receivedAt }, 'request done');
}

/** A SelfSubjectAccessReview, SelfSubjectRulesReview or SelfSubjectReview, answered centrally. */
async function answerSelfReview(
  review: NonNullable<ReturnType<typeof selfReviewKind>>,
  ctx: RequestContext,
  req: AnyRequest,
  res: AnyResponse,
  audit: AuditRecorder,
  admitted: Pick<Awaited<ReturnType<typeof admit>>, 'identity' | 'info' | 'policy' | 'cluster'>,
): Promise<void> {
  const { identity, info, policy, cluster } = admitted;
  const served = negotiate(req.headers.accept);
  const type = bodyType(req.headers['content-type']);
  const body = await readBody(req, 64 * 1024);
  audit.requestBodyRead(body);
  const now = new Date();
  let answer: Record<string, unknown>;
  if (review === 'user') {
    answer = userReview(identity, cluster, info.apiVersion, now);
  } else {
    const parsed =
      type === 'yaml'
        ? decodeReview(Buffer.from(JSON.stringify(yamlBody(body))), 'application/json', review)
        : decodeReview(body, req.headers['content-type'], review);
    answer = (review === 'access' ? accessReview : rulesReview)(
      parsed,
      policy.snapshot,
      identity,
      cluster,
      now,
    );
  }
  const text = served === 'yaml' ? stringifyYaml(answer) : JSON.stringify(answer);
  res.writeHead(201, {
    'content-type': served === 'yaml' ? 'application/yaml' : 'application/json',
    'content-length': Buffer.byteLength(text),
    'audit-id': ctx.auditId,
  });
  res.end(text);
}

/**
 * The cluster's tunnel, plain requests and upgrades alike: one held here,
 * else one a peer replica holds; with none the cluster is offline (503).
 * No Retry-After on that 503: client-go silently retries such an answer up
 * to ten times, so kubectl would hang instead of saying the cluster is offline.
 */
async function pickTunnel(deps: PipelineDeps, cluster: string): Promise<Tunnel> {
  const tunnel = deps.registry.pick(cluster) ?? (await deps.peers?.pick(cluster));
  if (tunnel) return tunnel;
  throw new KgError(
    'KG_ERR_CLUSTER_OFFLINE',
    `cluster "${cluster}" is offline: no kubegate agent is connected for it (check the kubegate-agent Deployment in namespace kubegate-system of that cluster)`,
  );
}

/**
 * Register an admitted request (plain or upgrade) as open, so a revocation
 * or a policy change can end it (open-requests.ts). Until the forwarder
 * hands over its own way of ending (`onEnd`: a watch's ERROR event, exec's
 * error channel), ending it is `fallback` (drop the connection).
 */
function trackOpen(
  deps: PipelineDeps,
  ctx: RequestContext,
  what: Pick<OpenRequest, 'cluster' | 'identity' | 'info'>,
  kind: 'request' | 'upgrade',
  fallback: () => void,
): { untrack: () => void; onEnd: (end: (reason: EndReason) => void) => void } {
  let ender: ((reason: EndReason) => void) | undefined;
  const untrack = deps.open.add({
    ...what,
    end: (reason) => {
      ctx.log.info({ reason: reason.message }, `ending open ${kind}`);
      if (ender) ender(reason);
      else fallback();
    },
  });
  return { untrack, onEnd: (end) => (ender = end) };
}

/**
 * Where a request goes when its tunnel died before answering (issue #17,
 * item 5): another local tunnel, preferring one of another agent process
 * (the dead one's siblings were probed with it and likely share its fate;
 * one is used only once its probe answered), else a peer replica's.
 */
async function failoverTunnel(
  deps: PipelineDeps,
  cluster: string,
  tried: ReadonlySet<Tunnel>,
): Promise<Tunnel | undefined> {
  const deadAgents = new Set([...tried].map((t) => t.agentId));
  const usable = deps.registry
    .tunnels(cluster)
    .filter(
      (t) => !tried.has(t) && !t.session.closed && !t.session.destroyed && !deps.health?.isDead(t),
    )
    .sort((a, b) => a.active - b.active);
  const other = usable.find((t) => !deadAgents.has(t.agentId));
  if (other) return other;
  for (const t of usable) if (!deps.health || (await deps.health.probe(t))) return t;
  return deps.peers?.pick(cluster);
}

/** A YAML review body as an object (bounded: the body is at most 64 KiB, aliases limited). */
function yamlBody(body: Buffer): unknown {
  try {
    return parseYaml(body.toString('utf8'), { maxAliasCount: 50 });
  } catch (err) {
    throw new KgError('KG_ERR_BAD_REQUEST', 'the review body is not valid YAML', { cause: err });
  }
}
