/**
 * The parameters of one run, checked against the runbook's declarations:
 * every problem at once; unknown names, repeated names, wrong types and
 * missing required ones are problems; defaults fill in. The run's namespace
 * is decided here too, from the runbook's namespace rule.
 *
 * Input is an object (the REST body) or a list of "name=value" strings (the
 * CLI's repeated `--param`), where a name given twice is a problem rather
 * than "the last one wins".
 */
import {
  capProblems,
  dnsLabel,
  limits,
  valueProblems,
  type ParamSpec,
  type RunbookSpec,
} from './definition.js';

export type ParamValues = Record<string, string | number | boolean>;

/** A string of digits as an integer (the CLI's `--param replicas=3`); longer than a safe integer never parses. */
const digits = /^-?[0-9]{1,16}$/;

/** An input value turned into the parameter's type where the CLI's text form allows it. */
function coerce(p: ParamSpec, v: unknown): unknown {
  if (p.type === 'integer' && typeof v === 'string' && digits.test(v)) return Number(v);
  if (p.type === 'boolean' && (v === 'true' || v === 'false')) return v === 'true';
  return v;
}

function show(name: string): string {
  return /^[A-Za-z0-9_]{1,63}$/.test(name) ? name : JSON.stringify(name.slice(0, 64));
}

/** The given values as name → value pairs, in order, problems for a malformed CLI list. */
function entries(input: unknown, problems: string[]): [string, unknown][] {
  if (input === undefined || input === null) return [];
  if (Array.isArray(input)) {
    const out: [string, unknown][] = [];
    input.forEach((item: unknown, i) => {
      const eq = typeof item === 'string' ? item.indexOf('=') : -1;
      if (typeof item !== 'string' || eq <= 0) {
        problems.push(`parameters[${i}]: must be "name=value"`);
      } else {
        out.push([item.slice(0, eq), item.slice(eq + 1)]);
      }
    });
    return out;
  }
  if (typeof input === 'object') return Object.entries(input);
  problems.push('parameters: must be an object of name → value');
  return [];
}

/**
 * Check a run's parameters. `namespace` is the namespace the caller asked
 * for, if any (the CLI's `--namespace`, the REST body's `namespace`): with a
 * fixed rule it must be that namespace; with a parameter rule it stands for
 * the parameter when that is not given (and must agree when it is); with
 * none it is refused.
 */
export function validateParams(
  spec: RunbookSpec,
  input: unknown,
  namespace?: string,
): { values?: ParamValues; namespace?: string; problems: string[] } {
  const problems: string[] = [];
  const declared = new Map(spec.parameters.map((p) => [p.name, p]));
  const given = new Map<string, unknown>();
  for (const [name, raw] of entries(input, problems)) {
    const p = declared.get(name);
    if (!p) {
      problems.push(
        `parameters.${show(name)}: unknown parameter (declared: ${[...declared.keys()].join(', ') || 'none'})`,
      );
    } else if (given.has(name)) {
      problems.push(`parameters.${show(name)}: given more than once`);
    } else {
      given.set(name, raw);
    }
  }

  const rule = spec.targets.namespace;
  if ('param' in rule && namespace !== undefined) {
    if (!given.has(rule.param)) given.set(rule.param, namespace);
    else if (given.get(rule.param) !== namespace) {
      problems.push(
        `namespace: ${JSON.stringify(namespace)} disagrees with parameter ${rule.param} (${JSON.stringify(given.get(rule.param))})`,
      );
    }
  }

  const values: ParamValues = {};
  for (const p of spec.parameters) {
    const at = `parameters.${p.name}`;
    if (!given.has(p.name)) {
      if (p.default !== undefined) values[p.name] = p.default;
      else if (p.required) problems.push(`${at}: required`);
      continue;
    }
    const v = coerce(p, given.get(p.name));
    const ps = valueProblems(p, v);
    for (const m of ps) problems.push(`${at}: ${m}`);
    if (ps.length === 0) values[p.name] = v as string | number | boolean;
  }

  let runNamespace: string | undefined;
  if ('fixed' in rule) {
    if (namespace !== undefined && namespace !== rule.fixed) {
      problems.push(`namespace: this runbook runs only in ${JSON.stringify(rule.fixed)}`);
    }
    runNamespace = rule.fixed;
  } else if ('param' in rule) {
    const v = values[rule.param];
    const at = `parameters.${rule.param}`;
    if (v === undefined) {
      if (given.has(rule.param)) {
        // already reported as a bad value
      } else if (!problems.includes(`${at}: required`)) {
        problems.push(`${at}: required (it is the run's namespace)`);
      }
    } else if (typeof v !== 'string' || v.length > 63 || !dnsLabel.test(v)) {
      problems.push(
        `${at}: ${JSON.stringify(String(v).slice(0, 80))} is not a namespace name (a DNS label)`,
      );
    } else if (rule.allowed && !rule.allowed.includes(v)) {
      problems.push(
        `${at}: ${JSON.stringify(v)} is not one of the allowed namespaces (${rule.allowed.join(', ')})`,
      );
    } else {
      runNamespace = v;
    }
  } else if (namespace !== undefined) {
    problems.push(`namespace: this runbook touches no namespace; do not give one`);
  }

  if (problems.length > 0) return { problems: capProblems(problems) };
  return { values, namespace: runNamespace, problems };
}

/** Re-exported for callers that show the rules: the length a string parameter accepts. */
export function maxLengthOf(p: ParamSpec): number | undefined {
  return p.type === 'string'
    ? Math.min(p.maxLength ?? limits.stringDefault, limits.stringCap)
    : undefined;
}
