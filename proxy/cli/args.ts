/** A small argument parser: positionals, `--flag value`, `--flag=value`, repeatable flags, booleans. */
import { userInfo } from 'node:os';
import { KgError } from '../../common/errors.js';

export interface Parsed {
  positionals: string[];
  flags: Map<string, string[]>;
}

export function parseArgs(argv: string[], booleans: ReadonlySet<string> = new Set()): Parsed {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      positionals.push(a);
      continue;
    }
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else if (booleans.has(name)) {
      value = 'true';
    } else {
      value = argv[++i];
      if (value === undefined) throw new KgError('KG_ERR_BAD_REQUEST', `--${name} needs a value`);
    }
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { positionals, flags };
}

export function flag(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return v?.[v.length - 1];
}

export function flagList(p: Parsed, name: string): string[] {
  return (p.flags.get(name) ?? [])
    .flatMap((v) => v.split(','))
    .map((s) => s.trim())
    .filter(Boolean);
}

export function labelsOf(p: Parsed): Record<string, string> {
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
