/**
 * Checks on untrusted JSON that every validator needs: is it an object (not
 * an array, not null), and which of its fields are not allowed.
 */

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A problem for each field of `obj` outside `allowed`, named by its place (`at.field`). */
export function unknownFields(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  at: string,
  problems: string[],
): void {
  for (const k of Object.keys(obj))
    if (!allowed.includes(k))
      problems.push(`${at ? `${at}.` : ''}${k}: unknown field (allowed: ${allowed.join(', ')})`);
}

/** A whole number in [min, max] (`fallback` when absent), or a problem named by `at`. */
export function wholeNumber(
  raw: unknown,
  at: string,
  min: number,
  max: number,
  fallback: number,
  problems: string[],
): number {
  if (raw === undefined) return fallback;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < min || raw > max) {
    problems.push(`${at}: must be a whole number from ${min} to ${max}`);
    return fallback;
  }
  return raw;
}
