/**
 * Stage 3 of the request path: method + path + query → the Kubernetes
 * authorization tuple, derived the way kube-apiserver's RequestInfoFactory
 * does (APIPrefixes `api`,`apis`; GrouplessAPIPrefixes `api`), so that what
 * kubegate authorises is what the cluster's own RBAC will check again.
 *
 * Source of the facts: k8s.io/apiserver/pkg/endpoints/request/requestinfo.go
 * https://github.com/kubernetes/kubernetes/blob/master/staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go
 *
 * One kubegate rule on top (docs/security.md "Verb and group
 * confusion"): `pods/exec`, `pods/attach` and `pods/portforward` are always
 * verb `create`, whatever the HTTP method — a WebSocket upgrade arrives as GET,
 * and `get pods/exec` must never be enough to run commands (KEP-4006,
 * https://github.com/kubernetes/enhancements/issues/4006).
 */
import { KgError } from '../../common/errors.js';
import { decodePath, decodeSegments } from '../route/kube-path.js';
import { listLabelSelectorAccepted, parseFieldSelectorName } from '../../common/kube-grammar.js';

export interface RequestInfo {
  /** True for /api/… and /apis/… paths long enough to name a resource. */
  isResourceRequest: boolean;
  /** The percent-decoded path (Go's `req.URL.Path`), e.g. `/api/v1/pods`. */
  path: string;
  /** Kube verb for resource requests; the lowercase HTTP method otherwise. */
  verb: string;
  apiPrefix: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** Path parts starting at {resource}/{name}; [] for non-resource requests. */
  parts: string[];
  /** Set when a list/watch names one object through `fieldSelector=metadata.name=…`. */
  fieldSelectorName?: string;
}

const API_PREFIXES = new Set(['api', 'apis']);
const GROUPLESS_API_PREFIXES = new Set(['api']);
/** Legacy verbs given as a path prefix: /api/v1/watch/…, /api/v1/proxy/…. */
const SPECIAL_VERBS = new Set(['proxy', 'watch']);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(['proxy']);
/** Lets `/namespaces/{ns}/status` be a subresource and `/namespaces/{ns}/pods` a resource. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);
/**
 * Pod subresources that open a stream into a container: always `create`
 * (KEP-4006). Upgrades on a proxy subresource are `create` too (see `requestInfo`).
 */
const CONNECT_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

function verbForMethod(method: string): string {
  // Exact, upper-case match as in Go: an unknown method yields verb '' (only `*` matches it).
  switch (method) {
    case 'POST':
      return 'create';
    case 'GET':
    case 'HEAD':
      return 'get';
    case 'PUT':
      return 'update';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return '';
  }
}

/** The RequestInfo of a non-resource request (`/healthz`, `/version`, …): only path and verb. */
export function nonResourceInfo(path: string, verb: string): RequestInfo {
  return {
    isResourceRequest: false,
    path,
    verb,
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
  };
}

/**
 * Derive the authorization tuple for a request whose path was validated by
 * `routeKubeRequest`. Throws KG_ERR_BAD_PATH where the apiserver's factory
 * fails (`/api/v1/watch` with nothing after the special verb).
 */
export function requestInfo(
  method: string,
  kubePath: string,
  rawQuery: string,
  opts: { upgrade?: boolean } = {},
): RequestInfo {
  const info = nonResourceInfo(decodePath(kubePath), method.toLowerCase());

  const all = decodeSegments(kubePath);
  if (all.length < 3 || !API_PREFIXES.has(all[0] as string)) return info;
  const apiPrefix = all[0] as string;
  let i = 1;
  let apiGroup = '';
  if (!GROUPLESS_API_PREFIXES.has(apiPrefix)) {
    // Grouped prefixes need /apis/{group}/{version}/{resource} at least.
    if (all.length < 4) return info;
    apiGroup = all[1] as string;
    i = 2;
  }
  info.isResourceRequest = true;
  info.apiPrefix = apiPrefix;
  info.apiGroup = apiGroup;
  info.apiVersion = all[i] as string;
  i++;

  let parts = all.slice(i);
  if (SPECIAL_VERBS.has(parts[0] as string)) {
    if (parts.length < 2) {
      throw new KgError(
        'KG_ERR_BAD_PATH',
        `unable to determine kind and namespace from path ${JSON.stringify(info.path)}: "${parts[0]}" must be followed by a resource`,
      );
    }
    info.verb = parts[0] as string;
    parts = parts.slice(1);
  } else {
    info.verb = verbForMethod(method);
  }

  // /namespaces/{namespace}/{resource}/…: parts become relative to the resource,
  // unless the third part is a subresource of the namespace itself.
  if (parts[0] === 'namespaces' && parts.length > 1) {
    info.namespace = parts[1] as string;
    if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2] as string)) parts = parts.slice(2);
  }
  info.parts = parts;

  // parts: resource/name/subresource/anything/else/uninterpreted
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(info.verb)) {
    info.subresource = parts[2] as string;
  }
  if (parts.length >= 2) info.name = parts[1] as string;
  info.resource = parts[0] as string;

  if (info.name === '' && info.verb === 'get') listOrWatch(info, rawQuery);
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';

  if (
    info.apiGroup === '' &&
    info.resource === 'pods' &&
    CONNECT_SUBRESOURCES.has(info.subresource)
  ) {
    info.verb = 'create';
  }
  // A connection upgrade through a proxy subresource (nodes/proxy,
  // pods/proxy, services/proxy) opens a stream to whatever is behind it —
  // the kubelet's exec included — so it needs `create`, never just `get`.
  if (opts.upgrade && info.subresource === 'proxy' && info.verb === 'get') info.verb = 'create';
  return info;
}

