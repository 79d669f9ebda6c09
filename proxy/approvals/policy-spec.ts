/**
 * Approval policies as an admin writes them (REST body or CLI file), checked
 * with every problem at once. Two kinds:
 *
 * - `access`: who may approve which access requests — a role on clusters
 *   (names or a label selector) and namespaces, for at most `maxDuration`.
 * - `gate`: which Kubernetes requests need approval even from users RBAC
 *   already allows (cluster labels, namespaces, resources, verbs), and who
 *   approves them; an approved request may run once within `window`.
 *
 * - `runbook`: which runbook runs (runbook names, clusters, namespaces) wait
 *   for whom before they start (proxy/runbooks/).
 *
 * Pure; matching lives in policy-match.ts.
 */
import { parseDuration } from '../../common/config.js';
import { validateSelector, type LabelSelector } from '../../common/kube-grammar.js';
import { isObject } from '../../common/json-object.js';

export interface Approvers {
  /** Members of any of these groups may decide. */
  groups: string[];
  /** Distinct approvals needed (never counting the requester). */
  count: number;
}

export interface ClusterChoice {
  names?: string[];
  selector?: LabelSelector;
}

interface PolicyBase {
  name: string;
  description: string;
  approvers: Approvers;
  clusters: ClusterChoice;
  /** Empty = any namespace (and, for access, cluster-wide too). */
  namespaces: string[];
  /** How long a request may stay pending before it expires, in seconds. */
  pendingFor: number;
}

export interface AccessPolicy extends PolicyBase {
  kind: 'access';
  /** Roles that may be requested; `*` = any. */
  roles: string[];
  /** Who may ask; empty = any signed-in identity. */
  requesterGroups: string[];
  /** Longest grant, in seconds. */
  maxDuration: number;
}

/** A resource as a gate names it: `ingresses`, `ingresses.networking.k8s.io`, `pods/exec`, `*`. */
export interface GateResource {
  /** undefined = any API group. */
  group?: string;
  resource: string;
  /** '' = the object itself; `*` = any subresource. */
  subresource: string;
}

export interface GatePolicy extends PolicyBase {
  kind: 'gate';
  resources: GateResource[];
  verbs: string[];
  /** How long an approved request may be run (once), in seconds. */
  window: number;
}

export interface RunbookPolicy extends PolicyBase {
  kind: 'runbook';
  /** Runbooks whose runs need approval; `*` = any. */
  runbooks: string[];
  /** Whose runs; empty = anyone's. */
  requesterGroups: string[];
}

/**
 * The approvers a namespace profile names (proxy/namespaces/): not stored as a
 * policy of its own but read from the profile, so a profile says in one place
 * whether its namespaces wait for approval and for whom.
 */
export interface NamespacePolicy extends PolicyBase {
  kind: 'namespace';
}

export type ApprovalPolicy = AccessPolicy | GatePolicy | RunbookPolicy | NamespacePolicy;

export const mutatingVerbs = ['create', 'update', 'patch', 'delete', 'deletecollection'];
const defaults = { pendingFor: 24 * 3600, maxDuration: 8 * 3600, window: 15 * 60 };
const nameRe = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;
const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const verbRe = /^([a-z]+|\*)$/;

function strings(raw: unknown, at: string, problems: string[], re?: RegExp): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.some((s) => typeof s !== 'string' || s === '')) {
    problems.push(`${at}: must be an array of non-empty strings`);
    return [];
  }
  const out = [...new Set(raw as string[])];
  if (re)
    for (const s of out) if (!re.test(s)) problems.push(`${at}: ${JSON.stringify(s)} is not valid`);
  return out;
}

/** A duration as text (`15m`, `8h`) or seconds; bounded to [min, max] seconds. */
function seconds(
  raw: unknown,
  at: string,
  fallback: number,
  problems: string[],
  min = 10,
  max = 30 * 86400,
): number {
  if (raw === undefined) return fallback;
  const ms =
    typeof raw === 'number' ? raw * 1000 : typeof raw === 'string' ? parseDuration(raw) : undefined;
  if (ms === undefined || !Number.isFinite(ms) || ms < min * 1000 || ms > max * 1000) {
    problems.push(
      `${at}: must be a duration from ${min}s to ${max / 86400}d such as "15m" or "8h"`,
    );
    return fallback;
  }
  return Math.round(ms / 1000);
}

