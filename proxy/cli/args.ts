/**
 * What every CLI command shares: the command line parsed against the
 * command's declared options (with Node's util.parseArgs), the streams and
 * environment it runs with, the configuration it reads, and its database
 * pool. A command loads only the configuration fields it names.
 */
import { writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { loadConfig, type ConfigOf } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import { proxyDefaults, proxySchema } from '../config.js';
import { createPool, type Pool } from '../db/pool.js';

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
}

export const processIo: CliIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
};

/** One option of a command. */
export interface OptionSpec {
  /** Default 'string'. A string option may be repeated: the last value wins, or see flagList. */
  type?: 'string' | 'boolean';
  /** The value's placeholder in usage lines (`--user NAME`). */
  value?: string;
  /** Shown as `[--group G]...`: the values are collected (and split on commas). */
  repeatable?: boolean;
  required?: boolean;
  /** A one-letter alias, as kubectl has them: `-o json` for `--output json`. */
  short?: string;
  doc: string;
}

/** A positional argument: `NAME` (required) or, with optional, `[NAME]`. */
export interface ArgSpec {
  name: string;
  optional?: boolean;
  doc?: string;
}

/** A parsed command line, as a command's handler gets it. */
export interface Invocation {
  /** `kubegate admin token create` → 'admin token create'. */
  path: string;
  positionals: string[];
  /** Every value given per option, in order; a boolean's is 'true'. */
  flags: Map<string, string[]>;
  io: CliIo;
}

/** The command line is wrong (exit 2): unknown command or option, missing or extra argument. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose --help to point at ('' for the top level). */
    readonly helpPath: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `--user NAME`, `--robot`, as usage lines and messages show an option. */
export function optionText(name: string, o: OptionSpec): string {
  return o.type === 'boolean' ? `--${name}` : `--${name} ${o.value ?? 'VALUE'}`;
}

/**
 * Parse `argv` (the words after the command's path) against its options and
 * positionals. `--name value`, `--name=value` and `--` (everything after is
 * positional) work as usual; a value may start with a dash when it follows
 * its option. Returns undefined when --help (or -h) was asked for. Throws
 * UsageError naming every unknown option at once.
 */
export function parseCommandLine(
  path: string,
  argv: string[],
  options: Readonly<Record<string, OptionSpec>>,
  args: readonly ArgSpec[],
  io: CliIo,
): Invocation | undefined {
  const spec: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, o] of Object.entries(options))
    spec[name] = {
      ...(o.type === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: true }),
      ...(o.short ? { short: o.short } : {}),
    };
  const { tokens } = parseArgs({
    args: argv,
    options: spec,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const problems: string[] = [];
  const unknown: string[] = [];
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  for (const t of tokens) {
    if (t.kind === 'positional') positionals.push(t.value);
    if (t.kind !== 'option') continue;
    if (t.name === 'help') return undefined;
    const o = options[t.name];
    if (!o) {
      unknown.push(t.rawName);
      continue;
    }
    if (o.type === 'boolean' && t.value !== undefined) {
      problems.push(`--${t.name} takes no value (got "${t.value}")`);
      continue;
    }
    if (o.type !== 'boolean' && t.value === undefined) {
      problems.push(`--${t.name} needs a value`);
      continue;
    }
    flags.set(t.name, [...(flags.get(t.name) ?? []), t.value ?? 'true']);
  }
  // An unknown option's value reads as a positional: name the option alone.
  if (unknown.length) throw new UsageError(`unknown flag(s) ${unknown.join(', ')}`, path);
  for (const [name, o] of Object.entries(options))
    if (o.required && !flags.has(name)) problems.push(`${optionText(name, o)} is required`);
  const required = args.filter((a) => !a.optional).length;
  if (positionals.length < required)
    problems.push(
      `missing ${args
        .slice(positionals.length, required)
        .map((a) => a.name)
        .join(' ')}`,
    );
  if (positionals.length > args.length)
    problems.push(
      `unexpected argument(s): ${positionals
        .slice(args.length)
        .map((a) => JSON.stringify(a))
        .join(' ')}`,
    );
  if (problems.length) throw new UsageError(problems.join('; '), path);
  return { path, positionals, flags, io };
}

/** The last value given for an option. */
export function flag(p: Invocation, name: string): string | undefined {
  const v = p.flags.get(name);
  return v?.[v.length - 1];
}

/** Every value given for an option, each split on commas: `--group a,b --group c` → a, b, c. */
export function flagList(p: Invocation, name: string): string[] {
  return (p.flags.get(name) ?? [])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}

export function labelsOf(p: Invocation): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of flagList(p, 'label')) {
    const eq = l.indexOf('=');
    if (eq <= 0) throw new KgError('KG_ERR_BAD_REQUEST', `--label "${l}" must look like key=value`);
    out[l.slice(0, eq)] = l.slice(eq + 1);
  }
  return out;
}

/** How change logs and the audit log name whoever runs the CLI: `cli:<login>`. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    // No passwd entry (some containers): fall back to what the shell says.
    return `cli:${process.env.USER ?? `uid-${process.getuid?.() ?? 'unknown'}`}`;
  }
}

export type ProxyField = keyof typeof proxySchema;

/** Just the named fields of the proxy's configuration (environment, KUBEGATE_CONFIG, defaults). */
export function cliConfig<K extends ProxyField>(
  keys: readonly K[],
  env: NodeJS.ProcessEnv,
): ConfigOf<Pick<typeof proxySchema, K>> {
  const schema = Object.fromEntries(keys.map((k) => [k, proxySchema[k]])) as Pick<
    typeof proxySchema,
    K
  >;
  return loadConfig(schema, proxyDefaults as Partial<Record<K, unknown>>, env);
}

/** A small pool on DATABASE_URL for the length of `fn`. */
export async function withPool<T>(p: Invocation, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const { databaseUrl } = cliConfig(['databaseUrl'], p.io.env);
  const pool = createPool({ url: databaseUrl, max: 2, applicationName: 'kubegate-cli' });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/** `text` to --out FILE (mode 0600, a note on stderr) or to stdout. */
export function output(p: Invocation, text: string, what: string): void {
  const out = flag(p, 'out');
  if (out && out !== '-') {
    writeFileSync(out, text, { mode: 0o600 });
    p.io.stderr.write(`wrote ${what} to ${out}\n`);
  } else {
    p.io.stdout.write(text);
  }
}
