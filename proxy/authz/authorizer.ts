/**
 * Stage 4 of the request path: the central RBAC decision, a pure function of
 * (snapshot, identity, request info, cluster, time). Deny by default.
 *
 * A binding applies to a request when
 *  - one of its subjects is the caller (Group ∈ groups; User/Robot = user of that kind),
 *  - it has not expired at `now` (an unreadable expiry counts as expired),
 *  - the cluster is named in it or matches its label selector,
 *  - and, if it lists namespaces, the request is a resource request in one of
 *    them — exactly what a Kubernetes RoleBinding can reach: never
 *    cluster-scoped resources, non-resource URLs or all-namespace lists
 *    (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#rolebinding-and-clusterrolebinding).
 * It then allows what one rule of its role allows (policy-rule.ts). A binding
 * naming an unknown role allows nothing.
 *
 * On top, an identity with at least one effective binding on the cluster gets
 * the `system:authenticated` baseline (discovery, health, self reviews), as
 * every authenticated Kubernetes user does; see builtin-roles.ts.
 *
 * The snapshot is indexed once (by subject) and the index is cached per
 * snapshot object, so the hot path only walks the caller's own bindings and
 * an allow allocates nothing.
 */
import { ruleAllows, type PolicyRule } from './policy-rule.js';
import { authenticatedBaseline } from './builtin-roles.js';
import type { RequestInfo } from './request-info.js';
import type { Binding, ClusterRef, Decision, Identity, PolicySnapshot } from './types.js';
import { selectorMatches, type LabelSelector } from '../../common/kube-grammar.js';

interface IndexedBinding {
  /** Position in snapshot.bindings: the lowest allowing one is reported. */
  order: number;
  binding: Binding;
  /** The role's rules; [] when the role does not exist. */
  rules: readonly PolicyRule[];
  roleKnown: boolean;
  /** +Infinity when it never expires, -Infinity when the expiry is unreadable. */
  expiresAtMs: number;
  names: ReadonlySet<string> | null;
  selector: LabelSelector | null;
  /** null = cluster-wide. */
  namespaces: ReadonlySet<string> | null;
  /** The Decision when this binding allows a request: made on first use, then shared (frozen). */
  allow: Decision | undefined;
  /** The Decision when it is the caller's first binding and the baseline allows (likewise). */
  baseline: Decision | undefined;
}

interface SnapshotIndex {
  users: Map<string, IndexedBinding[]>;
  robots: Map<string, IndexedBinding[]>;
  groups: Map<string, IndexedBinding[]>;
}

const indexCache = new WeakMap<PolicySnapshot, SnapshotIndex>();

function expiryOf(b: Binding): number {
  if (b.expiresAt === undefined || b.expiresAt === null) return Infinity;
  const t = b.expiresAt instanceof Date ? b.expiresAt.getTime() : NaN;
  return Number.isNaN(t) ? -Infinity : t;
}

function addTo(map: Map<string, IndexedBinding[]>, key: string, ib: IndexedBinding): void {
  const list = map.get(key);
  if (!list) map.set(key, [ib]);
  else if (list[list.length - 1] !== ib) list.push(ib); // a subject listed twice
}

function buildIndex(snap: PolicySnapshot): SnapshotIndex {
  const idx: SnapshotIndex = { users: new Map(), robots: new Map(), groups: new Map() };
  snap.bindings.forEach((b, order) => {
    const role = snap.roles.get(b.role);
    const ib: IndexedBinding = {
      order,
      binding: b,
      rules: role ? role.rules : [],
      roleKnown: role !== undefined,
      expiresAtMs: expiryOf(b),
      names: b.clusters.names && b.clusters.names.length > 0 ? new Set(b.clusters.names) : null,
      selector: b.clusters.selector ?? null,
      namespaces: b.namespaces.length > 0 ? new Set(b.namespaces) : null,
      allow: undefined,
      baseline: undefined,
    };
    for (const s of b.subjects) {
      if (s.kind === 'Group') addTo(idx.groups, s.name, ib);
      else if (s.kind === 'User') addTo(idx.users, s.name, ib);
      else if (s.kind === 'Robot') addTo(idx.robots, s.name, ib);
    }
  });
  return idx;
}

