/**
 * What an approver reads: the live object and the object the request would
 * produce, both as YAML without the fields that change on every write, and
 * a unified line diff between them. Secret values never appear: each is
 * replaced by a short hash of itself, so a changed value still shows as a
 * changed line.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';

const maxLines = 3000;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A copy without server-managed noise; Secret data masked. */
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
  if (resource === 'secrets' || out.kind === 'Secret') {
    for (const field of ['data', 'stringData']) {
      const d = out[field];
      if (!isObject(d)) continue;
      for (const k of Object.keys(d)) {
        const h = createHash('sha256').update(String(d[k])).digest('hex').slice(0, 12);
        d[k] = `(redacted, sha256 ${h})`;
      }
    }
  }
  return out;
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
  return lineDiff(toYaml(forDisplay(live, resource)), toYaml(forDisplay(result, resource)));
}
