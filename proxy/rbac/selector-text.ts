/**
 * kubectl's label selector syntax (`-l`), turned into a metav1.LabelSelector:
 * `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k` and `!k`,
 * comma-separated and ANDed
 * (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors).
 * Only the syntax is checked here; keys and values are validated with the
 * binding (label-selector.ts), so the CLI and the API report the same problems.
 */
import { KgError } from '../../common/errors.js';
import type { LabelSelector } from '../authz/types.js';

type Expression = NonNullable<LabelSelector['matchExpressions']>[number];

/** Split on commas outside parentheses. */
function requirements(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (depth < 0) break;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw bad(text, 'unbalanced parentheses');
  out.push(cur);
  return out.map((s) => s.trim());
}

function bad(text: string, why: string): KgError {
  return new KgError(
    'KG_ERR_BAD_REQUEST',
    `selector ${JSON.stringify(text)}: ${why} (expected e.g. "env=prod,tier in (web,api),!legacy")`,
  );
}

/** Parse a selector; throws KG_ERR_BAD_REQUEST naming the part it cannot read. */
export function parseSelectorText(text: string): LabelSelector {
  const matchLabels: Record<string, string> = {};
  const matchExpressions: Expression[] = [];
  for (const req of requirements(text)) {
    if (req === '') throw bad(text, 'empty requirement');
    let m: RegExpExecArray | null;
    if ((m = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(req))) {
      matchExpressions.push({
        key: m[1]!,
        operator: m[2] === 'in' ? 'In' : 'NotIn',
        // `in ()` is an empty set (which validation then refuses), not one empty value.
        values: m[3]!.trim() === '' ? [] : m[3]!.split(',').map((v) => v.trim()),
      });
    } else if ((m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(req))) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      if (op === '!=') matchExpressions.push({ key, operator: 'NotIn', values: [value] });
      else if (key in matchLabels && matchLabels[key] !== value)
        throw bad(text, `"${key}" cannot equal both "${matchLabels[key]}" and "${value}"`);
      else matchLabels[key] = value;
    } else if ((m = /^!\s*([^\s=!(),]+)$/.exec(req))) {
      matchExpressions.push({ key: m[1]!, operator: 'DoesNotExist' });
    } else if ((m = /^([^\s=!(),]+)$/.exec(req))) {
      matchExpressions.push({ key: m[1]!, operator: 'Exists' });
    } else {
      throw bad(text, `cannot read ${JSON.stringify(req)}`);
    }
  }
  const sel: LabelSelector = {};
  if (Object.keys(matchLabels).length > 0) sel.matchLabels = matchLabels;
  if (matchExpressions.length > 0) sel.matchExpressions = matchExpressions;
  return sel;
}

/** The selector in the same syntax, for people (tables); `{}` is the empty string. */
export function formatSelector(sel: LabelSelector): string {
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
    else
      parts.push(
        `${e.key} ${e.operator === 'In' ? 'in' : 'notin'} (${(e.values ?? []).join(',')})`,
      );
  }
  return parts.join(',');
}
