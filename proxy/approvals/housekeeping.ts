/**
 * Background work of every replica: expire due approval requests (so an
 * unanswered request is announced as expired even when nobody looks at
 * it), and prune old rows of the webhook outbox. Both are safe to run on
 * every replica at once: expiry claims each row exactly once
 * (proxy/approvals/expiry.ts), pruning is an idempotent DELETE.
 */
import type { Logger } from '../../common/log.js';
import type { Pool } from '../db/pool.js';
import { inTransaction } from '../db/query.js';
import { countExpired, expireDue, type NoticeOf } from './expiry.js';
import { pruneDeliveries } from './notify.js';

export interface HousekeepingOptions {
  pool: Pool;
  noticeOf: NoticeOf;
  /** Called after expiries committed notifications to the outbox. */
  queued: () => void;
  log: Logger;
  /** How often to look for due expiries (default 5 s). */
  expireEveryMs?: number;
  /** How often to prune the outbox (default 10 min). */
  pruneEveryMs?: number;
  /** Delivered notifications are kept this long (default 7 days). */
  deliveredRetentionSeconds?: number;
  /** Notifications given up on are kept this long (default 30 days). */
  givenUpRetentionSeconds?: number;
}

export const defaultDeliveredRetentionSeconds = 7 * 86400;
export const defaultGivenUpRetentionSeconds = 30 * 86400;

/** Expire what is due in one transaction; returns how many this replica expired. */
export async function sweepOnce(
  pool: Pool,
  noticeOf: NoticeOf,
  queued: () => void,
  fingerprint?: string,
): Promise<number> {
  const rows = await inTransaction(pool, (c) => expireDue(c, noticeOf, fingerprint));
  if (rows.length) {
    countExpired(rows);
    queued();
  }
  return rows.length;
}

export class Housekeeping {
  private timers: NodeJS.Timeout[] = [];
  private running = new Set<Promise<unknown>>();

  constructor(private readonly o: HousekeepingOptions) {}

  start(): void {
    const every = (ms: number, what: string, fn: () => Promise<unknown>) => {
      let busy = false;
      const t = setInterval(() => {
        if (busy) return;
        busy = true;
        const p = fn()
          .catch((err: unknown) => this.o.log.warn({ err }, `approvals: ${what} failed`))
          .finally(() => {
            busy = false;
            this.running.delete(p);
          });
        this.running.add(p);
      }, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.o.expireEveryMs ?? 5000, 'expiry sweep', () =>
      sweepOnce(this.o.pool, this.o.noticeOf, this.o.queued),
    );
    every(this.o.pruneEveryMs ?? 600_000, 'outbox pruning', async () => {
      const n = await pruneDeliveries(
        this.o.pool,
        this.o.deliveredRetentionSeconds ?? defaultDeliveredRetentionSeconds,
        this.o.givenUpRetentionSeconds ?? defaultGivenUpRetentionSeconds,
      );
      if (n) this.o.log.info({ deleted: n }, 'pruned old webhook deliveries');
    });
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.all(this.running);
  }
}
