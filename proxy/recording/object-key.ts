/**
 * Names in the object store: the bucket and prefix an operator sets
 * (checked when the configuration loads), and each recording's key, made
 * from the session's start date and the recording's id (a UUID kubegate
 * makes). Nothing a user sends becomes part of a key.
 */

/** A prefix is plain path segments: letters, digits, `.`, `_`, `-`, separated by single slashes. */
export function checkPrefix(prefix: string): string | undefined {
  if (prefix === '') return undefined;
  if (prefix.length > 256) return 'must be at most 256 characters';
  const segments = prefix.split('/');
  if (segments.some((s) => !/^[A-Za-z0-9._-]+$/.test(s) || s === '.' || s === '..'))
    return `must be path segments of letters, digits, ".", "_" and "-" separated by single slashes, with no leading or trailing slash and no "." or ".." segment, got "${prefix.slice(0, 64)}"`;
  return undefined;
}

/** S3's bucket naming rules (3–63 lower-case letters, digits, dots and hyphens). */
export function checkBucket(bucket: string): string | undefined {
  return /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket) && !bucket.includes('..')
    ? undefined
    : `must be an S3 bucket name (3 to 63 lower-case letters, digits, "." and "-"), got "${bucket.slice(0, 64)}"`;
}

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The object key of recording `id` (a UUID) started at `startedAt`: `<prefix>/<yyyy>/<mm>/<dd>/<id>.cast.enc`. */
export function objectKey(prefix: string, startedAt: Date, id: string): string {
  if (!uuid.test(id)) throw new Error(`a recording id is a UUID, got "${id.slice(0, 64)}"`);
  const problem = checkPrefix(prefix);
  if (problem) throw new Error(`the object key prefix ${problem}`);
  const day = startedAt.toISOString().slice(0, 10).replaceAll('-', '/');
  return `${prefix ? `${prefix}/` : ''}${day}/${id}.cast.enc`;
}
