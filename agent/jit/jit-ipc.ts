/**
 * Just-in-time accounts when the agent runs several workers
 * (KUBEGATE_WORKERS, common/workers.ts). One process must own them: the
 * idle clean-up deletes an account nobody used for a while, and only a
 * process that sees every use can know that; reconciling one subject's
 * objects from two processes at once would race. So the primary keeps the
 * JitManager (`serveJit`), and each worker reaches it over the cluster IPC
 * channel (`JitOverIpc`), keeping a credential for a few seconds so a
 * busy subject costs one message per cacheMs, not one per request — which
 * is also how the primary hears that the subject is still in use.
 *
 * A credential is kept per subject *and* grant digest: a request whose
 * grants changed asks the primary, which reconciles the bindings first,
 * exactly as a single process does.
 */
import type { Worker } from 'node:cluster';
import { KgError, isKgError, type ErrorCode } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type {
  GrantUpdate,
  JitAccountsReport,
  TunnelGrant,
  TunnelRoles,
} from '../../common/tunnel-protocol.js';
import type { SubjectKind } from '../../common/identity-key.js';
import type { Credential } from './credentials.js';
import { digestOf, type JitAccess, type JitManager, type KnownUser } from './jit-manager.js';

/** How long a worker reuses a credential before asking the primary again. */
export const cacheMs = 10_000;

type Op = 'credentialFor' | 'applyUpdate' | 'invalidate' | 'setRoles' | 'knownUsers' | 'describe';

interface Ask {
  kg: 'jit';
  id: number;
  op: Op;
  args: unknown[];
}

interface Answer {
  kg: 'jit-answer';
  id: number;
  value?: unknown;
  error?: { code?: ErrorCode; message: string; retryAfter?: number };
}

/** The IPC channel of a worker: process.send and its 'message' events. */
export interface Channel {
  send(message: unknown): void;
  onMessage(fn: (message: unknown) => void): void;
}

export const processChannel: Channel = {
  send: (m) => process.send?.(m),
  onMessage: (fn) => process.on('message', fn),
};

/** The worker's side: JitAccess answered by the primary. */
export class JitOverIpc implements JitAccess {
  private next = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  /** By subject key, then grant digest. */
  private readonly cache = new Map<
    string,
    Map<string, { cred: Credential; until: number } | Promise<Credential>>
  >();

  constructor(
    private readonly channel: Channel = processChannel,
    private readonly now: () => number = Date.now,
  ) {
    channel.onMessage((m) => {
      const a = m as Answer;
      if (a?.kg !== 'jit-answer') return;
      const w = this.waiting.get(a.id);
      if (!w) return;
      this.waiting.delete(a.id);
      if (!a.error) return w.resolve(a.value);
      w.reject(
        a.error.code
          ? new KgError(a.error.code, a.error.message, { retryAfter: a.error.retryAfter })
          : new Error(a.error.message),
      );
    });
  }

  private ask<T>(op: Op, args: unknown[]): Promise<T> {
    const id = ++this.next;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.channel.send({ kg: 'jit', id, op, args } satisfies Ask);
    });
  }

  private tell(op: Op, args: unknown[]): void {
    void this.ask(op, args).catch(() => undefined);
  }

  /** The subject's credential: the one kept for these grants, else the primary's. */
  readonly credentialFor: JitAccess['credentialFor'] = async (
    user,
    groups,
    grants,
    kind = 'user',
  ) => {
    const key = `${kind}\u0000${user}`;
    const digest = digestOf(grants);
    let byDigest = this.cache.get(key);
    const hit = byDigest?.get(digest);
    if (hit instanceof Promise) return hit;
    if (hit && hit.until > this.now()) return hit.cred;
    if (!byDigest) this.cache.set(key, (byDigest = new Map()));
    const asked = this.ask<Credential>('credentialFor', [user, groups, grants, kind]);
    const entries = byDigest;
    entries.set(digest, asked);
    try {
      const cred = await asked;
      if (entries.get(digest) === asked) entries.set(digest, { cred, until: this.now() + cacheMs });
      return cred;
    } catch (err) {
      if (entries.get(digest) === asked) entries.delete(digest);
      throw err;
    }
  };

  async applyUpdate(u: GrantUpdate): Promise<void> {
    await this.ask('applyUpdate', [u]);
    this.cache.delete(`${u.kind ?? 'user'}\u0000${u.user}`);
  }

  invalidate(kind: SubjectKind, user: string): void {
    this.cache.delete(`${kind}\u0000${user}`);
    this.tell('invalidate', [kind, user]);
  }

  setRoles(roles: TunnelRoles): void {
    this.tell('setRoles', [roles]);
  }

  knownUsers(): Promise<KnownUser[]> {
    return this.ask('knownUsers', []);
  }

  describe(): Promise<JitAccountsReport> {
    return this.ask('describe', []);
  }
}

/** The primary's side: answer one worker's questions from the one JitManager. */
export function serveJit(jit: JitManager, worker: Worker, log: Logger): void {
  worker.on('message', (m: unknown) => {
    const q = m as Ask;
    if (q?.kg !== 'jit') return;
    const answer = (a: Omit<Answer, 'kg' | 'id'>) => {
      if (worker.isConnected()) worker.send({ kg: 'jit-answer', id: q.id, ...a });
    };
    run(jit, q.op, q.args).then(
      (value) => answer({ value }),
      (err: unknown) => {
        if (!isKgError(err)) log.error({ err, op: q.op }, 'JIT request from a worker failed (bug)');
        answer({
          error: isKgError(err)
            ? { code: err.code, message: err.message, retryAfter: err.retryAfter }
            : { message: 'internal error' },
        });
      },
    );
  });
}

async function run(jit: JitManager, op: Op, args: unknown[]): Promise<unknown> {
  switch (op) {
    case 'credentialFor':
      return jit.credentialFor(
        args[0] as string,
        args[1] as string[],
        args[2] as TunnelGrant[],
        args[3] as SubjectKind,
      );
    case 'applyUpdate':
      return jit.applyUpdate(args[0] as GrantUpdate);
    case 'invalidate':
      return jit.invalidate(args[0] as SubjectKind, args[1] as string);
    case 'setRoles':
      return jit.setRoles(args[0] as TunnelRoles);
    case 'knownUsers':
      return jit.knownUsers();
    case 'describe':
      return jit.describe();
    default:
      throw new Error(`unknown JIT operation ${String(op)}`);
  }
}
