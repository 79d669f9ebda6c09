/**
 * Daily partitions of `audit_events`: created a few days ahead (so inserts
 * never wait on DDL) and dropped whole once past the retention. Any replica
 * may run this; a transaction-scoped advisory lock lets one at a time act.
 * The DDL runs in SECURITY DEFINER functions (migrations/0004_audit.sql), so
 * the proxy's database role needs no CREATE or ownership privileges.
 */
import type { Logger } from '../../common/log.js';
import type { Pool } from '../db/pool.js';
import { inTransaction } from '../db/query.js';
import { runEvery } from '../periodic.js';

const dayMs = 86_400_000;
const lockKey = 7_346_519_005;

export interface PartitionOptions {
  retentionMs: number;
  aheadDays?: number;
  log: Logger;
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export class PartitionMaintainer {
  private timer: { stop(): void } | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly opts: PartitionOptions,
  ) {}

  /**
   * Create the partitions for yesterday through `aheadDays` ahead; drop the
   * ones whose whole day ended before now − retention.
   */
  async run(now = Date.now()): Promise<{ created: string[]; dropped: string[] }> {
    const ahead = this.opts.aheadDays ?? 3;
    const created: string[] = [];
    const dropped: string[] = [];
    await inTransaction(this.pool, async (client) => {
      const { rows: lock } = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_xact_lock($1) AS ok',
        [lockKey],
      );
      // Another replica is at it: nothing to do here this time.
      if (!lock[0]?.ok) return;
      const { rows } = await client.query<{ day: string; made: boolean }>(
        `SELECT d::date::text AS day, kg_audit_ensure_partition(d::date) AS made
           FROM generate_series($1::date, $2::date, interval '1 day') d`,
        [utcDay(now - dayMs), utcDay(now + ahead * dayMs)],
      );
      for (const r of rows) if (r.made) created.push(r.day);
      const { rows: gone } = await client.query<{ name: string }>(
        'SELECT kg_audit_drop_partitions($1) AS name',
        [new Date(now - this.opts.retentionMs)],
      );
      dropped.push(...gone.map((r) => r.name));
    });
    if (created.length || dropped.length)
      this.opts.log.info({ created, dropped }, 'audit partitions maintained');
    return { created, dropped };
  }

  /** Run now and then every `everyMs`; failures are logged and retried on the next run. */
  start(everyMs = 3_600_000): void {
    this.timer = runEvery(
      everyMs,
      () => this.run(),
      (err) =>
        this.opts.log.warn({ err: err.message }, 'audit partition maintenance failed; will retry'),
    );
  }

  stop(): void {
    this.timer?.stop();
  }
}
