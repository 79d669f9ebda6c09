/**
 * A checked runbook and checked parameter values turned into the concrete
 * Kubernetes API calls of one run in one cluster — pure: no I/O, and the
 * clock comes in as `now`.
 *
 * Placeholders are replaced in one pass over the *definition's* strings: a
 * value is placed as data and never read again, so `{{other}}` inside a value
 * stays text, and quotes, braces or YAML in a value stay inside that one JSON
 * string. Paths are built only from parts that passed a grammar check (object
 * names must be DNS subdomains, namespaces and containers DNS labels) and are
 * percent-encoded all the same.
 *
 * Nothing here sets `dryRun`: the caller adds `dryRun=All` to a change's
 * query for a dry run.
 */
import { deeperThan } from '../../common/json-depth.js';
import {
  builtinNamespace,
  capProblems,
  dnsLabel,
  isDnsSubdomain,
  jobResource,
  limits,
  parseTemplate,
  podResource,
  wholeRef,
  type ResourceRef,
  type RunbookSpec,
  type Step,
  type Target,
} from './definition.js';
import type { ParamValues } from './params.js';
import { isObject } from '../../common/json-object.js';

export interface ApiCall {
  method: 'GET' | 'PATCH' | 'POST' | 'DELETE';
  path: string;
  /** Without the leading '?'; '' for none. */
  query: string;
  contentType?: string;
  body?: unknown;
}

export interface RenderedStep {
  index: number;
  name: string;
  action: Step['action'];
  onFailure: 'stop' | 'continue';
  namespace?: string;
  /** The object's URL path (for logs: the pod's). */
  objectPath: string;
  /** The change (absent for read/logs/wait): dryRun adds `dryRun=All` to its query. */
  call?: ApiCall;
  /** For wait/job: poll this GET until `conditionMet(obj, condition)` is not 'no'; timeoutSeconds. */
  poll?: { call: ApiCall; timeoutSeconds: number; condition: { type: string; status: string } };
  /** For read/logs: the GET whose answer goes into the result. */
  read?: ApiCall;
}

export interface RenderOptions {
  /** The restart annotation's value (an RFC 3339 time); the runner passes its clock in. */
  now?: string;
}

export const fieldManager = 'kubegate-runbook';
export const restartAnnotation = 'kubectl.kubernetes.io/restartedAt';

const contentTypes = {
  apply: 'application/apply-patch+yaml',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json',
} as const;

class Renderer {
  readonly problems: string[] = [];

  constructor(
    private readonly values: ParamValues,
    private readonly namespace: string | undefined,
    private readonly declared: ReadonlySet<string>,
  ) {}

  private lookup(ref: string, at: string): string | number | boolean | undefined {
    if (ref === builtinNamespace && !this.declared.has(ref)) {
      if (this.namespace === undefined)
        this.problems.push(`${at}: {{namespace}} but the run has no namespace`);
      return this.namespace;
    }
    if (!this.declared.has(ref) || !Object.hasOwn(this.values, ref)) {
      this.problems.push(`${at}: parameter ${ref} has no value`);
      return undefined;
    }
    return this.values[ref];
  }

  /** One string of the definition with its placeholders replaced (typed when it is one whole placeholder). */
  fill(s: string, at: string): unknown {
    const t = parseTemplate(s);
    if ('problem' in t) {
      this.problems.push(`${at}: ${t.problem}`);
      return undefined;
    }
    const whole = wholeRef(t.parts);
    if (whole !== undefined) return this.lookup(whole, at);
    let out = '';
    for (const p of t.parts)
      out += typeof p === 'string' ? p : String(this.lookup(p.ref, at) ?? '');
    return out;
  }

