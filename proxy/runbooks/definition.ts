/**
 * A runbook as an admin writes it, and its validation: name, description,
 * typed parameters, targets and an ordered list of steps from a small
 * vocabulary — every problem at once, each naming its place
 * (`steps[2].target.name: …`), unknown fields included.
 *
 * Templates. Parameters reach a step only through `{{name}}` placeholders in
 * JSON string *values* (manifest and patch values, target names, replicas,
 * the pod and container of `logs`). A string that is exactly one placeholder
 * becomes the parameter's typed value; anything else is text with the values
 * placed in it. Keys never hold a placeholder, and a manifest's apiVersion,
 * kind and metadata.namespace are literal, so no value can change which
 * object is touched or the shape of what is sent. Every placeholder names a
 * declared parameter or the built-in `namespace` (the run's namespace).
 *
 * This file and params/render/rules/catalogue next to it are pure: no I/O,
 * no clock, no randomness.
 */
import { validateSelector, type LabelSelector } from '../../common/kube-grammar.js';
import { deeperThan } from '../../common/json-depth.js';
import { isObject, unknownFields } from '../../common/json-object.js';

export type ParamSpec = { name: string; description?: string; required?: boolean } & (
  | { type: 'string'; default?: string; pattern?: string; enum?: string[]; maxLength?: number }
  | { type: 'integer'; default?: number; minimum?: number; maximum?: number }
  | { type: 'boolean'; default?: boolean }
);

/** A resource the step touches. `namespaced: false` for cluster-scoped (nodes). */
export interface ResourceRef {
  group: string;
  version: string;
  resource: string;
  namespaced: boolean;
}

export interface Target extends ResourceRef {
  /** The object's name; may hold placeholders. */
  name: string;
}

export type NamespaceRule =
  { fixed: string } | { param: string; allowed?: string[] } | { none: true };

export interface Targets {
  clusters?: string[];
  selector?: LabelSelector;
  namespace: NamespaceRule;
}

export type Step = { name: string; onFailure?: 'stop' | 'continue' } & (
  | { action: 'apply'; resource: ResourceRef; manifest: Record<string, unknown> } // server-side apply
  | {
      action: 'patch';
      target: Target;
      patchType: 'merge' | 'strategic';
      patch: Record<string, unknown>;
    }
  | { action: 'scale'; target: Target; replicas: number | string /* template */ }
  | { action: 'restart'; target: Target } // rollout restart: pod-template annotation
  | { action: 'delete'; target: Target }
  | { action: 'job'; manifest: Record<string, unknown>; timeoutSeconds: number } // create Job, wait
  | {
      action: 'wait';
      target: Target;
      condition: { type: string; status?: string };
      timeoutSeconds: number;
    }
  | { action: 'read'; target: Target }
  | { action: 'logs'; pod: string; container?: string; tailLines?: number }
);

export interface RunbookSpec {
  name: string;
  description: string;
  parameters: ParamSpec[];
  targets: Targets;
  steps: Step[];
}

// --- bounds --------------------------------------------------------------------

export const limits = {
  description: 1000,
  parameters: 32,
  steps: 32,
  /** Nesting of a manifest or patch (common/json-depth.ts). */
  depth: 16,
  /** Default and hard cap of a string parameter's length. */
  stringDefault: 253,
  stringCap: 4096,
  pattern: 1000,
  enumValues: 100,
  timeoutSeconds: 3600,
  /** Problems listed at most; the rest are counted (a hostile body cannot make the answer huge). */
  problems: 100,
  tailLines: 10000,
  literalReplicas: 10000,
} as const;

/** The placeholder name that always means the run's namespace. */
export const builtinNamespace = 'namespace';

/** Job and log resources, fixed by the action. */
export const jobResource: ResourceRef = {
  group: 'batch',
  version: 'v1',
  resource: 'jobs',
  namespaced: true,
};
export const podResource: ResourceRef = {
  group: '',
  version: 'v1',
  resource: 'pods',
  namespaced: true,
};

// --- grammar -------------------------------------------------------------------

/** validation.IsDNS1123Label. */
export const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** validation.IsDNS1123Subdomain without the length (checked apart: ≤ 253). */
const dnsSubdomainRe = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** An API version as Kubernetes writes them: v1, v2beta1, v1alpha3. */
const apiVersionRe = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;
const kindRe = /^[A-Z][A-Za-z0-9]{0,62}$/;
/** A parameter name: a letter, then letters, digits and '_' (so never `__proto__`). */
const paramNameRe = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

export function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && dnsSubdomainRe.test(s);
}

