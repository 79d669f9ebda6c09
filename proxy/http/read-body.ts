import type { Readable } from 'node:stream';
import { KgError } from '../../common/errors.js';
import type { BodyLease } from '../forward/body-budget.js';

/** Bounds on a body read whole into memory (issue #17, item 7). */
export interface ReadBounds {
  /** Each byte read is charged here; a refused charge is a 429 (body-budget.ts). */
  lease?: BodyLease;
  /** No bytes for this long: a 408. */
  idleMs?: number;
  /** Told why a read was refused (metrics). */
  onRefused?: (reason: 'budget' | 'idle' | 'too_large') => void;
}

/** A timer that fires after `ms` without a `poke()`; `ms` 0 or absent: never. */
export function idleTimer(ms: number | undefined, fire: () => void) {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    if (!ms) return;
    clearTimeout(timer);
    timer = setTimeout(fire, ms);
  };
  arm();
  return { poke: arm, stop: () => clearTimeout(timer) };
}

export interface BodyListeners {
  chunk(b: Buffer): void;
  end(): void;
  error(err: Error): void;
  /** Nothing arrived for the idle time. */
  idle(): void;
}

/**
 * Follow a body's chunks until it ends, fails, goes idle or the returned
 * `stop()` is called; after any of those no listener is left on `req`.
 */
export function followBody(
  req: Readable,
  idleMs: number | undefined,
  on: BodyListeners,
): () => void {
  const idle = idleTimer(idleMs, () => {
    stop();
    on.idle();
  });
  const data = (c: Buffer | string) => {
    idle.poke();
    on.chunk(typeof c === 'string' ? Buffer.from(c) : c);
  };
  const end = () => {
    stop();
    on.end();
  };
  const error = (err: Error) => {
    stop();
    on.error(err);
  };
  const stop = () => {
    idle.stop();
    req.off('data', data);
    req.off('end', end);
    req.off('error', error);
  };
  req.on('data', data);
  req.once('end', end);
  req.once('error', error);
  return stop;
}

/** Read a whole (small) request body, refusing more than `limit` bytes. */
export function readBody(req: Readable, limit: number, bounds: ReadBounds = {}): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (reason: 'budget' | 'idle' | 'too_large', err: KgError) => {
      stop();
      chunks.length = 0;
      bounds.onRefused?.(reason);
      reject(err);
    };
    const stop = followBody(req, bounds.idleMs, {
      chunk: (b) => {
        size += b.length;
        if (size > limit)
          return fail(
            'too_large',
            new KgError('KG_ERR_BODY_TOO_LARGE', `request body is larger than ${limit} bytes`),
          );
        if (bounds.lease && !bounds.lease.add(b.length))
          return fail(
            'budget',
            new KgError(
              'KG_ERR_BODY_BUDGET',
              `too many request-body bytes held for you at once on this kubegate replica (at most ${bounds.lease.budgetPerIdentity} per identity); send fewer large requests at the same time`,
            ),
          );
        chunks.push(b);
      },
      end: () => resolve(Buffer.concat(chunks)),
      error: reject,
      idle: () =>
        fail(
          'idle',
          new KgError(
            'KG_ERR_BODY_TIMEOUT',
            `the request body sent nothing for ${Math.round(bounds.idleMs! / 1000)} s; the request was cancelled`,
          ),
        ),
    });
  });
}
