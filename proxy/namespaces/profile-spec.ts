/**
 * Namespace profiles as an admin writes them (REST body or the CLI's file),
 * checked with every problem at once, and the name rule a request is held
 * to. Pure: whether the roles exist is the store's question.
 *
 * A profile says where it applies (clusters by name or selector), what a
 * namespace's name must look like, what every namespace gets (quota, limits,
 * a default-deny network policy, labels, annotations), the role its owner
 * gets and the roles the owner may hand out, how many one person may own,
 * who may ask, and whether creation (and retirement) wait for approvers.
 */
import { validateSelector, labelKeyProblem, labelValueProblem } from '../../common/kube-grammar.js';
import { isObject, unknownFields, wholeNumber } from '../../common/json-object.js';
import { parseDuration } from '../../common/config.js';
import type { ClusterChoice } from '../approvals/policy-spec.js';
import type { NamespaceProfileView } from '../console/ui/wire/namespaces.js';

/** A profile as stored: what the API answers without its bookkeeping (version, who, when). */
export type NamespaceProfile = Omit<NamespaceProfileView, 'version' | 'updatedBy' | 'updatedAt'>;
/** Approvers and how long a request waits (seconds); `onDelete`: deletion waits too. */
export type ProfileApproval = NonNullable<NamespaceProfileView['approval']>;

type Quantities = Record<string, string>;

const fields = [
  'name',
  'description',
  'clusters',
  'naming',
  'quota',
  'limits',
  'networkPolicy',
  'labels',
  'annotations',
  'ownerRole',
  'memberRoles',
  'perUserLimit',
  'requesterGroups',
  'approval',
];
/** Returned by the API; accepted and ignored on input, so GET → edit → PUT works. */
const readOnly = ['version', 'updatedBy', 'updatedAt', 'createdAt', 'inUse'];

export const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const roleName = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;
const prefixRe = /^[a-z0-9][-a-z0-9]{0,30}$/;
/** A Kubernetes quantity as people write them: 10, 500m, 1.5, 8Gi, 1e3. */
const quantityRe =
  /^(\d{1,15}(\.\d{1,9})?|\.\d{1,9})(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE]\d{1,2})?$/;
/** A quota or limit resource name: pods, requests.cpu, count/deployments.apps. */
const resourceNameRe = /^[a-z0-9]([-a-z0-9./]{0,251}[a-z0-9])?$/;
const groupRe = /^[^\s\0]{1,256}$/;
/** Namespaces no profile may hand out, whatever its rule says. */
const reservedNames = /^(default|kube-.*|kubegate-.*|openshift.*)$/;
/** Keys kubegate sets itself on every managed namespace and object. */
const ownKey = (k: string) => k.startsWith('kubegate.dev/') || k === 'app.kubernetes.io/managed-by';

function quantities(raw: unknown, at: string, problems: string[], max = 50): Quantities {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object of resource name to quantity, e.g. {"pods": "10"}`);
    return {};
  }
  const out: Quantities = {};
  const keys = Object.keys(raw);
  if (keys.length > max) problems.push(`${at}: at most ${max} resources`);
  for (const k of keys.slice(0, max)) {
    const v = raw[k];
    if (!resourceNameRe.test(k))
      problems.push(`${at}: ${JSON.stringify(k)} is not a resource name (e.g. requests.cpu)`);
    else if (typeof v !== 'string' && typeof v !== 'number')
      problems.push(`${at}.${k}: must be a quantity such as "10", "500m" or "8Gi"`);
    else if (!quantityRe.test(String(v)))
      problems.push(
        `${at}.${k}: ${JSON.stringify(v)} is not a quantity such as "10", "500m" or "8Gi"`,
      );
    else Object.defineProperty(out, k, { value: String(v), enumerable: true, writable: true });
  }
  return out;
}

function stringMap(
  raw: unknown,
  at: string,
  problems: string[],
  value: (v: unknown, at: string) => string | undefined,
): Record<string, string> {
  if (raw === undefined || raw === null) return {};
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object of key to string`);
    return {};
  }
  const out: Record<string, string> = {};
  const keys = Object.keys(raw);
  if (keys.length > 64) problems.push(`${at}: at most 64 entries`);
  for (const k of keys.slice(0, 64)) {
    const p = labelKeyProblem(k, `${at}`) ?? value(raw[k], `${at}.${k}`);
    if (p) problems.push(p);
    else if (ownKey(k))
      problems.push(`${at}: ${JSON.stringify(k)} is set by kubegate itself and cannot be given`);
    else
      Object.defineProperty(out, k, { value: raw[k] as string, enumerable: true, writable: true });
  }
  return out;
}

