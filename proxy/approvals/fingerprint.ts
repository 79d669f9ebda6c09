/**
 * The identity of a gated request: who sends what, where, with which body.
 * An approval is for exactly one fingerprint, and it must cover exactly
 * what will run — so the fingerprint is taken over the bytes kubegate
 * forwards, never over a normalised form of them:
 *
 * - the raw path and the raw query, byte for byte: the apiserver gives
 *   repeated parameters meaning by their order (exec's `command` is argv;
 *   `propagationPolicy`, `gracePeriodSeconds`, `dryRun`… are read first
 *   wins), so sorting or re-encoding them would let one approval cover
 *   another request;
 * - the body bytes (a sha256 of them): a JSON body is not canonicalised,
 *   since two bodies that parse to the same JavaScript value may still mean
 *   different things to the apiserver (duplicate keys merge into a Go
 *   struct but replace in a JavaScript object);
 * - the Content-Type header as sent.
 *
 * The same request sent again by the same client (kubectl serialises
 * deterministically) has the same fingerprint; any other byte makes a new one.
 */
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level; arrays keep their order. For kubegate's own small records only. */
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

/**
 * sha256 (hex) of the body bytes exactly as they are forwarded — the same
 * value `sha256sum` gives for the body, whatever its content type.
 */
export function bodySha256(body: Buffer): string {
  return createHash('sha256').update(body).digest('hex');
}

export interface GatedRequest {
  user: string;
  userKind: 'user' | 'robot';
  cluster: string;
  method: string;
  /** The kube path as forwarded (no decoding). */
  kubePath: string;
  /** The query as forwarded (no decoding, no reordering). */
  rawQuery: string;
  /** The Content-Type header as sent ('' when none). */
  contentType: string;
  bodySha256: string;
}

/** sha256 (hex) over every field that makes two requests the same request. */
export function requestFingerprint(r: GatedRequest): string {
  return createHash('sha256')
    .update(
      canonicalJson({
        v: 2,
        user: `${r.userKind}:${r.user}`,
        cluster: r.cluster,
        method: r.method,
        path: r.kubePath,
        query: r.rawQuery,
        contentType: r.contentType,
        body: r.bodySha256,
      }),
    )
    .digest('hex');
}
