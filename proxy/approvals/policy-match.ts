/**
 * Decisions of the approval policies, pure and table-tested
 * (test/unit/approvals-policy.test.ts): which gate a Kubernetes request
 * falls under, which access policies cover a request for access, who may
 * decide, and when enough approvals are in.
 */
import { selectorMatches, type LabelSelector } from '../../common/kube-grammar.js';
import type { ClusterRef } from '../authz/types.js';
import type { RequestInfo } from '../authz/request-info.js';
import type {
  AccessPolicy,
  ApprovalPolicy,
  ClusterChoice,
  GatePolicy,
  GateResource,
  RunbookPolicy,
} from './policy-spec.js';

/** Who asks or decides. */
export interface Person {
  name: string;
  kind: 'user' | 'robot';
  groups: string[];
}

/** What an access request asks for (validated). */
export interface AccessAsk {
  role: string;
  clusters: ClusterChoice;
  namespaces: string[];
  durationSeconds: number;
}

export function clusterChosen(choice: ClusterChoice, cluster: ClusterRef): boolean {
  if (choice.names?.includes(cluster.name)) return true;
  return choice.selector !== undefined && selectorMatches(choice.selector, cluster.labels);
}

function resourceMatches(r: GateResource, info: RequestInfo): boolean {
  if (r.resource !== '*' && r.resource !== info.resource) return false;
  if (r.group !== undefined && r.group !== info.apiGroup) return false;
  return r.subresource === '*' || r.subresource === info.subresource;
}

/**
 * A dry run (`dryRun=All`, the only value the apiserver accepts) changes
 * nothing, so it passes the gate: that is how `kubectl diff` and the gate's
 * own preview work. Any other dryRun value is gated like a real change.
 */
export function isDryRun(rawQuery: string): boolean {
  const values = new URLSearchParams(rawQuery).getAll('dryRun');
  return values.length > 0 && values.every((v) => v === 'All');
}

/** The gate policies a request falls under (empty = not gated). */
export function gatesFor(
  policies: readonly GatePolicy[],
  cluster: ClusterRef,
  info: RequestInfo,
  rawQuery: string,
): GatePolicy[] {
  if (!info.isResourceRequest || isDryRun(rawQuery)) return [];
  // Cheapest tests first: string compares before label selectors.
  return policies.filter(
    (p) =>
      (p.verbs.includes('*') || p.verbs.includes(info.verb)) &&
      p.resources.some((r) => resourceMatches(r, info)) &&
      (p.namespaces.length === 0 || p.namespaces.includes(info.namespace)) &&
      clusterChosen(p.clusters, cluster),
  );
}

const notGated: readonly GatePolicy[] = Object.freeze([]);

/**
 * Gate policies prepared for the request path, where almost every request
 * is not gated: the verbs any policy names are kept in a set and the
 * policies are grouped by the resource they name, so a `get` or a `list`
 * (gates name mutating verbs by default) or an ungated resource is ruled
 * out by two lookups, without looking at any policy or allocating, and a
 * gated resource is only checked against the few policies naming it.
 * Answers exactly as `gatesFor`.
 */
export class GateIndex {
  private readonly verbs = new Set<string>();
  private readonly byResource = new Map<string, GatePolicy[]>();
  /** Policies naming resource `*`: candidates for every resource. */
  private readonly anyResource: GatePolicy[] = [];

  constructor(readonly policies: readonly GatePolicy[]) {
    for (const p of policies) {
      for (const v of p.verbs) this.verbs.add(v);
      const names = new Set(p.resources.map((r) => r.resource));
      if (names.has('*')) this.anyResource.push(p);
      for (const n of names) {
        if (n === '*') continue;
        const list = this.byResource.get(n) ?? [];
        list.push(p);
        this.byResource.set(n, list);
      }
    }
    // Each group also holds the `*` policies, in the policies' own order.
    const order = new Map(policies.map((p, i) => [p, i]));
    for (const [n, list] of this.byResource)
      this.byResource.set(
        n,
        [...new Set([...list, ...this.anyResource])].sort((a, b) => order.get(a)! - order.get(b)!),
      );
  }

  /** The gate policies a request falls under (empty = not gated). */
  match(cluster: ClusterRef, info: RequestInfo, rawQuery: string): readonly GatePolicy[] {
    if (!this.verbs.has('*') && !this.verbs.has(info.verb)) return notGated;
    const candidates = this.byResource.get(info.resource) ?? this.anyResource;
    if (candidates.length === 0) return notGated;
    return gatesFor(candidates, cluster, info, rawQuery);
  }
}

/**
 * Whether every cluster `a` selects is also selected by `b`, judged from the
 * selectors' text (never from today's clusters, since a cluster registered
 * tomorrow with matching labels is reachable at once). Sound, not complete:
 * when in doubt, no.
 */
