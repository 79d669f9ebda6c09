/**
 * One request's audit record. The pipeline opens it first thing, so every
 * outcome is recorded — allowed, denied, rejected, failed upstream, refused
 * upgrade — and it completes exactly once: when the response closes, however
 * that happens. Long-running requests (watch, exec, attach, port-forward,
 * logs -f) also get a ResponseStarted event when the answer begins.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { KgError } from '../../common/errors.js';
import type { RequestContext } from '../context.js';
import type { RequestInfo } from '../authz/request-info.js';
import { toKgError } from '../http/respond-error.js';
import { BodyCapture } from './capture.js';
import {
  annotationPrefix,
  bounded,
  microTime,
  userKindKey,
  type AuditDecision,
  type AuditEvent,
  type Level,
  type ObjectReference,
  type ResponseStatus,
  type Stage,
  type UserInfo,
} from './event.js';
import { decideLevel, type AuditPolicy, type PolicyDecision } from './policy.js';
import { omitted, omittedKey, redactUri, scrubString } from './redact.js';
import { proxyMetrics } from '../metrics.js';

/** Where a recorder sends its events; the AuditLog provides it. */
export interface RecorderSink {
  replica: string;
  policy(): AuditPolicy;
  emit(e: AuditEvent): void;
  /** Strict mode: resolves once the event is on disk (fsync'd). */
  intent?(e: AuditEvent): Promise<void>;
}

/** What a recorder needs to know about the response it watches. */
export interface WatchedResponse {
  statusCode: number;
  headersSent: boolean;
  getHeader(name: string): unknown;
  once(event: 'close' | 'finish', fn: () => void): unknown;
}

const maxUri = 4096;
const maxText = 1024;

/**
 * Long-running requests as the apiserver counts them
 * (BasicLongRunningRequestCheck: verbs watch and proxy; subresources
 * attach, exec, portforward, proxy), with logs only when followed.
 */
export function isLongRunning(info: RequestInfo | undefined, rawQuery: string): boolean {
  if (!info) return false;
  if (info.verb === 'watch' || info.verb === 'proxy') return true;
  if (['attach', 'exec', 'portforward', 'proxy'].includes(info.subresource)) return true;
  if (info.subresource === 'log') {
    const follow = new URLSearchParams(rawQuery).get('follow');
    return follow === 'true' || follow === '1';
  }
  return false;
}

function objectRefOf(info: RequestInfo | undefined): ObjectReference | undefined {
  if (!info?.isResourceRequest) return undefined;
  const ref: ObjectReference = {};
  if (info.resource) ref.resource = info.resource;
  if (info.namespace) ref.namespace = info.namespace;
  if (info.name) ref.name = info.name;
  ref.apiGroup = info.apiGroup;
  if (info.apiVersion) ref.apiVersion = info.apiVersion;
  if (info.subresource) ref.subresource = info.subresource;
  return ref;
}

function header(
  h: IncomingHttpHeaders | Record<string, unknown>,
  name: string,
): string | undefined {
  const v = h[name];
  return typeof v === 'string' ? v : Array.isArray(v) ? String(v[0]) : undefined;
}

/** A body replaced by the omitted marker is counted: too deep, or redaction failed. */
function countOmitted(body: unknown): void {
  if (typeof body !== 'object' || body === null || !(omittedKey in body)) return;
  const why = String((body as Record<string, unknown>)[omittedKey]);
  proxyMetrics.observeAuditCaptureFailure(why.includes('deeper than') ? 'too_deep' : 'body');
}

export class AuditRecorder {
  /** Request body bytes received from the client (forward and readBody count them). */
  bytesIn = 0;
  /** Response body bytes sent to the client; when 0 at the end, Content-Length is used. */
  bytesOut = 0;
  private level: Level = 'Metadata';
  private omit: ReadonlySet<Stage> = new Set();
  private requestBody?: BodyCapture;
  private responseBody?: BodyCapture;
  private responseType?: string;
  private responseEncoding?: string;
  private error?: KgError;
  private ranAs?: string;
  private forwarded = false;
  private done = false;

