/**
 * What an approver reads: the live object and the object the request would
 * produce, both as YAML without the fields that change on every write, and
 * a unified line diff between them.
 *
 * Secret values never appear, nor anything computed from them (a hash of a
 * value, even a short one, is recovered by trying a dictionary of likely
 * values): each key of `data`/`stringData` shows `(hidden)`, and on the
 * requested side `(hidden, changed)` when the request changes it, so a
 * changed value is still a changed line and an unchanged one is not.
 */
import { stringify } from 'yaml';
import { deeperThan } from '../../common/json-depth.js';
import { isObject } from '../../common/json-object.js';

const maxLines = 3000;
/** Deepest object shown; anything deeper is not rendered (the YAML writer recurses). */
export const maxDiffDepth = 100;
export const hiddenValue = '(hidden)';
export const changedValue = '(hidden, changed)';
const secretFields = ['data', 'stringData'] as const;

function isSecret(obj: Record<string, unknown>, resource: string): boolean {
  return resource === 'secrets' || obj.kind === 'Secret';
}

/** A copy without server-managed noise; every Secret value replaced by `(hidden)`. */
export function forDisplay(obj: unknown, resource: string): unknown {
  if (!isObject(obj)) return obj;
  const out: Record<string, unknown> = structuredClone(obj);
  if (isObject(out.metadata)) {
    const m = out.metadata;
    for (const k of ['managedFields', 'resourceVersion', 'generation', 'uid', 'selfLink'])
      delete m[k];
    delete m.creationTimestamp;
    if (isObject(m.annotations)) {
      // kubectl's copy of the applied object: for a Secret it holds the data in clear.
      delete m.annotations['kubectl.kubernetes.io/last-applied-configuration'];
      if (Object.keys(m.annotations).length === 0) delete m.annotations;
    }
  }
  delete out.status;
  if (isSecret(out, resource)) {
    for (const field of secretFields) {
      const d = out[field];
      if (d === undefined) continue;
      if (!isObject(d)) {
        out[field] = hiddenValue;
        continue;
      }
      for (const k of Object.keys(d)) d[k] = hiddenValue;
    }
  }
  return out;
}

/**
 * Mark, on the requested side, the Secret values the request changes: the
 * only thing an approver learns about a value is whether it changes.
 */
function markChanged(live: unknown, result: unknown, shown: unknown, resource: string): void {
  if (!isObject(result) || !isObject(shown) || !isSecret(result, resource)) return;
  const before = isObject(live) ? live : {};
  for (const field of secretFields) {
    const now = result[field];
    const was = before[field];
    const out = shown[field];
    if (!isObject(now) || !isObject(out)) continue;
    for (const k of Object.keys(now)) {
      const old = isObject(was) && k in was ? was[k] : undefined;
      if (old !== undefined && old !== now[k]) out[k] = changedValue;
    }
  }
}

export function toYaml(obj: unknown): string {
  if (obj === undefined) return '';
  return stringify(obj, { sortMapEntries: true, lineWidth: 0 });
}

/**
 * A unified diff (`---`/`+++` headers, ` `, `-`, `+` lines, no hunks
 * elided) of two texts, from their longest common subsequence of lines.
 */
export function lineDiff(before: string, after: string, from = 'live', to = 'requested'): string {
  const a = before === '' ? [] : before.replace(/\n$/, '').split('\n');
  const b = after === '' ? [] : after.replace(/\n$/, '').split('\n');
  const head = `--- ${from}\n+++ ${to}\n`;
  if (a.length > maxLines || b.length > maxLines) {
    return `${head}(the objects are too large to compare line by line: ${a.length} and ${b.length} lines)\n`;
  }
  const n = a.length;
  const m = b.length;
  // lcs[i][j] = length of the LCS of a[i..] and b[j..]
  const lcs = new Uint32Array((n + 1) * (m + 1));
  const at = (i: number, j: number) => i * (m + 1) + j;
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      lcs[at(i, j)] =
        a[i] === b[j]
          ? lcs[at(i + 1, j + 1)]! + 1
          : Math.max(lcs[at(i + 1, j)]!, lcs[at(i, j + 1)]!);
  const lines: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      lines.push(` ${a[i]}`);
      i++;
      j++;
    } else if (i < n && (j === m || lcs[at(i + 1, j)]! >= lcs[at(i, j + 1)]!)) {
      // Removals before additions, as diff(1) prints them.
      lines.push(`-${a[i]}`);
      i++;
    } else {
      lines.push(`+${b[j]}`);
      j++;
    }
  }
  return head + lines.map((l) => l + '\n').join('');
}

/** The diff of two objects as an approver sees them. */
export function objectDiff(live: unknown, result: unknown, resource: string): string {
  if (deeperThan(live, maxDiffDepth) || deeperThan(result, maxDiffDepth))
    return `(no preview: the object is nested deeper than ${maxDiffDepth} levels)\n`;
  const shown = forDisplay(result, resource);
  markChanged(live, result, shown, resource);
  return lineDiff(toYaml(forDisplay(live, resource)), toYaml(shown));
}
