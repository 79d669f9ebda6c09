/**
 * Where the upgrade path asks for a session's recording (proxy/pipeline.ts):
 * the policy decides, the store opens the recording (or cannot), and the
 * session's audit event is annotated with the outcome:
 *
 *   kubegate.dev/recording         the recording id, or "unrecorded"
 *   kubegate.dev/recording-reason  why unrecorded (policy off, store failed)
 *
 * With `required`, a recording that cannot be opened refuses the session
 * here, before anything reaches the cluster (503 with a Status naming the
 * reason); one that fails while the session runs ends it (`endSession`).
 */
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { RequestInfo } from '../authz/request-info.js';
import type { ClusterRef } from '../authz/types.js';
import type { RequestContext } from '../context.js';
import type { TokenIdentity } from '../authn/identity.js';
import { decide, type Mode, type PolicyCache } from './policy.js';
import { castHeader, RecordingSession, type UpgradeTap } from './session.js';
import type { RecordingMeta, RecordingStorage, SessionKind } from './storage.js';

export const recordingAnnotation = 'kubegate.dev/recording';
export const recordingReasonAnnotation = 'kubegate.dev/recording-reason';

export interface SessionRecorderDeps {
  storage: RecordingStorage;
  policies: PolicyCache;
  defaultMode: Mode;
  replica: string;
  log: Logger;
  /** Session tuning (tests): chunk size, flush period, pending limit. */
  chunkBytes?: number;
  flushMs?: number;
  maxPendingBytes?: number;
}

const kinds: Record<string, SessionKind> = {
  exec: 'exec',
  attach: 'attach',
  portforward: 'portforward',
};

export class SessionRecorder {
  /** Recordings not yet closed in the store. */
  private readonly open = new Set<Promise<void>>();

  constructor(private readonly deps: SessionRecorderDeps) {}

  /**
   * Wait (at most `ms`) until every recording of an ended session is closed
   * in the store: the proxy calls this on shutdown, after ending its
   * sessions and before closing the database pool.
   */
  async settled(ms: number): Promise<void> {
    if (!this.open.size) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(this.open),
      new Promise<void>((r) => (timer = setTimeout(r, ms))),
    ]);
    clearTimeout(timer);
  }

  /**
   * The tap for this upgrade, or undefined when it is not recorded. Throws a
   * KgError (503) when a required recording cannot be opened.
   */
  async start(
    ctx: RequestContext,
    info: RequestInfo,
    cluster: ClusterRef,
    identity: TokenIdentity,
    endSession: (message: string) => void,
  ): Promise<UpgradeTap | undefined> {
    const kind = info.resource === 'pods' ? kinds[info.subresource] : undefined;
    if (!kind) return undefined; // the proxy subresources are not sessions
    const annotate = (id: string, reason?: string) => {
      ctx.annotations = { ...ctx.annotations, [recordingAnnotation]: id };
      if (reason) ctx.annotations[recordingReasonAnnotation] = reason.slice(0, 512);
    };
    let mode: Mode;
    let stdin = false;
    let policy = '';
    try {
      ({ mode, stdin, policy } = decide(
        await this.deps.policies.current(),
        cluster,
        info.namespace,
        this.deps.defaultMode,
      ));
    } catch (err) {
      // No policy was ever read: the default decides, and the store is surely down too.
      mode = this.deps.defaultMode;
      ctx.log.warn({ err: (err as Error).message }, 'recording policies unreadable');
    }
    if (mode === 'off') {
      annotate('unrecorded', policy ? `recording policy "${policy}" is off` : 'recording is off');
      return undefined;
    }
    const q = new URLSearchParams(ctx.route?.rawQuery ?? '');
    const meta: RecordingMeta = {
      auditId: ctx.auditId,
      kind,
      cluster: cluster.name,
      namespace: info.namespace,
      pod: info.name,
      container: q.get('container') ?? '',
      command: q
        .getAll('command')
        .slice(0, 64)
        .map((c) => c.slice(0, 1024)),
      user: identity.user,
      userKind: identity.kind,
      groups: identity.groups,
      mode,
      policy,
      stdin: stdin && kind !== 'portforward',
      replica: this.deps.replica,
      startedAt: new Date(),
    };
    let writer;
    try {
      writer = await this.deps.storage.open(meta, castHeader(meta));
    } catch (err) {
      const why = (err as Error).message;
      this.deps.log.warn(
        { auditId: ctx.auditId, err: why },
        'session recording could not be opened',
      );
      if (mode === 'required') {
        annotate('unrecorded', `the recording store failed: ${why}`);
        throw new KgError(
          'KG_ERR_UNAVAILABLE',
          `session recording is required for pods/${info.subresource} in cluster "${cluster.name}", namespace "${info.namespace}"${policy ? ` (recording policy "${policy}")` : ''}, and the recording could not be started: the recording store failed (${why}); the session was not opened`,
          { cause: err },
        );
      }
      let id = 'unrecorded';
      await this.deps.storage.unrecorded(meta, `the recording store failed: ${why}`).then(
        (rid) => (id = rid),
        () => undefined,
      );
      annotate(
        'unrecorded',
        `the recording store failed: ${why}${id !== 'unrecorded' ? ` (session row ${id})` : ''}`,
      );
      return undefined;
    }
    annotate(writer.id);
    const session = new RecordingSession(writer, {
      kind,
      stdin: meta.stdin,
      required: mode === 'required',
      ...(this.deps.chunkBytes ? { chunkBytes: this.deps.chunkBytes } : {}),
      ...(this.deps.flushMs ? { flushMs: this.deps.flushMs } : {}),
      ...(this.deps.maxPendingBytes ? { maxPendingBytes: this.deps.maxPendingBytes } : {}),
      onFailure: (reason) =>
        endSession(
          `session recording is required here and failed: ${reason}; the session was ended`,
        ),
      log: (reason) => this.deps.log.warn({ auditId: ctx.auditId, recording: writer.id }, reason),
    });
    const closed = session.closed;
    this.open.add(closed);
    void closed.then(() => this.open.delete(closed));
    return session;
  }
}