/** Names an object inherits from Object.prototype; never a parameter name. */
function inheritedName(name: string): boolean {
  return name in Object.prototype;
}

/**
 * Resources whose scope we know: a ref that says otherwise is a mistake the
 * apiserver would answer with a 404 (and the derived Role would be the wrong
 * kind), so it is refused where it is written.
 */
const knownScope: Record<string, boolean> = {
  '/nodes': false,
  '/namespaces': false,
  '/persistentvolumes': false,
  'storage.k8s.io/storageclasses': false,
  'rbac.authorization.k8s.io/clusterroles': false,
  'rbac.authorization.k8s.io/clusterrolebindings': false,
  'apiextensions.k8s.io/customresourcedefinitions': false,
  '/pods': true,
  '/services': true,
  '/configmaps': true,
  '/secrets': true,
  '/serviceaccounts': true,
  '/persistentvolumeclaims': true,
  'apps/deployments': true,
  'apps/statefulsets': true,
  'apps/daemonsets': true,
  'apps/replicasets': true,
  'batch/jobs': true,
  'batch/cronjobs': true,
  'autoscaling/horizontalpodautoscalers': true,
  'policy/poddisruptionbudgets': true,
  'networking.k8s.io/ingresses': true,
  'networking.k8s.io/networkpolicies': true,
};

/** At most `limits.problems` problems, and a last line counting the others. */
export function capProblems(problems: string[]): string[] {
  if (problems.length <= limits.problems) return problems;
  const rest = problems.length - limits.problems;
  return [
    ...problems.slice(0, limits.problems),
    `… and ${rest} more problem${rest === 1 ? '' : 's'}`,
  ];
}

/** The kind of each resource whose scope we know (knownScope), for the manifest's kind. */
const knownKind: Record<string, string> = {
  '/nodes': 'Node',
  '/namespaces': 'Namespace',
  '/persistentvolumes': 'PersistentVolume',
  'storage.k8s.io/storageclasses': 'StorageClass',
  'rbac.authorization.k8s.io/clusterroles': 'ClusterRole',
  'rbac.authorization.k8s.io/clusterrolebindings': 'ClusterRoleBinding',
  'apiextensions.k8s.io/customresourcedefinitions': 'CustomResourceDefinition',
  '/pods': 'Pod',
  '/services': 'Service',
  '/configmaps': 'ConfigMap',
  '/secrets': 'Secret',
  '/serviceaccounts': 'ServiceAccount',
  '/persistentvolumeclaims': 'PersistentVolumeClaim',
  'apps/deployments': 'Deployment',
  'apps/statefulsets': 'StatefulSet',
  'apps/daemonsets': 'DaemonSet',
  'apps/replicasets': 'ReplicaSet',
  'batch/jobs': 'Job',
  'batch/cronjobs': 'CronJob',
  'autoscaling/horizontalpodautoscalers': 'HorizontalPodAutoscaler',
  'policy/poddisruptionbudgets': 'PodDisruptionBudget',
  'networking.k8s.io/ingresses': 'Ingress',
  'networking.k8s.io/networkpolicies': 'NetworkPolicy',
};

// --- templates -----------------------------------------------------------------

export type TemplatePart = string | { ref: string };

/**
 * Split a string into text and `{{name}}` references (spaces inside the
 * braces allowed). An unterminated `{{` or a reference that is not a name is
 * a problem. A lone `}}` is text.
 */
export function parseTemplate(s: string): { parts: TemplatePart[] } | { problem: string } {
  const parts: TemplatePart[] = [];
  let i = 0;
  let text = '';
  while (i < s.length) {
    const open = s.indexOf('{{', i);
    if (open < 0) {
      text += s.slice(i);
      break;
    }
    text += s.slice(i, open);
    const close = s.indexOf('}}', open + 2);
    if (close < 0) return { problem: `unterminated "{{" at offset ${open}` };
    const name = s.slice(open + 2, close).trim();
    if (!paramNameRe.test(name)) {
      return {
        problem: `${JSON.stringify(s.slice(open, close + 2).slice(0, 80))} is not a placeholder (expected {{name}}, a letter then letters, digits or '_')`,
      };
    }
    if (text !== '') parts.push(text);
    text = '';
    parts.push({ ref: name });
    i = close + 2;
  }
  if (text !== '') parts.push(text);
  return { parts };
}

/** The parameter a string names when it is exactly one placeholder. */
export function wholeRef(parts: TemplatePart[]): string | undefined {
  const only = parts.length === 1 ? parts[0] : undefined;
  return typeof only === 'object' ? only.ref : undefined;
}

