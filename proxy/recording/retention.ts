/**
 * The recording sweep (KUBEGATE_RECORDING_RETENTION): every replica runs it
 * periodically; a transaction-scoped advisory lock lets one at a time act.
 *
 * - Recordings whose session ended before now − retention are deleted: their
 *   rows, with them their chunks (PostgreSQL, ON DELETE CASCADE), and their
 *   objects (S3). The objects are deleted before the rows' deletion commits,
 *   so when the store fails the rows stay for the next sweep, and no object
 *   is ever left without its row.
 * - Recordings still `recording` whose replica is gone (its registry row is
 *   stale or missing, or it started again more than a minute after the
 *   recording did: the minute allows for clocks that differ) are marked
 *   `incomplete`: a replica that died could not close them.
 *
 * What was swept is one admin audit event per sweep (actor
 * `kubegate:recording-retention`, resource `recordings`) and the metric
 * kubegate_recordings_swept_total.
 */
import type { Logger } from '../../common/log.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import type { Pool } from '../db/pool.js';
import { inTransaction, query } from '../db/query.js';
import { runEvery } from '../periodic.js';

const lockKey = 7_346_519_021;

export interface SweepOptions {
  /** Recordings whose session ended longer ago are deleted; 0 keeps them. */
  retentionMs: number;
  /** A replica whose heartbeat is older than this is gone (KUBEGATE_REPLICA_STALE_AFTER). */
  replicaStaleMs: number;
  /** Deletes objects of swept S3 recordings; absent when no recording is in S3. */
  deleteObjects?: (keys: string[]) => Promise<void>;
  /** Rows deleted per transaction (default 500). */
  batch?: number;
  observe?: (what: 'expired' | 'abandoned', n: number) => void;
  log: Logger;
}

export interface SweepResult {
  expired: number;
  objects: number;
  abandoned: number;
}

export class RecordingSweeper {
  private timer: { stop(): void } | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly o: SweepOptions,
  ) {}

  /** One sweep; `now` for tests. Returns what it did (all zero when another replica holds the lock). */
  async run(now = Date.now()): Promise<SweepResult> {
    const result: SweepResult = { expired: 0, objects: 0, abandoned: 0 };
    const batch = this.o.batch ?? 500;
    const cutoff = new Date(now - this.o.retentionMs);
    let first = true;
    for (let more = true; more; first = false) {
      more = await inTransaction(this.pool, async (c) => {
        const [lock] = await query<{ ok: boolean }>(
          c,
          'SELECT pg_try_advisory_xact_lock($1) AS ok',
          [lockKey],
        );
        if (!lock?.ok) return false;
        if (first) {
          const gone = await query<{ id: string }>(
            c,
            `UPDATE recordings rec SET status = 'incomplete',
                 reason = 'the replica recording it (' || rec.replica || ') stopped before the session ended',
                 ended_at = coalesce(
                   (SELECT max(written_at) FROM recording_chunks WHERE recording_id = rec.id),
                   rec.started_at)
               WHERE rec.status = 'recording' AND rec.started_at < $1
                 AND NOT EXISTS (SELECT 1 FROM replicas r WHERE r.id = rec.replica
                   AND r.heartbeat_at > $1 AND r.started_at <= rec.started_at + interval '1 minute')
               RETURNING rec.id`,
            [new Date(now - this.o.replicaStaleMs)],
          );
          result.abandoned += gone.length;
          if (gone.length)
            await recordAdminEvent(c, {
              actor: 'kubegate:recording-retention',
              verb: 'update',
              resource: 'recordings',
              detail: { markedIncomplete: gone.length, ids: gone.slice(0, 100).map((g) => g.id) },
            });
        }
        if (this.o.retentionMs <= 0) return false;
        const rows = await query<{ id: string; object_key: string | null }>(
          c,
          `DELETE FROM recordings WHERE id IN (
             SELECT id FROM recordings WHERE status <> 'recording'
               AND coalesce(ended_at, started_at) < $1
             ORDER BY coalesce(ended_at, started_at) LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING id, object_key`,
          [cutoff, batch],
        );
        if (!rows.length) return false;
        const keys = rows.flatMap((r) => (r.object_key ? [r.object_key] : []));
        if (keys.length) {
          if (!this.o.deleteObjects)
            throw new Error(
              `${keys.length} expired recording(s) are in S3, and S3 is not configured: they are kept until it is`,
            );
          await this.o.deleteObjects(keys);
        }
        await recordAdminEvent(c, {
          actor: 'kubegate:recording-retention',
          verb: 'delete',
          resource: 'recordings',
          detail: {
            deleted: rows.length,
            objects: keys.length,
            endedBefore: cutoff.toISOString(),
            ids: rows.slice(0, 100).map((r) => r.id),
          },
        });
        result.expired += rows.length;
        result.objects += keys.length;
        return rows.length === batch;
      });
    }
    if (result.abandoned) this.o.observe?.('abandoned', result.abandoned);
    if (result.expired) this.o.observe?.('expired', result.expired);
    if (result.expired || result.abandoned) this.o.log.info({ ...result }, 'recordings swept');
    return result;
  }

  /** Run now and then every `everyMs`; failures are logged and retried on the next run. */
  start(everyMs = 600_000): void {
    this.timer = runEvery(
      everyMs,
      () => this.run(),
      (err) => this.o.log.warn({ err: err.message }, 'recording sweep failed; will retry'),
    );
  }

  stop(): void {
    this.timer?.stop();
  }
}
