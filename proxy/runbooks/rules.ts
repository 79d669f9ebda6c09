/**
 * The RBAC rules a runbook's own ServiceAccount needs: exactly the verbs and
 * resources its steps touch, never a wildcard. Namespaced resources go into a
 * Role bound only in the run's namespace; cluster-scoped ones (nodes) into a
 * ClusterRole. `get` comes with every change because the runner reads the
 * object before and after it to show a diff.
 *
 * The output is merged and sorted so that equal runbooks give equal rules
 * (the agent compares them to decide whether its Role is in sync): one rule
 * per API group and verb set, resources sorted, rules sorted by group, then
 * by their first resource.
 */
import type { PolicyRule } from '../authz/policy-rule.js';
import { jobResource, type ResourceRef, type RunbookSpec, type Step } from './definition.js';

const change = ['get', 'patch'];

/** What one step touches: the resource (with subresource, for logs) and its verbs. */
function touches(step: Step): {
  group: string;
  resource: string;
  namespaced: boolean;
  verbs: string[];
} {
  const of = (ref: ResourceRef, verbs: string[]) => ({
    group: ref.group,
    resource: ref.resource,
    namespaced: ref.namespaced,
    verbs,
  });
  switch (step.action) {
    case 'apply':
      return of(step.resource, ['get', 'create', 'patch']);
    case 'patch':
    case 'scale':
    case 'restart':
      return of(step.target, change);
    case 'delete':
      return of(step.target, ['get', 'delete']);
    case 'job':
      return of(jobResource, ['create', 'get']);
    case 'wait':
    case 'read':
      return of(step.target, ['get']);
    case 'logs':
      return { group: '', resource: 'pods/log', namespaced: true, verbs: ['get'] };
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function merge(entries: { group: string; resource: string; verbs: string[] }[]): PolicyRule[] {
  // resource → verbs, per group
  const byResource = new Map<string, { group: string; resource: string; verbs: Set<string> }>();
  for (const e of entries) {
    const key = JSON.stringify([e.group, e.resource]);
    const cur = byResource.get(key) ?? { group: e.group, resource: e.resource, verbs: new Set() };
    for (const v of e.verbs) cur.verbs.add(v);
    byResource.set(key, cur);
  }
  // (group, verbs) → resources
  const byVerbs = new Map<string, { group: string; verbs: string[]; resources: string[] }>();
  for (const { group, resource, verbs } of byResource.values()) {
    const sorted = [...verbs].sort(cmp);
    const key = JSON.stringify([group, sorted]);
    const cur = byVerbs.get(key) ?? { group, verbs: sorted, resources: [] };
    cur.resources.push(resource);
    byVerbs.set(key, cur);
  }
  return [...byVerbs.values()]
    .map((r) => ({ ...r, resources: r.resources.sort(cmp) }))
    .sort(
      (a, b) =>
        cmp(a.group, b.group) ||
        cmp(a.resources[0] as string, b.resources[0] as string) ||
        cmp(a.verbs.join(','), b.verbs.join(',')),
    )
    .map((r) => ({ apiGroups: [r.group], resources: r.resources, verbs: r.verbs }));
}

/** The rules for a checked runbook (validateRunbook). */
export function derivedRules(spec: RunbookSpec): {
  namespaced: PolicyRule[];
  cluster: PolicyRule[];
} {
  const all = spec.steps.map(touches);
  return {
    namespaced: merge(all.filter((t) => t.namespaced)),
    cluster: merge(all.filter((t) => !t.namespaced)),
  };
}