  constructor(
    private readonly ctx: RequestContext,
    private readonly sink: RecorderSink,
    private readonly requestHeaders: IncomingHttpHeaders = {},
  ) {}

  /** Complete when the response ends or the connection closes, whichever comes first. */
  watch(res: WatchedResponse): this {
    // A listener on the response: a throw here would be uncaught and end the
    // process, so nothing may escape it (complete() is guarded as well).
    const end = () => {
      try {
        const length = Number(res.getHeader('content-length'));
        if (this.bytesOut === 0 && Number.isFinite(length)) this.bytesOut = length;
        if (!res.headersSent) this.complete(499, 'the client closed the connection first');
        else this.complete(res.statusCode);
      } catch (err) {
        this.captureFailed(err, 'completing the audit event');
      }
    };
    res.once('finish', end);
    res.once('close', end);
    return this;
  }

  /**
   * Stage 5: the request is authorised. Choose the level from the policy;
   * in strict mode, resolve only once the event is durably on disk.
   */
  async admitted(): Promise<void> {
    const { route, identity, info } = this.ctx;
    const d: PolicyDecision = decideLevel(this.sink.policy(), {
      cluster: route?.cluster ?? '',
      user: identity?.user ?? '',
      groups: identity?.groups ?? [],
      verb: info?.verb ?? '',
      isResourceRequest: info?.isResourceRequest ?? false,
      path: info?.path ?? '',
      apiGroup: info?.apiGroup ?? '',
      resource: info?.resource ?? '',
      subresource: info?.subresource ?? '',
      namespace: info?.namespace ?? '',
      name: info?.name ?? '',
    });
    this.level = d.level;
    this.omit = d.omitStages;
    if (this.level !== 'Metadata') this.requestBody = new BodyCapture();
    if (this.level === 'RequestResponse' && !this.longRunning()) {
      this.responseBody = new BodyCapture();
    }
    if (this.sink.intent) await this.sink.intent(this.build('RequestReceived', Date.now()));
  }

  /** True when the request body should be teed into `requestChunk`. */
  get wantsRequestBody(): boolean {
    return this.requestBody !== undefined;
  }

  requestChunk(chunk: Buffer): void {
    this.requestBody?.push(chunk);
  }

  /** The whole request body at once (self reviews read it before answering). */
  requestBodyRead(body: Buffer): void {
    this.bytesIn += body.length;
    this.requestBody?.push(body);
  }

  /** The upstream answered: note who it ran as, and start the stream's event. */
  responseStarted(status: number, headers: Record<string, unknown>, ranAsHeader: string): void {
    this.forwarded = true;
    this.ranAs = header(headers, ranAsHeader);
    this.responseType = header(headers, 'content-type');
    this.responseEncoding = header(headers, 'content-encoding');
    if (this.longRunning() && !this.omit.has('ResponseStarted') && !this.done) {
      try {
        const e = this.build('ResponseStarted', Date.now());
        e.responseStatus = { metadata: {}, code: status };
        this.sink.emit(e);
      } catch (err) {
        this.captureFailed(err, 'recording ResponseStarted');
      }
    }
  }

  responseChunk(chunk: Buffer): void {
    this.bytesOut += chunk.length;
    this.responseBody?.push(chunk);
  }

  /** Remember why the request failed, for responseStatus and the reason. */
  fail(err: unknown): void {
    this.error ??= toKgError(err);
  }

  /**
   * Write the ResponseComplete event; later calls do nothing. Never throws
   * (it runs in response listeners): when building the event fails, the
   * event is recorded without its bodies, with a marker saying why.
   */
  complete(code: number, clientClosed?: string): void {
    if (this.done) return;
    this.done = true;
    let e: AuditEvent;
    try {
      e = this.completeEvent(code, clientClosed, true);
    } catch (err) {
      this.captureFailed(err, 'building the audit event');
      try {
        e = this.completeEvent(code, clientClosed, false);
      } catch (again) {
        this.captureFailed(again, 'building the audit event without bodies');
        e = this.minimalEvent(code);
      }
    }
    try {
      this.sink.emit(e);
    } catch (err) {
      this.captureFailed(err, 'emitting the audit event');
      try {
        // Once more with the fields that cannot fail: the request keeps its one event.
        this.sink.emit(this.minimalEvent(code));
      } catch (again) {
        this.captureFailed(again, 'emitting the minimal audit event');
      }
    }
  }