export function selectorImplies(a: LabelSelector, b: LabelSelector): boolean {
  const aLabels = a.matchLabels ?? {};
  const aExprs = a.matchExpressions ?? [];
  // The values `a` allows for a key, when it pins the key to a finite set.
  const pinned = (key: string): string[] | undefined => {
    if (Object.hasOwn(aLabels, key)) return [aLabels[key]!];
    const ins = aExprs.filter((e) => e.key === key && e.operator === 'In' && e.values?.length);
    if (!ins.length) return undefined;
    return ins.map((e) => e.values!).reduce((x, y) => x.filter((v) => y.includes(v)));
  };
  for (const [k, v] of Object.entries(b.matchLabels ?? {})) {
    const vals = pinned(k);
    if (!vals || vals.some((x) => x !== v)) return false;
  }
  for (const e of b.matchExpressions ?? []) {
    const want = e.values ?? [];
    switch (e.operator) {
      case 'In': {
        const vals = pinned(e.key);
        if (!vals || vals.some((x) => !want.includes(x))) return false;
        break;
      }
      case 'Exists':
        if (!pinned(e.key) && !aExprs.some((x) => x.key === e.key && x.operator === 'Exists'))
          return false;
        break;
      case 'NotIn': {
        const vals = pinned(e.key);
        const excluded = aExprs.some(
          (x) =>
            x.key === e.key &&
            ((x.operator === 'NotIn' && want.every((w) => x.values?.includes(w))) ||
              x.operator === 'DoesNotExist'),
        );
        if (!excluded && !(vals && vals.every((x) => !want.includes(x)))) return false;
        break;
      }
      case 'DoesNotExist':
        if (!aExprs.some((x) => x.key === e.key && x.operator === 'DoesNotExist')) return false;
        break;
    }
  }
  return true;
}

/**
 * Whether an access policy covers the request: the role, the requester's
 * groups, the duration, the namespaces, and every cluster the request can
 * reach (named clusters by their current labels; a selector only when it
 * implies the policy's own).
 */
export function accessCovers(
  p: AccessPolicy,
  ask: AccessAsk,
  requester: Person,
  clusterLabels: ReadonlyMap<string, Record<string, string>>,
): boolean {
  if (!p.roles.includes('*') && !p.roles.includes(ask.role)) return false;
  if (p.requesterGroups.length && !requester.groups.some((g) => p.requesterGroups.includes(g)))
    return false;
  if (ask.durationSeconds > p.maxDuration) return false;
  if (p.namespaces.length) {
    if (ask.namespaces.length === 0) return false; // cluster-wide asks more than the policy allows
    if (ask.namespaces.some((n) => !p.namespaces.includes(n))) return false;
  }
  for (const name of ask.clusters.names ?? []) {
    const labels = clusterLabels.get(name);
    if (!labels || !clusterChosen(p.clusters, { name, labels })) return false;
  }
  if (ask.clusters.selector) {
    if (!p.clusters.selector || !selectorImplies(ask.clusters.selector, p.clusters.selector))
      return false;
  }
  return true;
}

/** What a runbook run asks (checked): which runbook, where, whose. */
export interface RunAsk {
  runbook: string;
  clusters: ClusterRef[];
  /** '' for a runbook that works on no namespace. */
  namespace: string;
}

/**
 * Whether a runbook policy governs a run: the runbook, the requester's
 * groups, the namespace, and any of the run's clusters (a fleet run waits
 * as a whole when one of its clusters needs approval).
 */
export function runCovers(p: RunbookPolicy, ask: RunAsk, requester: Person): boolean {
  if (!p.runbooks.includes('*') && !p.runbooks.includes(ask.runbook)) return false;
  if (p.requesterGroups.length && !requester.groups.some((g) => p.requesterGroups.includes(g)))
    return false;
  if (p.namespaces.length && !p.namespaces.includes(ask.namespace)) return false;
  return ask.clusters.some((c) => clusterChosen(p.clusters, c));
}

export function samePerson(a: Pick<Person, 'name' | 'kind'>, b: Pick<Person, 'name' | 'kind'>) {
  return a.name === b.name && a.kind === b.kind;
}

/** Whether `who` may decide under `p`: a member of an approver group, never the requester. */
export function mayDecide(p: ApprovalPolicy, who: Person, requester: Person): boolean {
  return !samePerson(who, requester) && who.groups.some((g) => p.approvers.groups.includes(g));
}

export interface Vote {
  approver: string;
  approverKind: 'user' | 'robot';
  /** The approver's groups when they voted. */
  groups: string[];
  decision: 'approve' | 'deny';
}

/**
 * Where the votes stand under the policies that govern the request: denied
 * as soon as one entitled approver says no; approved once, under some
 * policy, that policy's count of distinct entitled approvers (never the
 * requester) said yes; pending otherwise.
 */
export function outcome(
  policies: readonly ApprovalPolicy[],
  votes: readonly Vote[],
  requester: Person,
): 'approved' | 'denied' | 'pending' {
  const entitled = (v: Vote, p: ApprovalPolicy) =>
    mayDecide(p, { name: v.approver, kind: v.approverKind, groups: v.groups }, requester);
  if (votes.some((v) => v.decision === 'deny' && policies.some((p) => entitled(v, p))))
    return 'denied';
  for (const p of policies) {
    const yes = new Set(
      votes
        .filter((v) => v.decision === 'approve' && entitled(v, p))
        .map((v) => `${v.approverKind}:${v.approver}`),
    );
    if (yes.size >= p.approvers.count) return 'approved';
  }
  return 'pending';
}
