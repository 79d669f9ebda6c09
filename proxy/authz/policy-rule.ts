/**
 * Kubernetes RBAC PolicyRule matching and validation.
 *
 * Matching follows RBAC exactly (pkg/apis/rbac/v1/evaluation_helpers.go and
 * RuleAllows in plugin/pkg/auth/authorizer/rbac/rbac.go,
 * https://github.com/kubernetes/kubernetes/blob/master/pkg/apis/rbac/v1/evaluation_helpers.go):
 * exact string comparison of API groups (no prefix or case tricks — Rancher
 * CVE-2021-25318), `*` resources (subresources included), `resource/subresource`,
 * a subresource under any resource (`*` + `/scale`), resourceNames only against
 * a named request, nonResourceURLs with a trailing `*` as a prefix match.
 *
 * Two deliberate differences, both narrowing (docs/security.md "Verb and group
 * confusion"):
 *  - `impersonate`, `escalate` and `bind` are granted only by a rule that
 *    names them; a `*` verb does not grant them.
 *  - a rule with resourceNames never matches a request without a name, even if
 *    the list holds "" (Kubernetes would match "" against an empty name).
 */
import type { RequestInfo } from './request-info.js';

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

/** Verbs that only a rule naming them literally can grant. */
export const EXPLICIT_ONLY_VERBS: ReadonlySet<string> = new Set([
  'impersonate',
  'escalate',
  'bind',
]);

const NONE: readonly string[] = [];

function verbMatches(rule: PolicyRule, verb: string): boolean {
  const explicitOnly = EXPLICIT_ONLY_VERBS.has(verb);
  for (const v of rule.verbs ?? NONE) {
    if (v === verb) return true;
    if (v === '*' && !explicitOnly) return true;
  }
  return false;
}

function apiGroupMatches(rule: PolicyRule, group: string): boolean {
  for (const g of rule.apiGroups ?? NONE) {
    if (g === '*' || g === group) return true;
  }
  return false;
}

/** `r` is exactly `${resource}/${sub}`, compared without building the string. */
function isCombined(r: string, resource: string, sub: string): boolean {
  return (
    r.length === resource.length + 1 + sub.length &&
    r.charCodeAt(resource.length) === 0x2f &&
    r.startsWith(resource) &&
    r.endsWith(sub)
  );
}

function resourceMatches(rule: PolicyRule, resource: string, sub: string): boolean {
  for (const r of rule.resources ?? NONE) {
    if (r === '*') return true;
    if (sub === '') {
      if (r === resource) return true;
    } else if (isCombined(r, resource, sub) || isCombined(r, '*', sub)) {
      return true;
    }
  }
  return false;
}

function resourceNameMatches(rule: PolicyRule, name: string): boolean {
  const names = rule.resourceNames;
  if (names === undefined || names.length === 0) return true;
  if (name === '') return false;
  return names.includes(name);
}

function nonResourceURLMatches(rule: PolicyRule, path: string): boolean {
  for (const u of rule.nonResourceURLs ?? NONE) {
    if (u === '*' || u === path) return true;
    if (u.endsWith('*')) {
      let end = u.length;
      while (end > 0 && u.charCodeAt(end - 1) === 0x2a) end--;
      if (path.startsWith(u.slice(0, end))) return true;
    }
  }
  return false;
}

/**
 * Whether this one rule allows the request. Pure; allocation-free on the
 * resource path. Resource requests need verb, group, resource and name to
 * match; non-resource requests need verb and URL.
 */
export function ruleAllows(rule: PolicyRule, info: RequestInfo): boolean {
  if (!verbMatches(rule, info.verb)) return false;
  if (!info.isResourceRequest) return nonResourceURLMatches(rule, info.path);
  return (
    apiGroupMatches(rule, info.apiGroup) &&
    resourceMatches(rule, info.resource, info.subresource) &&
    resourceNameMatches(rule, info.name)
  );
}

// ---------------------------------------------------------------------------
// Validation for the admin API: every problem at once, each naming the field
// (`rules[2].verbs: must be non-empty`). The structural rules are those of
// ValidatePolicyRule (pkg/apis/rbac/validation/validation.go); the rest catch
// mistakes that Kubernetes accepts but that can never match anything.

const RULE_FIELDS = [
  'apiGroups',
  'resources',
  'verbs',
  'resourceNames',
  'nonResourceURLs',
] as const;
type RuleField = (typeof RULE_FIELDS)[number];

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const RESOURCE_PART = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const VERB = /^[a-z][a-z0-9-]*$/;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkStringList(
  value: unknown,
  at: string,
  problems: string[],
): { list: string[] | undefined; ok: boolean } {
  if (value === undefined) return { list: undefined, ok: true };
  if (!Array.isArray(value)) {
    problems.push(`${at}: must be an array of strings`);
    return { list: undefined, ok: false };
  }
  let ok = true;
  value.forEach((v: unknown, j) => {
    if (typeof v !== 'string') {
      problems.push(`${at}[${j}]: must be a string`);
      ok = false;
    }
  });
  return { list: ok ? [...(value as string[])] : undefined, ok };
}

function checkVerb(v: string, at: string, problems: string[]): void {
  if (v === '*') return;
  if (v === '') problems.push(`${at}: must be a non-empty string`);
  else if (v !== v.toLowerCase() && VERB.test(v.toLowerCase())) {
    problems.push(
      `${at}: ${JSON.stringify(v)} must be lowercase (Kubernetes verbs are lowercase, e.g. "get")`,
    );
  } else if (!VERB.test(v)) {
    problems.push(
      `${at}: ${JSON.stringify(v)} is not a valid verb (lowercase letters, e.g. "get")`,
    );
  }
}

