/**
 * The audit policy: which requests keep their bodies. It is an
 * `audit.k8s.io/v1` Policy (rules matched in order, first match wins) with
 * one kubegate field, `clusters`, so a rule can apply to some clusters only.
 * Matching follows the apiserver's policy checker
 * (k8s.io/apiserver/pkg/audit/policy/checker.go), with two deliberate
 * differences: `None` is refused (kubegate records every request), and a
 * request no rule matches is recorded at `Metadata` rather than dropped.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { KgError } from '../../common/errors.js';
import { levels, type Level, type Stage } from './event.js';

export interface GroupResources {
  /** API group name; '' is the core group. */
  group?: string;
  /** `pods`, `pods/log`, `*`, `*` + `/status`, `pods/*`; empty = every resource of the group. */
  resources?: string[];
  resourceNames?: string[];
}

export interface AuditPolicyRule {
  level: Level;
  /** kubegate: the rule applies only to these clusters (empty = all). */
  clusters?: string[];
  users?: string[];
  userGroups?: string[];
  verbs?: string[];
  resources?: GroupResources[];
  namespaces?: string[];
  /** Exact paths, or prefixes ending in `*`. */
  nonResourceURLs?: string[];
  omitStages?: Stage[];
}

export interface AuditPolicy {
  rules: AuditPolicyRule[];
  omitStages?: Stage[];
}

