/**
 * Opening an approval request for something that waits for it (a runbook
 * run, a self-service namespace): the request row, its audit event, the
 * notification to the approvers' webhooks and the metric, in the caller's
 * transaction — so the thing and the request it waits for exist together
 * or not at all.
 */
import { recordAdminEvent } from '../audit/admin-events.js';
import { query, type Queryable } from '../db/query.js';
import { proxyMetrics } from '../metrics.js';
import { enqueue } from './notify.js';
import {
  summaryOf,
  type NamespaceSpec,
  type Requester,
  type RequestRow,
  type RunSpec,
} from './records.js';

export interface OpenRequest {
  kind: 'run' | 'namespace';
  spec: RunSpec | NamespaceSpec;
  requester: Requester;
  reason: string;
  /** How long it may wait for a decision, in seconds. */
  pendingFor: number;
  publicUrl: string;
  /** Extra audit annotations (the run id). */
  annotations?: Record<string, string>;
}

/** Open the request; returns its id. */
export async function openRequest(c: Queryable, o: OpenRequest): Promise<string> {
  const [r] = await query<RequestRow>(
    c,
    `INSERT INTO approval_requests (kind, status, requester, requester_kind, requester_groups,
            reason, spec, cluster, pending_until)
     VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8)) RETURNING *`,
    [
      o.kind,
      o.requester.name,
      o.requester.kind,
      o.requester.groups,
      o.reason,
      JSON.stringify(o.spec),
      o.spec.clusters[0] ?? '',
      o.pendingFor,
    ],
  );
  await recordAdminEvent(c, {
    actor: o.requester.actor,
    verb: 'create',
    resource: 'approvals',
    name: r!.id,
    detail: { kind: o.kind, spec: o.spec, reason: o.reason },
    ...(o.requester.sourceIp ? { sourceIp: o.requester.sourceIp } : {}),
    ...(o.requester.userAgent ? { userAgent: o.requester.userAgent } : {}),
    annotations: { 'kubegate.dev/approval-id': r!.id, ...o.annotations },
  });
  await enqueue(c, {
    event: 'approval.requested',
    id: r!.id,
    kind: o.kind,
    status: 'pending',
    requester: `${r!.requester_kind}:${r!.requester}`,
    summary: summaryOf(r!),
    reason: o.reason,
    url: `${o.publicUrl}/api/v1/approvals/${r!.id}`,
    at: new Date().toISOString(),
  });
  proxyMetrics.approvals.state(o.kind, 'pending');
  return r!.id;
}
