/**
 * Whether one set of RBAC rules grants at least everything another does:
 * the check that keeps a person from handing out more than they hold (a
 * namespace owner adding a member). Each requested rule is broken down into
 * single (API group, resource, verb, name) grants, and every one must be
 * granted by some held rule, as Kubernetes' escalation check does. A `*`
 * asked for is covered only by a `*` held; `impersonate`, `escalate` and
 * `bind` only by a rule that names them (policy-rule.ts).
 */
import { EXPLICIT_ONLY_VERBS, type PolicyRule } from './policy-rule.js';

const none: readonly string[] = [];

function has(list: readonly string[] | undefined, v: string): boolean {
  return (list ?? none).includes(v);
}

function verbHeld(held: PolicyRule, verb: string): boolean {
  if (has(held.verbs, verb)) return true;
  return verb !== '*' && !EXPLICIT_ONLY_VERBS.has(verb) && has(held.verbs, '*');
}

function resourceHeld(held: PolicyRule, resource: string): boolean {
  const rs = held.resources ?? none;
  if (rs.includes('*') || rs.includes(resource)) return true;
  const slash = resource.indexOf('/');
  if (slash < 0) return false;
  // `*/scale` held covers `deployments/scale`; `deployments/*` does not exist in RBAC.
  return rs.includes(`*${resource.slice(slash)}`);
}

function nameHeld(held: PolicyRule, name: string | undefined): boolean {
  const names = held.resourceNames ?? none;
  if (!names.length) return true;
  return name !== undefined && names.includes(name);
}

function urlHeld(held: PolicyRule, url: string): boolean {
  for (const u of held.nonResourceURLs ?? none) {
    if (u === url || u === '*') return true;
    if (u.endsWith('*') && url.startsWith(u.slice(0, -1)) && !url.endsWith('*')) return true;
    if (u.endsWith('*') && url.endsWith('*') && url.startsWith(u.slice(0, -1))) return true;
  }
  return false;
}

/** The grants of `asked` that no rule of `held` covers, as readable lines (empty: all covered). */
export function uncovered(held: readonly PolicyRule[], asked: readonly PolicyRule[]): string[] {
  const missing: string[] = [];
  for (const r of asked) {
    for (const verb of r.verbs ?? none) {
      for (const url of r.nonResourceURLs ?? none)
        if (!held.some((h) => verbHeld(h, verb) && urlHeld(h, url))) missing.push(`${verb} ${url}`);
      for (const group of r.apiGroups ?? none)
        for (const resource of r.resources ?? none) {
          const names = r.resourceNames?.length ? r.resourceNames : [undefined];
          for (const name of names) {
            const ok = held.some(
              (h) =>
                verbHeld(h, verb) &&
                (has(h.apiGroups, '*') || has(h.apiGroups, group)) &&
                resourceHeld(h, resource) &&
                nameHeld(h, name),
            );
            if (!ok)
              missing.push(
                `${verb} ${resource}${group ? `.${group}` : ''}${name !== undefined ? ` "${name}"` : ''}`,
              );
          }
        }
    }
  }
  return [...new Set(missing)];
}
