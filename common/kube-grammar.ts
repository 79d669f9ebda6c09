/**
 * The pieces of Kubernetes' grammar kubegate reads itself, in one place:
 * label keys and values, label selectors as objects (metav1.LabelSelector:
 * validation and matching) and as text (kubectl's `-l` syntax, read by the
 * CLI and, to decide what a list request names, by request-info), and field
 * selectors. The rules are apimachinery's
 * (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/,
 * https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/);
 * where we accept less than the apiserver, it is said below and it only ever
 * makes us refuse, never widen.
 */
import { KgError } from './errors.js';
import { isObject, unknownFields } from './json-object.js';

// --- request verbs ------------------------------------------------------------

/** The verbs of requests for API objects (list, watch and deletecollection name a collection). */
export const objectVerbs = [
  'get',
  'list',
  'watch',
  'create',
  'update',
  'patch',
  'delete',
  'deletecollection',
] as const;

// --- label keys and values ---------------------------------------------------

/** metav1.LabelSelector: matchLabels and matchExpressions are ANDed. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: {
    key: string;
    operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
    values?: string[];
  }[];
}

/** A name part (validation.IsQualifiedName without the prefix); length is checked apart. */
const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
/** validation.IsDNS1123Subdomain, without the length (checked apart). */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * A label key: an optional DNS-1123 subdomain prefix (at most 253
 * characters) and '/', then a name of at most 63 of [A-Za-z0-9-_.],
 * alphanumeric at both ends.
 */
export function isLabelKey(k: string): boolean {
  const slash = k.indexOf('/');
  const name = slash < 0 ? k : k.slice(slash + 1);
  if (slash >= 0) {
    const prefix = k.slice(0, slash);
    if (prefix === '' || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) return false;
  }
  return name.length <= 63 && QUALIFIED_NAME.test(name);
}

/** A label value: empty, or at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends. */
export function isLabelValue(v: string): boolean {
  return v === '' || (v.length <= 63 && QUALIFIED_NAME.test(v));
}

/** The problem with a label key, prefixed with `at`, or undefined when it is valid. */
export function labelKeyProblem(key: string, at: string): string | undefined {
  return isLabelKey(key)
    ? undefined
    : `${at}: ${JSON.stringify(key)} is not a valid label key (an optional DNS subdomain prefix and '/', then at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)`;
}

/** The problem with a label value, prefixed with `at`, or undefined when it is valid. */
export function labelValueProblem(value: unknown, at: string): string | undefined {
  if (typeof value !== 'string') return `${at}: must be a string`;
  return isLabelValue(value)
    ? undefined
    : `${at}: ${JSON.stringify(value)} is not a valid label value (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)`;
}

// --- label selectors as objects (ValidateLabelSelector, LabelSelectorAsSelector) ---

export const selectorOperators = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
type Operator = (typeof selectorOperators)[number];
type Expression = NonNullable<LabelSelector['matchExpressions']>[number];

