/**
 * Rows of `approval_requests` and how the API shows them. One shape for
 * both kinds, so a console lists access requests and gated actions in one
 * table: `access` or `action` carries what is asked, `decisions` every vote.
 */
import type { ClusterChoice } from './policy-spec.js';
import type { Person, Vote } from './policy-match.js';

export type Status = 'pending' | 'approved' | 'denied' | 'withdrawn' | 'expired' | 'executed';
export const statuses: readonly Status[] = [
  'pending',
  'approved',
  'denied',
  'withdrawn',
  'expired',
  'executed',
];

export interface AccessSpec {
  role: string;
  clusters: ClusterChoice;
  namespaces: string[];
  durationSeconds: number;
  /** The access policies that covered the request when it was made. */
  policies: string[];
  /** Once approved: when the binding ends. */
  expiresAt?: string;
}

/** The exact request a gate stopped (never its body: only the body's hash). */
export interface ActionSpec {
  cluster: string;
  method: string;
  verb: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  path: string;
  query: string;
  contentType: string;
  bodySha256: string;
  bodyBytes: number;
  policies: string[];
}

/** A runbook run waiting for approval: what will run, where (proxy/runbooks/). */
export interface RunSpec {
  runId: string;
  runbook: string;
  version: number;
  clusters: string[];
  namespace: string;
  params: Record<string, string | number | boolean>;
  ticket: string;
  dryRun: boolean;
  /** The rendered steps, in order. */
  steps: { index: number; name: string; action: string }[];
  policies: string[];
}

/** A self-service namespace waiting to be created or deleted (proxy/namespaces/). */
export interface NamespaceSpec {
  action: 'create' | 'delete';
  namespace: string;
  clusters: string[];
  profile: string;
  owner: string;
  /** The profile whose approvers decide. */
  policies: string[];
}

export type RequestKind = 'access' | 'action' | 'run' | 'namespace';
export const requestKinds: readonly RequestKind[] = ['access', 'action', 'run', 'namespace'];

export interface RequestRow {
  id: string;
  kind: RequestKind;
  status: Status;
  requester: string;
  requester_kind: 'user' | 'robot';
  requester_groups: string[];
  reason: string;
  spec: AccessSpec | ActionSpec | RunSpec | NamespaceSpec;
  fingerprint: string | null;
  cluster: string;
  diff: string | null;
  created_at: Date;
  pending_until: Date;
  decided_at: Date | null;
  executable_until: Date | null;
  executed_at: Date | null;
  binding_id: string | null;
  request_audit_id: string | null;
  execution_audit_id: string | null;
}

export interface DecisionRow {
  request_id: string;
  approver: string;
  approver_kind: 'user' | 'robot';
  groups: string[];
  decision: 'approve' | 'deny';
  reason: string;
  at: Date;
}

export function requesterOf(r: RequestRow): Person {
  return { name: r.requester, kind: r.requester_kind, groups: r.requester_groups };
}

export function votesOf(d: readonly DecisionRow[]): Vote[] {
  return d.map((x) => ({
    approver: x.approver,
    approverKind: x.approver_kind,
    groups: x.groups,
    decision: x.decision,
  }));
}

/** The API view of one approval request. */
export function approvalView(r: RequestRow, decisions: readonly DecisionRow[], publicUrl: string) {
  const base = {
    id: r.id,
    kind: r.kind,
    status: r.status,
    requester: requesterOf(r),
    reason: r.reason,
    createdAt: r.created_at,
    pendingUntil: r.pending_until,
    decidedAt: r.decided_at,
    policies: r.spec.policies,
    decisions: decisions.map((d) => ({
      approver: d.approver,
      approverKind: d.approver_kind,
      decision: d.decision,
      reason: d.reason,
      at: d.at,
    })),
    links: {
      self: `${publicUrl}/api/v1/approvals/${r.id}`,
      cli: `kubegate request get ${r.id}`,
    },
  };
  if (r.kind === 'access') {
    return { ...base, access: { ...(r.spec as AccessSpec), bindingId: r.binding_id } };
  }
  if (r.kind === 'namespace') {
    const s = r.spec as NamespaceSpec;
    return {
      ...base,
      namespace: {
        action: s.action,
        namespace: s.namespace,
        clusters: s.clusters,
        profile: s.profile,
        owner: s.owner,
      },
    };
  }
  if (r.kind === 'run') {
    const { runId, ...run } = r.spec as RunSpec;
    return {
      ...base,
      run: { id: runId, ...run, link: `${publicUrl}/api/v1/runs/${runId}` },
      diff: r.diff,
    };
  }
  return {
    ...base,
    action: {
      ...(r.spec as ActionSpec),
      executableUntil: r.executable_until,
      executedAt: r.executed_at,
      requestAuditId: r.request_audit_id,
      executionAuditId: r.execution_audit_id,
    },
    diff: r.diff,
  };
}

export type ApprovalView = ReturnType<typeof approvalView>;

/** One line for people and notifications. */
export function summaryOf(r: Pick<RequestRow, 'kind' | 'spec' | 'requester'>): string {
  if (r.kind === 'access') {
    const s = r.spec as AccessSpec;
    const where = [
      ...(s.clusters.names ?? []),
      ...(s.clusters.selector ? [`clusters matching ${JSON.stringify(s.clusters.selector)}`] : []),
    ].join(', ');
    const ns = s.namespaces.length ? ` in namespaces ${s.namespaces.join(', ')}` : ' cluster-wide';
    return `${r.requester} asks for role ${s.role} on ${where}${ns} for ${Math.round(s.durationSeconds / 60)} min`;
  }
  if (r.kind === 'namespace') {
    const s = r.spec as NamespaceSpec;
    const verb = s.action === 'create' ? 'create' : 'delete';
    return `${r.requester} wants to ${verb} namespace ${s.namespace} (profile ${s.profile}) on ${s.clusters.join(', ')}`;
  }
  if (r.kind === 'run') {
    const s = r.spec as RunSpec;
    const ns = s.namespace ? ` in namespace ${s.namespace}` : '';
    const ticket = s.ticket ? ` for ${s.ticket}` : '';
    return `${r.requester} wants to run runbook ${s.runbook}${ns} on ${s.clusters.join(', ')}${ticket}`;
  }
  const a = r.spec as ActionSpec;
  const obj = `${a.resource}${a.subresource ? `/${a.subresource}` : ''}${a.name ? ` "${a.name}"` : ''}`;
  const ns = a.namespace ? ` in namespace ${a.namespace}` : '';
  return `${r.requester} wants to ${a.verb} ${obj}${ns} on cluster ${a.cluster}`;
}

/** Who acts, as the API resolved them. */
/** Who asks for something, with where they asked from (for the audit log). */
export interface Requester extends Person {
  /** `user:alice`, as the audit log names actors. */
  actor: string;
  sourceIp?: string;
  userAgent?: string;
}

export interface Actor extends Requester {
  admin: boolean;
}

export interface ListFilter {
  /** mine: asked by me; approvable: pending and mine to decide; all: admins only. */
  view: 'mine' | 'approvable' | 'all';
  status?: Status;
  kind?: RequestKind;
  /** Page size, 1..500 (default 100), and the position from the previous page. */
  limit?: number;
  continue?: string;
}
