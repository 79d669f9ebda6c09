/**
 * What never reaches the audit log (docs/security.md, "Secrets in logs"; compare
 * CVE-2019-11250 and Rancher CVE-2023-22649): Secret `data`/`stringData` in
 * any shape (object, list, patch, watch event), the
 * `kubectl.kubernetes.io/last-applied-configuration` copy of a Secret, the
 * token of a TokenRequest or TokenReview, and anything shaped like a bearer
 * token anywhere in a body or URI. Headers are never recorded at all.
 *
 * Two layers, so that one mistake is not a leak: by *target* (any body sent
 * to or read from `secrets` is Secret-shaped, even a patch with no `kind`),
 * then by *content* (any object with `kind: Secret`, any last-applied copy,
 * any token-shaped string). Values become "[redacted]"; keys stay, so the log
 * still says which keys changed.
 */

import { deeperThan } from '../../common/json-depth.js';
import { isObject } from '../../common/json-object.js';

export const REDACTED = '[redacted]';

/**
 * Deepest body kept in an event. The walks below recurse, so a body is
 * measured first (without recursion) and one nested deeper is replaced
 * whole by a marker: a 40 KB `[[[[…]]]]` must never reach the call stack's
 * limit inside a response listener. Real Kubernetes objects (CRD schemas
 * included) stay far below this.
 */
export const maxBodyDepth = 100;
/** The key of the object that stands for a body that was not kept. */
export const omittedKey = 'kubegate.dev/omitted';

/** What an event holds instead of a body it cannot keep, saying why. */
export function omitted(why: string): { [omittedKey]: string } {
  return { [omittedKey]: why };
}
export const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';

/** The resource a body was sent to or read from. */
export interface BodyTarget {
  apiGroup: string;
  resource: string;
  subresource: string;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/**
 * Token shapes: kubegate tokens, JWTs (ServiceAccount and OIDC tokens),
 * `Bearer …` credentials and basic-auth user:password in URLs.
 */
const tokenShapes: RegExp[] = [
  /kg_[A-Za-z0-9_-]{20,}/g,
  /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g,
  /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  /(\/\/[^/\s:@]+:)[^/\s@]+@/g,
];

/** A string with every token-shaped run replaced. */
export function scrubString(s: string): string {
  if (s.length < 8) return s;
  let out = s;
  for (const re of tokenShapes) {
    re.lastIndex = 0;
    if (re.test(out)) {
      re.lastIndex = 0;
      out = out.replace(re, (_m, g1: unknown) =>
        typeof g1 === 'string' && g1.startsWith('//') ? `${g1}${REDACTED}@` : REDACTED,
      );
    }
  }
  return out;
}

function redactMap(v: unknown): unknown {
  if (!isObject(v)) return v === undefined || v === null ? v : REDACTED;
  return Object.fromEntries(Object.keys(v).map((k) => [k, REDACTED]));
}

/**
 * A body that is, or is about, a Secret: a Secret, a SecretList, a watch
 * event, a strategic-merge or merge patch (no `kind`), or a JSON patch (a
 * list of operations whose `value`s are redacted).
 */
function redactSecretShaped(v: unknown): unknown {
  if (Array.isArray(v)) {
    return v.map((op) => (isObject(op) && 'value' in op ? { ...op, value: REDACTED } : op));
  }
  if (!isObject(v)) return typeof v === 'string' ? REDACTED : v;
  const out: Record<string, unknown> = { ...v };
  if ('data' in out) out.data = redactMap(out.data);
  if ('stringData' in out) out.stringData = redactMap(out.stringData);
  if (Array.isArray(out.items)) out.items = out.items.map(redactSecretShaped);
  if (isObject(out.object) && typeof out.type === 'string')
    out.object = redactSecretShaped(out.object);
  if (isObject(out.metadata) && isObject(out.metadata.annotations)) {
    const ann = out.metadata.annotations;
    if (lastApplied in ann) {
      out.metadata = { ...out.metadata, annotations: { ...ann, [lastApplied]: REDACTED } };
    }
  }
  return out;
}

function redactAt(v: Record<string, unknown>, field: string, key: string): Record<string, unknown> {
  const inner = v[field];
  if (!isObject(inner) || !(key in inner)) return v;
  return { ...v, [field]: { ...inner, [key]: REDACTED } };
}

/** The last-applied copy is the whole object as JSON: redact it as an object of its own. */
function redactLastApplied(text: unknown): unknown {
  if (typeof text !== 'string') return REDACTED;
  try {
    const parsed = JSON.parse(text) as unknown;
    if (deeperThan(parsed, maxBodyDepth)) return REDACTED;
    return JSON.stringify(scrub(parsed));
  } catch {
    return REDACTED; // not JSON: we cannot tell what it holds
  }
}

/** The content layer: applied to every value, at every depth. */
function scrub(v: unknown): unknown {
  if (typeof v === 'string') return scrubString(v);
  if (Array.isArray(v)) return v.map(scrub);
  if (!isObject(v)) return v;
  let obj: Record<string, unknown> = v;
  if (obj.kind === 'Secret' || obj.kind === 'SecretList') {
    obj = redactSecretShaped(obj) as Record<string, unknown>;
  } else if (obj.kind === 'TokenRequest') {
    obj = redactAt(obj, 'status', 'token');
  } else if (obj.kind === 'TokenReview') {
    obj = redactAt(obj, 'spec', 'token');
  }
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(obj)) {
    out[k] = k === lastApplied ? redactLastApplied(val) : scrub(val);
  }
  return out;
}

/**
 * Redact a parsed JSON request or response body for the audit log. The
 * result is a new value; the input is not changed. A body nested deeper
 * than `maxBodyDepth` is replaced by `{"kubegate.dev/omitted": why}`.
 */
export function redactBody(body: unknown, target: BodyTarget): unknown {
  if (deeperThan(body, maxBodyDepth))
    return omitted(`body nested deeper than ${maxBodyDepth} levels`);
  let v = body;
  if (target.apiGroup === '' && target.resource === 'secrets') {
    v = redactSecretShaped(v);
  } else if (
    target.apiGroup === '' &&
    target.resource === 'serviceaccounts' &&
    target.subresource === 'token' &&
    isObject(v)
  ) {
    v = redactAt(v, 'status', 'token');
  } else if (
    target.apiGroup === 'authentication.k8s.io' &&
    target.resource === 'tokenreviews' &&
    isObject(v)
  ) {
    v = redactAt(v, 'spec', 'token');
  }
  return scrub(v) as Json;
}

const secretParams = /^(access_token|token|id_token|password|secret|client_secret)$/i;

/**
 * A request URI for the log: values of credential-named query parameters
 * and token-shaped runs are redacted; the path is kept as sent.
 */
export function redactUri(uri: string): string {
  const q = uri.indexOf('?');
  if (q < 0) return scrubString(uri);
  const query = uri
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // keep the raw name
      }
      return eq >= 0 && secretParams.test(decoded) ? `${name}=${REDACTED}` : pair;
    })
    .join('&');
  return scrubString(`${uri.slice(0, q)}?${query}`);
}
