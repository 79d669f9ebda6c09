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

/** Read a whole (small) request body, refusing more than `limit` bytes. */
export function readBody(req: Readable, limit: number, bounds: ReadBounds = {}): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const fail = (reason: 'budget' | 'idle' | 'too_large', err: KgError) => {
      stop();
      chunks.length = 0;
      bounds.onRefused?.(reason);
      reject(err);
    };
    const arm = () => {
      if (!bounds.idleMs) return;
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          fail(
            'idle',
            new KgError(
              'KG_ERR_BODY_TIMEOUT',
              `the request body sent nothing for ${Math.round(bounds.idleMs! / 1000)} s; the request was cancelled`,
            ),
          ),
        bounds.idleMs,
      );
    };
    const onData = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
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
      arm();
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error) => {
      stop();
      reject(err);
    };
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onError);
    arm();
  });
}