const annotationValue = (v: unknown, at: string) =>
  typeof v !== 'string'
    ? `${at}: must be a string`
    : v.length > 4096
      ? `${at}: at most 4096 characters`
      : undefined;

function strings(raw: unknown, at: string, problems: string[], re: RegExp, what: string): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw) || raw.length > 50) {
    problems.push(`${at}: must be a list of at most 50 ${what}`);
    return [];
  }
  const out: string[] = [];
  raw.forEach((s: unknown, i) => {
    if (typeof s !== 'string' || !re.test(s))
      problems.push(`${at}[${i}]: ${JSON.stringify(s)} is not a valid ${what.replace(/s$/, '')}`);
    else if (!out.includes(s)) out.push(s);
  });
  return out;
}

/**
 * A name pattern an admin may give: a regular expression matched against the
 * whole name. Patterns that can backtrack without bound (a quantified group
 * holding a quantifier, back-references, look-around) are refused: names
 * come from anyone signed in, and the proxy has one thread.
 */
function patternProblem(p: string): string | undefined {
  if (p.length > 200) return 'at most 200 characters';
  if (/\\[1-9]|\(\?[=!<]/.test(p)) return 'back-references and look-around are not allowed';
  if (/\([^()]*[*+}][^()]*\)\s*[*+{?]/.test(p))
    return 'a repeated group that itself repeats can take exponential time; write it without nesting';
  try {
    new RegExp(`^(?:${p})$`);
  } catch (err) {
    return `not a regular expression: ${(err as Error).message}`;
  }
  return undefined;
}

function naming(raw: unknown, problems: string[]): NamespaceProfile['naming'] {
  const out = { prefix: '', pattern: '', maxLength: 63 };
  if (raw === undefined || raw === null) return out;
  if (!isObject(raw)) {
    problems.push('naming: must be an object {prefix, pattern, maxLength}');
    return out;
  }
  unknownFields(raw, ['prefix', 'pattern', 'maxLength'], 'naming', problems);
  if (raw.prefix !== undefined) {
    if (typeof raw.prefix !== 'string' || !prefixRe.test(raw.prefix))
      problems.push(
        'naming.prefix: must start with a lowercase letter or digit and hold at most 31 of [a-z0-9-]',
      );
    else out.prefix = raw.prefix;
  }
  if (raw.pattern !== undefined) {
    const p = typeof raw.pattern === 'string' ? patternProblem(raw.pattern) : 'must be a string';
    if (p) problems.push(`naming.pattern: ${p}`);
    else out.pattern = raw.pattern as string;
  }
  out.maxLength = wholeNumber(raw.maxLength, 'naming.maxLength', 1, 63, 63, problems);
  if (out.prefix.length >= out.maxLength)
    problems.push('naming.prefix: leaves no room for a name within naming.maxLength');
  return out;
}

function approval(raw: unknown, problems: string[]): ProfileApproval | null {
  if (raw === undefined || raw === null) return null;
  if (!isObject(raw)) {
    problems.push('approval: must be {approvers: {groups, count}, pendingFor, onDelete} or null');
    return null;
  }
  unknownFields(raw, ['approvers', 'pendingFor', 'onDelete'], 'approval', problems);
  const out: ProfileApproval = {
    approvers: { groups: [], count: 1 },
    pendingFor: 86400,
    onDelete: true,
  };
  if (!isObject(raw.approvers)) problems.push('approval.approvers: must be {groups, count}');
  else {
    unknownFields(raw.approvers, ['groups', 'count'], 'approval.approvers', problems);
    out.approvers.groups = strings(
      raw.approvers.groups,
      'approval.approvers.groups',
      problems,
      groupRe,
      'groups',
    );
    if (!out.approvers.groups.length)
      problems.push('approval.approvers.groups: name at least one group whose members may approve');
    out.approvers.count = wholeNumber(
      raw.approvers.count,
      'approval.approvers.count',
      1,
      10,
      1,
      problems,
    );
  }
  if (raw.pendingFor !== undefined) {
    const ms = typeof raw.pendingFor === 'string' ? parseDuration(raw.pendingFor) : undefined;
    if (ms === undefined || !(ms >= 60_000 && ms <= 30 * 86_400_000))
      problems.push('approval.pendingFor: must be a duration from 1m to 30d, such as "24h"');
    else out.pendingFor = Math.round(ms / 1000);
  }
  if (raw.onDelete !== undefined) {
    if (typeof raw.onDelete !== 'boolean')
      problems.push('approval.onDelete: must be true or false');
    else out.onDelete = raw.onDelete;
  }
  return out;
}

/** A profile checked whole: the profile, or every problem found. */
export function validateProfile(
  raw: unknown,
  nameFromPath?: string,
): { profile?: NamespaceProfile; problems: string[] } {
  const problems: string[] = [];
  if (!isObject(raw)) return { problems: ['the body must be a JSON object'] };
  unknownFields(raw, [...fields, ...readOnly], '', problems);
  const name = raw.name ?? nameFromPath;
  if (typeof name !== 'string' || !dnsLabel.test(name))
    problems.push('name: must be a DNS label (at most 63 of [a-z0-9-], alphanumeric at both ends)');
  else if (nameFromPath !== undefined && name !== nameFromPath)
    problems.push(`name: ${JSON.stringify(name)} does not match the path (${nameFromPath})`);
  if (
    raw.description !== undefined &&
    (typeof raw.description !== 'string' || raw.description.length > 1000)
  )
    problems.push('description: must be a string of at most 1000 characters');
  const clusters: ClusterChoice = {};
  if (!isObject(raw.clusters))
    problems.push(
      'clusters: must be {names: [...]} and/or {selector: {...}} ({selector: {}} is every cluster)',
    );
  else {
    unknownFields(raw.clusters, ['names', 'selector'], 'clusters', problems);
    const names = strings(
      raw.clusters.names,
      'clusters.names',
      problems,
      dnsLabel,
      'cluster names',
    );
    if (names.length) clusters.names = names;
    if (raw.clusters.selector !== undefined && raw.clusters.selector !== null) {
      const sel = validateSelector(raw.clusters.selector, 'clusters.selector', problems);
      if (sel) clusters.selector = sel;
    }
    if (!names.length && !clusters.selector)
      problems.push('clusters: give names and/or a selector ({selector: {}} is every cluster)');
  }
  let limits: NamespaceProfile['limits'] = {};
  if (raw.limits !== undefined && raw.limits !== null) {
    if (!isObject(raw.limits)) problems.push('limits: must be {default, defaultRequest, max}');
    else {
      unknownFields(raw.limits, ['default', 'defaultRequest', 'max'], 'limits', problems);
      limits = {};
      for (const k of ['default', 'defaultRequest', 'max'] as const) {
        const q = quantities(raw.limits[k], `limits.${k}`, problems, 10);
        if (Object.keys(q).length) limits[k] = q;
      }
    }
  }
  const networkPolicy = raw.networkPolicy ?? 'default-deny';
  if (networkPolicy !== 'default-deny' && networkPolicy !== 'none')
    problems.push(
      'networkPolicy: must be "default-deny" (deny ingress from outside the namespace) or "none"',
    );
  const ownerRole = raw.ownerRole ?? 'admin';
  if (typeof ownerRole !== 'string' || !roleName.test(ownerRole))
    problems.push('ownerRole: must be the name of a role');
  const memberRoles =
    raw.memberRoles === undefined
      ? ['edit', 'view']
      : strings(raw.memberRoles, 'memberRoles', problems, roleName, 'role names');
  const profile: NamespaceProfile = {
    name: name as string,
    description: typeof raw.description === 'string' ? raw.description : '',
    clusters,
    naming: naming(raw.naming, problems),
    quota: quantities(raw.quota, 'quota', problems),
    limits,
    networkPolicy: networkPolicy as NamespaceProfile['networkPolicy'],
    labels: stringMap(raw.labels, 'labels', problems, labelValueProblem),
    annotations: stringMap(raw.annotations, 'annotations', problems, annotationValue),
    ownerRole: ownerRole as string,
    memberRoles,
    perUserLimit: wholeNumber(raw.perUserLimit, 'perUserLimit', 0, 1000, 5, problems),
    requesterGroups: strings(raw.requesterGroups, 'requesterGroups', problems, groupRe, 'groups'),
    approval: approval(raw.approval, problems),
  };
  return problems.length ? { problems } : { profile, problems };
}

/**
 * Why `name` may not be a namespace of this profile, in words that say what
 * would be accepted; undefined when it may.
 */
export function nameProblem(p: NamespaceProfile, name: string): string | undefined {
  const rule = () =>
    [
      p.naming.prefix ? `start with "${p.naming.prefix}"` : '',
      p.naming.pattern ? `match ${p.naming.pattern}` : '',
      `have at most ${p.naming.maxLength} characters`,
    ]
      .filter(Boolean)
      .join(', ');
  if (typeof name !== 'string' || !dnsLabel.test(name))
    return 'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit';
  if (reservedNames.test(name)) return `"${name}" is reserved for the cluster itself`;
  if (name.length > p.naming.maxLength || !name.startsWith(p.naming.prefix))
    return `profile ${p.name} wants names that ${rule()}`;
  if (p.naming.pattern && !new RegExp(`^(?:${p.naming.pattern})$`).test(name))
    return `profile ${p.name} wants names that ${rule()}`;
  return undefined;
}