// --- validation helpers --------------------------------------------------------

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** What the checks of one runbook share: the declared parameters and whether a namespace exists. */
interface Ctx {
  params: Map<string, ParamSpec>;
  hasNamespace: boolean;
  problems: string[];
  /** The declared parameters some step refers to. */
  used: Set<string>;
}

/** Check every placeholder in one string value; returns the parts when they are all fine. */
function checkTemplate(s: string, at: string, ctx: Ctx): TemplatePart[] | undefined {
  const t = parseTemplate(s);
  if ('problem' in t) {
    ctx.problems.push(`${at}: ${t.problem}`);
    return undefined;
  }
  let ok = true;
  for (const p of t.parts) {
    if (typeof p === 'string') continue;
    if (p.ref === builtinNamespace && !ctx.params.has(builtinNamespace)) {
      if (!ctx.hasNamespace) {
        ctx.problems.push(`${at}: {{namespace}} is used but the runbook has no namespace`);
        ok = false;
      }
    } else if (!ctx.params.has(p.ref)) {
      ctx.problems.push(`${at}: {{${p.ref}}} is not a declared parameter`);
      ok = false;
    } else {
      ctx.used.add(p.ref);
    }
  }
  return ok ? t.parts : undefined;
}

/** A string that may hold placeholders; must not be empty. */
function templateString(v: unknown, at: string, ctx: Ctx): TemplatePart[] | undefined {
  if (typeof v !== 'string' || v === '') {
    ctx.problems.push(`${at}: must be a non-empty string`);
    return undefined;
  }
  return checkTemplate(v, at, ctx);
}

/** Walk a manifest or patch: keys literal (no `{{`, never `__proto__`), placeholders only in string values. */
function checkValueTree(
  value: unknown,
  at: string,
  ctx: Ctx,
  skip: ReadonlySet<string> = noSkip,
): void {
  // The depth is checked before this walk (it recurses).
  if (typeof value === 'string') {
    if (!skip.has(at)) checkTemplate(value, at, ctx);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkValueTree(v, `${at}[${i}]`, ctx, skip));
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const place = /^[A-Za-z0-9_$-]+$/.test(k) ? `${at}.${k}` : `${at}[${JSON.stringify(k)}]`;
      if (k.includes('{{')) ctx.problems.push(`${place}: a key may not hold a placeholder`);
      else if (k === '__proto__')
        ctx.problems.push(`${place}: "__proto__" is not allowed as a key`);
      checkValueTree(v, place, ctx, skip);
    }
  } else if (value !== null && typeof value !== 'number' && typeof value !== 'boolean') {
    ctx.problems.push(`${at}: must be JSON`);
  } else if (typeof value === 'number' && !Number.isFinite(value)) {
    ctx.problems.push(`${at}: must be a finite number`);
  }
}

const noSkip: ReadonlySet<string> = new Set();

/** An object of JSON values (manifest or patch); `skip` names string values checked by the caller instead. */
function objectTree(
  v: unknown,
  at: string,
  ctx: Ctx,
  skip: ReadonlySet<string> = noSkip,
): v is Record<string, unknown> {
  if (!isObject(v)) {
    ctx.problems.push(`${at}: must be an object`);
    return false;
  }
  if (deeperThan(v, limits.depth)) {
    ctx.problems.push(`${at}: nested deeper than ${limits.depth} levels`);
    return false;
  }
  checkValueTree(v, at, ctx, skip);
  return true;
}

function resourceRef(
  raw: unknown,
  at: string,
  ctx: Ctx,
  extra: readonly string[] = [],
): raw is ResourceRef {
  if (!isObject(raw)) {
    ctx.problems.push(`${at}: must be an object with group, version, resource and namespaced`);
    return false;
  }
  const before = ctx.problems.length;
  unknownFields(raw, ['group', 'version', 'resource', 'namespaced', ...extra], at, ctx.problems);
  const { group, version, resource, namespaced } = raw;
  if (typeof group !== 'string' || (group !== '' && !isDnsSubdomain(group))) {
    ctx.problems.push(`${at}.group: must be "" (the core group) or a DNS subdomain`);
  }
  if (typeof version !== 'string' || !apiVersionRe.test(version)) {
    ctx.problems.push(`${at}.version: must be an API version such as v1 or v2beta1`);
  }
  if (typeof resource !== 'string' || !dnsLabel.test(resource)) {
    ctx.problems.push(
      `${at}.resource: must be a resource's plural name (a DNS label, no subresource), e.g. deployments`,
    );
  }
  if (typeof namespaced !== 'boolean') {
    ctx.problems.push(`${at}.namespaced: must be true or false`);
  } else if (typeof group === 'string' && typeof resource === 'string') {
    const known = knownScope[`${group}/${resource}`];
    if (known !== undefined && known !== namespaced) {
      ctx.problems.push(
        `${at}.namespaced: ${group || 'core'} ${resource} are ${known ? 'namespaced' : 'cluster-scoped'}`,
      );
    }
    if (namespaced && !ctx.hasNamespace) {
      ctx.problems.push(
        `${at}: ${resource} are namespaced but the runbook has no namespace (targets.namespace is none)`,
      );
    }
  }
  return ctx.problems.length === before;
}

