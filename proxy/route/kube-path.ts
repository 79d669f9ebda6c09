/**
 * Stage 1 of the request path: take the cluster from `/k8s/<cluster>/…` and
 * validate the RAW request target before anything decodes it
 * (docs/security.md "Path confusion").
 *
 * The rule that makes the rest safe: the bytes we forward are exactly the raw
 * remainder of the path, and the segments we authorise are decoded from those
 * same bytes. Anything that could make a decoder, a normaliser or the
 * apiserver's router see a different path than we do (dot segments, encoded
 * `/` or `\`, `%25` double encoding, `;` path parameters, NUL, empty segments)
 * is refused with KG_ERR_BAD_PATH (400) — never "cleaned up". Compare Envoy
 * CVE-2019-9901 (`..` not normalised before the route match) and Traefik
 * CVE-2025-32431 (`%2e%2e` slipping past a path-prefix rule).
 */
import { KgError } from '../../common/errors.js';

export interface KubeRoute {
  /** The cluster name: a DNS-1123 label. */
  cluster: string;
  /**
   * The raw remainder of the path, starting with '/', exactly the bytes to
   * forward (no normalisation), WITHOUT the query.
   */
  kubePath: string;
  /** '' or the raw query without the leading '?', forwarded as-is. */
  rawQuery: string;
}

const PREFIX = '/k8s/';

/** RFC 1123 label, as Kubernetes validates namespace names (IsDNS1123Label). */
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Raw characters allowed in a path segment: RFC 3986 `pchar` (unreserved,
 * sub-delims, ':' and '@') minus ';', plus '%' which is checked separately.
 * An allow-list, so that anything a client has no reason to send raw is a 400.
 */
const SEGMENT_CHARS = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@%") {
  SEGMENT_CHARS[c.charCodeAt(0)] = 1;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bad(message: string): KgError {
  return new KgError('KG_ERR_BAD_PATH', message);
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** The byte a `%XY` at `i` encodes, or -1 if the escape is malformed or truncated. */
function escapedByte(s: string, i: number): number {
  if (i + 2 >= s.length) return -1;
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

function describeByte(b: number): string {
  return `0x${b.toString(16).padStart(2, '0')}`;
}

/**
 * Check one raw path segment and return its decoded form. `where` names the
 * segment in error messages. Throws KG_ERR_BAD_PATH.
 */
function checkSegment(seg: string, where: string): string {
  let plain = true;
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c === 0x25) {
      plain = false;
      const b = escapedByte(seg, i);
      if (b < 0) {
        throw bad(
          `${where}: malformed percent-encoding ${JSON.stringify(seg.slice(i, i + 3))} (a '%' must be followed by two hex digits)`,
        );
      }
      // %25 lets a second decoder see another path (%252e → %2e → '.'); %2F and
      // %5C become separators once Go fills req.URL.Path, so the apiserver
      // would split differently than the raw bytes we route on; ';' is a path
      // parameter to some proxies; decoded control bytes have no place in a
      // Kubernetes name and only confuse logs and terminals.
      if (b === 0x25) throw bad(`${where}: double encoding (%25) is not allowed in the path`);
      if (b === 0x2f) throw bad(`${where}: an encoded '/' (%2F) is not allowed in the path`);
      if (b === 0x5c) throw bad(`${where}: an encoded '\\' (%5C) is not allowed in the path`);
      if (b === 0x3b) throw bad(`${where}: an encoded ';' (%3B) is not allowed in the path`);
      if (b === 0x00) throw bad(`${where}: an encoded NUL (%00) is not allowed in the path`);
      if (b < 0x20 || b === 0x7f) {
        throw bad(`${where}: an encoded control character (${describeByte(b)}) is not allowed`);
      }
      i += 2;
      continue;
    }
    if (c < 128 && SEGMENT_CHARS[c] === 1) continue;
    if (c === 0x5c) throw bad(`${where}: a backslash is not allowed in the path`);
    if (c === 0x3b) throw bad(`${where}: ';' (path parameters) is not allowed in the path`);
    // Control characters and non-ASCII were refused for the whole target already.
    throw bad(`${where}: the character ${JSON.stringify(seg[i])} must be percent-encoded`);
  }
  const decoded = plain ? seg : decodeStrict(seg, where);
  if (decoded === '.' || decoded === '..') {
    throw bad(`${where}: dot segments ('.' and '..', raw or percent-encoded) are not allowed`);
  }
  return decoded;
}

/** Percent-decode `s` as UTF-8, throwing KG_ERR_BAD_PATH on anything malformed. */
function decodeStrict(s: string, where: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const b = escapedByte(s, i);
      if (b < 0) throw bad(`${where}: malformed percent-encoding`);
      bytes.push(b);
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      throw bad(`${where}: raw non-ASCII character in the path`);
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch (err) {
    throw new KgError('KG_ERR_BAD_PATH', `${where}: percent-encoded bytes are not valid UTF-8`, {
      cause: err,
    });
  }
}

/** Check the query: forwarded as-is, but never with NUL or a malformed escape. */
function checkQuery(query: string): void {
  for (let i = 0; i < query.length; i++) {
    if (query.charCodeAt(i) !== 0x25) continue;
    const b = escapedByte(query, i);
    if (b < 0) {
      throw bad(
        `query: malformed percent-encoding ${JSON.stringify(query.slice(i, i + 3))} (a '%' must be followed by two hex digits)`,
      );
    }
    if (b === 0) throw bad('query: an encoded NUL (%00) is not allowed');
    i += 2;
  }
}

