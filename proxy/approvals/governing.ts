/**
 * Which approval policies govern a request now: the ones named on it when it
 * was made that still exist and (for access) still cover it with the
 * clusters' current labels. Read again at every decision, so tightening or
 * deleting a policy takes effect on open requests at once.
 */
import { query, type Queryable } from '../db/query.js';
import { listPolicies } from './policies.js';
import type { AccessPolicy, ApprovalPolicy, NamespacePolicy } from './policy-spec.js';
import type { ProfileApproval } from '../namespaces/profile-spec.js';
import { accessCovers } from './policy-match.js';
import { requesterOf, type AccessSpec, type RequestRow } from './records.js';

/** Every registered cluster's labels, by name. */
export async function clusterLabels(db: Queryable): Promise<Map<string, Record<string, string>>> {
  const rows = await query<{ name: string; labels: Record<string, string> }>(
    db,
    'SELECT name, labels FROM clusters',
  );
  return new Map(rows.map((r) => [r.name, r.labels]));
}

const kinds: Record<RequestRow['kind'], ApprovalPolicy['kind']> = {
  access: 'access',
  action: 'gate',
  run: 'runbook',
  namespace: 'namespace',
};

/** The approvers of every namespace profile that has them, as policies named after the profile. */
async function profileApprovers(db: Queryable): Promise<NamespacePolicy[]> {
  const rows = await query<{ name: string; spec: { approval: ProfileApproval | null } }>(
    db,
    `SELECT name, spec FROM namespace_profiles WHERE spec->'approval' IS NOT NULL
        AND spec->'approval' <> 'null'::jsonb`,
  );
  return rows.map((r) => ({
    kind: 'namespace',
    name: r.name,
    description: `approvers of namespace profile ${r.name}`,
    approvers: r.spec.approval!.approvers,
    clusters: { selector: {} },
    namespaces: [],
    pendingFor: r.spec.approval!.pendingFor,
  }));
}

/** Which policies govern a request, from policies and cluster labels read once. */
export type Governor = (r: RequestRow) => ApprovalPolicy[];

/** Read the policies and cluster labels once, for judging many requests (a list page). */
export async function governor(db: Queryable): Promise<Governor> {
  const all = [...(await listPolicies(db)).map((p) => p.policy), ...(await profileApprovers(db))];
  const labels = await clusterLabels(db);
  return (r) => {
    const named = new Set(r.spec.policies);
    const kind = kinds[r.kind];
    const policies = all.filter((p) => p.kind === kind && named.has(p.name));
    if (r.kind !== 'access') return policies;
    const s = r.spec as AccessSpec;
    return (policies as AccessPolicy[]).filter((p) => accessCovers(p, s, requesterOf(r), labels));
  };
}

/** The policies that govern a request now: named on it, still existing, still covering it. */
export async function governing(db: Queryable, r: RequestRow): Promise<ApprovalPolicy[]> {
  return (await governor(db))(r);
}
