/**
 * The identity of a gated request: who sends what, where, with which body.
 * An approval is for exactly one fingerprint; the same request sent again
 * (same user, cluster, method, path, query and body) has the same one, and
 * any difference — one byte of meaning in the body — makes a new one.
 *
 * JSON bodies are hashed in a canonical form (keys sorted, no whitespace),
 * so a client that re-serialises the same object differently still matches;
 * every other body (YAML apply patches, protobuf) is hashed byte for byte.
 */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level; arrays keep their order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

function isJsonType(contentType: string | undefined): boolean {
  const t = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return t === 'application/json' || (t.startsWith('application/') && t.endsWith('+json'));
}

/** sha256 (hex) of the body: canonical JSON when it is JSON, else the bytes. */
export function bodySha256(body: Buffer, contentType: string | undefined): string {
  const h = createHash('sha256');
  if (body.length > 0 && isJsonType(contentType)) {
    try {
      return h.update('json:' + canonicalJson(JSON.parse(body.toString('utf8')))).digest('hex');
    } catch {
      // Not valid JSON after all: the raw bytes are what the apiserver gets.
    }
  }
  return h.update('raw:').update(body).digest('hex');
}

export interface GatedRequest {
  user: string;
  userKind: 'user' | 'robot';
  cluster: string;
  method: string;
  /** The kube path as forwarded (no decoding). */
  kubePath: string;
  rawQuery: string;
  contentType: string;
  bodySha256: string;
}

/** Query parameters sorted (name, then value), so their order does not matter. */
export function canonicalQuery(rawQuery: string): string {
  const pairs = [...new URLSearchParams(rawQuery)];
  pairs.sort((a, b) => (a[0] === b[0] ? (a[1] < b[1] ? -1 : 1) : a[0] < b[0] ? -1 : 1));
  return new URLSearchParams(pairs).toString();
}

/** sha256 (hex) over every field that makes two requests the same request. */
export function requestFingerprint(r: GatedRequest): string {
  const mediaType = r.contentType.split(';')[0]!.trim().toLowerCase();
  return createHash('sha256')
    .update(
      canonicalJson({
        v: 1,
        user: `${r.userKind}:${r.user}`,
        cluster: r.cluster,
        method: r.method.toUpperCase(),
        path: r.kubePath,
        query: canonicalQuery(r.rawQuery),
        contentType: mediaType,
        body: r.bodySha256,
      }),
    )
    .digest('hex');
}