/** A name as written: placeholders allowed; a literal one must already be a valid object name. */
function objectName(v: unknown, at: string, ctx: Ctx): void {
  const parts = templateString(v, at, ctx);
  if (parts && parts.every((p) => typeof p === 'string') && !isDnsSubdomain(v as string)) {
    ctx.problems.push(
      `${at}: ${JSON.stringify(v)} is not a valid object name (a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253)`,
    );
  }
}

function target(raw: unknown, at: string, ctx: Ctx): void {
  if (resourceRef(raw, at, ctx, ['name']) || isObject(raw)) {
    objectName((raw as Record<string, unknown>).name, `${at}.name`, ctx);
  }
}

function timeout(v: unknown, at: string, ctx: Ctx): void {
  if (!isInt(v) || v < 1 || v > limits.timeoutSeconds) {
    ctx.problems.push(`${at}: must be an integer from 1 to ${limits.timeoutSeconds}`);
  }
}

function literalString(v: unknown, at: string, ctx: Ctx): v is string {
  if (typeof v !== 'string' || v === '') {
    ctx.problems.push(`${at}: must be a non-empty literal string`);
    return false;
  }
  if (v.includes('{{')) {
    ctx.problems.push(`${at}: must be literal (no placeholder)`);
    return false;
  }
  return true;
}

/** An apply or job manifest: literal apiVersion/kind that agree with the resource, a name, namespace forced. */
function manifest(raw: unknown, at: string, ref: ResourceRef | undefined, ctx: Ctx): void {
  const own = ['apiVersion', 'kind', 'metadata.name', 'metadata.namespace'].map(
    (f) => `${at}.${f}`,
  );
  if (!objectTree(raw, at, ctx, new Set(own))) return;
  const { apiVersion, kind, metadata } = raw;
  if (literalString(apiVersion, `${at}.apiVersion`, ctx) && ref) {
    const want = ref.group === '' ? ref.version : `${ref.group}/${ref.version}`;
    if (apiVersion !== want) {
      ctx.problems.push(
        `${at}.apiVersion: ${JSON.stringify(apiVersion)} does not agree with the resource (${JSON.stringify(want)})`,
      );
    }
  }
  if (literalString(kind, `${at}.kind`, ctx)) {
    const want = ref && knownKind[`${ref.group}/${ref.resource}`];
    if (!kindRe.test(kind)) {
      ctx.problems.push(`${at}.kind: ${JSON.stringify(kind)} is not a kind (e.g. Deployment)`);
    } else if (want && kind !== want) {
      ctx.problems.push(
        `${at}.kind: ${JSON.stringify(kind)} does not agree with the resource (${ref.resource} hold ${want})`,
      );
    }
  }
  if (!isObject(metadata)) {
    ctx.problems.push(`${at}.metadata: must be an object with a name`);
    return;
  }
  if (metadata.generateName !== undefined) {
    ctx.problems.push(`${at}.metadata.generateName: not supported; give metadata.name`);
  }
  if (typeof metadata.name === 'string') {
    objectName(metadata.name, `${at}.metadata.name`, ctx);
  } else {
    ctx.problems.push(`${at}.metadata.name: must be a non-empty string`);
  }
  if (metadata.namespace !== undefined) {
    if (ref && !ref.namespaced) {
      ctx.problems.push(`${at}.metadata.namespace: a cluster-scoped object has no namespace`);
    } else {
      literalString(metadata.namespace, `${at}.metadata.namespace`, ctx);
    }
  }
}

const common = ['name', 'onFailure', 'action'];
const actionFields: Record<Step['action'], readonly string[]> = {
  apply: ['resource', 'manifest'],
  patch: ['target', 'patchType', 'patch'],
  scale: ['target', 'replicas'],
  restart: ['target'],
  delete: ['target'],
  job: ['manifest', 'timeoutSeconds'],
  wait: ['target', 'condition', 'timeoutSeconds'],
  read: ['target'],
  logs: ['pod', 'container', 'tailLines'],
};
export const actions = Object.keys(actionFields) as Step['action'][];