function indexOf(snap: PolicySnapshot): SnapshotIndex {
  let idx = indexCache.get(snap);
  if (!idx) {
    idx = buildIndex(snap);
    indexCache.set(snap, idx);
  }
  return idx;
}

function effective(ib: IndexedBinding, cluster: ClusterRef, nowMs: number): boolean {
  if (!(nowMs < ib.expiresAtMs)) return false;
  if (ib.names !== null && ib.names.has(cluster.name)) return true;
  return ib.selector !== null && selectorMatches(ib.selector, cluster.labels);
}

function reaches(ib: IndexedBinding, info: RequestInfo): boolean {
  const ns = ib.namespaces;
  if (ns === null) return true;
  return info.isResourceRequest && info.namespace !== '' && ns.has(info.namespace);
}

function grants(ib: IndexedBinding, info: RequestInfo): boolean {
  if (!reaches(ib, info)) return false;
  for (const r of ib.rules) if (ruleAllows(r, info)) return true;
  return false;
}

/**
 * The lowest-order binding in `list` (ordered by `order`) that is effective and,
 * when `info` is given, grants it — if lower than `best`.
 */
function scan(
  list: IndexedBinding[] | undefined,
  best: IndexedBinding | undefined,
  cluster: ClusterRef,
  nowMs: number,
  info: RequestInfo | undefined,
): IndexedBinding | undefined {
  if (list === undefined) return best;
  for (const ib of list) {
    if (best !== undefined && ib.order >= best.order) break;
    if (effective(ib, cluster, nowMs) && (info === undefined || grants(ib, info))) return ib;
  }
  return best;
}

function firstBinding(
  idx: SnapshotIndex,
  who: Identity,
  cluster: ClusterRef,
  nowMs: number,
  info: RequestInfo | undefined,
): IndexedBinding | undefined {
  let best: IndexedBinding | undefined;
  if (who.kind === 'user') best = scan(idx.users.get(who.user), best, cluster, nowMs, info);
  else if (who.kind === 'robot') best = scan(idx.robots.get(who.user), best, cluster, nowMs, info);
  for (const g of who.groups) best = scan(idx.groups.get(g), best, cluster, nowMs, info);
  return best;
}

function effectiveIndexed(
  idx: SnapshotIndex,
  who: Identity,
  cluster: ClusterRef,
  nowMs: number,
): IndexedBinding[] {
  const seen = new Set<IndexedBinding>();
  const add = (list: IndexedBinding[] | undefined): void => {
    for (const ib of list ?? []) if (effective(ib, cluster, nowMs)) seen.add(ib);
  };
  if (who.kind === 'user') add(idx.users.get(who.user));
  else if (who.kind === 'robot') add(idx.robots.get(who.user));
  for (const g of who.groups) add(idx.groups.get(g));
  return [...seen].sort((a, b) => a.order - b.order);
}

/**
 * The bindings in effect for `who` on `cluster` at `now`, in snapshot order,
 * each once (for kubeconfig contexts and the agent's JIT bindings).
 */
export function isDeactivated(snap: PolicySnapshot, who: Identity): boolean {
  return (
    who.kind === 'user' &&
    snap.deactivatedUsers !== undefined &&
    snap.deactivatedUsers.has(who.user)
  );
}

export function bindingsFor(
  snap: PolicySnapshot,
  who: Identity,
  cluster: ClusterRef,
  now: Date,
): Binding[] {
  if (isDeactivated(snap, who)) return [];
  return effectiveIndexed(indexOf(snap), who, cluster, now.getTime()).map((ib) => ib.binding);
}

