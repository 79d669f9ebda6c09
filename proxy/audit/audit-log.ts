/**
 * The audit log of one proxy process, tied together: a recorder per request
 * (`begin`), the queue and writer into PostgreSQL, the durable spool for
 * outages, strict mode's write-ahead records, partition upkeep and the
 * optional webhook sink.
 *
 * Refusal instead of loss: when the spool is full (the database has been
 * unreachable for long) or neither database nor disk accepts events, `begin`
 * throws KG_ERR_UNAVAILABLE and the request is answered 503 without being
 * acted on. Requests already admitted still complete and are recorded.
 */
import { join } from 'node:path';
import type { IncomingHttpHeaders } from 'node:http';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Pool } from '../db/pool.js';
import type { RequestContext } from '../context.js';
import type { AuditEvent } from './event.js';
import { IntentJournal } from './intents.js';
import { PartitionMaintainer } from './partitions.js';
import { defaultPolicy, type AuditPolicy } from './policy.js';
import { AuditRecorder, NullRecorder, type RecorderSink } from './recorder.js';
import { Spool } from './spool.js';
import { lockSpoolDir } from './spool-dir.js';
import { insertEvents, insertOrphans } from './store.js';
import { WebhookSink } from './webhook.js';
import { AuditWriter, type AuditOutcome, type WriterStats } from './writer.js';

export interface AuditLogOptions {
  pool: Pool;
  log: Logger;
  replica: string;
  /** false only for benchmarks (KUBEGATE_AUDIT=off): nothing is recorded. */
  enabled?: boolean;
  spoolDir: string;
  /** Above this many bytes on disk, new requests are refused (503). */
  spoolMaxBytes: number;
  /** Write each request's event to disk before it is forwarded. */
  strict?: boolean;
  retentionMs: number;
  policy?: AuditPolicy;
  webhookUrl?: string;
  batchSize?: number;
  flushIntervalMs?: number;
  queueMax?: number;
  segmentBytes?: number;
  /** Create and drop partitions from this process (default true). */
  maintainPartitions?: boolean;
  /** Counts for metrics: `(outcome, n) => metrics.observeAudit(outcome, n)`. */
  observe?: (outcome: AuditOutcome, events: number) => void;
}

export interface AuditStats extends WriterStats {
  enabled: boolean;
  strict: boolean;
  spoolBytes: number;
  spoolMaxBytes: number;
  strictInFlight: number;
  refused: number;
  webhook?: { sent: number; dropped: number; failures: number };
}

const nullSink: RecorderSink = {
  replica: '',
  policy: () => defaultPolicy,
  emit: () => undefined,
};

export class AuditLog {
  private refused = 0;
  private lastRefusalLog = 0;
  private policy: AuditPolicy;
  private readonly sink: RecorderSink;

  private constructor(
    private readonly opts: AuditLogOptions,
    private readonly spool: Spool | undefined,
    private readonly intents: IntentJournal | undefined,
    private readonly writer: AuditWriter | undefined,
    private readonly partitions: PartitionMaintainer | undefined,
    private readonly webhook: WebhookSink | undefined,
    private readonly unlock: () => void,
  ) {
    this.policy = opts.policy ?? defaultPolicy;
    this.sink = {
      replica: opts.replica,
      policy: () => this.policy,
      emit: (e) => this.writer!.enqueue(e),
      ...(opts.strict && intents ? { intent: (e: AuditEvent) => this.writeIntent(e) } : {}),
    };
  }

