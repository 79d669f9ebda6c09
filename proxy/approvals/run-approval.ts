/**
 * Runbook runs that need approval (approval policies of kind `runbook`):
 * the approval request is made in the same transaction as the run, so a
 * run never waits for a request that does not exist. What happens to the
 * run when the request is decided, expires or is withdrawn is the trigger
 * in migrations/0010_runbooks.sql: one rule, whichever path ends it.
 */
import { query, type Queryable } from '../db/query.js';
import { openRequest } from './open-request.js';
import { listPolicies } from './policies.js';
import type { RunbookPolicy } from './policy-spec.js';
import { runCovers, type Person, type RunAsk } from './policy-match.js';
import type { Requester, RunSpec } from './records.js';

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
  requester: Requester;
  reason: string;
  publicUrl: string;
}

/** Open the approval request a run waits for; returns its id. */
export async function askRunApproval(c: Queryable, a: RunApprovalInput): Promise<string> {
  const spec: RunSpec = { ...a.spec, policies: a.policies.map((p) => p.name) };
  return openRequest(c, {
    kind: 'run',
    spec,
    requester: a.requester,
    reason: a.reason,
    pendingFor: Math.min(...a.policies.map((p) => p.pendingFor)),
    publicUrl: a.publicUrl,
    annotations: { 'kubegate.dev/run-id': spec.runId },
  });
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