  /** Count and log a capture failure: the error's name and message only, never a body. */
  private captureFailed(err: unknown, what: string): void {
    proxyMetrics.observeAuditCaptureFailure('event');
    try {
      const e = err as Error;
      this.ctx.log.error(
        { error: { name: e?.name, message: bounded(scrubString(String(e?.message)), 200) } },
        `audit capture failed ${what}; the event is recorded without the part that failed`,
      );
    } catch {
      // logging must not throw out of a listener either
    }
  }

  /** The last resort: the fields that cannot fail, no bodies. */
  private minimalEvent(code: number): AuditEvent {
    const now = Date.now();
    return {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: this.level,
      auditID: this.ctx.auditId,
      stage: 'ResponseComplete',
      requestURI: '',
      verb: this.ctx.info?.verb ?? '',
      user: { username: this.ctx.identity?.user ?? '' },
      sourceIPs: [],
      userAgent: '',
      requestReceivedTimestamp: microTime(this.ctx.receivedAt),
      stageTimestamp: microTime(now),
      annotations: { [`${annotationPrefix}audit-error`]: 'the audit event could not be built' },
      responseStatus: { metadata: {}, code },
      source: 'kube',
      cluster: this.ctx.route?.cluster ?? '',
      replica: this.sink.replica,
      decision: this.ctx.decision?.allowed ? 'allow' : 'error',
      reason: 'the audit event could not be built',
      durationMs: Math.max(0, now - this.ctx.receivedAt),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
    };
  }

  private completeEvent(
    code: number,
    clientClosed: string | undefined,
    bodies: boolean,
  ): AuditEvent {
    const e = this.build('ResponseComplete', Date.now(), bodies);
    const status: ResponseStatus = { metadata: {}, code };
    if (this.error && code === this.error.status) {
      status.status = 'Failure';
      status.reason = this.error.reason;
      status.message = bounded(scrubString(this.error.message), maxText);
    } else if (code >= 200 && code < 400 && !this.error) {
      status.status = 'Success';
    }
    e.responseStatus = status;
    if (clientClosed) e.annotations![`${annotationPrefix}client-closed`] = clientClosed;
    if (this.error && code !== this.error.status) {
      e.annotations![`${annotationPrefix}error`] = bounded(
        scrubString(this.error.message),
        maxText,
      );
    }
    return e;
  }

  private longRunning(): boolean {
    return isLongRunning(this.ctx.info, this.ctx.route?.rawQuery ?? '');
  }

  private decision(): { decision: AuditDecision; reason: string } {
    const d = this.ctx.decision;
    if (d?.allowed) return { decision: 'allow', reason: d.reason };
    const err = this.error;
    if (err && (err.code === 'KG_ERR_UNAUTHENTICATED' || err.code === 'KG_ERR_FORBIDDEN')) {
      return { decision: 'deny', reason: bounded(d?.reason ?? err.message, maxText) };
    }
    if (d && !d.allowed) return { decision: 'deny', reason: bounded(d.reason, maxText) };
    return {
      decision: 'error',
      reason: err ? bounded(scrubString(err.message), maxText) : 'no decision was made',
    };
  }