  /** Open the spool (recovering what a previous process left) and start writing. */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    if (opts.enabled === false) {
      opts.log.warn('audit is OFF (KUBEGATE_AUDIT=off): for benchmarks only, never in production');
      return new AuditLog(opts, undefined, undefined, undefined, undefined, undefined, () => {});
    }
    const unlock = lockSpoolDir(opts.spoolDir);
    try {
      const spool = await Spool.open(join(opts.spoolDir, 'events'), opts.segmentBytes);
      const intents = await IntentJournal.open(join(opts.spoolDir, 'intents'));
      const log = opts.log.child({ part: 'audit' });
      const webhook = opts.webhookUrl ? new WebhookSink({ url: opts.webhookUrl, log }) : undefined;
      const writer = new AuditWriter({
        insert: (events) => insertEvents(opts.pool, events),
        insertOrphans: (events) => insertOrphans(opts.pool, events),
        spool,
        intents,
        log,
        onDurable: webhook ? (events) => webhook.push(events) : undefined,
        batchSize: opts.batchSize,
        flushIntervalMs: opts.flushIntervalMs,
        queueMax: opts.queueMax,
        observe: opts.observe,
      });
      const partitions =
        opts.maintainPartitions === false
          ? undefined
          : new PartitionMaintainer(opts.pool, { retentionMs: opts.retentionMs, log });
      const left = spool.bytes + intents.bytes;
      if (left > 0)
        log.info(
          { spoolDir: opts.spoolDir, bytes: left },
          'audit spool holds events from a previous run; replaying them',
        );
      partitions?.start();
      writer.start();
      return new AuditLog(opts, spool, intents, writer, partitions, webhook, unlock);
    } catch (err) {
      unlock();
      throw err;
    }
  }

  get enabled(): boolean {
    return this.writer !== undefined;
  }

  /** Replace the policy (a reloaded policy file). */
  setPolicy(policy: AuditPolicy): void {
    this.policy = policy;
  }

  /**
   * Open the record of one request. Throws KG_ERR_UNAVAILABLE (503) when the
   * event could not be kept: the request must then not be acted on.
   */
  begin(ctx: RequestContext, headers: IncomingHttpHeaders = {}): AuditRecorder {
    if (!this.writer) return new NullRecorder(ctx, nullSink);
    if (this.full()) {
      this.refused++;
      this.opts.observe?.('refused', 1);
      if (Date.now() - this.lastRefusalLog > 10_000) {
        this.lastRefusalLog = Date.now();
        ctx.log.error(
          { spoolBytes: this.spoolBytes, spoolMaxBytes: this.opts.spoolMaxBytes },
          'refusing requests: the audit log cannot keep their events (database unreachable and spool full)',
        );
      }
      throw new KgError(
        'KG_ERR_UNAVAILABLE',
        'kubegate cannot record this request in its audit log right now (audit storage is full or unavailable); retry shortly',
        { retryAfter: 5 },
      );
    }
    return new AuditRecorder(ctx, this.sink, headers);
  }

  /** Keep an event made whole elsewhere (a runbook run's API call); dropped when audit is off. */
  record(e: AuditEvent): void {
    if (this.writer) this.sink.emit(e);
  }

  /** Events waiting in memory (metrics: kubegate_audit_queue_events). */
  get queued(): number {
    return this.writer?.stats().queued ?? 0;
  }

  /** Bytes on disk in the spool (metrics: kubegate_audit_spool_bytes). */
  get spoolBytes(): number {
    return (this.spool?.bytes ?? 0) + (this.intents?.bytes ?? 0);
  }

  get spoolMaxBytes(): number {
    return this.opts.spoolMaxBytes;
  }

  stats(): AuditStats {
    const w = this.writer?.stats();
    return {
      queued: 0,
      inserted: 0,
      spooled: 0,
      replayed: 0,
      orphansRecovered: 0,
      quarantined: 0,
      databaseDown: false,
      diskFailing: false,
      ...w,
      enabled: this.enabled,
      strict: !!this.opts.strict,
      spoolBytes: this.spoolBytes,
      spoolMaxBytes: this.opts.spoolMaxBytes,
      strictInFlight: this.intents?.inFlight ?? 0,
      refused: this.refused,
      ...(this.webhook
        ? {
            webhook: {
              sent: this.webhook.sent,
              dropped: this.webhook.dropped,
              failures: this.webhook.failures,
            },
          }
        : {}),
    };
  }

  /** Write what is queued (to the database, or the spool). */
  async flush(): Promise<void> {
    await this.writer?.flush();
  }

  /** Flush and replay until everything is in the database; false on timeout. */
  async drain(timeoutMs = 10_000): Promise<boolean> {
    return this.writer ? this.writer.drain(timeoutMs) : true;
  }

  /**
   * Stop: flush what is queued (to the database, or the spool if it is
   * down), close the spool and release the directory.
   */
  async close(): Promise<void> {
    if (!this.writer) return;
    this.partitions?.stop();
    this.writer.stop();
    await this.writer.flush();
    await this.webhook?.close();
    await this.spool!.close();
    await this.intents!.close();
    this.unlock();
  }

  private full(): boolean {
    return this.spoolBytes >= this.opts.spoolMaxBytes || this.writer!.unwritable;
  }

  private async writeIntent(e: AuditEvent): Promise<void> {
    try {
      await this.intents!.write(e);
    } catch (err) {
      throw new KgError(
        'KG_ERR_UNAVAILABLE',
        'kubegate cannot record this request before forwarding it (strict audit: the spool is not writable); retry shortly',
        { cause: err, retryAfter: 5 },
      );
    }
  }
}
