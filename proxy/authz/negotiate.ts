/**
 * Content negotiation for the answers kubegate gives itself (self reviews,
 * `kubectl auth whoami`), as kube-apiserver negotiates them: an `Accept`
 * that admits none of the representations served gets 406 NotAcceptable,
 * and a request body in a media type the apiserver does not decode gets 415.
 *
 * Served: JSON and YAML. A media range with `as=…` asks for a conversion
 * (Table, PartialObjectMetadata) that review objects do not have, so it does
 * not match. Protobuf-only clients are refused with 406, not answered in a
 * representation they did not ask for; client-go always lists JSON as well.
 */
import { KgError } from '../../common/errors.js';

export type Served = 'json' | 'yaml';
export type BodyType = 'json' | 'yaml' | 'protobuf';

const served = 'application/json, application/yaml';

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
}

function parseRange(text: string): MediaRange | undefined {
  const [type = '', ...rest] = text.split(';').map((s) => s.trim());
  if (!/^[\w.+*-]+\/[\w.+*-]+$/.test(type)) return undefined;
  const params = new Map<string, string>();
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq <= 0) continue;
    params.set(
      p.slice(0, eq).trim().toLowerCase(),
      p
        .slice(eq + 1)
        .trim()
        .replace(/^"|"$/g, ''),
    );
  }
  const q = params.has('q') ? Number(params.get('q')) : 1;
  return { type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0 };
}

/** The representation to answer in, or a 406 Status. No Accept means JSON. */
export function negotiate(accept: string | undefined): Served {
  if (accept === undefined || accept.trim() === '') return 'json';
  const ranges = accept
    .split(',')
    .map(parseRange)
    .filter((r): r is MediaRange => !!r && r.q > 0)
    .sort((a, b) => b.q - a.q);
  for (const r of ranges) {
    if (r.params.has('as')) continue; // a conversion we do not offer
    if (r.type === 'application/json' || r.type === 'application/*' || r.type === '*/*')
      return 'json';
    if (r.type === 'application/yaml') return 'yaml';
  }
  throw new KgError(
    'KG_ERR_NOT_ACCEPTABLE',
    `only the following media types are accepted: ${served}`,
  );
}

/** How to decode a request body, or a 415 Status. No Content-Type means JSON. */
export function bodyType(contentType: string | undefined): BodyType {
  const t = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (t === '' || t === 'application/json') return 'json';
  if (t === 'application/yaml') return 'yaml';
  if (t === 'application/vnd.kubernetes.protobuf') return 'protobuf';
  throw new KgError(
    'KG_ERR_UNSUPPORTED_MEDIA_TYPE',
    `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf`,
  );
}