/** Cluster names and/or a selector; at least one. */
export function clusterChoice(raw: unknown, at: string, problems: string[]): ClusterChoice {
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object with names and/or selector`);
    return {};
  }
  for (const k of Object.keys(raw))
    if (k !== 'names' && k !== 'selector')
      problems.push(`${at}.${k}: unknown field (allowed: names, selector)`);
  const out: ClusterChoice = {};
  const names = strings(raw.names, `${at}.names`, problems, dns1123Label);
  if (names.length) out.names = names;
  if (raw.selector !== undefined && raw.selector !== null) {
    const sel = validateSelector(raw.selector, `${at}.selector`, problems);
    if (sel) out.selector = sel;
  }
  if (!names.length && (raw.selector === undefined || raw.selector === null))
    problems.push(`${at}: give names and/or a selector ({} selects every cluster)`);
  return out;
}

/** `ingresses.networking.k8s.io`, `pods/exec`, `deployments.apps/*`, `*`. */
export function parseGateResource(text: string): GateResource | undefined {
  if (text === '*') return { resource: '*', subresource: '*' };
  const m = /^([a-z0-9-]+)((?:\.[a-z0-9-]+)*)(?:\/([a-z0-9-]+|\*))?$/.exec(text);
  if (!m) return undefined;
  const r: GateResource = { resource: m[1]!, subresource: m[3] ?? '' };
  if (m[2]) r.group = m[2].slice(1);
  return r;
}

export function formatGateResource(r: GateResource): string {
  if (r.resource === '*' && r.group === undefined && r.subresource === '*') return '*';
  return `${r.resource}${r.group !== undefined ? `.${r.group}` : ''}${r.subresource ? `/${r.subresource}` : ''}`;
}

const common = ['name', 'kind', 'description', 'approvers', 'clusters', 'namespaces', 'pendingFor'];
const accessFields = [...common, 'roles', 'requesterGroups', 'maxDuration'];
const gateFields = [...common, 'resources', 'verbs', 'window'];
const runbookFields = [...common, 'runbooks', 'requesterGroups'];
const readOnly = ['version', 'createdBy', 'createdAt', 'updatedAt'];

/**
 * Check an untrusted policy. `policy` is set only when `problems` is empty.
 * `nameFromPath`: on update, the name in the URL (the body may repeat it).
 */
export function validatePolicy(
  raw: unknown,
  nameFromPath?: string,
): { policy?: ApprovalPolicy; problems: string[] } {
  if (!isObject(raw)) return { problems: ['the policy must be a JSON object'] };
  const problems: string[] = [];
  const kind = raw.kind;
  if (kind !== 'access' && kind !== 'gate' && kind !== 'runbook') {
    problems.push(
      'kind: must be "access" (access requests), "gate" (approval-gated actions) or "runbook" (runbook runs)',
    );
    return { problems };
  }
  const allowed = kind === 'access' ? accessFields : kind === 'gate' ? gateFields : runbookFields;
  const unknown = Object.keys(raw).filter((k) => !allowed.includes(k) && !readOnly.includes(k));
  if (unknown.length)
    problems.push(
      `unknown field(s) for a ${kind} policy: ${unknown.join(', ')} (allowed: ${allowed.join(', ')})`,
    );
  const name = raw.name ?? nameFromPath;
  if (typeof name !== 'string' || !nameRe.test(name))
    problems.push('name: must be a lowercase name (letters, digits, "-", "."), at most 63');
  else if (nameFromPath !== undefined && name !== nameFromPath)
    problems.push(`name: ${JSON.stringify(name)} does not match the policy being updated`);
  const description = raw.description ?? '';
  if (typeof description !== 'string' || description.length > 1000)
    problems.push('description: must be a string of at most 1000 characters');

  const approvers: Approvers = { groups: [], count: 1 };
  if (!isObject(raw.approvers)) problems.push('approvers: must be {groups: [...], count?: n}');
  else {
    for (const k of Object.keys(raw.approvers))
      if (k !== 'groups' && k !== 'count') problems.push(`approvers.${k}: unknown field`);
    approvers.groups = strings(raw.approvers.groups, 'approvers.groups', problems);
    if (approvers.groups.length === 0) problems.push('approvers.groups: name at least one group');
    const count = raw.approvers.count ?? 1;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 10)
      problems.push('approvers.count: must be a whole number from 1 to 10');
    else approvers.count = count;
  }
  const clusters = clusterChoice(raw.clusters, 'clusters', problems);
  const namespaces = strings(raw.namespaces, 'namespaces', problems, dns1123Label);
  const pendingFor = seconds(raw.pendingFor, 'pendingFor', defaults.pendingFor, problems);
  const base = {
    name: name as string,
    description: description as string,
    approvers,
    clusters,
    namespaces,
    pendingFor,
  };

  // Access and runbook policies: whose requests (empty: anyone's).
  const requesterGroups = strings(raw.requesterGroups, 'requesterGroups', problems);
  let policy: ApprovalPolicy;
  if (kind === 'access') {
    const roles = strings(raw.roles, 'roles', problems);
    if (roles.length === 0) problems.push('roles: name at least one role (or "*")');
    const maxDuration = seconds(raw.maxDuration, 'maxDuration', defaults.maxDuration, problems);
    policy = { ...base, kind, roles, requesterGroups, maxDuration };
  } else if (kind === 'runbook') {
    const runbooks = strings(
      raw.runbooks,
      'runbooks',
      problems,
      /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?|\*)$/,
    );
    if (runbooks.length === 0) problems.push('runbooks: name at least one runbook (or "*")');
    policy = { ...base, kind, runbooks, requesterGroups };
  } else {
    const texts = strings(raw.resources, 'resources', problems);
    if (texts.length === 0) problems.push('resources: name at least one resource (or "*")');
    const resources: GateResource[] = [];
    for (const t of texts) {
      const r = parseGateResource(t);
      if (r) resources.push(r);
      else
        problems.push(
          `resources: ${JSON.stringify(t)} is not resource[.group][/subresource], e.g. ingresses.networking.k8s.io or pods/exec`,
        );
    }
    const verbs =
      raw.verbs === undefined ? mutatingVerbs : strings(raw.verbs, 'verbs', problems, verbRe);
    if (verbs.length === 0) problems.push('verbs: name at least one verb');
    policy = {
      ...base,
      kind,
      resources,
      verbs,
      window: seconds(raw.window, 'window', defaults.window, problems, 10, 86400),
    };
  }
  return problems.length ? { problems } : { policy, problems };
}

/** The policy as the API returns it (durations as seconds, resources as text). */
export function policyView(p: ApprovalPolicy): Record<string, unknown> {
  if (p.kind !== 'gate') return { ...p };
  return { ...p, resources: p.resources.map(formatGateResource) };
}

/** A stored spec (already valid) back to the typed policy. */
export function policyFromStored(spec: unknown): ApprovalPolicy {
  return spec as ApprovalPolicy;
}
