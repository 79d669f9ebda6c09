/**
 * The namespaces control message, checked. Only a body that is not a list
 * of named entries (or holds too many) is refused whole; anything wrong
 * inside one entry — a name that is not ours to manage, an object kind or
 * name outside the fence, a label that is not a Kubernetes label — makes
 * that entry an error and leaves the others to be reconciled. Values are
 * copied into fresh objects field by field, so nothing the proxy did not
 * mean to send (a `__proto__` key included) reaches the apiserver.
 */
import { KgError } from '../../common/errors.js';
import { deeperThan } from '../../common/json-depth.js';
import { isObject } from '../../common/json-object.js';
import { labelKeyProblem, labelValueProblem } from '../../common/kube-grammar.js';
import {
  managedObjectKinds,
  managedObjectPrefix,
  maxNamespacesPerMessage,
  type ManagedObject,
  type ManagedObjectKind,
  type NamespaceDesired,
} from '../../common/tunnel-protocol.js';

/** One entry: what to reconcile, or why it is refused. */
export type CheckedEntry =
  | { name: string; desired: NamespaceDesired; problem?: undefined }
  | { name: string; desired?: undefined; problem: string };

/** Objects one namespace may hold (a profile has a handful). */
export const maxObjectsPerNamespace = 32;
/** The most JSON one object's spec may take. */
export const maxSpecBytes = 64 * 1024;
/** Kubernetes' own limit on all annotations of one object together. */
const maxAnnotationBytes = 256 * 1024;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Why kubegate will not manage a namespace of this name, or undefined. The
 * cluster's own namespaces and the agent's are never ours.
 */
export function namespaceNameProblem(name: string, agentNamespace: string): string | undefined {
  if (name.length > 63 || !DNS1123_LABEL.test(name))
    return `namespace name ${JSON.stringify(name.slice(0, 80))} is not a DNS label (at most 63 of a-z, 0-9 and '-', alphanumeric at both ends)`;
  if (
    name === 'default' ||
    name.startsWith('kube-') ||
    name === 'kubegate-system' ||
    name === agentNamespace
  )
    return `namespace "${name}" is reserved and never managed by kubegate`;
  return undefined;
}

/**
 * A map of label (or annotation) keys to values; pushes a problem for each
 * bad key or value. Annotation values may be any string.
 */
function stringMap(
  v: unknown,
  at: string,
  problems: string[],
  values: 'label' | 'annotation',
): Record<string, string> {
  if (!isObject(v)) {
    problems.push(`${at} must be an object of string values`);
    return {};
  }
  const out: [string, string][] = [];
  let bytes = 0;
  for (const [k, val] of Object.entries(v)) {
    const keyProblem = labelKeyProblem(k, `${at} key`);
    if (keyProblem) problems.push(keyProblem);
    const valueProblem =
      values === 'label'
        ? labelValueProblem(val, `${at}[${JSON.stringify(k)}]`)
        : typeof val === 'string'
          ? undefined
          : `${at}[${JSON.stringify(k)}]: must be a string`;
    if (valueProblem) problems.push(valueProblem);
    if (!keyProblem && !valueProblem) {
      out.push([k, val as string]);
      bytes += k.length + (val as string).length;
    }
  }
  if (values === 'annotation' && bytes > maxAnnotationBytes)
    problems.push(`${at} take more than ${maxAnnotationBytes / 1024} KiB`);
  // fromEntries defines own properties: a `__proto__` key never reaches here
  // (it is not a valid key), and could not change the prototype if it did.
  return Object.fromEntries(out);
}

