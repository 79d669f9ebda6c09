/**
 * From the request path to PostgreSQL without ever blocking it: `enqueue`
 * only pushes onto an in-memory queue. A flusher sends batches (every
 * ~200 ms, or at once when 500 are waiting) as one INSERT each. When the
 * database fails, the batch goes to the durable spool instead, and so does
 * every later batch until a replayer has drained the spool, oldest segment
 * first, back into the database (duplicates skipped by the table's key).
 * If the queue grows past its bound while the database hangs, it is spilled
 * to the spool at once. Nothing is dropped: rows the database refuses as
 * data are set aside in a quarantine file and reported.
 */
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import type { AuditEvent } from './event.js';
import type { IntentJournal } from './intents.js';
import type { Segment, Spool } from './spool.js';
import { isDataError } from '../db/errors.js';

export interface WriterDeps {
  insert(events: readonly AuditEvent[]): Promise<number>;
  insertOrphans(events: readonly AuditEvent[]): Promise<number>;
  spool: Spool;
  intents: IntentJournal;
  log: Logger;
  /** Called once a batch is durable (database or spool). */
  onDurable?(events: readonly AuditEvent[]): void;
  /** Counts for metrics (proxy/metrics.ts `observeAudit`). */
  observe?(outcome: AuditOutcome, events: number): void;
  batchSize?: number;
  flushIntervalMs?: number;
  queueMax?: number;
  /** Batches written at once (each on its own connection); default 2. */
  concurrency?: number;
}

/** Where events went: the labels of kubegate_audit_events_total. */
export type AuditOutcome = 'written' | 'spooled' | 'replayed' | 'refused';

export interface WriterStats {
  queued: number;
  inserted: number;
  spooled: number;
  replayed: number;
  orphansRecovered: number;
  quarantined: number;
  databaseDown: boolean;
  diskFailing: boolean;
}

export class AuditWriter {
  private queue: AuditEvent[] = [];
  private flushing: Promise<void> | undefined;
  private replaying: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private nextReplayAt = 0;
  private backoffMs = 0;
  private readonly batchSize: number;
  private readonly flushIntervalMs: number;
  private readonly queueMax: number;
  private readonly concurrency: number;
  private readonly s = {
    inserted: 0,
    spooled: 0,
    replayed: 0,
    orphansRecovered: 0,
    quarantined: 0,
  };
  private dbDown = false;
  private diskFailing = false;