function step(raw: unknown, at: string, ctx: Ctx): void {
  if (!isObject(raw)) {
    ctx.problems.push(`${at}: must be an object with name, action and the action's fields`);
    return;
  }
  const action = raw.action as Step['action'];
  if (!Object.hasOwn(actionFields, action)) {
    ctx.problems.push(
      `${at}.action: ${JSON.stringify(raw.action)} is not one of ${actions.join(', ')}`,
    );
    unknownFields(
      raw,
      [...new Set(Object.values(actionFields).flat()), ...common],
      at,
      ctx.problems,
    );
  } else {
    unknownFields(raw, [...common, ...actionFields[action]], at, ctx.problems);
  }
  if (typeof raw.name !== 'string' || !dnsLabel.test(raw.name)) {
    ctx.problems.push(
      `${at}.name: must be a DNS label (lowercase letters, digits and '-', at most 63)`,
    );
  }
  if (raw.onFailure !== undefined && raw.onFailure !== 'stop' && raw.onFailure !== 'continue') {
    ctx.problems.push(`${at}.onFailure: must be "stop" or "continue"`);
  }
  switch (action) {
    case 'apply':
      resourceRef(raw.resource, `${at}.resource`, ctx);
      manifest(
        raw.manifest,
        `${at}.manifest`,
        isObject(raw.resource) &&
          typeof raw.resource.group === 'string' &&
          typeof raw.resource.version === 'string'
          ? (raw.resource as unknown as ResourceRef)
          : undefined,
        ctx,
      );
      break;
    case 'patch':
      target(raw.target, `${at}.target`, ctx);
      if (raw.patchType !== 'merge' && raw.patchType !== 'strategic') {
        ctx.problems.push(`${at}.patchType: must be "merge" or "strategic"`);
      }
      objectTree(raw.patch, `${at}.patch`, ctx);
      break;
    case 'scale':
      target(raw.target, `${at}.target`, ctx);
      replicas(raw.replicas, `${at}.replicas`, ctx);
      break;
    case 'restart':
    case 'delete':
      target(raw.target, `${at}.target`, ctx);
      break;
    case 'read':
      target(raw.target, `${at}.target`, ctx);
      // A read goes into the run's result, which the requester sees: never a Secret's data.
      if (isObject(raw.target) && raw.target.group === '' && raw.target.resource === 'secrets') {
        ctx.problems.push(
          `${at}.target: a read may not return a Secret (its data would be in the run's result)`,
        );
      }
      break;
    case 'job':
      if (!ctx.hasNamespace) {
        ctx.problems.push(`${at}: a job runs in a namespace but the runbook has none`);
      }
      manifest(raw.manifest, `${at}.manifest`, jobResource, ctx);
      timeout(raw.timeoutSeconds, `${at}.timeoutSeconds`, ctx);
      break;
    case 'wait':
      target(raw.target, `${at}.target`, ctx);
      condition(raw.condition, `${at}.condition`, ctx);
      timeout(raw.timeoutSeconds, `${at}.timeoutSeconds`, ctx);
      break;
    case 'logs':
      if (!ctx.hasNamespace) {
        ctx.problems.push(`${at}: pod logs are namespaced but the runbook has no namespace`);
      }
      objectName(raw.pod, `${at}.pod`, ctx);
      if (raw.container !== undefined) {
        const parts = templateString(raw.container, `${at}.container`, ctx);
        if (parts?.every((p) => typeof p === 'string') && !dnsLabel.test(raw.container as string)) {
          ctx.problems.push(`${at}.container: must be a container name (a DNS label)`);
        }
      }
      if (
        raw.tailLines !== undefined &&
        (!isInt(raw.tailLines) || raw.tailLines < 1 || raw.tailLines > limits.tailLines)
      ) {
        ctx.problems.push(`${at}.tailLines: must be an integer from 1 to ${limits.tailLines}`);
      }
      break;
  }
}

