/**
 * A webhook sink for SIEMs: events are POSTed as an `audit.k8s.io/v1`
 * EventList, the body kube-apiserver's own audit webhook backend sends, so
 * receivers built for it (Falco k8saudit, log shippers) work unchanged.
 * Batches are retried with exponential back-off until the receiver answers
 * 2xx. The database stays the system of record: if the receiver is down so
 * long that the buffer overflows, the oldest events are dropped from the
 * buffer (counted and logged with their time range, to backfill from
 * `/api/v1/audit/export`).
 */
import { request } from 'undici';
import type { Logger } from '../../common/log.js';
import { toKubeEvent, type AuditEvent } from './event.js';

export interface WebhookOptions {
  url: string;
  log: Logger;
  batchMax?: number;
  bufferMax?: number;
  timeoutMs?: number;
  maxBackoffMs?: number;
}

export class WebhookSink {
  private buffer: AuditEvent[] = [];
  private sending: Promise<void> | undefined;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  sent = 0;
  dropped = 0;
  failures = 0;

  constructor(private readonly opts: WebhookOptions) {}

  /** Where events go, for logs: the origin only (a URL may carry credentials). */
  get target(): string {
    try {
      return new URL(this.opts.url).origin;
    } catch {
      return '(invalid url)';
    }
  }

  push(events: readonly AuditEvent[]): void {
    if (this.stopped) return;
    this.buffer.push(...events);
    const max = this.opts.bufferMax ?? 10_000;
    if (this.buffer.length > max) {
      const lost = this.buffer.splice(0, this.buffer.length - max);
      this.dropped += lost.length;
      this.opts.log.warn(
        {
          webhook: this.target,
          dropped: lost.length,
          from: lost[0]!.requestReceivedTimestamp,
          to: lost[lost.length - 1]!.requestReceivedTimestamp,
        },
        'audit webhook is behind: events dropped from its buffer (they are in the database; backfill with the export API)',
      );
    }
    if (!this.retryTimer) void this.send();
  }

  /** Send until the buffer is empty or a send fails (then retry after back-off). */
  send(): Promise<void> {
    this.sending ??= this.loop().finally(() => (this.sending = undefined));
    return this.sending;
  }

  private async loop(): Promise<void> {
    while (this.buffer.length > 0 && !this.stopped) {
      const batch = this.buffer.slice(0, this.opts.batchMax ?? 400);
      try {
        await this.post(batch);
      } catch (err) {
        this.failures++;
        this.backoffMs = Math.min(
          Math.max(this.backoffMs * 2, 1000),
          this.opts.maxBackoffMs ?? 60_000,
        );
        this.opts.log.warn(
          { webhook: this.target, err: (err as Error).message, retryInMs: this.backoffMs },
          'audit webhook delivery failed; retrying',
        );
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          void this.send();
        }, this.backoffMs);
        this.retryTimer.unref();
        return;
      }
      // Only what was sent leaves the buffer (it may have been trimmed meanwhile).
      const i = this.buffer.indexOf(batch[batch.length - 1]!);
      this.buffer.splice(0, i + 1);
      this.sent += batch.length;
      this.backoffMs = 0;
    }
  }

  private async post(batch: readonly AuditEvent[]): Promise<void> {
    const body = JSON.stringify({
      kind: 'EventList',
      apiVersion: 'audit.k8s.io/v1',
      metadata: {},
      items: batch.map(toKubeEvent),
    });
    const timeout = this.opts.timeoutMs ?? 10_000;
    const res = await request(this.opts.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      headersTimeout: timeout,
      bodyTimeout: timeout,
      // undici 7 follows no redirects unless told to: a receiver cannot bounce events elsewhere.
    });
    await res.body.dump();
    if (res.statusCode < 200 || res.statusCode >= 300) {
      throw new Error(`receiver answered ${res.statusCode}`);
    }
  }

  /** Try to deliver what is buffered (bounded by `timeoutMs`), then stop. */
  async close(timeoutMs = 2000): Promise<void> {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await Promise.race([this.send(), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.stopped = true;
  }
}