function expression(raw: unknown, at: string, problems: string[]): Expression | undefined {
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object with key, operator and values`);
    return undefined;
  }
  const before = problems.length;
  unknownFields(raw, ['key', 'operator', 'values'], at, problems);
  const { key, operator, values } = raw;
  if (typeof key !== 'string') problems.push(`${at}.key: must be a string`);
  else {
    const p = labelKeyProblem(key, `${at}.key`);
    if (p) problems.push(p);
  }
  if (!selectorOperators.includes(operator as Operator)) {
    problems.push(
      `${at}.operator: ${JSON.stringify(operator)} is not one of ${selectorOperators.join(', ')}`,
    );
  }
  const list = values === undefined ? [] : values;
  if (!Array.isArray(list)) {
    problems.push(`${at}.values: must be an array of strings`);
  } else {
    list.forEach((v: unknown, i) => {
      const p = labelValueProblem(v, `${at}.values[${i}]`);
      if (p) problems.push(p);
    });
    if ((operator === 'In' || operator === 'NotIn') && list.length === 0) {
      problems.push(`${at}.values: must be non-empty for operator ${operator}`);
    }
    if ((operator === 'Exists' || operator === 'DoesNotExist') && list.length > 0) {
      problems.push(`${at}.values: must be empty for operator ${operator}`);
    }
  }
  if (problems.length !== before) return undefined;
  const out: Expression = { key: key as string, operator: operator as Operator };
  if (operator === 'In' || operator === 'NotIn') out.values = [...(list as string[])];
  return out;
}

/**
 * Check an untrusted selector, pushing every problem (prefixed with `at`);
 * returns a clean copy holding only the known fields when there are none.
 * The authorizer treats an invalid selector as matching nothing; refusing it
 * where it is written means nobody stores one that silently grants nothing.
 */
export function validateSelector(
  raw: unknown,
  at: string,
  problems: string[],
): LabelSelector | undefined {
  if (!isObject(raw)) {
    problems.push(`${at}: must be an object with matchLabels and/or matchExpressions`);
    return undefined;
  }
  const before = problems.length;
  unknownFields(raw, ['matchLabels', 'matchExpressions'], at, problems);
  const out: LabelSelector = {};
  if (raw.matchLabels !== undefined) {
    if (!isObject(raw.matchLabels)) {
      problems.push(`${at}.matchLabels: must be an object of label key → value`);
    } else {
      for (const [k, v] of Object.entries(raw.matchLabels)) {
        const kp = labelKeyProblem(k, `${at}.matchLabels`);
        if (kp) problems.push(kp);
        const vp = labelValueProblem(v, `${at}.matchLabels[${JSON.stringify(k)}]`);
        if (vp) problems.push(vp);
      }
      out.matchLabels = { ...(raw.matchLabels as Record<string, string>) };
    }
  }
  if (raw.matchExpressions !== undefined) {
    if (!Array.isArray(raw.matchExpressions)) {
      problems.push(`${at}.matchExpressions: must be an array`);
    } else {
      const exprs: Expression[] = [];
      raw.matchExpressions.forEach((e: unknown, i) => {
        const x = expression(e, `${at}.matchExpressions[${i}]`, problems);
        if (x) exprs.push(x);
      });
      out.matchExpressions = exprs;
    }
  }
  return problems.length === before ? out : undefined;
}

/**
 * Whether a metav1.LabelSelector matches the labels, with Kubernetes
 * semantics: `{}` matches everything; In/NotIn need values and Exists/
 * DoesNotExist must have none — an invalid selector matches nothing.
 */
export function selectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  const ml = sel.matchLabels;
  if (ml) {
    for (const k of Object.keys(ml)) {
      if (!Object.hasOwn(labels, k) || labels[k] !== ml[k]) return false;
    }
  }
  const exprs = sel.matchExpressions;
  if (exprs) {
    for (const e of exprs) {
      const present = Object.hasOwn(labels, e.key);
      const values = e.values ?? [];
      switch (e.operator) {
        case 'In':
          if (values.length === 0 || !present || !values.includes(labels[e.key] as string)) {
            return false;
          }
          break;
        case 'NotIn':
          if (values.length === 0 || (present && values.includes(labels[e.key] as string))) {
            return false;
          }
          break;
        case 'Exists':
          if (values.length > 0 || !present) return false;
          break;
        case 'DoesNotExist':
          if (values.length > 0 || present) return false;
          break;
        default:
          return false;
      }
    }
  }
  return true;
}

// --- label selectors as text (k8s.io/apimachinery/pkg/labels/selector.go) ----
//
// One lexer and one parser for a strict subset of the apiserver's grammar:
// `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (v,…)`, `k notin (v,…)`, joined by
// ','. Outside it: `<` and `>` (Gt/Lt), and empty entries in a value list
// (`(a,,b)`, `(a,)`), which the apiserver reads as the empty value.

const LABEL_SPECIAL = '=!(),<>';

/** The labels lexer skips exactly these; other Unicode spaces are identifier characters. */
function isLabelSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\r' || c === '\n';
}

function lexLabelSelector(s: string): string[] | undefined {
  const tokens: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (isLabelSpace(c)) {
      i++;
    } else if (LABEL_SPECIAL.includes(c)) {
      if (c === '<' || c === '>') return undefined; // gt/lt: outside our subset
      const two = s.slice(i, i + 2);
      const tok = two === '!=' || two === '==' ? two : c;
      tokens.push(tok);
      i += tok.length;
    } else {
      let j = i;
      while (j < s.length && !LABEL_SPECIAL.includes(s[j] as string) && !isLabelSpace(s[j])) j++;
      tokens.push(s.slice(i, j));
      i = j;
    }
  }
  return tokens;
}

function isIdent(t: string | undefined): t is string {
  return t !== undefined && !LABEL_SPECIAL.includes(t[0] as string);
}

/** One requirement as written: `op` '' is `k` (exists), '!' is `!k`; `=`-like ops have one value. */
export interface SelectorRequirement {
  key: string;
  op: '' | '!' | '=' | '==' | '!=' | 'in' | 'notin';
  values: string[];
}

function found(tok: string | undefined): string {
  return tok === undefined ? 'the end' : JSON.stringify(tok);
}

/**
 * Read a selector text into its requirements, or say what is wrong with it.
 * Keys and values are not checked here. With `emptyParens`, `in ()` is the
 * empty set (for the CLI, whose validation then refuses it by name);
 * without, it does not parse (the apiserver reads it as the empty value).
 */
export function parseSelectorRequirements(
  s: string,
  opts: { emptyParens?: boolean } = {},
): SelectorRequirement[] | { problem: string } {
  const t = lexLabelSelector(s);
  if (!t) return { problem: "'<' and '>' are not supported" };
  let depth = 0;
  for (const tok of t) {
    if (tok === '(') depth++;
    else if (tok === ')' && --depth < 0) break;
  }
  if (depth !== 0) return { problem: 'unbalanced parentheses' };
  const out: SelectorRequirement[] = [];
  if (t.length === 0) return out;
  const expected = (what: string, tok: string | undefined) => ({
    problem: `expected ${what}, found ${found(tok)}`,
  });
  let i = 0;
  for (;;) {
    if (t[i] === '!') {
      i++;
      const key = t[i];
      if (!isIdent(key)) return expected('a label key after "!"', key);
      out.push({ key, op: '!', values: [] });
      i++;
    } else {
      const key = t[i];
      if (!isIdent(key)) return expected('a label key', key);
      i++;
      const op = t[i];
      if (op === '=' || op === '==' || op === '!=') {
        i++;
        let value = '';
        const v = t[i];
        if (isIdent(v)) {
          value = v;
          i++;
        }
        out.push({ key, op, values: [value] });
      } else if (op === 'in' || op === 'notin') {
        i++;
        if (t[i] !== '(') return expected(`"(" after "${op}"`, t[i]);
        i++;
        const values: string[] = [];
        if (!(opts.emptyParens && t[i] === ')')) {
          for (;;) {
            const v = t[i];
            if (!isIdent(v)) return expected('a label value', v);
            values.push(v);
            i++;
            if (t[i] === ')') break;
            if (t[i] !== ',') return expected('"," or ")"', t[i]);
            i++;
          }
        }
        i++;
        out.push({ key, op, values });
      } else if (op !== undefined && op !== ',') {
        return expected('=, ==, !=, in, notin, "," or the end', op);
      } else {
        out.push({ key, op: '', values: [] });
      }
    }
    if (i === t.length) return out;
    if (t[i] !== ',') return expected('"," or the end', t[i]);
    i++;
  }
}

/**
 * Whether a list request's `labelSelector` is one the apiserver would decode,
 * judged by our subset: it parses, every key and value is valid, and no
 * requirement but `!k` uses the keyword `in` or `notin` as its key (the
 * apiserver allows that; we do not need to). Anything else counts as "not
 * decoded", which can only ever withhold a name the apiserver would have
 * lifted from the field selector (fail closed).
 */
export function listLabelSelectorAccepted(s: string): boolean {
  const reqs = parseSelectorRequirements(s);
  if (!Array.isArray(reqs)) return false;
  return reqs.every(
    (r) =>
      (r.op === '!' || (r.key !== 'in' && r.key !== 'notin')) &&
      isLabelKey(r.key) &&
      r.values.every(isLabelValue),
  );
}

function badSelector(text: string, why: string): KgError {
  return new KgError(
    'KG_ERR_BAD_REQUEST',
    `selector ${JSON.stringify(text)}: ${why} (expected e.g. "env=prod,tier in (web,api),!legacy")`,
  );
}

/**
 * kubectl's selector syntax (`-l`) turned into a metav1.LabelSelector, for
 * the CLI: `k=v` and `k==v` become matchLabels, the rest matchExpressions
 * (`k!=v` is `NotIn [v]`). Only the syntax is checked here; keys and values
 * are validated with the object that carries the selector, so the CLI and the
 * API report the same problems. Throws KG_ERR_BAD_REQUEST.
 */
export function parseSelectorText(text: string): LabelSelector {
  const reqs = parseSelectorRequirements(text, { emptyParens: true });
  if (!Array.isArray(reqs)) throw badSelector(text, reqs.problem);
  if (reqs.length === 0) throw badSelector(text, 'empty selector');
  // A Map, not an object: `__proto__=x` must stay a (then refused) key, never vanish.
  const matchLabels = new Map<string, string>();
  const matchExpressions: Expression[] = [];
  for (const { key, op, values } of reqs) {
    if (op === '') matchExpressions.push({ key, operator: 'Exists' });
    else if (op === '!') matchExpressions.push({ key, operator: 'DoesNotExist' });
    else if (op === 'in' || op === 'notin')
      matchExpressions.push({ key, operator: op === 'in' ? 'In' : 'NotIn', values });
    else if (op === '!=') matchExpressions.push({ key, operator: 'NotIn', values });
    else {
      const value = values[0] as string;
      const had = matchLabels.get(key);
      if (had !== undefined && had !== value)
        throw badSelector(text, `"${key}" cannot equal both "${had}" and "${value}"`);
      matchLabels.set(key, value);
    }
  }
  const sel: LabelSelector = {};
  if (matchLabels.size > 0) sel.matchLabels = Object.fromEntries(matchLabels);
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

// --- field selectors (k8s.io/apimachinery/pkg/fields/selector.go) ------------

/**
 * Parse a field selector the way fields.ParseSelector does and return what
 * RequiresExactMatch("metadata.name") would: `undefined` when the selector is
 * invalid, `{ name: undefined }` when valid but not naming one object.
 */
export function parseFieldSelectorName(selector: string): { name: string | undefined } | undefined {
  if (selector === '') return { name: undefined };
  const terms = splitTerms(selector);
  // Go sorts the raw terms (byte order) before parsing; RequiresExactMatch
  // then returns the first matching term, so the order decides between two.
  terms.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let name: string | undefined;
  for (const term of terms) {
    if (term === '') continue;
    const split = splitTerm(term);
    if (!split) return undefined;
    const value = unescapeFieldValue(split.rhs);
    if (value === undefined) return undefined;
    if (name === undefined && split.op !== '!=' && split.lhs === 'metadata.name') name = value;
  }
  return { name };
}

/** Split on ',' not escaped by a backslash (the backslash stays in the term). */
function splitTerms(s: string): string[] {
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') {
      terms.push(s.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(s.slice(start));
  return terms;
}

/** The first operator in the term (`!=`, then `==`, then `=` at each position) splits it. */
function splitTerm(term: string): { lhs: string; op: string; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    for (const op of ['!=', '==', '=']) {
      if (term.startsWith(op, i))
        return { lhs: term.slice(0, i), op, rhs: term.slice(i + op.length) };
    }
  }
  return undefined;
}

/** fields.UnescapeValue: only `\\`, `\,`, `\=` escapes; raw ',' or '=' is an error. */
function unescapeFieldValue(s: string): string | undefined {
  let out = '';
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c !== '\\' && c !== ',' && c !== '=') return undefined;
      out += c;
      inSlash = false;
    } else if (c === '\\') inSlash = true;
    else if (c === ',' || c === '=') return undefined;
    else out += c;
  }
  return inSlash ? undefined : out;
}
