/**
 * kubectl sends SelfSubjectAccessReview and SelfSubjectRulesReview as
 * Kubernetes protobuf (Content-Type application/vnd.kubernetes.protobuf).
 * We decode just those two messages into their JSON shape; the answer goes
 * back as JSON, which kubectl's Accept header also allows.
 *
 * Wire format: the 4-byte magic "k8s\0", then runtime.Unknown
 * {1: typeMeta, 2: raw, 3: contentEncoding, 4: contentType}; raw is the
 * object (k8s.io/api/authorization/v1/generated.proto):
 *   Self*Review {1: metadata, 2: spec, 3: status}
 *   SelfSubjectAccessReviewSpec {1: resourceAttributes, 2: nonResourceAttributes}
 *   ResourceAttributes {1 namespace, 2 verb, 3 group, 4 version, 5 resource, 6 subresource, 7 name}
 *   NonResourceAttributes {1 path, 2 verb}
 *   SelfSubjectRulesReviewSpec {1 namespace}
 */
import { KgError } from '../../common/errors.js';

const magic = Buffer.from([0x6b, 0x38, 0x73, 0x00]);

type Fields = Map<number, Buffer[]>;

/** Length-delimited fields of one message, by field number (varints are skipped). */
function fields(buf: Buffer): Fields {
  const out: Fields = new Map();
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      if (i >= buf.length) throw new Error('truncated varint');
      const b = buf[i++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (!(b & 0x80)) return v;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) varint();
    else if (wire === 2) {
      const len = varint();
      if (i + len > buf.length) throw new Error('truncated field');
      out.set(field, [...(out.get(field) ?? []), buf.subarray(i, i + len)]);
      i += len;
    } else if (wire === 1) i += 8;
    else if (wire === 5) i += 4;
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return out;
}

const one = (f: Fields, n: number): Buffer | undefined => f.get(n)?.[0];
const text = (f: Fields, n: number): string => one(f, n)?.toString('utf8') ?? '';

function strings(f: Fields, names: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  names.forEach((name, idx) => {
    const v = text(f, idx + 1);
    if (v !== '') o[name] = v;
  });
  return o;
}

/** The review as its JSON shape, from a JSON or protobuf body. */
export function decodeReview(
  body: Buffer,
  contentType: string | undefined,
  kind: 'access' | 'rules',
): Record<string, unknown> {
  if (!contentType?.startsWith('application/vnd.kubernetes.protobuf')) {
    try {
      const v = JSON.parse(body.toString('utf8')) as unknown;
      if (typeof v === 'object' && v !== null && !Array.isArray(v))
        return v as Record<string, unknown>;
    } catch (err) {
      throw new KgError('KG_ERR_BAD_REQUEST', 'the review body is not valid JSON', { cause: err });
    }
    throw new KgError('KG_ERR_BAD_REQUEST', 'the review body must be a JSON object');
  }
  try {
    if (!body.subarray(0, 4).equals(magic)) throw new Error('missing the k8s protobuf magic');
    const unknown = fields(body.subarray(4));
    const typeMeta = fields(one(unknown, 1) ?? Buffer.alloc(0));
    const obj = fields(one(unknown, 2) ?? Buffer.alloc(0));
    const spec = fields(one(obj, 2) ?? Buffer.alloc(0));
    const base = {
      apiVersion: text(typeMeta, 1) || 'authorization.k8s.io/v1',
      kind: text(typeMeta, 2),
    };
    if (kind === 'rules') return { ...base, spec: { namespace: text(spec, 1) } };
    const ra = one(spec, 1);
    const nra = one(spec, 2);
    return {
      ...base,
      spec: {
        ...(ra
          ? {
              resourceAttributes: strings(fields(ra), [
                'namespace',
                'verb',
                'group',
                'version',
                'resource',
                'subresource',
                'name',
              ]),
            }
          : {}),
        ...(nra ? { nonResourceAttributes: strings(fields(nra), ['path', 'verb']) } : {}),
      },
    };
  } catch (err) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `the review body is not valid Kubernetes protobuf: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
