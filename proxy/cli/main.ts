/**
 * The `kubegate` command line: finds the command in the table
 * (commands.ts), prints help, parses the rest, runs it. Exit codes: 0 done
 * (and every --help), 1 the command ran and failed, 2 the command line is
 * wrong (unknown command or option, missing or extra argument).
 */
import { isKgError } from '../../common/errors.js';
import {
  optionText,
  parseCommandLine,
  processIo,
  UsageError,
  type CliIo,
  type OptionSpec,
} from './args.js';
import { commands, groups, type Command } from './commands.js';

/** `NAME --user NAME [--group G]... [--robot]`: a command's arguments as a usage line shows them. */
function synopsis(c: Command): string {
  const parts = (c.args ?? []).map((a) => (a.optional ? `[${a.name}]` : a.name));
  for (const [name, o] of Object.entries(c.options ?? {})) {
    const t = optionText(name, o);
    parts.push(o.required ? t : `[${t}]${o.repeatable ? '...' : ''}`);
  }
  return parts.join(' ');
}

/** The commands at or below `prefix`, one per line: usage, then its summary. */
function listing(prefix: string): string {
  const below = commands.filter((c) => prefix === '' || (c.path + ' ').startsWith(prefix + ' '));
  return below
    .map((c) => {
      const use = `  kubegate ${c.path} ${synopsis(c)}`.trimEnd();
      return use.length <= 44
        ? `${use.padEnd(46)}${c.summary}\n`
        : `${use}\n${' '.repeat(46)}${c.summary}\n`;
    })
    .join('');
}

const footer = `
Run "kubegate COMMAND --help" for a command's options. Exit codes: 0 done,
1 the command failed (the reason on stderr), 2 the command line is wrong.
`;

export function groupHelp(prefix: string): string {
  const title = prefix === '' ? groups['']! : `kubegate ${prefix}: ${groups[prefix] ?? ''}`;
  return `${title}\n\nUsage:\n${listing(prefix)}${footer}`;
}

function optionLine(name: string, o: OptionSpec): string {
  const left = `  ${o.short ? `-${o.short}, ` : ''}${optionText(name, o)}${o.repeatable ? '...' : ''}`;
  const doc = `${o.doc}${o.required ? ' (required)' : ''}`;
  return left.length <= 28 ? `${left.padEnd(30)}${doc}\n` : `${left}\n${' '.repeat(30)}${doc}\n`;
}

export function commandHelp(c: Command): string {
  const args = (c.args ?? []).filter((a) => a.doc);
  return (
    `Usage: kubegate ${c.path} ${synopsis(c)}`.trimEnd() +
    `\n\n${c.summary}\n` +
    (c.help ? `\n${c.help}\n` : '') +
    (args.length
      ? `\nArguments:\n${args.map((a) => `  ${a.name.padEnd(28)}${a.doc}\n`).join('')}`
      : '') +
    `\nOptions:\n` +
    Object.entries(c.options ?? {})
      .map(([n, o]) => optionLine(n, o))
      .join('') +
    optionLine('help', { type: 'boolean', doc: 'show this help (also -h)' })
  );
}

/**
 * Run `kubegate <argv>`: the exit code, or -1 for a server that keeps
 * running. Usage errors throw UsageError, failures throw what the command
 * threw; main() turns both into messages and exit codes.
 */
export async function run(argv: string[], io: CliIo = processIo): Promise<number> {
  // `kubegate help admin token` is `kubegate admin token --help`.
  if (argv[0] === 'help') argv = [...argv.slice(1).filter((a) => !a.startsWith('-')), '--help'];
  const words: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const next = [...words, argv[i]!].join(' ');
    if (!commands.some((c) => c.path === next || c.path.startsWith(next + ' '))) break;
    words.push(argv[i]!);
  }
  const path = words.join(' ');
  const rest = argv.slice(i);
  const command = commands.find((c) => c.path === path);
  if (!command) {
    // A group: its listing for --help (or, at the top, for nothing at all).
    const wantsHelp = rest.some((a) => a === '--help' || a === '-h');
    if (wantsHelp || argv.length === 0) {
      io.stdout.write(groupHelp(path));
      return 0;
    }
    const what = path === '' ? 'command' : `${words[words.length - 1]} command`;
    const where = path === '' ? 'kubegate' : `kubegate ${path}`;
    throw new UsageError(
      rest[0] === undefined
        ? `${where} needs a command: ${listingNames(path)}`
        : `unknown ${what} "${rest[0]}" (${where} has: ${listingNames(path)})`,
      path,
    );
  }
  const p = parseCommandLine(path, rest, command.options ?? {}, command.args ?? [], io);
  if (!p) {
    io.stdout.write(commandHelp(command));
    return 0;
  }
  return (await command.run(p)) ?? 0;
}

/** The next words after `prefix`: `add, bootstrap, list, revoke-agent`. */
function listingNames(prefix: string): string {
  const depth = prefix === '' ? 0 : prefix.split(' ').length;
  const next = commands
    .filter((c) => prefix === '' || c.path.startsWith(prefix + ' '))
    .map((c) => c.path.split(' ')[depth]!);
  return [...new Set(next)].join(', ');
}

/** What a failure says: the message of our own errors and of system/database errors; a bug's stack. */
function describe(err: unknown): string {
  if (isKgError(err)) return err.message;
  const e = err as { message?: unknown; code?: unknown; stack?: unknown } | null;
  if (e && typeof e.code === 'string') {
    const msg = typeof e.message === 'string' && e.message ? e.message : e.code;
    return msg.includes(e.code) ? msg : `${msg} (${e.code})`;
  }
  return String(e?.stack ?? err);
}

/** Entry point of bin/kubegate.js. Returns the exit code (-1: a server, still running). */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (err) {
    if (err instanceof UsageError) {
      const cmd = err.helpPath ? `kubegate ${err.helpPath}` : 'kubegate';
      io.stderr.write(`${cmd}: ${err.message}\nRun "${cmd} --help" for usage.\n`);
      return 2;
    }
    io.stderr.write(`kubegate: ${describe(err)}\n`);
    return 1;
  }
}