function checkApiGroup(g: string, at: string, problems: string[]): void {
  if (g === '' || g === '*') return;
  if (g.length > 253 || !DNS1123_SUBDOMAIN.test(g)) {
    problems.push(
      `${at}: ${JSON.stringify(g)} is not a valid API group (a lowercase DNS subdomain such as "apps", "" for the core group, or "*")`,
    );
  }
}

function checkResource(r: string, at: string, problems: string[]): void {
  if (r === '*') return;
  const parts = r.split('/');
  if (parts.length === 2 && parts[1] === '*') {
    problems.push(
      `${at}: ${JSON.stringify(r)} does not match subresources in Kubernetes RBAC; name them (e.g. "pods/log") or use "*"`,
    );
    return;
  }
  const resourceOk = parts[0] === '*' ? parts.length === 2 : RESOURCE_PART.test(parts[0] as string);
  const subOk =
    parts.length === 1 || (parts.length === 2 && RESOURCE_PART.test(parts[1] as string));
  if (!resourceOk || !subOk) {
    problems.push(
      `${at}: ${JSON.stringify(r)} is not a valid resource (expected "*", "pods", "pods/log" or "*/scale", lowercase)`,
    );
  }
}

function checkNonResourceURL(u: string, at: string, problems: string[]): void {
  if (u === '*') return;
  if (!u.startsWith('/')) {
    problems.push(`${at}: ${JSON.stringify(u)} must start with '/' (or be "*")`);
  } else if (u.slice(0, -1).includes('*')) {
    problems.push(`${at}: ${JSON.stringify(u)} may contain '*' only as its last character`);
  }
}

function validateRule(raw: unknown, at: string, problems: string[]): PolicyRule | undefined {
  if (!isPlainObject(raw)) {
    problems.push(`${at}: must be an object`);
    return undefined;
  }
  const before = problems.length;
  for (const key of Object.keys(raw)) {
    if (!(RULE_FIELDS as readonly string[]).includes(key)) {
      problems.push(`${at}.${key}: unknown field (allowed: ${RULE_FIELDS.join(', ')})`);
    }
  }
  const lists = {} as Record<RuleField, string[] | undefined>;
  for (const f of RULE_FIELDS) lists[f] = checkStringList(raw[f], `${at}.${f}`, problems).list;
  const { apiGroups, resources, verbs, resourceNames, nonResourceURLs } = lists;

  if (raw.verbs !== undefined && verbs === undefined) {
    // already reported as not a list of strings
  } else if (!verbs || verbs.length === 0) {
    problems.push(`${at}.verbs: must be non-empty`);
  } else {
    verbs.forEach((v, j) => checkVerb(v, `${at}.verbs[${j}]`, problems));
  }

  if (nonResourceURLs && nonResourceURLs.length > 0) {
    if ((apiGroups?.length ?? 0) + (resources?.length ?? 0) + (resourceNames?.length ?? 0) > 0) {
      problems.push(
        `${at}: a rule cannot apply to both resources (apiGroups, resources, resourceNames) and nonResourceURLs; split it in two`,
      );
    }
    nonResourceURLs.forEach((u, j) =>
      checkNonResourceURL(u, `${at}.nonResourceURLs[${j}]`, problems),
    );
  } else {
    if (raw.apiGroups === undefined || (apiGroups && apiGroups.length === 0)) {
      problems.push(
        `${at}.apiGroups: must be non-empty for a resource rule (use "" for the core group)`,
      );
    }
    if (raw.resources === undefined || (resources && resources.length === 0)) {
      problems.push(
        `${at}.resources: must be non-empty for a resource rule (or give nonResourceURLs)`,
      );
    }
    apiGroups?.forEach((g, j) => checkApiGroup(g, `${at}.apiGroups[${j}]`, problems));
    resources?.forEach((r, j) => checkResource(r, `${at}.resources[${j}]`, problems));
    resourceNames?.forEach((n, j) => {
      if (n === '') problems.push(`${at}.resourceNames[${j}]: must be a non-empty string`);
      else if (n === '*') {
        problems.push(
          `${at}.resourceNames[${j}]: "*" is not a wildcard in resourceNames; omit resourceNames to match every name`,
        );
      }
    });
  }
  if (problems.length !== before) return undefined;

  const rule: PolicyRule = { verbs: verbs as string[] };
  if (apiGroups) rule.apiGroups = apiGroups;
  if (resources) rule.resources = resources;
  if (resourceNames) rule.resourceNames = resourceNames;
  if (nonResourceURLs) rule.nonResourceURLs = nonResourceURLs;
  return rule;
}

/**
 * Validate untrusted rules (admin API input). Returns every problem at once,
 * each prefixed with its field path; `rules` is set only when there are none,
 * as fresh copies holding just the known fields.
 */
export function validateRules(rules: unknown): { rules?: PolicyRule[]; problems: string[] } {
  const problems: string[] = [];
  if (!Array.isArray(rules)) return { problems: ['rules: must be an array of policy rules'] };
  const out: PolicyRule[] = [];
  rules.forEach((raw: unknown, i) => {
    const rule = validateRule(raw, `rules[${i}]`, problems);
    if (rule) out.push(rule);
  });
  return problems.length === 0 ? { rules: out, problems } : { problems };
}