// ---------------------------------------------------------------------------
// list / watch and the metadata.name field selector
//
// The apiserver decodes the query into ListOptions. If that succeeds, `watch`
// decides list vs watch and `fieldSelector` may name the one object
// (`kubectl get pod web -w` sends fieldSelector=metadata.name=web), which lets
// a resourceNames rule allow it. If decoding fails anywhere, the name is not
// set and `watch` is read raw. We mirror that; where our check of a part is
// stricter than the apiserver's (label selectors), the only effect is that a
// name is not lifted — the request is judged without it, which never widens
// access.

interface ListQuery {
  watch?: string;
  fieldSelector?: string;
  labelSelector?: string;
  limit?: string;
  timeoutSeconds?: string;
}

const LIST_KEYS = new Set<string>([
  'watch',
  'fieldSelector',
  'labelSelector',
  'limit',
  'timeoutSeconds',
]);

function listOrWatch(info: RequestInfo, rawQuery: string): void {
  const q = parseListQuery(rawQuery);
  const decoded =
    isInt64(q.limit) &&
    isInt64(q.timeoutSeconds) &&
    listLabelSelectorAccepted(q.labelSelector ?? '');
  const field = decoded ? parseFieldSelectorName(q.fieldSelector ?? '') : undefined;
  const ok = decoded && field !== undefined;

  let watch = false;
  if (q.watch !== undefined) {
    // ListOptions decoding uses Convert_Slice_string_To_bool (strings.EqualFold);
    // the fallback after a decoding error uses strings.ToLower. They differ
    // only for Unicode case folds such as 'ſ' (U+017F) ~ 's'.
    const v = q.watch;
    watch = !(v === '0' || (ok ? equalFoldFalse(v) : v.toLowerCase() === 'false'));
  }
  info.verb = watch ? 'watch' : 'list';

  if (ok && field.name !== undefined && isValidPathSegmentName(field.name) && field.name !== '') {
    info.name = field.name;
    info.fieldSelectorName = field.name;
  }
}

function equalFoldFalse(v: string): boolean {
  if (v.length !== 5) return false;
  const target = 'false';
  for (let i = 0; i < 5; i++) {
    let c = v.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c === 0x17f) c = 0x73; // 'ſ' folds to 's' in Go's EqualFold
    if (c !== target.charCodeAt(i)) return false;
  }
  return true;
}

/** k8s.io/apimachinery/pkg/api/validation/path.IsValidPathSegmentName. */
function isValidPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}

/** strconv.ParseInt(s, 10, 64) succeeds; absent is fine. */
function isInt64(v: string | undefined): boolean {
  if (v === undefined) return true;
  if (!/^[+-]?[0-9]+$/.test(v)) return false;
  const n = BigInt(v);
  return n >= -(2n ** 63n) && n <= 2n ** 63n - 1n;
}

/**
 * The first value of each ListOptions key, parsed like Go's url.ParseQuery:
 * pairs split on '&', a pair containing ';' or a bad escape is skipped, '+'
 * is a space, keys and values are percent-decoded.
 */
function parseListQuery(rawQuery: string): ListQuery {
  const out: ListQuery = {};
  if (rawQuery === '') return out;
  for (const pair of rawQuery.split('&')) {
    if (pair === '' || pair.includes(';')) continue;
    const eq = pair.indexOf('=');
    const key = queryUnescape(eq < 0 ? pair : pair.slice(0, eq));
    if (key === undefined || !LIST_KEYS.has(key)) continue;
    const value = queryUnescape(eq < 0 ? '' : pair.slice(eq + 1));
    if (value === undefined) continue;
    const k = key as keyof ListQuery;
    if (out[k] === undefined) out[k] = value;
  }
  return out;
}

const lenientUtf8 = new TextDecoder('utf-8');

function queryUnescape(s: string): string | undefined {
  if (!s.includes('%') && !s.includes('+')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      bytes.push(0x20);
    } else if (c === 0x25) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      for (const b of Buffer.from(s[i] as string, 'utf8')) bytes.push(b);
    }
  }
  return lenientUtf8.decode(Uint8Array.from(bytes));
}
