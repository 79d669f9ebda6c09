/**
 * Validation of metav1.LabelSelector for bindings, with Kubernetes' rules
 * (apimachinery ValidateLabelSelector): operators In/NotIn/Exists/
 * DoesNotExist, In/NotIn need values, Exists/DoesNotExist take none, keys are
 * qualified names and values label values
 * (https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#syntax-and-character-set).
 * The authorizer treats an invalid selector as matching nothing; refusing it
 * here means an admin never stores a binding that silently grants nothing.
 */
import type { LabelSelector } from '../authz/types.js';

// The same patterns as cluster-store.ts uses for cluster labels, so a
// selector can name exactly the labels a cluster can carry.
const labelKey =
  /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const labelValue = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export const operators = ['In', 'NotIn', 'Exists', 'DoesNotExist'] as const;
type Operator = (typeof operators)[number];
type Expression = NonNullable<LabelSelector['matchExpressions']>[number];

/** The problem with a label key, prefixed with `at`, or undefined when it is valid. */
export function labelKeyProblem(key: string, at: string): string | undefined {
  return labelKey.test(key)
    ? undefined
    : `${at}: ${JSON.stringify(key)} is not a valid label key (an optional DNS prefix and '/', then at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)`;
}

/** The problem with a label value, prefixed with `at`, or undefined when it is valid. */
export function labelValueProblem(value: unknown, at: string): string | undefined {
  if (typeof value !== 'string') return `${at}: must be a string`;
  return labelValue.test(value)
    ? undefined
    : `${at}: ${JSON.stringify(value)} is not a valid label value (at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownFields(
  obj: Record<string, unknown>,
  allowed: readonly string[],
  at: string,
  problems: string[],
): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k))
      problems.push(`${at}.${k}: unknown field (allowed: ${allowed.join(', ')})`);
  }
}

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
  if (!operators.includes(operator as Operator)) {
    problems.push(
      `${at}.operator: ${JSON.stringify(operator)} is not one of ${operators.join(', ')}`,
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