function managedObject(v: unknown, at: string, problems: string[]): ManagedObject | undefined {
  if (!isObject(v)) {
    problems.push(`${at} must be an object`);
    return undefined;
  }
  const kind = v.kind;
  if (typeof kind !== 'string' || !Object.hasOwn(managedObjectKinds, kind)) {
    problems.push(
      `${at}.kind ${JSON.stringify(String(kind).slice(0, 60))} is not one kubegate manages (${Object.keys(managedObjectKinds).join(', ')})`,
    );
    return undefined;
  }
  const k = kind as ManagedObjectKind;
  if (v.apiVersion !== managedObjectKinds[k]) {
    problems.push(`${at}.apiVersion of a ${k} must be ${managedObjectKinds[k]}`);
    return undefined;
  }
  const meta = v.metadata;
  if (!isObject(meta) || typeof meta.name !== 'string') {
    problems.push(`${at}.metadata.name must be a string`);
    return undefined;
  }
  const name = meta.name;
  if (!name.startsWith(managedObjectPrefix) || name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    problems.push(
      `${at}.metadata.name ${JSON.stringify(name.slice(0, 80))} must be a DNS subdomain starting with "${managedObjectPrefix}"`,
    );
    return undefined;
  }
  const labels =
    meta.labels === undefined
      ? {}
      : stringMap(meta.labels, `${at}.metadata.labels`, problems, 'label');
  const annotations =
    meta.annotations === undefined
      ? {}
      : stringMap(meta.annotations, `${at}.metadata.annotations`, problems, 'annotation');
  const spec = v.spec;
  if (!isObject(spec)) {
    problems.push(`${at}.spec must be an object`);
    return undefined;
  }
  if (deeperThan(spec, 32)) {
    problems.push(`${at}.spec is nested too deep`);
    return undefined;
  }
  if (JSON.stringify(spec).length > maxSpecBytes) {
    problems.push(`${at}.spec takes more than ${maxSpecBytes / 1024} KiB`);
    return undefined;
  }
  return {
    apiVersion: managedObjectKinds[k],
    kind: k,
    metadata: { name, labels, annotations },
    spec,
  };
}

/** One entry checked; `name` is already known to be a string. */
function entry(o: Record<string, unknown>, name: string): CheckedEntry {
  const problems: string[] = [];
  const labels = stringMap(o.labels ?? {}, 'labels', problems, 'label');
  const annotations = stringMap(o.annotations ?? {}, 'annotations', problems, 'annotation');
  if (o.retire !== undefined && typeof o.retire !== 'boolean')
    problems.push('retire must be true or false');
  const objects: ManagedObject[] = [];
  if (!Array.isArray(o.objects)) problems.push('objects must be a list');
  else if (o.objects.length > maxObjectsPerNamespace)
    problems.push(`objects lists more than ${maxObjectsPerNamespace}`);
  else {
    const seen = new Set<string>();
    o.objects.forEach((v: unknown, i) => {
      const m = managedObject(v, `objects[${i}]`, problems);
      if (!m) return;
      const id = `${m.kind}/${m.metadata.name}`;
      if (seen.has(id)) problems.push(`objects[${i}]: ${id} is listed twice`);
      seen.add(id);
      objects.push(m);
    });
  }
  if (problems.length > 0)
    return {
      name,
      problem: `namespace "${name}" refused: ${problems.slice(0, 3).join('; ')}${problems.length > 3 ? ` (and ${problems.length - 3} more)` : ''}`,
    };
  return {
    name,
    desired: { name, labels, annotations, objects, ...(o.retire === true ? { retire: true } : {}) },
  };
}

const bad = (field: string, problem: string) =>
  new KgError('KG_ERR_BAD_REQUEST', `control message body: ${field} ${problem}`);

/**
 * The namespaces message: refused whole (a KG_ERR_BAD_REQUEST) only when it
 * is not `{namespaces: [...]}` of at most `maxNamespacesPerMessage` objects
 * each with a string `name`; otherwise one checked entry per namespace, in
 * order. `agentNamespace` is the namespace the agent runs in (never managed;
 * the reconciler checks it again, as the control table parses without it).
 */
export function namespacesBody(value: unknown, agentNamespace = ''): CheckedEntry[] {
  if (!isObject(value) || !Array.isArray(value.namespaces))
    throw bad('namespaces', 'must be a list');
  const list: unknown[] = value.namespaces;
  if (list.length > maxNamespacesPerMessage)
    throw bad('namespaces', `lists more than ${maxNamespacesPerMessage} entries`);
  const seen = new Set<string>();
  return list.map((v, i): CheckedEntry => {
    if (!isObject(v) || typeof v.name !== 'string')
      throw bad(`namespaces[${i}].name`, 'must be a string');
    const name = v.name;
    const nameProblem = namespaceNameProblem(name, agentNamespace);
    if (nameProblem) return { name, problem: nameProblem };
    if (seen.has(name)) return { name, problem: `namespace "${name}" is listed twice` };
    seen.add(name);
    return entry(v, name);
  });
}
