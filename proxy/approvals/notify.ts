/**
 * Notifications: every new approval request and every decision becomes one
 * delivery per webhook, written to `approval_deliveries` in the same
 * transaction as the change (an outbox: nothing is announced that did not
 * happen, nothing that happened is forgotten on a crash). Each replica's
 * Deliverer claims due rows with SKIP LOCKED, POSTs them signed, and
 * retries failures with exponential back-off until `maxAttempts`.
 */
import { request } from 'undici';
import type { Logger } from '../../common/log.js';
import type { Pool } from '../db/pool.js';
import { proxyMetrics } from '../metrics.js';
import type { Queryable } from '../db/query.js';
import { hdrSignature, hdrTimestamp, sign } from './signature.js';
import { webhookSecret } from './webhooks.js';
import { Rerun } from '../../common/rerun.js';
import type { RequestKind } from './records.js';

export type NotifyEvent =
  | 'approval.requested'
  | 'approval.approved'
  | 'approval.denied'
  | 'approval.withdrawn'
  | 'approval.expired'
  | 'approval.vote'
  // Runbook runs (proxy/runbooks/): asked for, and each way one ends.
  | 'run.requested'
  | 'run.succeeded'
  | 'run.failed'
  | 'run.unknown'
  | 'run.offline'
  | 'run.cancelled';

/** What a notification says, whatever its format. */
export interface Notice {
  event: NotifyEvent;
  id: string;
  kind: RequestKind;
  status: string;
  requester: string;
  /** One line for people: what is asked or what was decided. */
  summary: string;
  reason: string;
  /** Who decided, for decisions. */
  actor?: string;
  url: string;
  at: string;
}

const isRunEvent = (n: Notice) => n.event.startsWith('run.');

/** The generic JSON payload: `{type, approval}`, or `{type, run}` for a run's own events. */
export function jsonPayload(n: Notice): unknown {
  return isRunEvent(n) ? { type: n.event, run: { ...n } } : { type: n.event, approval: { ...n } };
}

