/**
 * Runbook runs that need approval (approval policies of kind `runbook`):
 * the approval request is made in the same transaction as the run, so a
 * run never waits for a request that does not exist. What happens to the
 * run when the request is decided, expires or is withdrawn is the trigger
 * in migrations/0010_runbooks.sql: one rule, whichever path ends it.
 */
import { recordAdminEvent } from '../audit/admin-events.js';
import { query, type Queryable } from '../db/query.js';
import { proxyMetrics } from '../metrics.js';
import { enqueue, type Notice } from './notify.js';
import { listPolicies } from './policies.js';
import type { RunbookPolicy } from './policy-spec.js';
import { runCovers, type Person, type RunAsk } from './policy-match.js';
import { summaryOf, type RequestRow, type RunSpec } from './records.js';

/** The runbook policies that govern a run (empty: it needs no approval). */
export async function runPolicies(
  db: Queryable,
  ask: RunAsk,
  requester: Person,
): Promise<RunbookPolicy[]> {
  return (await listPolicies(db, 'runbook'))
    .map((p) => p.policy as RunbookPolicy)
    .filter((p) => runCovers(p, ask, requester));
}

export interface RunApprovalInput {
  spec: Omit<RunSpec, 'policies'>;
  policies: RunbookPolicy[];
  requester: Person & { actor: string; sourceIp?: string; userAgent?: string };
  reason: string;
  publicUrl: string;
}

/** Open the approval request a run waits for; returns its id. */
export async function askRunApproval(c: Queryable, a: RunApprovalInput): Promise<string> {
  const spec: RunSpec = { ...a.spec, policies: a.policies.map((p) => p.name) };
  const pendingFor = Math.min(...a.policies.map((p) => p.pendingFor));
  const [r] = await query<RequestRow>(
    c,
    `INSERT INTO approval_requests (kind, status, requester, requester_kind, requester_groups,
            reason, spec, cluster, pending_until)
     VALUES ('run', 'pending', $1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7)) RETURNING *`,
    [
      a.requester.name,
      a.requester.kind,
      a.requester.groups,
      a.reason,
      JSON.stringify(spec),
      spec.clusters[0] ?? '',
      pendingFor,
    ],
  );
  await recordAdminEvent(c, {
    actor: a.requester.actor,
    verb: 'create',
    resource: 'approvals',
    name: r!.id,
    detail: { kind: 'run', spec, reason: a.reason },
    ...(a.requester.sourceIp ? { sourceIp: a.requester.sourceIp } : {}),
    ...(a.requester.userAgent ? { userAgent: a.requester.userAgent } : {}),
    annotations: { 'kubegate.dev/approval-id': r!.id, 'kubegate.dev/run-id': spec.runId },
  });
  const notice: Notice = {
    event: 'approval.requested',
    id: r!.id,
    kind: 'run',
    status: 'pending',
    requester: `${r!.requester_kind}:${r!.requester}`,
    summary: summaryOf(r!),
    reason: a.reason,
    url: `${a.publicUrl}/api/v1/approvals/${r!.id}`,
    at: new Date().toISOString(),
  };
  await enqueue(c, notice);
  proxyMetrics.approvals.state('run', 'pending');
  return r!.id;
}

/** The approvers' dry run is in: show its diff on the approval request. */
export async function setRunPreview(
  db: Queryable,
  approvalId: string,
  diff: string,
): Promise<void> {
  await query(db, `UPDATE approval_requests SET diff = $2 WHERE id = $1 AND kind = 'run'`, [
    approvalId,
    diff,
  ]);
}

/** A run cancelled while it waits: its approval request is withdrawn with it. */
export async function withdrawRunApproval(db: Queryable, approvalId: string): Promise<void> {
  await query(
    db,
    `UPDATE approval_requests SET status = 'withdrawn', decided_at = now()
      WHERE id = $1 AND kind = 'run' AND status = 'pending'`,
    [approvalId],
  );
}
