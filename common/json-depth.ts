/**
 * The nesting depth of a parsed JSON value, measured without recursion, so
 * that a hostile body (`[[[[…]]]]` 20,000 deep fits in 40 KB) costs one
 * loop and never the call stack. Walks that recurse over client-controlled
 * structure check this first and refuse (or replace) what is too deep.
 */

/**
 * True when `value` has containers nested more than `max` levels deep
 * (a scalar is depth 0, `[]` and `{}` depth 1, `[[]]` depth 2). Stops as
 * soon as the answer is known.
 */
export function deeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const d = depth + 1;
    if (d > max) return true;
    const children = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
    for (const c of children) if (c !== null && typeof c === 'object') stack.push([c, d]);
  }
  return false;
}