function replicas(v: unknown, at: string, ctx: Ctx): void {
  if (typeof v === 'number') {
    if (!isInt(v) || v < 0 || v > limits.literalReplicas) {
      ctx.problems.push(`${at}: must be an integer from 0 to ${limits.literalReplicas}`);
    }
    return;
  }
  if (typeof v !== 'string') {
    ctx.problems.push(`${at}: must be an integer or a "{{parameter}}" naming an integer parameter`);
    return;
  }
  const parts = checkTemplate(v, at, ctx);
  if (!parts) return;
  const ref = wholeRef(parts);
  const p = ref === undefined ? undefined : ctx.params.get(ref);
  if (!p || p.type !== 'integer') {
    ctx.problems.push(`${at}: must be exactly "{{parameter}}" naming an integer parameter`);
  } else if (p.minimum === undefined || p.minimum < 0) {
    ctx.problems.push(`${at}: parameter ${JSON.stringify(ref)} needs a minimum of 0 or more`);
  }
}

const conditionStatus = ['True', 'False', 'Unknown'];

function condition(raw: unknown, at: string, ctx: Ctx): void {
  if (!isObject(raw)) {
    ctx.problems.push(`${at}: must be an object with type and optional status`);
    return;
  }
  unknownFields(raw, ['type', 'status'], at, ctx.problems);
  if (
    literalString(raw.type, `${at}.type`, ctx) &&
    !/^[A-Za-z][A-Za-z0-9_.-]{0,62}$/.test(raw.type)
  ) {
    ctx.problems.push(
      `${at}.type: ${JSON.stringify(raw.type)} is not a condition type (e.g. Available)`,
    );
  }
  if (raw.status !== undefined && !conditionStatus.includes(raw.status as string)) {
    ctx.problems.push(`${at}.status: must be one of ${conditionStatus.join(', ')}`);
  }
}

// --- parameters ----------------------------------------------------------------

const paramCommon = ['name', 'description', 'required', 'type'];
const paramTypeFields: Record<ParamSpec['type'], readonly string[]> = {
  string: ['default', 'pattern', 'enum', 'maxLength'],
  integer: ['default', 'minimum', 'maximum'],
  boolean: ['default'],
};

/** The anchored form of a string parameter's pattern (a full match). */
export function anchoredPattern(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`, 'u');
}

/** Why a value does not suit a parameter (list of problems, empty when it does). */
export function valueProblems(p: ParamSpec, v: unknown): string[] {
  switch (p.type) {
    case 'string': {
      if (typeof v !== 'string') return ['must be a string'];
      const max = Math.min(p.maxLength ?? limits.stringDefault, limits.stringCap);
      // The length first: a pattern never sees a long string.
      if (v.length > max) return [`must be at most ${max} characters (got ${v.length})`];
      const out: string[] = [];
      if (p.pattern !== undefined && !anchoredPattern(p.pattern).test(v)) {
        out.push(`${JSON.stringify(v)} does not match the pattern ${JSON.stringify(p.pattern)}`);
      }
      if (p.enum !== undefined && !p.enum.includes(v)) {
        out.push(
          `${JSON.stringify(v)} is not one of ${p.enum.map((e) => JSON.stringify(e)).join(', ')}`,
        );
      }
      return out;
    }
    case 'integer': {
      if (!isInt(v)) return ['must be an integer'];
      const out: string[] = [];
      if (p.minimum !== undefined && v < p.minimum) out.push(`must be at least ${p.minimum}`);
      if (p.maximum !== undefined && v > p.maximum) out.push(`must be at most ${p.maximum}`);
      return out;
    }
    case 'boolean':
      return typeof v === 'boolean' ? [] : ['must be true or false'];
  }
}

function parameter(raw: unknown, at: string, problems: string[]): ParamSpec | undefined {
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object with name and type`);
    return undefined;
  }
  const before = problems.length;
  const type = raw.type as ParamSpec['type'];
  if (!Object.hasOwn(paramTypeFields, type)) {
    problems.push(`${at}.type: ${JSON.stringify(raw.type)} is not one of string, integer, boolean`);
  } else {
    unknownFields(raw, [...paramCommon, ...paramTypeFields[type]], at, problems);
  }
  const { name } = raw;
  if (typeof name !== 'string' || !paramNameRe.test(name) || inheritedName(name)) {
    problems.push(
      `${at}.name: ${JSON.stringify(name)} is not a valid parameter name (a letter, then letters, digits or '_', at most 63; not an Object property such as constructor)`,
    );
  }
  if (raw.description !== undefined) {
    if (typeof raw.description !== 'string') problems.push(`${at}.description: must be a string`);
    else if (raw.description.length > limits.description) {
      problems.push(`${at}.description: must be at most ${limits.description} characters`);
    }
  }
  if (raw.required !== undefined && typeof raw.required !== 'boolean') {
    problems.push(`${at}.required: must be true or false`);
  }
  // The default and enum values are checked whenever the rules they are checked by are sound.
  const typed = problems.length;
  if (type === 'string') {
    const { maxLength, pattern } = raw;
    if (
      maxLength !== undefined &&
      (!isInt(maxLength) || maxLength < 1 || maxLength > limits.stringCap)
    ) {
      problems.push(`${at}.maxLength: must be an integer from 1 to ${limits.stringCap}`);
    }
    if (pattern !== undefined) {
      if (typeof pattern !== 'string' || pattern === '' || pattern.length > limits.pattern) {
        problems.push(
          `${at}.pattern: must be a non-empty string of at most ${limits.pattern} characters`,
        );
      } else {
        try {
          anchoredPattern(pattern);
        } catch (err) {
          problems.push(
            `${at}.pattern: not a valid regular expression (${(err as Error).message})`,
          );
        }
      }
    }
    if (raw.enum !== undefined) {
      const e = raw.enum;
      if (!Array.isArray(e) || e.length === 0 || e.length > limits.enumValues) {
        problems.push(`${at}.enum: must be a list of 1 to ${limits.enumValues} strings`);
      } else {
        e.forEach((v: unknown, i) => {
          if (typeof v !== 'string') problems.push(`${at}.enum[${i}]: must be a string`);
          else if (e.indexOf(v) !== i)
            problems.push(`${at}.enum[${i}]: ${JSON.stringify(v)} repeated`);
        });
      }
    }
  } else if (type === 'integer') {
    for (const f of ['minimum', 'maximum'] as const) {
      if (raw[f] !== undefined && !isInt(raw[f]))
        problems.push(`${at}.${f}: must be a safe integer`);
    }
    if (isInt(raw.minimum) && isInt(raw.maximum) && raw.minimum > raw.maximum) {
      problems.push(`${at}.maximum: must be at least the minimum (${raw.minimum})`);
    }
  }
  if (!Object.hasOwn(paramTypeFields, type) || problems.length !== typed) return undefined;
  const spec = { ...raw } as ParamSpec;
  if (spec.default !== undefined) {
    for (const p of valueProblems(spec, spec.default)) problems.push(`${at}.default: ${p}`);
  }
  if (spec.type === 'string' && spec.enum) {
    spec.enum.forEach((v, i) => {
      for (const p of valueProblems({ ...spec, enum: undefined }, v)) {
        problems.push(`${at}.enum[${i}]: ${p}`);
      }
    });
  }
  return problems.length === before ? spec : undefined;
}

