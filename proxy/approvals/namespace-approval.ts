/**
 * Self-service namespaces that wait for approval (profiles with `approval`):
 * the request is made in the transaction that records the namespace, and
 * what happens when it is decided, expires or is withdrawn is the trigger in
 * migrations/0013_namespaces.sql. The profile's approvers decide
 * (governing.ts reads them from the profile at every vote).
 */
import { recordAdminEvent } from '../audit/admin-events.js';
import { query, type Queryable } from '../db/query.js';
import { proxyMetrics } from '../metrics.js';
import type { ProfileApproval } from '../namespaces/profile-spec.js';
import { enqueue } from './notify.js';
import { summaryOf, type NamespaceSpec, type RequestRow } from './records.js';

export interface NamespaceApprovalInput {
  spec: Omit<NamespaceSpec, 'policies'>;
  approval: ProfileApproval;
  requester: {
    name: string;
    kind: 'user' | 'robot';
    groups: string[];
    actor: string;
    sourceIp?: string;
    userAgent?: string;
  };
  reason: string;
  publicUrl: string;
}

/** Open the approval request a namespace waits for; returns its id. */
export async function askNamespaceApproval(
  c: Queryable,
  a: NamespaceApprovalInput,
): Promise<string> {
  const spec: NamespaceSpec = { ...a.spec, policies: [a.spec.profile] };
  const [r] = await query<RequestRow>(
    c,
    `INSERT INTO approval_requests (kind, status, requester, requester_kind, requester_groups,
            reason, spec, cluster, pending_until)
     VALUES ('namespace', 'pending', $1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
     RETURNING *`,
    [
      a.requester.name,
      a.requester.kind,
      a.requester.groups,
      a.reason,
      JSON.stringify(spec),
      spec.clusters[0] ?? '',
      a.approval.pendingFor,
    ],
  );
  await recordAdminEvent(c, {
    actor: a.requester.actor,
    verb: 'create',
    resource: 'approvals',
    name: r!.id,
    detail: { kind: 'namespace', spec, reason: a.reason },
    ...(a.requester.sourceIp ? { sourceIp: a.requester.sourceIp } : {}),
    ...(a.requester.userAgent ? { userAgent: a.requester.userAgent } : {}),
    annotations: { 'kubegate.dev/approval-id': r!.id },
  });
  await enqueue(c, {
    event: 'approval.requested',
    id: r!.id,
    kind: 'namespace',
    status: 'pending',
    requester: `${r!.requester_kind}:${r!.requester}`,
    summary: summaryOf(r!),
    reason: a.reason,
    url: `${a.publicUrl}/api/v1/approvals/${r!.id}`,
    at: new Date().toISOString(),
  });
  proxyMetrics.approvals.state('namespace', 'pending');
  return r!.id;
}