  constructor(private readonly deps: WriterDeps) {
    this.batchSize = deps.batchSize ?? 500;
    this.flushIntervalMs = deps.flushIntervalMs ?? 200;
    this.queueMax = deps.queueMax ?? 10_000;
    this.concurrency = deps.concurrency ?? 2;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.flushIntervalMs);
    this.timer.unref();
    this.tick();
  }

  stats(): WriterStats {
    return {
      queued: this.queue.length,
      ...this.s,
      databaseDown: this.dbDown,
      diskFailing: this.diskFailing,
    };
  }

  /** True when neither the database nor the disk can take events now. */
  get unwritable(): boolean {
    return this.dbDown && this.diskFailing;
  }

  /** Queue one event. Never blocks, never throws. */
  enqueue(e: AuditEvent): void {
    this.queue.push(e);
    if (this.queue.length >= this.queueMax && !this.diskFailing) {
      // The database is hanging (a flush is stuck on it): keep memory bounded.
      const spill = this.queue;
      this.queue = [];
      void this.toSpool(spill);
    } else if (this.queue.length >= this.batchSize) {
      void this.flush();
    }
  }

  /** Send everything queued now; resolves when the queue has been written somewhere durable. */
  flush(): Promise<void> {
    this.flushing ??= this.flushLoop().finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  /**
   * Drain the spool into the database (and then strict-mode orphans).
   * Resolves when done or when the database fails again (then retried later).
   */
  replay(): Promise<void> {
    this.replaying ??= this.replayLoop().finally(() => (this.replaying = undefined));
    return this.replaying;
  }

  /** Flush, then replay until the spool is empty; for shutdown and tests. */
  async drain(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      await this.flush();
      this.nextReplayAt = 0;
      await this.replay();
      const orphans = this.deps.intents.orphans().length;
      if (this.queue.length === 0 && this.deps.spool.isEmpty && orphans === 0) return true;
      if (Date.now() > until) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    if (this.queue.length > 0) void this.flush();
    const pendingReplay = !this.deps.spool.isEmpty || this.deps.intents.orphans().length > 0;
    if (pendingReplay && Date.now() >= this.nextReplayAt) void this.replay();
  }

  private async flushLoop(): Promise<void> {
    // A few batches in flight at once: the database inserts them in parallel;
    // their relative order does not matter (each event carries its times).
    const worker = async () => {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, this.batchSize);
        if (!(await this.deliver(batch))) {
          this.queue.unshift(...batch); // the disk failed too: keep them, try again next tick
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: this.concurrency }, worker));
  }

  /** Database first (unless the spool holds older events); else the spool. False if both failed. */
  private async deliver(batch: AuditEvent[]): Promise<boolean> {
    if (!this.dbDown && this.deps.spool.isEmpty) {
      try {
        await this.insertSorting(batch);
        this.s.inserted += batch.length;
        this.deps.observe?.('written', batch.length);
        this.durable(batch);
        return true;
      } catch (err) {
        this.dbDown = true;
        this.nextReplayAt = Date.now() + 250;
        this.deps.log.warn(
          { err: (err as Error).message, events: batch.length },
          'audit database unavailable: spooling events to disk until it is back',
        );
      }
    }
    return this.toSpool(batch);
  }

  private async toSpool(batch: AuditEvent[]): Promise<boolean> {
    try {
      await this.deps.spool.append(batch.map((e) => JSON.stringify(e) + '\n').join(''));
      this.s.spooled += batch.length;
      this.deps.observe?.('spooled', batch.length);
      if (this.diskFailing) this.deps.log.info('audit spool writable again');
      this.diskFailing = false;
      this.durable(batch);
      return true;
    } catch (err) {
      if (!this.diskFailing)
        this.deps.log.error(
          { err: (err as Error).message, dir: this.deps.spool.dir },
          'audit spool write failed: events are held in memory and new requests are refused',
        );
      this.diskFailing = true;
      return false;
    }
  }

  private durable(batch: readonly AuditEvent[]): void {
    for (const e of batch) if (e.stage === 'ResponseComplete') this.deps.intents.done(e.auditID);
    this.deps.onDurable?.(batch);
  }

  /**
   * Insert a batch; if the database refuses it as data, insert row by row
   * and quarantine the rows it refuses. Connection errors propagate.
   */
  private async insertSorting(
    batch: readonly AuditEvent[],
    insert = this.deps.insert,
  ): Promise<void> {
    try {
      await insert(batch);
    } catch (err) {
      if (!isDataError(err)) throw err;
      for (const e of batch) {
        try {
          await insert([e]);
        } catch (one) {
          if (!isDataError(one)) throw one;
          await this.quarantine([JSON.stringify(e)], (one as Error).message);
        }
      }
    }
  }

  private async quarantine(lines: string[], why: string): Promise<void> {
    const file = join(this.deps.spool.dir, '..', 'quarantine.jsonl');
    await appendFile(file, lines.map((l) => l + '\n').join(''), { mode: 0o600 });
    this.s.quarantined += lines.length;
    this.deps.log.error(
      { file, count: lines.length, why },
      'audit events refused by the database were set aside; inspect and re-insert them',
    );
  }

  private async replayLoop(): Promise<void> {
    const { spool, intents, log } = this.deps;
    try {
      for (;;) {
        let seg: Segment | undefined = spool.list()[0];
        if (seg && seg.seq === spool.activeSeq) {
          await spool.seal();
          seg = spool.list()[0];
          if (seg && seg.seq === spool.activeSeq) seg = undefined;
        }
        if (!seg) break;
        const { records, bad } = await spool.read(seg);
        if (bad.length > 0) await this.quarantine(bad, 'damaged spool line');
        const events = records as AuditEvent[];
        const chunks: AuditEvent[][] = [];
        for (let i = 0; i < events.length; i += this.batchSize)
          chunks.push(events.slice(i, i + this.batchSize));
        const next = async () => {
          for (let c = chunks.shift(); c; c = chunks.shift()) await this.insertSorting(c);
        };
        await Promise.all(Array.from({ length: this.concurrency }, next));
        await spool.remove(seg.seq);
        this.s.replayed += events.length;
        this.deps.observe?.('replayed', events.length);
      }
      if (spool.isEmpty) {
        for (const seg of [...intents.orphans()]) {
          const { records, bad } = await intents.readOrphan(seg);
          if (bad.length > 0) await this.quarantine(bad, 'damaged strict-mode record');
          const events = records as AuditEvent[];
          for (let i = 0; i < events.length; i += this.batchSize) {
            const chunk = events.slice(i, i + this.batchSize);
            await this.insertSorting(chunk, this.deps.insertOrphans);
          }
          this.s.orphansRecovered += records.length;
          await intents.removeOrphan(seg);
        }
      }
      if (this.dbDown) log.info('audit database reachable again: spool replayed');
      this.dbDown = false;
      this.backoffMs = 0;
    } catch (err) {
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 250), 5000);
      this.nextReplayAt = Date.now() + this.backoffMs;
      if (!this.dbDown)
        log.warn({ err: (err as Error).message }, 'audit spool replay failed; retrying');
      this.dbDown = true;
    }
  }
}
