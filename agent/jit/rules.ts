/**
 * Central role rules → Kubernetes ClusterRole rules, so both layers decide
 * alike. Kubegate's `*` verb never grants impersonate, escalate or bind
 * (docs/security.md); Kubernetes' `*` would. So `*` on resource rules is spelled
 * out as the ordinary verbs, and those three stay only where named.
 */
import { objectVerbs } from '../../common/kube-grammar.js';
import type { TunnelRule } from '../../common/tunnel-protocol.js';

export const explicitOnlyVerbs = ['impersonate', 'escalate', 'bind'];
const ordinaryVerbs = [...objectVerbs, 'use', 'approve', 'sign', 'attest'];

export interface KubeRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export function toKubeRules(rules: readonly TunnelRule[]): KubeRule[] {
  return rules.map((r) => {
    const out: KubeRule = { verbs: [...r.verbs] };
    if (r.nonResourceURLs?.length) {
      out.nonResourceURLs = [...r.nonResourceURLs];
      return out;
    }
    if (r.verbs.includes('*')) {
      out.verbs = [...ordinaryVerbs, ...r.verbs.filter((v) => explicitOnlyVerbs.includes(v))];
    }
    out.apiGroups = [...(r.apiGroups ?? [])];
    out.resources = [...(r.resources ?? [])];
    if (r.resourceNames?.length) out.resourceNames = [...r.resourceNames];
    return out;
  });
}

const covers = (have: readonly string[] | undefined, want: readonly string[] | undefined) =>
  (want ?? []).every((w) => (have ?? []).includes('*') || (have ?? []).includes(w));

/**
 * True when every rule is within the ceiling: each of its groups, resources,
 * verbs (and URLs) is named, or wildcarded, by one ceiling rule.
 */
export function withinCeiling(rules: readonly KubeRule[], ceiling: readonly KubeRule[]): boolean {
  return rules.every((r) =>
    ceiling.some((c) => {
      if (r.nonResourceURLs?.length)
        return (
          !!c.nonResourceURLs?.length &&
          covers(c.nonResourceURLs, r.nonResourceURLs) &&
          covers(c.verbs, r.verbs)
        );
      if (c.nonResourceURLs?.length) return false;
      const namesOk =
        !c.resourceNames?.length ||
        (!!r.resourceNames?.length && covers(c.resourceNames, r.resourceNames));
      return (
        covers(c.apiGroups, r.apiGroups) &&
        covers(c.resources, r.resources) &&
        covers(c.verbs, r.verbs) &&
        namesOk
      );
    }),
  );
}

const ruleLists = ['apiGroups', 'resources', 'resourceNames', 'nonResourceURLs'] as const;

/** A list of strings, or a message naming what is wrong with it. */
function stringListProblem(v: unknown): string | undefined {
  if (!Array.isArray(v)) return 'must be a list of strings';
  const i = v.findIndex((s) => typeof s !== 'string');
  return i < 0 ? undefined : `[${i}] must be a string`;
}

/**
 * `value` as PolicyRule-shaped rules, or a message naming the first field
 * that is wrong (`[2].verbs`): a list of objects, each with `verbs` and
 * optional `apiGroups`, `resources`, `resourceNames`, `nonResourceURLs`, all
 * lists of strings. Only these fields are kept. The walk is flat, so hostile
 * nesting costs nothing.
 */
export function parseRules(
  value: unknown,
): { rules: KubeRule[]; problem?: undefined } | { rules?: undefined; problem: string } {
  if (!Array.isArray(value)) return { problem: 'must be a JSON list of rules' };
  const rules: KubeRule[] = [];
  for (const [i, r] of value.entries()) {
    if (typeof r !== 'object' || r === null || Array.isArray(r))
      return { problem: `[${i}] must be an object` };
    const o = r as Record<string, unknown>;
    const verbs = stringListProblem(o.verbs);
    if (verbs) return { problem: `[${i}].verbs ${verbs}` };
    const rule: KubeRule = { verbs: o.verbs as string[] };
    for (const k of ruleLists) {
      if (o[k] === undefined) continue;
      const p = stringListProblem(o[k]);
      if (p) return { problem: `[${i}].${k} ${p}` };
      rule[k] = o[k] as string[];
    }
    rules.push(rule);
  }
  return { rules };
}