/**
 * Split and validate a raw request target (`req.url` as received, e.g.
 * `/k8s/dev/api/v1/namespaces?limit=500`). Promises: the result's `cluster` is
 * a DNS-1123 label; `kubePath` is byte-for-byte the rest of the raw path
 * (`/` for `/k8s/<cluster>` and `/k8s/<cluster>/`), has no empty (`//`), `.`
 * or `..` segment (one trailing '/' is kept), and decodes segment by segment to
 * exactly what the apiserver will route on. Throws KgError KG_ERR_BAD_PATH (400) naming what is wrong.
 */
export function routeKubeRequest(rawTarget: string): KubeRoute {
  // Whole target first: raw control characters, NUL, DEL, non-ASCII bytes,
  // spaces and fragments have no business in a request target (RFC 9112 §3.2).
  for (let i = 0; i < rawTarget.length; i++) {
    const c = rawTarget.charCodeAt(i);
    if (c < 0x20 || c >= 0x7f) {
      throw bad(
        `request target: raw ${c > 0xff ? `character U+${c.toString(16).toUpperCase().padStart(4, '0')}` : `byte ${describeByte(c)}`} at offset ${i} is not allowed (control characters, NUL and non-ASCII must not appear raw)`,
      );
    }
    if (c === 0x20) throw bad(`request target: a raw space at offset ${i} is not allowed`);
    if (c === 0x23) throw bad(`request target: '#' (a fragment) is not allowed`);
  }

  const q = rawTarget.indexOf('?');
  const path = q < 0 ? rawTarget : rawTarget.slice(0, q);
  const rawQuery = q < 0 ? '' : rawTarget.slice(q + 1);

  if (!path.startsWith(PREFIX)) {
    throw bad(
      path === '/k8s'
        ? 'path must name a cluster: /k8s/<cluster>/…'
        : 'path must start with /k8s/<cluster>/ (origin-form; absolute URLs are not accepted)',
    );
  }

  const rest = path.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  const cluster = slash < 0 ? rest : rest.slice(0, slash);
  const kubePath = slash < 0 ? '/' : rest.slice(slash);

  // Validate every raw segment after /k8s/, the cluster included, so that a
  // dot or encoded slash is reported as such rather than as a bad name.
  if (cluster === '') throw bad('path must name a cluster: /k8s/<cluster>/… (empty segment)');
  checkSegment(cluster, 'cluster segment');
  if (kubePath !== '/') {
    let start = 1;
    let index = 1;
    while (start <= kubePath.length) {
      let end = kubePath.indexOf('/', start);
      if (end < 0) end = kubePath.length;
      const seg = kubePath.slice(start, end);
      if (seg === '') {
        // One trailing '/' is kept and forwarded: the apiserver trims it when
        // it splits the path (as decodeSegments does), and the proxy
        // subresources need it (`…/services/web:80/proxy/`).
        if (end === kubePath.length) break;
        throw bad(`path segment ${index}: empty segments ('//') are not allowed`);
      }
      checkSegment(seg, `path segment ${index} ${JSON.stringify(seg)}`);
      start = end + 1;
      index++;
    }
  }
  if (!DNS1123_LABEL.test(cluster)) {
    throw bad(
      `cluster name ${JSON.stringify(cluster)} is not valid: it must be a DNS-1123 label (1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit)`,
    );
  }

  checkQuery(rawQuery);
  return { cluster, kubePath, rawQuery };
}

/**
 * The percent-decoded segments of a validated kubePath, split the way
 * kube-apiserver's RequestInfoFactory splits `req.URL.Path` (leading and
 * trailing '/' trimmed; `/` and `` give no segments). Because validated paths
 * contain no encoded '/', decoding per segment and decoding the whole path
 * agree. Throws KG_ERR_BAD_PATH on a malformed escape or invalid UTF-8.
 */
export function decodeSegments(kubePath: string): string[] {
  let start = 0;
  let end = kubePath.length;
  while (start < end && kubePath.charCodeAt(start) === 0x2f) start++;
  while (end > start && kubePath.charCodeAt(end - 1) === 0x2f) end--;
  if (start === end) return [];
  return kubePath
    .slice(start, end)
    .split('/')
    .map((seg, i) => decodeStrict(seg, `path segment ${i + 1}`));
}

/**
 * The whole kubePath percent-decoded: what Go's `req.URL.Path` is on the
 * apiserver, used for non-resource URL matching and messages.
 */
export function decodePath(kubePath: string): string {
  return decodeStrict(kubePath, 'path');
}

/**
 * First path segments reserved for kubegate itself: the agent's control
 * channel (`/.kubegate/…`) and its stream-cancel path (`/.kg-cancel`). The
 * apiserver serves nothing there, so a user request under them is refused at
 * the route stage, whatever the spelling: compared after percent-decoding and
 * case folding (`/%2Ekubegate`, `/.KubeGate`); `//`, `/./`, `..` and encoded
 * slashes never get this far (routeKubeRequest refuses them).
 */
export function isReservedKubePath(kubePath: string): boolean {
  let first: string;
  try {
    first = decodeSegments(kubePath)[0] ?? '';
  } catch {
    return false; // malformed: routeKubeRequest refused it already
  }
  const f = first.toLowerCase();
  return f.startsWith('.kubegate') || f.startsWith('.kg');
}

/** Throws KG_ERR_NOT_FOUND (404, a Kubernetes Status) for a reserved path (see above). */
export function refuseReservedPath(kubePath: string): void {
  if (!isReservedKubePath(kubePath)) return;
  throw new KgError(
    'KG_ERR_NOT_FOUND',
    `the path ${JSON.stringify(kubePath.length > 100 ? `${kubePath.slice(0, 100)}…` : kubePath)} is reserved for kubegate's agent control channel and is never forwarded to a cluster`,
  );
}