/** A Slack incoming-webhook message (https://api.slack.com/messaging/webhooks). */
export function slackPayload(n: Notice): unknown {
  const what = isRunEvent(n) ? 'run' : 'approval';
  const verb = n.event.slice(n.event.indexOf('.') + 1);
  const text = `kubegate ${what} ${n.id} ${verb}: ${n.summary}`;
  const lines = [
    `*${n.summary}*`,
    `Requested by \`${n.requester}\`${n.reason ? ` — “${n.reason}”` : ''}`,
    ...(n.actor ? [`${verb} by \`${n.actor}\``] : []),
    `Status: *${n.status}* · <${n.url}|${what} ${n.id}>`,
  ];
  return {
    text,
    blocks: [{ type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') } }],
  };
}

/** Queue `n` for every webhook, inside the caller's transaction. */
export async function enqueue(db: Queryable, n: Notice): Promise<void> {
  await db.query(
    `INSERT INTO approval_deliveries (webhook_id, event, payload)
     SELECT id, $1, CASE format WHEN 'slack' THEN $3::jsonb ELSE $2::jsonb END FROM approval_webhooks`,
    [n.event, JSON.stringify(jsonPayload(n)), JSON.stringify(slackPayload(n))],
  );
}

interface Due {
  id: string;
  webhook_id: string;
  event: string;
  payload: unknown;
  attempts: number;
  url: string;
  secret_sealed: string;
}

export interface DelivererOptions {
  pool: Pool;
  masterKey: Buffer;
  log: Logger;
  intervalMs?: number;
  maxAttempts?: number;
  timeoutMs?: number;
}

/**
 * Delete old outbox rows: delivered ones after `deliveredSeconds`, given-up
 * ones after `givenUpSeconds` (kept longer: they are what an operator looks
 * at when a receiver was down). Approval requests themselves are never
 * pruned here: they are part of the audit trail. Returns the rows deleted.
 */
export async function pruneDeliveries(
  db: Queryable,
  deliveredSeconds: number,
  givenUpSeconds: number,
): Promise<number> {
  let total = 0;
  // In bounded batches, so a large backlog never holds locks for long.
  for (;;) {
    const r = await db.query(
      `DELETE FROM approval_deliveries WHERE id IN (
         SELECT id FROM approval_deliveries
          WHERE delivered_at < now() - make_interval(secs => $1)
             OR given_up_at < now() - make_interval(secs => $2)
          LIMIT 1000)`,
      [deliveredSeconds, givenUpSeconds],
    );
    total += r.rowCount ?? 0;
    if ((r.rowCount ?? 0) < 1000) return total;
  }
}

/** Back-off after the n-th failed attempt: 1 s, 2 s, 4 s … capped at 5 minutes. */
export function backoffSeconds(attempts: number): number {
  return Math.min(300, 2 ** Math.max(0, attempts - 1));
}

export class Deliverer {
  private timer: NodeJS.Timeout | undefined;
  private readonly rounds: Rerun;

  constructor(private readonly o: DelivererOptions) {
    this.rounds = new Rerun(
      () => this.round(),
      (err) => this.o.log.warn({ err }, 'webhook delivery round failed'),
    );
  }

  start(): void {
    this.timer = setInterval(() => this.kick(), this.o.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Deliver what is due now (after a change this replica made). */
  kick(): void {
    this.rounds.request();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.rounds.stop();
  }

  private async round(): Promise<void> {
    // Claim by leasing: a claimed row is not due again for a minute, so a
    // replica that dies mid-send only delays it.
    const { rows } = await this.o.pool.query<Due>(
      `UPDATE approval_deliveries d SET next_at = now() + interval '60 seconds', attempts = d.attempts + 1
         FROM approval_webhooks w
        WHERE w.id = d.webhook_id AND d.id IN (
              SELECT id FROM approval_deliveries
               WHERE delivered_at IS NULL AND given_up_at IS NULL AND next_at <= now()
               ORDER BY id LIMIT 20 FOR UPDATE SKIP LOCKED)
        RETURNING d.id, d.webhook_id, d.event, d.payload, d.attempts, w.url, w.secret_sealed`,
    );
    await Promise.all(rows.map((r) => this.send(r)));
  }

  private async send(d: Due): Promise<void> {
    const body = JSON.stringify(d.payload);
    const ts = Math.floor(Date.now() / 1000);
    let error = '';
    try {
      const secret = webhookSecret(this.o.masterKey, d.webhook_id, d.secret_sealed);
      const res = await request(d.url, {
        method: 'POST',
        body,
        headers: {
          'content-type': 'application/json',
          'user-agent': 'kubegate-approvals',
          'x-kubegate-event': d.event,
          'x-kubegate-delivery': d.id,
          [hdrTimestamp]: String(ts),
          [hdrSignature]: sign(secret, ts, body),
        },
        headersTimeout: this.o.timeoutMs ?? 5000,
        bodyTimeout: this.o.timeoutMs ?? 5000,
      });
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode >= 300) error = `HTTP ${res.statusCode}`;
    } catch (err) {
      error = (err as Error).message || String(err);
    }
    if (!error) {
      proxyMetrics.approvals.delivery('delivered');
      await this.o.pool.query('UPDATE approval_deliveries SET delivered_at = now() WHERE id = $1', [
        d.id,
      ]);
      return;
    }
    const giveUp = d.attempts >= (this.o.maxAttempts ?? 10);
    proxyMetrics.approvals.delivery(giveUp ? 'given_up' : 'failed');
    this.o.log.warn(
      { delivery: d.id, webhook: d.webhook_id, attempts: d.attempts, error, giveUp },
      'webhook delivery failed',
    );
    await this.o.pool.query(
      `UPDATE approval_deliveries SET last_error = $2,
              next_at = now() + make_interval(secs => $3),
              given_up_at = CASE WHEN $4 THEN now() END
        WHERE id = $1`,
      [d.id, error.slice(0, 500), backoffSeconds(d.attempts), giveUp],
    );
  }
}
