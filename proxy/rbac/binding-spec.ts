/**
 * Validation of a binding as an admin writes it (API body or CLI flags):
 * every problem at once, each naming its field. Pure; whether the role
 * exists is the store's question (it needs the database).
 */
import type { Binding } from '../authz/types.js';
import { validateSelector, type LabelSelector } from '../../common/kube-grammar.js';
import { isObject } from '../../common/json-object.js';

/** A valid binding, ready to store. */
export interface BindingSpec {
  subjects: Binding['subjects'];
  role: string;
  clusters: { names?: string[]; selector?: LabelSelector };
  namespaces: string[];
  expiresAt: Date | null;
  reason: string;
}

export const maxReasonLength = 1000;

const writable = ['subjects', 'role', 'clusters', 'namespaces', 'expiresAt', 'reason'];
/** Fields we return; accepted and ignored on input so a GET → edit → PUT round trip works. */
const readOnly = ['id', 'version', 'createdBy', 'createdAt', 'updatedAt'];
const subjectKinds = ['Group', 'User', 'Robot'] as const;

const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// RFC 3339 date-time (https://www.rfc-editor.org/rfc/rfc3339#section-5.6); Date.parse alone accepts far more.
const rfc3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function subjects(raw: unknown, problems: string[]): Binding['subjects'] {
  if (!Array.isArray(raw) || raw.length === 0) {
    problems.push('subjects: must be a non-empty array of {kind, name}');
    return [];
  }
  const out: Binding['subjects'] = [];
  const seen = new Set<string>();
  raw.forEach((s: unknown, i) => {
    const at = `subjects[${i}]`;
    if (!isObject(s)) {
      problems.push(`${at}: must be an object {kind, name}`);
      return;
    }
    for (const k of Object.keys(s)) {
      if (k !== 'kind' && k !== 'name')
        problems.push(`${at}.${k}: unknown field (allowed: kind, name)`);
    }
    const kindOk = subjectKinds.includes(s.kind as (typeof subjectKinds)[number]);
    if (!kindOk)
      problems.push(
        `${at}.kind: ${JSON.stringify(s.kind)} is not one of ${subjectKinds.join(', ')}`,
      );
    let nameOk = false;
    if (typeof s.name !== 'string' || s.name.trim() === '') {
      problems.push(`${at}.name: must be a non-empty string`);
    } else if (s.name.startsWith('system:')) {
      // A kubegate subject must never be able to name a Kubernetes system identity.
      problems.push(`${at}.name: ${JSON.stringify(s.name)} must not start with "system:"`);
    } else nameOk = true;
    if (kindOk && nameOk) {
      const key = `${s.kind as string}\0${s.name as string}`;
      if (seen.has(key))
        problems.push(`${at}: ${s.kind} ${JSON.stringify(s.name)} is listed twice`);
      seen.add(key);
      out.push({ kind: s.kind as Binding['subjects'][number]['kind'], name: s.name as string });
    }
  });
  return out;
}

function labelList(raw: unknown, at: string, what: string, problems: string[]): string[] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) {
    problems.push(`${at}: must be an array of ${what} names`);
    return [];
  }
  const seen = new Set<string>();
  const out: string[] = [];
  raw.forEach((n: unknown, i) => {
    if (typeof n !== 'string' || !dns1123Label.test(n)) {
      problems.push(
        `${at}[${i}]: ${JSON.stringify(n)} is not a valid ${what} name (a DNS-1123 label: lowercase letters, digits and '-', at most 63)`,
      );
    } else if (seen.has(n)) {
      problems.push(`${at}[${i}]: ${JSON.stringify(n)} is listed twice`);
    } else {
      seen.add(n);
      out.push(n);
    }
  });
  return out;
}

