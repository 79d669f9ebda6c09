/**
 * `kubectl auth can-i` through kubegate: SelfSubjectAccessReview and
 * SelfSubjectRulesReview are answered by the proxy from the central policy
 * for that cluster, not forwarded — so the answer is the one kubegate will
 * enforce (authorization.k8s.io/v1).
 */
import { KgError } from '../../common/errors.js';
import { clusterUserName } from '../../common/identity-key.js';
import { authorize, bindingsFor } from './authorizer.js';
import { authenticatedBaseline } from './builtin-roles.js';
import type { PolicyRule } from './policy-rule.js';
import { nonResourceInfo, type RequestInfo } from './request-info.js';
import type { ClusterRef, Identity, PolicySnapshot } from './types.js';

export type SelfReviewKind = 'access' | 'rules' | 'user';

/** Which self review a request is, if any. */
export function selfReviewKind(info: RequestInfo): SelfReviewKind | undefined {
  if (
    !info.isResourceRequest ||
    info.verb !== 'create' ||
    info.namespace !== '' ||
    info.name !== '' ||
    info.subresource !== ''
  )
    return undefined;
  // `kubectl auth whoami`: the kubegate identity, not the account it runs as on the cluster.
  if (info.apiGroup === 'authentication.k8s.io' && info.resource === 'selfsubjectreviews')
    return 'user';
  if (info.apiGroup !== 'authorization.k8s.io') return undefined;
  if (info.resource === 'selfsubjectaccessreviews') return 'access';
  if (info.resource === 'selfsubjectrulesreviews') return 'rules';
  return undefined;
}

type Obj = Record<string, unknown>;

/**
 * Answer a SelfSubjectReview (`kubectl auth whoami`) with the kubegate
 * identity: the user (robots as `kubegate:robot:<name>`, the name the cluster
 * sees), its groups plus `system:authenticated`, and in `extra` the cluster
 * and the kind of identity.
 */
export function userReview(who: Identity, cluster: ClusterRef, apiVersion: string, now: Date): Obj {
  return {
    kind: 'SelfSubjectReview',
    apiVersion: `authentication.k8s.io/${apiVersion}`,
    metadata: { creationTimestamp: now.toISOString().replace(/\.\d{3}Z$/, 'Z') },
    status: {
      userInfo: {
        username: clusterUserName(who.kind, who.user),
        groups: [...new Set([...who.groups, 'system:authenticated'])],
        extra: {
          'kubegate.dev/cluster': [cluster.name],
          'kubegate.dev/identity-kind': [who.kind],
        },
      },
    },
  };
}
const obj = (v: unknown): Obj =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : {};
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** How a self-review is answered: from the central policy, for the caller, on one cluster, now. */
export type ReviewAnswer = (
  review: Obj,
  snap: PolicySnapshot,
  who: Identity,
  cluster: ClusterRef,
  now: Date,
) => Obj;

/** Answer a SelfSubjectAccessReview from the central policy. */
export const accessReview: ReviewAnswer = (review, snap, who, cluster, now) => {
  const spec = obj(review.spec);
  const ra = spec.resourceAttributes === undefined ? undefined : obj(spec.resourceAttributes);
  const nra =
    spec.nonResourceAttributes === undefined ? undefined : obj(spec.nonResourceAttributes);
  if (!ra === !nra)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'exactly one of spec.resourceAttributes and spec.nonResourceAttributes must be set',
    );
  const info: RequestInfo = ra
    ? {
        isResourceRequest: true,
        path: '',
        verb: str(ra.verb),
        apiPrefix: 'apis',
        apiGroup: str(ra.group),
        apiVersion: str(ra.version),
        namespace: str(ra.namespace),
        resource: str(ra.resource),
        subresource: str(ra.subresource),
        name: str(ra.name),
        parts: [],
      }
    : nonResourceInfo(str(nra!.path), str(nra!.verb));
  const d = authorize(snap, who, info, cluster, now);
  return {
    apiVersion: str(review.apiVersion) || 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    metadata: { creationTimestamp: null },
    spec,
    status: d.allowed
      ? { allowed: true, reason: `kubegate: ${d.reason}` }
      : { allowed: false, reason: `kubegate: ${d.reason}` },
  };
};

/** Answer a SelfSubjectRulesReview (`kubectl auth can-i --list`) for spec.namespace. */
export const rulesReview: ReviewAnswer = (review, snap, who, cluster, now) => {
  const namespace = str(obj(review.spec).namespace);
  const resourceRules: Obj[] = [];
  const nonResourceRules: Obj[] = [];
  const add = (rules: readonly PolicyRule[], clusterWide: boolean) => {
    for (const r of rules) {
      if (r.nonResourceURLs?.length) {
        if (clusterWide)
          nonResourceRules.push({ verbs: r.verbs, nonResourceURLs: r.nonResourceURLs });
        continue;
      }
      resourceRules.push({
        verbs: r.verbs,
        apiGroups: r.apiGroups ?? [],
        resources: r.resources ?? [],
        ...(r.resourceNames?.length ? { resourceNames: r.resourceNames } : {}),
      });
    }
  };
  const effective = bindingsFor(snap, who, cluster, now);
  for (const b of effective) {
    const role = snap.roles.get(b.role);
    if (!role) continue;
    if (b.namespaces.length === 0) add(role.rules, true);
    else if (namespace !== '' && b.namespaces.includes(namespace)) add(role.rules, false);
  }
  if (effective.length) add(authenticatedBaseline.rules, true);
  return {
    apiVersion: str(review.apiVersion) || 'authorization.k8s.io/v1',
    kind: 'SelfSubjectRulesReview',
    metadata: { creationTimestamp: null },
    spec: { namespace },
    status: { resourceRules, nonResourceRules, incomplete: false },
  };
};
