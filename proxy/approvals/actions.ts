/**
 * The database side of approval-gated actions: spend an approval (exactly
 * once, atomically), find the open approval of a request, or open a new one
 * with its audit event and notifications.
 */
import { recordAdminEvent } from '../audit/admin-events.js';
import type { Pool } from '../db/pool.js';
import { inTransaction, query } from '../db/query.js';
import { enqueue, type Notice } from './notify.js';
import type { Person } from './policy-match.js';
import { systemActor } from './expiry.js';
import { summaryOf, type ActionSpec, type RequestRow } from './records.js';

/**
 * Spend the approval of this exact request, if one is approved and within
 * its window: one UPDATE, so two racing identical requests cannot both
 * succeed. Returns the approval id, or undefined.
 */
export async function spendApproval(
  pool: Pool,
  fingerprint: string,
  auditId: string,
): Promise<string | undefined> {
  const rows = await query<{ id: string }>(
    pool,
    `UPDATE approval_requests SET status = 'executed', executed_at = now(), execution_audit_id = $2
      WHERE fingerprint = $1 AND kind = 'action' AND status = 'approved' AND executable_until >= now()
      RETURNING id`,
    [fingerprint, auditId],
  );
  return rows[0]?.id;
}

/**
 * Give back an approval spent by `auditId` whose request changed nothing
 * (see `givesBack` in gate.ts): approved again, for the rest of its window.
 * False when it cannot be: the window has passed, or the same request has
 * meanwhile opened a new approval (at most one may be open). Audited.
 */
export async function returnApproval(pool: Pool, id: string, auditId: string): Promise<boolean> {
  try {
    return await inTransaction(pool, async (c) => {
      const { rows } = await c.query<RequestRow>(
        `UPDATE approval_requests SET status = 'approved', executed_at = NULL, execution_audit_id = NULL
          WHERE id = $1 AND status = 'executed' AND execution_audit_id = $2
            AND executable_until >= now()
            AND NOT EXISTS (SELECT 1 FROM approval_requests o
                             WHERE o.fingerprint = approval_requests.fingerprint AND o.id <> $1
                               AND o.kind = 'action' AND o.status IN ('pending', 'approved'))
          RETURNING *`,
        [id, auditId],
      );
      const r = rows[0];
      if (!r) return false;
      await recordAdminEvent(c, {
        actor: systemActor,
        verb: 'return',
        resource: 'approvals',
        name: r.id,
        detail: {
          reason: 'the cluster refused the approved request without changing anything',
          summary: summaryOf(r),
        },
        cluster: r.cluster,
        annotations: {
          'kubegate.dev/approval-id': r.id,
          'kubegate.dev/execution-audit-id': auditId,
        },
      });
      return true;
    });
  } catch (err) {
    // A racing identical request opened a new approval first (unique index).
    if ((err as { code?: string }).code === '23505') return false;
    throw err;
  }
}

/** The open (pending or approved) approval of this exact request. */
export async function openApproval(
  pool: Pool,
  fingerprint: string,
): Promise<{ id: string; status: string } | undefined> {
  const rows = await query<{ id: string; status: string }>(
    pool,
    `SELECT id, status FROM approval_requests
      WHERE fingerprint = $1 AND kind = 'action' AND status IN ('pending', 'approved')`,
    [fingerprint],
  );
  return rows[0];
}

export interface NewAction {
  fingerprint: string;
  requester: Person & { actor: string };
  spec: ActionSpec;
  pendingForSeconds: number;
  diff: string;
  auditId: string;
  sourceIp: string;
  userAgent: string;
}

/**
 * Open a pending approval for a gated request (or return the one a racing
 * identical request opened first). `notice` makes the notification.
 */
export async function openAction(
  pool: Pool,
  a: NewAction,
  notice: (r: RequestRow) => Notice,
): Promise<{ id: string; created: boolean }> {
  return inTransaction(pool, async (c) => {
    const { rows } = await c.query<RequestRow>(
      `INSERT INTO approval_requests (kind, status, requester, requester_kind, requester_groups, spec,
              fingerprint, cluster, diff, pending_until, request_audit_id)
       VALUES ('action', 'pending', $1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8), $9)
       ON CONFLICT (fingerprint) WHERE kind = 'action' AND status IN ('pending', 'approved')
       DO NOTHING RETURNING *`,
      [
        a.requester.name,
        a.requester.kind,
        a.requester.groups,
        JSON.stringify(a.spec),
        a.fingerprint,
        a.spec.cluster,
        a.diff,
        a.pendingForSeconds,
        a.auditId,
      ],
    );
    const r = rows[0];
    if (!r) {
      const open = await c.query<{ id: string }>(
        `SELECT id FROM approval_requests
          WHERE fingerprint = $1 AND kind = 'action' AND status IN ('pending', 'approved')`,
        [a.fingerprint],
      );
      return { id: open.rows[0]!.id, created: false };
    }
    await recordAdminEvent(c, {
      actor: a.requester.actor,
      verb: 'create',
      resource: 'approvals',
      name: r.id,
      detail: { kind: 'action', spec: a.spec },
      sourceIp: a.sourceIp,
      userAgent: a.userAgent,
      cluster: a.spec.cluster,
      annotations: {
        'kubegate.dev/approval-id': r.id,
        'kubegate.dev/request-audit-id': a.auditId,
      },
    });
    await enqueue(c, notice(r));
    return { id: r.id, created: true };
  });
}