function clusters(raw: unknown, problems: string[]): BindingSpec['clusters'] {
  if (!isObject(raw)) {
    problems.push('clusters: must be an object with names and/or selector');
    return {};
  }
  for (const k of Object.keys(raw)) {
    if (k !== 'names' && k !== 'selector')
      problems.push(`clusters.${k}: unknown field (allowed: names, selector)`);
  }
  const out: BindingSpec['clusters'] = {};
  const names = labelList(raw.names, 'clusters.names', 'cluster', problems);
  if (names.length > 0) out.names = names;
  if (raw.selector !== undefined && raw.selector !== null) {
    const sel = validateSelector(raw.selector, 'clusters.selector', problems);
    if (sel) out.selector = sel;
  }
  const hasNames = Array.isArray(raw.names) && raw.names.length > 0;
  const hasSelector = raw.selector !== undefined && raw.selector !== null;
  if (!hasNames && !hasSelector) {
    problems.push(
      'clusters: give names and/or a selector (a binding with neither reaches no cluster; selector {} reaches every cluster)',
    );
  }
  return out;
}

function expiry(raw: unknown, now: Date, current: Date | null | undefined, problems: string[]) {
  if (raw === undefined || raw === null) return null;
  let at: Date | undefined;
  if (raw instanceof Date) at = raw;
  else if (typeof raw === 'string' && rfc3339.test(raw)) at = new Date(raw);
  if (!at || Number.isNaN(at.getTime())) {
    problems.push(
      `expiresAt: ${JSON.stringify(raw)} is not an RFC 3339 time such as "2030-01-02T15:04:05Z"`,
    );
    return null;
  }
  // An unchanged expiry may be past (editing the reason of an expired binding);
  // a new one must be in the future, or the binding would be dead on arrival.
  const unchanged = current instanceof Date && current.getTime() === at.getTime();
  if (!unchanged && at.getTime() <= now.getTime()) {
    problems.push(`expiresAt: ${at.toISOString()} is not in the future`);
  }
  return at;
}

export interface BindingCheckOptions {
  now?: Date;
  /** On update: the stored expiry, which may stay as it is even if past. */
  currentExpiresAt?: Date | null;
  /** On update: the id in the path; a body naming another id is refused. */
  id?: string;
}

/**
 * Check an untrusted binding. `spec` is set only when `problems` is empty;
 * it is a fresh copy with known fields only.
 */
export function validateBindingSpec(
  raw: unknown,
  opts: BindingCheckOptions = {},
): { spec?: BindingSpec; problems: string[] } {
  if (!isObject(raw)) return { problems: ['the binding must be a JSON object'] };
  const problems: string[] = [];
  const unknown = Object.keys(raw).filter((k) => !writable.includes(k) && !readOnly.includes(k));
  if (unknown.length > 0) {
    problems.push(
      `unknown field(s): ${unknown.join(', ')} (allowed: ${writable.join(', ')}; read-only and ignored: ${readOnly.join(', ')})`,
    );
  }
  if (opts.id !== undefined && raw.id !== undefined && raw.id !== opts.id) {
    problems.push(`id: ${JSON.stringify(raw.id)} does not match the binding being updated`);
  }
  const subs = subjects(raw.subjects, problems);
  if (typeof raw.role !== 'string' || raw.role === '')
    problems.push('role: must be a role name (built-in or custom)');
  const cl = clusters(raw.clusters, problems);
  const namespaces = labelList(raw.namespaces, 'namespaces', 'namespace', problems);
  const expiresAt = expiry(raw.expiresAt, opts.now ?? new Date(), opts.currentExpiresAt, problems);
  let reason = '';
  if (raw.reason !== undefined && raw.reason !== null) {
    if (typeof raw.reason !== 'string') problems.push('reason: must be a string');
    else if (raw.reason.length > maxReasonLength)
      problems.push(
        `reason: must be at most ${maxReasonLength} characters (got ${raw.reason.length})`,
      );
    else reason = raw.reason;
  }
  if (problems.length > 0) return { problems };
  return {
    spec: {
      subjects: subs,
      role: raw.role as string,
      clusters: cl,
      namespaces,
      expiresAt,
      reason,
    },
    problems,
  };
}