function allowDecision(b: Binding): Decision {
  return Object.freeze({
    allowed: true,
    reason: `allowed by binding ${JSON.stringify(b.id)} (role ${JSON.stringify(b.role)})`,
    bindingId: b.id,
    role: b.role,
  });
}

function baselineDecision(b: Binding): Decision {
  return Object.freeze({
    allowed: true,
    reason: `allowed by the ${authenticatedBaseline.name} baseline (discovery, health, self reviews) of a user with binding ${JSON.stringify(b.id)} on this cluster`,
    bindingId: b.id,
    role: authenticatedBaseline.name,
  });
}

function baselineAllows(info: RequestInfo): boolean {
  for (const r of authenticatedBaseline.rules) if (ruleAllows(r, info)) return true;
  return false;
}

/**
 * Decide one request. Pure: the same inputs give the same Decision; the
 * snapshot is never modified. An allow names the first binding (in snapshot
 * order) that allows it; allow Decisions are shared per binding and frozen, so
 * treat every Decision as read-only.
 */
export function authorize(
  snap: PolicySnapshot,
  who: Identity,
  info: RequestInfo,
  cluster: ClusterRef,
  now: Date,
): Decision {
  if (isDeactivated(snap, who))
    return { allowed: false, reason: `denied: user ${JSON.stringify(who.user)} is deactivated` };
  const idx = indexOf(snap);
  const nowMs = now.getTime();
  const granting = firstBinding(idx, who, cluster, nowMs, info);
  if (granting) return (granting.allow ??= allowDecision(granting.binding));
  if (baselineAllows(info)) {
    const any = firstBinding(idx, who, cluster, nowMs, undefined);
    if (any) return (any.baseline ??= baselineDecision(any.binding));
  }
  return { allowed: false, reason: denyReason(idx, who, cluster, nowMs) };
}

function denyReason(idx: SnapshotIndex, who: Identity, cluster: ClusterRef, nowMs: number): string {
  const subject = `${who.kind === 'robot' ? 'Robot' : 'User'} ${JSON.stringify(who.user)}`;
  const on = `cluster ${JSON.stringify(cluster.name)}`;
  const eff = effectiveIndexed(idx, who, cluster, nowMs);
  if (eff.length === 0) return `denied: ${subject} has no binding in effect on ${on}`;
  const unknown = eff.find((ib) => !ib.roleKnown);
  const note = unknown
    ? ` (binding ${JSON.stringify(unknown.binding.id)} names unknown role ${JSON.stringify(unknown.binding.role)})`
    : '';
  return `denied: none of the ${eff.length} binding(s) of ${subject} on ${on} allows this request${note}`;
}

/** The apiserver's sanitizer: keep error text from looking like HTML. */
function sanitize(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** Go's %q for the strings we quote (JSON string syntax is the same for printable text). */
const q = JSON.stringify;

/**
 * The 403 message, worded as kube-apiserver words it
 * (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go
 * and apierrors.NewForbidden) plus the cluster, e.g.
 * `pods "web" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "dev" on cluster "prod"`.
 */
export function forbiddenMessage(who: Identity, info: RequestInfo, cluster: string): string {
  const user = q(who.user);
  if (!info.isResourceRequest) {
    return sanitize(
      `forbidden: User ${user} cannot ${info.verb} path ${q(info.path)} on cluster ${q(cluster)}`,
    );
  }
  const groupResource = info.apiGroup === '' ? info.resource : `${info.resource}.${info.apiGroup}`;
  const subject = info.name === '' ? groupResource : `${groupResource} ${q(info.name)}`;
  const resource = info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
  const scope =
    info.namespace === '' ? 'at the cluster scope' : `in the namespace ${q(info.namespace)}`;
  return sanitize(
    `${subject} is forbidden: User ${user} cannot ${info.verb} resource ${q(resource)} in API group ${q(info.apiGroup)} ${scope} on cluster ${q(cluster)}`,
  );
}
