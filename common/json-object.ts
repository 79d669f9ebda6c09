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