  /** A copy of a manifest or patch with every string value filled; keys are copied as they are. */
  tree(value: unknown, at: string): unknown {
    if (typeof value === 'string') return this.fill(value, at);
    if (Array.isArray(value)) return value.map((v, i) => this.tree(v, `${at}[${i}]`));
    if (isObject(value)) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value)) {
        // defineProperty: a key is always an own data property, whatever its name.
        Object.defineProperty(out, k, {
          value: this.tree(v, `${at}.${k}`),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    return value;
  }

  objectName(template: string, at: string): string | undefined {
    const v = this.fill(template, at);
    if (typeof v !== 'string' || !isDnsSubdomain(v)) {
      this.problems.push(
        `${at}: ${JSON.stringify(String(v).slice(0, 80))} is not a valid object name (a DNS subdomain: lowercase letters, digits, '-' and '.', at most 253)`,
      );
      return undefined;
    }
    return v;
  }

  /** The run's namespace for a namespaced resource (undefined for a cluster-scoped one). */
  scope(ref: ResourceRef, at: string): { ok: boolean; ns?: string } {
    if (!ref.namespaced) return { ok: true };
    const ns = this.namespace;
    if (ns === undefined || ns.length > 63 || !dnsLabel.test(ns)) {
      this.problems.push(
        `${at}: ${ref.resource} are namespaced and the run has no valid namespace`,
      );
      return { ok: false };
    }
    return { ok: true, ns };
  }
}

const enc = encodeURIComponent;

/** The collection's URL path: core group under /api, others under /apis. */
export function collectionPath(ref: ResourceRef, namespace: string | undefined): string {
  const base =
    ref.group === '' ? `/api/${enc(ref.version)}` : `/apis/${enc(ref.group)}/${enc(ref.version)}`;
  return ref.namespaced
    ? `${base}/namespaces/${enc(namespace ?? '')}/${enc(ref.resource)}`
    : `${base}/${enc(ref.resource)}`;
}

function get(path: string, query = ''): ApiCall {
  return { method: 'GET', path, query };
}

function query(entries: [string, string | number | undefined][]): string {
  const q = new URLSearchParams();
  for (const [k, v] of entries) if (v !== undefined) q.append(k, String(v));
  return q.toString();
}

/** The name template of a checked manifest. */
function manifestName(m: Record<string, unknown>): string {
  const meta = m.metadata;
  return isObject(meta) && typeof meta.name === 'string' ? meta.name : '';
}

function renderStep(
  r: Renderer,
  step: Step,
  index: number,
  opts: RenderOptions,
): RenderedStep | undefined {
  const at = `steps[${index}]`;
  const before = r.problems.length;
  const out = {
    index,
    name: step.name,
    action: step.action,
    onFailure: step.onFailure ?? 'stop',
  } as RenderedStep;

  const locate = (ref: ResourceRef, name: string | undefined, where: string) => {
    const s = r.scope(ref, where);
    if (!s.ok || name === undefined) return undefined;
    if (s.ns !== undefined) out.namespace = s.ns;
    out.objectPath = `${collectionPath(ref, s.ns)}/${enc(name)}`;
    return s;
  };
  const onTarget = (t: Target) =>
    locate(t, r.objectName(t.name, `${at}.target.name`), `${at}.target`);

  switch (step.action) {
    case 'apply': {
      const m = r.tree(step.manifest, `${at}.manifest`) as Record<string, unknown>;
      const meta = m.metadata as Record<string, unknown>;
      const name = r.objectName(manifestName(step.manifest), `${at}.manifest.metadata.name`);
      const s = locate(step.resource, name, `${at}.resource`);
      if (!s) break;
      if (s.ns !== undefined) meta.namespace = s.ns;
      out.call = {
        method: 'PATCH',
        path: out.objectPath,
        query: query([
          ['fieldManager', fieldManager],
          ['force', 'true'],
        ]),
        contentType: contentTypes.apply,
        body: m,
      };
      break;
    }
    case 'patch': {
      if (!onTarget(step.target)) break;
      out.call = patch(out.objectPath, step.patchType, r.tree(step.patch, `${at}.patch`));
      break;
    }
    case 'scale': {
      const n =
        typeof step.replicas === 'string' ? r.fill(step.replicas, `${at}.replicas`) : step.replicas;
      if (!Number.isSafeInteger(n) || (n as number) < 0) {
        r.problems.push(`${at}.replicas: ${JSON.stringify(n)} is not a replica count`);
      }
      if (!onTarget(step.target)) break;
      out.call = patch(out.objectPath, 'merge', { spec: { replicas: n } });
      break;
    }
    case 'restart': {
      if (typeof opts.now !== 'string' || opts.now === '') {
        r.problems.push(`${at}: a restart needs the time (render option now)`);
      }
      if (!onTarget(step.target)) break;
      out.call = patch(out.objectPath, 'strategic', {
        spec: { template: { metadata: { annotations: { [restartAnnotation]: opts.now } } } },
      });
      break;
    }
    case 'delete': {
      if (!onTarget(step.target)) break;
      out.call = {
        method: 'DELETE',
        path: out.objectPath,
        query: query([['propagationPolicy', 'Background']]),
      };
      break;
    }
    case 'job': {
      const m = r.tree(step.manifest, `${at}.manifest`) as Record<string, unknown>;
      const meta = m.metadata as Record<string, unknown>;
      const name = r.objectName(manifestName(step.manifest), `${at}.manifest.metadata.name`);
      const s = locate(jobResource, name, at);
      if (!s) break;
      meta.namespace = s.ns;
      out.call = {
        method: 'POST',
        path: collectionPath(jobResource, s.ns),
        query: '',
        contentType: contentTypes.json,
        body: m,
      };
      out.poll = {
        call: get(out.objectPath),
        timeoutSeconds: step.timeoutSeconds,
        condition: { type: 'Complete', status: 'True' },
      };
      break;
    }
    case 'wait': {
      if (!onTarget(step.target)) break;
      out.poll = {
        call: get(out.objectPath),
        timeoutSeconds: step.timeoutSeconds,
        condition: { type: step.condition.type, status: step.condition.status ?? 'True' },
      };
      break;
    }
    case 'read': {
      if (!onTarget(step.target)) break;
      out.read = get(out.objectPath);
      break;
    }
    case 'logs': {
      let container: string | undefined;
      if (step.container !== undefined) {
        const c = r.fill(step.container, `${at}.container`);
        if (typeof c !== 'string' || !dnsLabel.test(c)) {
          r.problems.push(
            `${at}.container: ${JSON.stringify(String(c).slice(0, 80))} is not a container name (a DNS label)`,
          );
        } else {
          container = c;
        }
      }
      if (!locate(podResource, r.objectName(step.pod, `${at}.pod`), at)) break;
      out.read = get(
        `${out.objectPath}/log`,
        query([
          ['container', container],
          ['tailLines', step.tailLines],
        ]),
      );
      break;
    }
  }
  return r.problems.length === before ? out : undefined;
}

/** A merge or strategic merge patch of one object. */
function patch(path: string, type: 'merge' | 'strategic', body: unknown): ApiCall {
  return { method: 'PATCH', path, query: '', contentType: contentTypes[type], body };
}

/**
 * The API calls of one run. `spec` passed validateRunbook and `values` and
 * `namespace` came from validateParams; everything that reaches a path is
 * checked again here all the same. Every problem at once.
 */
export function renderRun(
  spec: RunbookSpec,
  values: ParamValues,
  namespace: string | undefined,
  opts: RenderOptions = {},
): { steps?: RenderedStep[]; problems: string[] } {
  const r = new Renderer(values, namespace, new Set(spec.parameters.map((p) => p.name)));
  const steps: RenderedStep[] = [];
  spec.steps.forEach((step, i) => {
    const body =
      step.action === 'apply' || step.action === 'job'
        ? step.manifest
        : step.action === 'patch'
          ? step.patch
          : undefined;
    if (body !== undefined && deeperThan(body, limits.depth)) {
      r.problems.push(`steps[${i}]: nested deeper than ${limits.depth} levels`);
      return;
    }
    const s = renderStep(r, step, i, opts);
    if (s) steps.push(s);
  });
  if (r.problems.length > 0) return { problems: capProblems(r.problems) };
  return { steps, problems: [] };
}

/**
 * Whether an object polled by a wait or job step has reached its condition:
 * 'yes' when `status.conditions` holds the type with the status; 'failed'
 * when it holds `Failed` with status True instead (a Job that gave up) —
 * unless `Failed` is what is awaited; 'no' otherwise (also for anything that
 * is not an object with a list of conditions).
 */
export function conditionMet(
  obj: unknown,
  cond: { type: string; status: string },
): 'yes' | 'no' | 'failed' {
  const status = isObject(obj) ? obj.status : undefined;
  const list = isObject(status) ? status.conditions : undefined;
  if (!Array.isArray(list)) return 'no';
  let failed = false;
  for (const c of list) {
    if (!isObject(c)) continue;
    if (c.type === cond.type && c.status === cond.status) return 'yes';
    if (c.type === 'Failed' && c.status === 'True' && cond.type !== 'Failed') failed = true;
  }
  return failed ? 'failed' : 'no';
}