  private build(stage: Stage, now: number, bodies = true): AuditEvent {
    const { ctx } = this;
    const { route, identity, info } = ctx;
    const uri = route
      ? route.rawQuery
        ? `${route.kubePath}?${route.rawQuery}`
        : route.kubePath
      : ctx.rawTarget;
    const user: UserInfo = identity
      ? {
          username: identity.user,
          groups: identity.groups,
          extra: { [userKindKey]: [identity.kind] },
        }
      : { username: '' };
    const { decision, reason } = this.decision();
    const annotations: Record<string, string> = {};
    if (ctx.decision) {
      annotations['authorization.k8s.io/decision'] = ctx.decision.allowed ? 'allow' : 'forbid';
      annotations['authorization.k8s.io/reason'] = bounded(ctx.decision.reason, maxText);
      if (ctx.decision.role) annotations[`${annotationPrefix}role`] = ctx.decision.role;
      if (ctx.decision.bindingId)
        annotations[`${annotationPrefix}binding`] = ctx.decision.bindingId;
    }
    if (this.error) annotations[`${annotationPrefix}error-code`] = this.error.code;
    if (ctx.annotations) Object.assign(annotations, ctx.annotations);
    if (info && ['exec', 'attach'].includes(info.subresource)) {
      // Exec and attach: what ran, and where (issue #6: "capture the command and container").
      const q = new URLSearchParams(route?.rawQuery ?? '');
      const command = q.getAll('command').map(scrubString);
      if (command.length)
        annotations[`${annotationPrefix}command`] = bounded(JSON.stringify(command), maxUri);
      const container = q.get('container');
      if (container) annotations[`${annotationPrefix}container`] = bounded(container, 253);
    }
    const e: AuditEvent = {
      kind: 'Event',
      apiVersion: 'audit.k8s.io/v1',
      level: this.level,
      auditID: ctx.auditId,
      stage,
      requestURI: bounded(redactUri(uri), maxUri),
      verb: info?.verb ?? ctx.method.toLowerCase(),
      user,
      sourceIPs: ctx.sourceIp ? [ctx.sourceIp] : [],
      userAgent: bounded(ctx.userAgent, maxText),
      requestReceivedTimestamp: microTime(ctx.receivedAt),
      stageTimestamp: microTime(now),
      annotations,
      source: 'kube',
      cluster: route?.cluster ?? '',
      replica: this.sink.replica,
      decision,
      reason,
      durationMs: Math.max(0, now - ctx.receivedAt),
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
    };
    const ref = objectRefOf(info);
    if (ref) e.objectRef = ref;
    if (this.forwarded && identity) {
      // Until JIT accounts, the agent impersonates the user; with them, the
      // agent names the account it used in kg-impersonated-as.
      e.impersonatedUser = this.ranAs
        ? { username: this.ranAs }
        : { username: identity.user, groups: identity.groups };
    }
    if (stage === 'ResponseComplete') {
      if (bodies) this.attachBodies(e, annotations);
      else if (this.level !== 'Metadata') {
        annotations[`${annotationPrefix}audit-error`] = 'the bodies could not be captured';
        if (this.requestBody?.bytes) e.requestObject = omitted('the body could not be captured');
        if (this.responseBody?.bytes && this.forwarded)
          e.responseObject = omitted('the body could not be captured');
      }
    }
    return e;
  }

  private attachBodies(e: AuditEvent, annotations: Record<string, string>): void {
    const info = this.ctx.info;
    const target = {
      apiGroup: info?.apiGroup ?? '',
      resource: info?.resource ?? '',
      subresource: info?.subresource ?? '',
    };
    if (this.requestBody) {
      const r = this.requestBody.result(
        target,
        header(this.requestHeaders, 'content-type'),
        header(this.requestHeaders, 'content-encoding'),
      );
      if (r.body !== undefined) e.requestObject = r.body;
      if (r.note) annotations[`${annotationPrefix}request-body`] = r.note;
      countOmitted(r.body);
      // A create names its object in the body, as the apiserver's own objectRef does.
      const name = (r.body as { metadata?: { name?: unknown } } | undefined)?.metadata?.name;
      if (e.objectRef && !e.objectRef.name && typeof name === 'string' && info?.verb === 'create')
        e.objectRef.name = name;
    }
    if (this.responseBody && this.forwarded) {
      const r = this.responseBody.result(target, this.responseType, this.responseEncoding);
      if (r.body !== undefined) e.responseObject = r.body;
      if (r.note) annotations[`${annotationPrefix}response-body`] = r.note;
      countOmitted(r.body);
    }
  }
}

/** A recorder that records nothing (KUBEGATE_AUDIT=off, benchmarks only). */
export class NullRecorder extends AuditRecorder {
  override watch(): this {
    return this;
  }
  override async admitted(): Promise<void> {}
  override complete(): void {}
  override responseStarted(): void {}
}