// --- targets -------------------------------------------------------------------

function namespaceRule(
  raw: unknown,
  at: string,
  params: Map<string, ParamSpec>,
  problems: string[],
): void {
  if (!isObject(raw)) {
    problems.push(
      `${at}: must be one of {"fixed": ns}, {"param": name, "allowed"?: [ns…]}, {"none": true}`,
    );
    return;
  }
  const kinds = ['fixed', 'param', 'none'].filter((k) => Object.hasOwn(raw, k));
  if (kinds.length !== 1) {
    problems.push(`${at}: must have exactly one of fixed, param, none`);
    return;
  }
  if (kinds[0] === 'fixed') {
    unknownFields(raw, ['fixed'], at, problems);
    if (typeof raw.fixed !== 'string' || !dnsLabel.test(raw.fixed)) {
      problems.push(`${at}.fixed: must be a namespace name (a DNS label)`);
    }
  } else if (kinds[0] === 'none') {
    unknownFields(raw, ['none'], at, problems);
    if (raw.none !== true) problems.push(`${at}.none: must be true`);
  } else {
    unknownFields(raw, ['param', 'allowed'], at, problems);
    const p = typeof raw.param === 'string' ? params.get(raw.param) : undefined;
    if (!p || p.type !== 'string') {
      problems.push(
        `${at}.param: ${JSON.stringify(raw.param)} must name a declared string parameter`,
      );
    }
    if (raw.allowed !== undefined) {
      const a = raw.allowed;
      if (!Array.isArray(a) || a.length === 0) {
        problems.push(`${at}.allowed: must be a non-empty list of namespaces`);
      } else {
        a.forEach((v: unknown, i) => {
          if (typeof v !== 'string' || !dnsLabel.test(v)) {
            problems.push(`${at}.allowed[${i}]: must be a namespace name (a DNS label)`);
          }
        });
      }
    }
  }
}