/** What a rule is matched against. */
export interface PolicyRequest {
  cluster: string;
  user: string;
  groups: readonly string[];
  verb: string;
  isResourceRequest: boolean;
  path: string;
  apiGroup: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

export interface PolicyDecision {
  level: Level;
  omitStages: ReadonlySet<Stage>;
}

/** Metadata for everything: no request or response bodies are kept. */
export const defaultPolicy: AuditPolicy = { rules: [{ level: 'Metadata' }] };

function has(list: readonly string[] | undefined, value: string): boolean {
  return !list || list.length === 0 || list.includes(value) || list.includes('*');
}

function matchesResource(rule: AuditPolicyRule, r: PolicyRequest): boolean {
  if (!rule.resources || rule.resources.length === 0) return true;
  const combined = r.subresource ? `${r.resource}/${r.subresource}` : r.resource;
  for (const gr of rule.resources) {
    if ((gr.group ?? '') !== r.apiGroup) continue;
    if (!gr.resources || gr.resources.length === 0) return true;
    if (gr.resourceNames && gr.resourceNames.length > 0 && !gr.resourceNames.includes(r.name))
      continue;
    for (const res of gr.resources) {
      if (res === combined || res === '*') return true;
      if (r.subresource && res.startsWith('*/') && r.subresource === res.slice(2)) return true;
      if (res.endsWith('/*') && r.resource === res.slice(0, -2)) return true;
    }
  }
  return false;
}

function matchesNonResource(rule: AuditPolicyRule, r: PolicyRequest): boolean {
  if (!rule.nonResourceURLs || rule.nonResourceURLs.length === 0) return true;
  return rule.nonResourceURLs.some((u) =>
    u.endsWith('*') ? r.path.startsWith(u.slice(0, -1)) : u === r.path,
  );
}

function ruleMatches(rule: AuditPolicyRule, r: PolicyRequest): boolean {
  if (rule.clusters && rule.clusters.length > 0 && !rule.clusters.includes(r.cluster)) return false;
  if (rule.users && rule.users.length > 0 && !rule.users.includes(r.user)) return false;
  if (rule.userGroups && rule.userGroups.length > 0) {
    if (!r.groups.some((g) => rule.userGroups!.includes(g))) return false;
  }
  if (!has(rule.verbs, r.verb)) return false;
  if (r.isResourceRequest) {
    // A rule naming only non-resource URLs never matches a resource request.
    if (rule.nonResourceURLs && rule.nonResourceURLs.length > 0) return false;
    if (rule.namespaces && rule.namespaces.length > 0 && !rule.namespaces.includes(r.namespace))
      return false;
    return matchesResource(rule, r);
  }
  if ((rule.resources && rule.resources.length > 0) || (rule.namespaces?.length ?? 0) > 0)
    return false;
  return matchesNonResource(rule, r);
}

/** The level and omitted stages for one request: the first matching rule, else Metadata. */
export function decideLevel(policy: AuditPolicy, r: PolicyRequest): PolicyDecision {
  const top = policy.omitStages ?? [];
  for (const rule of policy.rules) {
    if (ruleMatches(rule, r)) {
      return { level: rule.level, omitStages: new Set([...top, ...(rule.omitStages ?? [])]) };
    }
  }
  return { level: 'Metadata', omitStages: new Set(top) };
}

const ruleKeys = new Set([
  'level',
  'clusters',
  'users',
  'userGroups',
  'verbs',
  'resources',
  'namespaces',
  'nonResourceURLs',
  'omitStages',
]);
const omittable = new Set<string>(['ResponseStarted', 'RequestReceived']);

function stringList(v: unknown): boolean {
  return v === undefined || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
}

/**
 * Validate a parsed policy document, reporting every problem at once.
 * `apiVersion`/`kind` may be given (`audit.k8s.io/v1` `Policy`) or left out.
 */
export function validatePolicy(doc: unknown, source = 'audit policy'): AuditPolicy {
  const problems: string[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new KgError('KG_ERR_CONFIG', `${source}: must be a Policy object with "rules"`);
  }
  const d = doc as Record<string, unknown>;
  if (d.kind !== undefined && d.kind !== 'Policy') problems.push(`kind must be "Policy"`);
  const checkStages = (v: unknown, where: string) => {
    if (!stringList(v)) return problems.push(`${where}omitStages must be a list of stages`);
    for (const s of (v as string[] | undefined) ?? []) {
      if (!omittable.has(s))
        problems.push(
          `${where}omitStages: "${s}" cannot be omitted (only RequestReceived and ResponseStarted: every request keeps its ResponseComplete event)`,
        );
    }
    return 0;
  };
  checkStages(d.omitStages, '');
  if (!Array.isArray(d.rules)) problems.push('rules must be a list');
  const rules = (Array.isArray(d.rules) ? d.rules : []) as unknown[];
  rules.forEach((raw, i) => {
    const at = `rules[${i}].`;
    if (typeof raw !== 'object' || raw === null) return problems.push(`${at} must be an object`);
    const r = raw as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!ruleKeys.has(k)) problems.push(`${at}${k} is not a field`);
    if (r.level === 'None')
      problems.push(
        `${at}level None is not allowed: kubegate records every request (Metadata is the lowest level)`,
      );
    else if (!levels.includes(r.level as Level))
      problems.push(`${at}level must be one of ${levels.join(', ')}`);
    for (const k of ['clusters', 'users', 'userGroups', 'verbs', 'namespaces', 'nonResourceURLs'])
      if (!stringList(r[k])) problems.push(`${at}${k} must be a list of strings`);
    if (r.resources !== undefined) {
      if (!Array.isArray(r.resources)) problems.push(`${at}resources must be a list`);
      else
        (r.resources as unknown[]).forEach((g, j) => {
          const gr = g as Record<string, unknown> | null;
          if (typeof gr !== 'object' || gr === null)
            return problems.push(`${at}resources[${j}] must be an object`);
          if (gr.group !== undefined && typeof gr.group !== 'string')
            problems.push(`${at}resources[${j}].group must be a string`);
          if (!stringList(gr.resources) || !stringList(gr.resourceNames))
            problems.push(`${at}resources[${j}] resources and resourceNames must be string lists`);
          return 0;
        });
    }
    checkStages(r.omitStages, at);
    return 0;
  });
  if (problems.length > 0) {
    throw new KgError('KG_ERR_CONFIG', `${source} is invalid:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  }
  return {
    rules: rules as AuditPolicyRule[],
    ...(d.omitStages ? { omitStages: d.omitStages as Stage[] } : {}),
  };
}

/** Read a policy from a YAML or JSON file. */
export function loadPolicyFile(path: string): AuditPolicy {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new KgError('KG_ERR_CONFIG', `audit policy ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return validatePolicy(doc, `audit policy ${path}`);
}
