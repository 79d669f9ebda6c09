/**
 * Configuration: one schema per program, one named defaults object, validated
 * once at start-up with every problem reported together, then frozen.
 * Environment variables and an optional JSON file
 * (KUBEGATE_CONFIG) map onto the same schema; the environment wins.
 */
import { readFileSync } from 'node:fs';
import { isKgError, KgError } from './errors.js';

export type FieldType = 'string' | 'int' | 'bool' | 'duration' | 'list' | 'url';

export interface FieldSpec {
  /** Environment variable that sets it. */
  env: string;
  type: FieldType;
  /** One sentence for the configuration reference. */
  doc: string;
  required?: boolean;
  /** Never printed, never logged. */
  secret?: boolean;
  /** Extra check; return a problem sentence or undefined. */
  check?: (value: unknown) => string | undefined;
}

export type Schema = Record<string, FieldSpec>;

type ValueOf<T extends FieldType> = T extends 'int' | 'duration'
  ? number
  : T extends 'bool'
    ? boolean
    : T extends 'list'
      ? string[]
      : string;

/** The typed, frozen config produced from a schema. */
export type ConfigOf<S extends Schema> = {
  readonly [K in keyof S]: ValueOf<S[K]['type']>;
};

const durationUnits: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parse `500ms`, `30s`, `15m`, `8h`, `7d` or a bare number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * durationUnits[m[2] ?? 'ms']!);
}

function coerce(spec: FieldSpec, raw: unknown): { value?: unknown; problem?: string } {
  if (spec.type === 'string' || spec.type === 'url') {
    if (typeof raw !== 'string') return { problem: 'must be a string' };
    if (spec.type === 'url') {
      try {
        new URL(raw);
      } catch {
        return { problem: `must be an absolute URL, got "${raw}"` };
      }
    }
    return { value: raw };
  }
  if (spec.type === 'int') {
    const n = typeof raw === 'number' ? raw : Number(raw);
    if (!Number.isInteger(n)) return { problem: `must be a whole number, got "${String(raw)}"` };
    return { value: n };
  }
  if (spec.type === 'bool') {
    if (typeof raw === 'boolean') return { value: raw };
    if (raw === 'true' || raw === '1') return { value: true };
    if (raw === 'false' || raw === '0') return { value: false };
    return { problem: `must be true or false, got "${String(raw)}"` };
  }
  if (spec.type === 'duration') {
    if (typeof raw === 'number') return { value: raw };
    const d = typeof raw === 'string' ? parseDuration(raw) : undefined;
    if (d === undefined)
      return { problem: `must be a duration like 30s, 15m or 8h, got "${String(raw)}"` };
    return { value: d };
  }
  // list
  if (Array.isArray(raw)) return { value: raw.map(String) };
  if (typeof raw === 'string')
    return {
      value: raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    };
  return { problem: 'must be a comma-separated list' };
}

/**
 * Build a frozen config from schema + defaults + file + environment.
 * Throws one KG_ERR_CONFIG listing every problem.
 */
export function loadConfig<S extends Schema>(
  schema: S,
  defaults: Partial<{ [K in keyof S]: unknown }>,
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<{ [K in keyof S]: unknown }> = {},
): ConfigOf<S> {
  let file: Record<string, unknown> = {};
  const filePath = env.KUBEGATE_CONFIG;
  const problems: string[] = [];
  if (filePath) {
    try {
      file = JSON.parse(readFileSync(filePath, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      problems.push(`KUBEGATE_CONFIG=${filePath}: cannot read JSON (${(err as Error).message})`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    const raw =
      overrides[key] ??
      (env[spec.env] !== undefined && env[spec.env] !== '' ? env[spec.env] : undefined) ??
      file[key] ??
      defaults[key];
    if (raw === undefined) {
      if (spec.required) problems.push(`${spec.env} (${key}) is required: ${spec.doc}`);
      continue;
    }
    const { value, problem } = coerce(spec, raw);
    const extra = problem === undefined ? spec.check?.(value) : undefined;
    if (problem ?? extra) {
      problems.push(`${spec.env} (${key}) ${problem ?? extra}`);
      continue;
    }
    out[key] = value;
  }
  if (problems.length > 0) {
    throw new KgError('KG_ERR_CONFIG', `invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  }
  return Object.freeze(out) as ConfigOf<S>;
}

/**
 * A program's configuration from `load`; when it is invalid, its problems go
 * to stderr and the process exits with code 2 (bad configuration).
 */
export function configOrExit<C>(load: () => C): C {
  try {
    return load();
  } catch (err) {
    console.error(isKgError(err) ? err.message : err);
    process.exit(2);
  }
}

/** Host and port from `host:port` or `[v6]:port`. */
export function parseHostPort(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (!m) throw new KgError('KG_ERR_CONFIG', `"${text}" is not host:port`);
  return { host: (m[1] ?? m[2])!, port: Number(m[3]) };
}