function targets(raw: unknown, params: Map<string, ParamSpec>, problems: string[]): void {
  if (!isObject(raw)) {
    problems.push('targets: must be an object with namespace and optional clusters, selector');
    return;
  }
  unknownFields(raw, ['clusters', 'selector', 'namespace'], 'targets', problems);
  if (raw.clusters !== undefined) {
    const c = raw.clusters;
    if (!Array.isArray(c) || c.length === 0) {
      problems.push('targets.clusters: must be a non-empty list of cluster names');
    } else {
      c.forEach((v: unknown, i) => {
        if (typeof v !== 'string' || !dnsLabel.test(v)) {
          problems.push(`targets.clusters[${i}]: must be a cluster name (a DNS label)`);
        } else if (c.indexOf(v) !== i) {
          problems.push(`targets.clusters[${i}]: ${JSON.stringify(v)} repeated`);
        }
      });
    }
  }
  if (raw.selector !== undefined) validateSelector(raw.selector, 'targets.selector', problems);
  namespaceRule(raw.namespace, 'targets.namespace', params, problems);
  const rule = raw.namespace;
  if (params.has(builtinNamespace) && !(isObject(rule) && rule.param === builtinNamespace)) {
    problems.push(
      'parameters: "namespace" is the run\'s namespace; it may be a parameter only when targets.namespace.param names it',
    );
  }
}

// --- the runbook ---------------------------------------------------------------

const topFields = ['name', 'description', 'parameters', 'targets', 'steps'];

/** Check an untrusted runbook; every problem at once. The spec is a clean copy when there are none. */
export function validateRunbook(raw: unknown): { spec?: RunbookSpec; problems: string[] } {
  if (!isObject(raw)) return { problems: ['the runbook must be a JSON object'] };
  const problems: string[] = [];
  unknownFields(raw, topFields, '', problems);
  if (typeof raw.name !== 'string' || !dnsLabel.test(raw.name)) {
    problems.push(
      `name: ${JSON.stringify(raw.name)} is not a valid runbook name (lowercase letters, digits and '-', at most 63, alphanumeric at both ends)`,
    );
  }
  if (typeof raw.description !== 'string') problems.push('description: must be a string');
  else if (raw.description.length > limits.description) {
    problems.push(`description: must be at most ${limits.description} characters`);
  }

  const params = new Map<string, ParamSpec>();
  const rawParams = raw.parameters === undefined ? [] : raw.parameters;
  if (!Array.isArray(rawParams)) {
    problems.push('parameters: must be a list');
  } else {
    if (rawParams.length > limits.parameters) {
      problems.push(`parameters: at most ${limits.parameters} (got ${rawParams.length})`);
    }
    rawParams.slice(0, limits.parameters).forEach((p: unknown, i) => {
      const spec = parameter(p, `parameters[${i}]`, problems);
      if (!spec) return;
      if (params.has(spec.name)) {
        problems.push(`parameters[${i}].name: ${JSON.stringify(spec.name)} declared twice`);
      } else {
        params.set(spec.name, spec);
      }
    });
  }

  targets(raw.targets, params, problems);
  const rule = isObject(raw.targets) ? raw.targets.namespace : undefined;
  const hasNamespace = !(isObject(rule) && Object.hasOwn(rule, 'none'));
  const ctx: Ctx = { params, hasNamespace, problems, used: new Set() };
  if (isObject(rule) && typeof rule.param === 'string' && params.has(rule.param)) {
    ctx.used.add(rule.param);
  }

  if (!Array.isArray(raw.steps) || raw.steps.length === 0) {
    problems.push('steps: must be a non-empty list');
  } else {
    if (raw.steps.length > limits.steps) {
      problems.push(`steps: at most ${limits.steps} (got ${raw.steps.length})`);
    }
    const names = new Set<string>();
    raw.steps.slice(0, limits.steps).forEach((s: unknown, i) => {
      step(s, `steps[${i}]`, ctx);
      if (isObject(s) && typeof s.name === 'string') {
        if (names.has(s.name))
          problems.push(`steps[${i}].name: ${JSON.stringify(s.name)} used twice`);
        names.add(s.name);
      }
    });
  }

  // A run cannot do without a value: what the steps and the namespace rule use is required or has a default.
  if (Array.isArray(raw.parameters)) {
    raw.parameters.forEach((p: unknown, i) => {
      const spec = isObject(p) && typeof p.name === 'string' ? params.get(p.name) : undefined;
      if (spec && ctx.used.delete(spec.name) && !spec.required && spec.default === undefined) {
        problems.push(
          `parameters[${i}]: ${spec.name} is used by a step or the namespace rule; make it required or give it a default`,
        );
      }
    });
  }

  if (problems.length > 0) return { problems: capProblems(problems) };
  // A clean copy: what was checked, nothing shared with the caller's object.
  return { spec: structuredClone(raw) as unknown as RunbookSpec, problems };
}
