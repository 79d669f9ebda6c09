/**
 * Expiry of approval requests: a pending request unanswered past
 * `pending_until`, and an approved gated action not run within its window,
 * become `expired` — with one audit event and one notification each, in the
 * same transaction as the state change.
 *
 * Exactly once with several replicas: the rows are claimed by one UPDATE
 * (`FOR UPDATE SKIP LOCKED`, then `status` re-checked under the row lock),
 * so a row is returned to exactly one transaction, and its event and
 * notification commit or roll back with it. A replica that loses the race
 * gets nothing back and records nothing.
 */
import { recordAdminEvent } from '../audit/admin-events.js';
import { proxyMetrics } from '../metrics.js';
import { query, type Queryable } from '../db/query.js';
import { enqueue, type Notice, type NotifyEvent } from './notify.js';
import { summaryOf, type RequestRow } from './records.js';

/** How the audit log names kubegate acting on its own. */
export const systemActor = 'system:kubegate';

export type NoticeOf = (
  r: RequestRow,
  event: NotifyEvent,
  actor?: string,
  reason?: string,
) => Notice;

/** Most rows one sweep expires; the rest wait for the next sweep. */
const batch = 200;

/**
 * Expire what is due, inside the caller's transaction (limited to one
 * gated request when `fingerprint` is given). Returns the rows this call
 * expired; count them (`countExpired`) only once the transaction committed.
 */
export async function expireDue(
  db: Queryable,
  noticeOf: NoticeOf,
  fingerprint?: string,
): Promise<RequestRow[]> {
  const rows = await query<RequestRow>(
    db,
    `UPDATE approval_requests SET status = 'expired', decided_at = coalesce(decided_at, now())
      WHERE id IN (
            SELECT id FROM approval_requests
             WHERE ((status = 'pending' AND pending_until < now())
                 OR (status = 'approved' AND kind = 'action' AND executable_until < now()))
               ${fingerprint ? 'AND fingerprint = $2' : ''}
             ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
        AND ((status = 'pending' AND pending_until < now())
          OR (status = 'approved' AND kind = 'action' AND executable_until < now()))
      RETURNING *`,
    fingerprint ? [batch, fingerprint] : [batch],
  );
  for (const r of rows) {
    // Only an approval sets executable_until: this one was approved, never run.
    const was = r.executable_until ? 'approved' : 'pending';
    const why =
      was === 'pending'
        ? 'nobody decided it in time'
        : 'the approved request was not sent again within its window';
    await recordAdminEvent(db, {
      actor: systemActor,
      verb: 'expire',
      resource: 'approvals',
      name: r.id,
      detail: { kind: r.kind, was, reason: why, summary: summaryOf(r) },
      cluster: r.cluster,
      annotations: {
        'kubegate.dev/approval-id': r.id,
        ...(r.request_audit_id ? { 'kubegate.dev/request-audit-id': r.request_audit_id } : {}),
      },
    });
    await enqueue(db, noticeOf(r, 'approval.expired', systemActor, why));
  }
  return rows;
}

/** Count committed expiries in the metrics. */
export function countExpired(rows: readonly RequestRow[]): void {
  for (const r of rows) proxyMetrics.approvals.state(r.kind, 'expired');
}
