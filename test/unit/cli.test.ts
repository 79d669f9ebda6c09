/**
 * The `kubegate` command line: every command and every group of commands in
 * the table answers --help (stdout, exit 0) as a real process, usage mistakes
 * exit 2 with a message naming the problem and the --help to run, and the
 * parser's rules for repeated options, `--name=value`, `--` and values that
 * start with a dash. Needs dist/ (npx tsc first); no database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { commands } from '../../proxy/cli/commands.js';
import { main } from '../../proxy/cli/main.js';
import {
  flag,
  flagList,
  parseCommandLine,
  processIo,
  UsageError,
  type OptionSpec,
} from '../../proxy/cli/args.js';
import { runKubegate } from '../support/proc.js';

/** Every group (`admin`, `admin token`, …) and every command, from the table. */
function everyPath(): string[] {
  const paths = new Set<string>();
  for (const c of commands) {
    const words = c.path.split(' ');
    for (let i = 1; i <= words.length; i++) paths.add(words.slice(0, i).join(' '));
  }
  return [...paths].sort();
}

async function inProcess(argv: string[], env: NodeJS.ProcessEnv = { DATABASE_URL: '' }) {
  let stdout = '';
  let stderr = '';
  const out = new PassThrough();
  const err = new PassThrough();
  out.on('data', (b: Buffer) => (stdout += b.toString()));
  err.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await main(argv, { stdout: out, stderr: err, env });
  return { code, stdout, stderr };
}

test('every command and group answers --help: usage on stdout, exit 0', async () => {
  const paths = everyPath();
  assert.ok(paths.includes('admin token create') && paths.includes('admin token list'));
  const failures: string[] = [];
  for (const path of ['', ...paths]) {
    const args = [...(path ? path.split(' ') : []), '--help'];
    const r = await inProcess(args);
    const leaf = commands.some((c) => c.path === path);
    const ok =
      r.code === 0 &&
      r.stderr === '' &&
      (leaf
        ? r.stdout.startsWith(`Usage: kubegate ${path}`) && r.stdout.includes('--help')
        : r.stdout.includes('Usage:') &&
          commands
            .filter((c) => path === '' || c.path.startsWith(path + ' '))
            .every((c) => r.stdout.includes(`kubegate ${c.path}`)));
    if (!ok) failures.push(`kubegate ${args.join(' ')} → ${r.code}\n${r.stdout}${r.stderr}`);
  }
  assert.deepEqual(failures, []);
});

test('as a real process, with no settings at all: --help, -h, help WORDS, no arguments', async () => {
  const env = { DATABASE_URL: '', KUBEGATE_CONFIG: '' };
  for (const argv of [
    ['proxy', '--help'],
    ['agent', '--help'],
    ['admin', 'token', 'create', '-h'],
    ['admin', 'token', '--help'],
  ]) {
    const r = await runKubegate(argv, env);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /Usage:/);
  }
  const bare = await runKubegate([], {});
  assert.equal(bare.code, 0);
  assert.match(bare.stdout, /kubegate admin token revoke ID/);
  const help = await runKubegate(['help', 'admin', 'token', 'revoke'], {});
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: kubegate admin token revoke ID/);
});

test('usage mistakes exit 2, naming the problem and the --help to run', async () => {
  const cases: [string[], RegExp, string][] = [
    [['frobnicate'], /unknown command "frobnicate"/, 'kubegate --help'],
    [['admin'], /kubegate admin needs a command: cluster, token/, 'kubegate admin --help'],
    [['admin', 'token', 'mint'], /unknown token command "mint"/, 'kubegate admin token --help'],
    [
      ['admin', 'token', 'create', '--user', 'a', '--grop', 'x'],
      /unknown flag\(s\) --grop$/m,
      'kubegate admin token create --help',
    ],
    [['admin', 'token', 'create'], /--user NAME is required/, 'kubegate admin token create --help'],
    [
      ['admin', 'token', 'create', '--user'],
      /--user needs a value/,
      'kubegate admin token create --help',
    ],
    [
      ['admin', 'token', 'create', '--user', 'a', '--robot=yes'],
      /--robot takes no value/,
      'kubegate admin token create --help',
    ],
    [['admin', 'token', 'revoke'], /missing ID/, 'kubegate admin token revoke --help'],
    [
      ['admin', 'token', 'revoke', 'a', 'b'],
      /unexpected argument\(s\): "b"/,
      'kubegate admin token revoke --help',
    ],
    [['admin', 'cluster', 'list', '-x'], /unknown flag\(s\) -x/, 'kubegate admin cluster list'],
  ];
  for (const [argv, re, help] of cases) {
    const r = await inProcess(argv);
    assert.equal(r.code, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, re);
    assert.ok(r.stderr.includes(help), `${argv.join(' ')} points at ${help}:\n${r.stderr}`);
  }
});

test('a failure exits 1 with its message, not a stack trace', async () => {
  const r = await inProcess(['admin', 'token', 'create', '--user', 'a']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^kubegate: invalid configuration:\n {2}- DATABASE_URL/);
  assert.doesNotMatch(r.stderr, /KUBEGATE_PUBLIC_URL|KUBEGATE_MASTER_KEY/, 'needs only the DB');
  assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  // A database that cannot be reached is a failure to report, not a bug: no stack trace.
  const down = await inProcess(['admin', 'cluster', 'list'], {
    DATABASE_URL: 'postgres://u:p@127.0.0.1:1/x',
  });
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^kubegate: .*ECONNREFUSED/);
  assert.doesNotMatch(down.stderr, /\bat .*\.js:\d+/);
});

test('parsing: repeated options, --name=value, --, values starting with a dash, -h', () => {
  const options: Record<string, OptionSpec> = {
    group: { value: 'G', repeatable: true, doc: '' },
    ttl: { value: 'D', doc: '' },
    reason: { value: 'TEXT', doc: '' },
    robot: { type: 'boolean', doc: '' },
  };
  const args = [{ name: 'NAME' }, { name: 'MORE', optional: true }];
  const parse = (argv: string[]) => parseCommandLine('x', argv, options, args, processIo);
  const p = parse([
    'n',
    '--group',
    'a,b',
    '--group=c',
    '--ttl',
    '1h',
    '--ttl=2h',
    '--reason',
    '-starts with a dash',
    '--robot',
    '--',
    '--not-an-option',
  ])!;
  assert.deepEqual(p.positionals, ['n', '--not-an-option']);
  assert.deepEqual(flagList(p, 'group'), ['a', 'b', 'c']);
  assert.equal(flag(p, 'ttl'), '2h', 'the last value wins');
  assert.equal(flag(p, 'reason'), '-starts with a dash');
  assert.equal(flag(p, 'robot'), 'true');
  assert.equal(flag(p, 'group'), 'c');
  assert.equal(parse(['n', '-h']), undefined, '-h asks for help');
  assert.equal(parse(['n', '--bogus', '--help']), undefined, '--help wins over mistakes');
  assert.deepEqual(parse(['--', '-n'])!.positionals, ['-n']);
  assert.throws(() => parse(['n', '--ttl']), UsageError);
  assert.throws(
    () => parse(['n', '--bogus', '--other=1']),
    (e: Error) => e instanceof UsageError && /unknown flag\(s\) --bogus, --other$/.test(e.message),
  );
});
