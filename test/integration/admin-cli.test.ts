/**
 * `kubegate admin role|binding …` as a real process against a real
 * PostgreSQL: the create → list → delete round trip a script would do, the
 * created binding's id alone on stdout, validation problems one per line,
 * and the change log naming the CLI user. Needs dist/ (npx tsc first).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';
import { spawn } from 'node:child_process';
import { TokenStore } from '../../proxy/authn/token-store.js';
import { kubegateBin, runKubegate } from '../support/proc.js';

let pg: PgServer;
let pool: Pool;
let env: NodeJS.ProcessEnv;
let dir: string;

before(async () => {
  pg = await startPostgres();
  const url = await createDatabase(pg);
  pool = createPool({ url });
  await migrate(pool);
  env = { DATABASE_URL: url, KUBEGATE_CONFIG: '' };
  dir = mkdtempSync(join(tmpdir(), 'kg-cli-'));
});
after(async () => {
  await pool?.end();
  await pg?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function kg(...args: string[]) {
  return runKubegate(['admin', ...args], env);
}

async function ok(...args: string[]): Promise<string> {
  const r = await kg(...args);
  assert.equal(r.code, 0, `kubegate admin ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** Rows of a printed table as objects keyed by its header. */
function rowsOf(table: string): Record<string, string>[] {
  const lines = table.trimEnd().split('\n');
  const header = lines[0]!;
  const starts = [...header.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index }));
  return lines
    .slice(1)
    .map((line) =>
      Object.fromEntries(
        starts.map((s, i) => [s.name, line.slice(s.at, starts[i + 1]?.at ?? line.length).trim()]),
      ),
    );
}

test('role create → binding create → list → refused role delete → delete both', async () => {
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(
    rulesFile,
    `description: read pods and their logs
rules:
  - apiGroups: [""]
    resources: [pods, pods/log]
    verbs: [get, list, watch]
`,
  );
  assert.equal(await ok('role', 'create', 'pod-logs', '--file', rulesFile), 'pod-logs\n');

  const roles = rowsOf(await ok('role', 'list'));
  assert.deepEqual(
    roles.map((r) => [r.NAME, r.BUILTIN]),
    [
      ['admin', 'yes'],
      ['cluster-admin', 'yes'],
      ['edit', 'yes'],
      ['pod-logs', 'no'],
      ['view', 'yes'],
    ],
  );
  assert.match(await ok('role', 'get', 'pod-logs'), /resources:\n\s+- pods\n\s+- pods\/log/);

  const created = await ok(
    'binding',
    'create',
    '--group',
    'dev',
    '--user',
    'alice@example.com',
    '--role',
    'pod-logs',
    '--cluster',
    'eu-1',
    '--selector',
    'env=prod,tier in (web,api)',
    '--namespace',
    'team-a',
    '--namespace',
    'team-b',
    '--expires',
    '2h',
    '--reason',
    'on-call rota',
  );
  assert.match(created, /^[0-9a-f-]{36}\n$/, 'only the id, on one line');
  const id = created.trim();

  const { rows } = await pool.query('SELECT * FROM bindings WHERE id = $1', [id]);
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0].subjects, [
    { kind: 'Group', name: 'dev' },
    { kind: 'User', name: 'alice@example.com' },
  ]);
  assert.deepEqual(rows[0].cluster_names, ['eu-1']);
  assert.deepEqual(rows[0].cluster_selector, {
    matchLabels: { env: 'prod' },
    matchExpressions: [{ key: 'tier', operator: 'In', values: ['web', 'api'] }],
  });
  assert.deepEqual(rows[0].namespaces, ['team-a', 'team-b']);
  const ttl = (rows[0].expires_at as Date).getTime() - Date.now();
  assert.ok(ttl > 7_000_000 && ttl <= 7_200_000, `expires in ~2h, got ${ttl} ms`);
  assert.equal(rows[0].created_by, `cli:${userInfo().username}`);

  const listed = rowsOf(await ok('binding', 'list'));
  assert.deepEqual(
    listed.map((b) => [b.ID, b.ROLE, b.SUBJECTS, b.CLUSTERS, b.NAMESPACES, b.REASON]),
    [
      [
        id,
        'pod-logs',
        'Group:dev,User:alice@example.com',
        'eu-1; selector env=prod,tier in (web,api)',
        'team-a,team-b',
        'on-call rota',
      ],
    ],
  );
  assert.equal(rowsOf(await ok('binding', 'list', '--subject', 'dev')).length, 1);
  assert.equal(rowsOf(await ok('binding', 'list', '--subject', 'ops')).length, 0);

  const refused = await kg('role', 'delete', 'pod-logs');
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, new RegExp(`role "pod-logs" is used by 1 binding\\(s\\): ${id}`));

  await ok('binding', 'delete', id);
  assert.equal(rowsOf(await ok('binding', 'list')).length, 0);
  await ok('role', 'delete', 'pod-logs');
  assert.ok(!rowsOf(await ok('role', 'list')).some((r) => r.NAME === 'pod-logs'));

  const log = await pool.query<{ actor: string; action: string; kind: string }>(
    'SELECT actor, action, kind FROM admin_changes ORDER BY id',
  );
  assert.deepEqual(
    log.rows.map((r) => `${r.action} ${r.kind}`),
    ['create role', 'create binding', 'delete binding', 'delete role'],
  );
  for (const r of log.rows) assert.equal(r.actor, `cli:${userInfo().username}`);
});

test('validation problems are printed one per line, all at once, and nothing is stored', async () => {
  const r = await kg(
    'binding',
    'create',
    '--group',
    'system:masters',
    '--role',
    'no-such-role',
    '--selector',
    'zone notin ()',
    '--namespace',
    'Bad_NS',
    '--expires',
    '2001-01-01T00:00:00Z',
  );
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '', 'no id on failure');
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('  - '));
  assert.equal(lines.length, 5, r.stderr);
  for (const re of [/system:/, /no-such-role/, /NotIn/, /Bad_NS/, /not in the future/]) {
    assert.ok(
      lines.some((l) => re.test(l)),
      `${re} missing:\n${r.stderr}`,
    );
  }
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM bindings');
  assert.equal(rows[0].n, 0);
});

test('usage mistakes are refused with a message', async () => {
  // Usage mistakes exit 2; failures of a command that ran exit 1.
  const unknown = await kg('binding', 'create', '--grop', 'dev', '--role', 'view');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown flag\(s\) --grop/);
  const selector = await kg(
    'binding',
    'create',
    '--group',
    'dev',
    '--role',
    'view',
    '--selector',
    'a in (b',
  );
  assert.equal(selector.code, 1);
  assert.match(selector.stderr, /selector "a in \(b": unbalanced parentheses/);
  const noFile = await kg('role', 'create', 'x');
  assert.equal(noFile.code, 2);
  assert.match(noFile.stderr, /--file rules\.yaml is required/);
  const missing = await kg('binding', 'delete', '00000000-0000-4000-8000-000000000000');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /does not exist/);
});

/** `kubegate admin <args>` with nothing in its environment but DATABASE_URL. */
function onlyDatabaseUrl(
  ...args: string[]
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [kubegateBin(), 'admin', ...args], {
      env: { DATABASE_URL: env.DATABASE_URL },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('admin token create|list|revoke with only DATABASE_URL set; a revoked token fails authentication', async () => {
  const created = await onlyDatabaseUrl(
    'token',
    'create',
    '--user',
    'tess',
    '--group',
    'dev',
    '--ttl',
    '1h',
  );
  assert.equal(created.code, 0, created.stderr);
  const token = created.stdout.trim();
  assert.match(token, /^\S+$/, 'the token alone on stdout');
  const id = /^token ([0-9a-f-]{36}) for tess expires /.exec(created.stderr)?.[1];
  assert.ok(id, created.stderr);
  assert.equal((await new TokenStore(pool).authenticate(token))?.user, 'tess');

  const robot = await onlyDatabaseUrl('token', 'create', '--user', 'ci', '--robot');
  assert.equal(robot.code, 0, robot.stderr);

  const listed = await onlyDatabaseUrl('token', 'list', '--user', 'tess');
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok(!listed.stdout.includes(token), 'never the token');
  const rows = rowsOf(listed.stdout);
  assert.deepEqual(
    rows.map((r) => [r.ID, r.OWNER, r.STATE, r['LAST-USED'] !== '-', r.REVOKED, r.DESCRIPTION]),
    [[id, 'user:tess', 'active', true, '-', 'cli']],
  );
  assert.ok(Date.parse(rows[0]!.EXPIRES!) - Date.now() <= 3_600_000);
  const everyone = rowsOf((await onlyDatabaseUrl('token', 'list')).stdout);
  assert.deepEqual(everyone.map((r) => r.OWNER).sort(), ['robot:ci', 'user:tess']);
  assert.deepEqual(
    rowsOf((await onlyDatabaseUrl('token', 'list', '--robot', 'ci')).stdout).map((r) => r.OWNER),
    ['robot:ci'],
  );

  const revoked = await onlyDatabaseUrl('token', 'revoke', id!);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stderr, new RegExp(`token ${id} revoked`));
  assert.equal(await new TokenStore(pool).authenticate(token), undefined);
  const log = await pool.query<{ actor: string }>(
    "SELECT actor FROM admin_changes WHERE kind = 'token' AND action = 'delete' AND name = $1",
    [id],
  );
  assert.deepEqual(log.rows, [{ actor: `cli:${userInfo().username}` }]);

  const again = await onlyDatabaseUrl('token', 'revoke', id!);
  assert.equal(again.code, 0);
  assert.match(again.stderr, /already revoked/);
  assert.equal(rowsOf((await onlyDatabaseUrl('token', 'list', '--user', 'tess')).stdout).length, 0);
  const all = rowsOf((await onlyDatabaseUrl('token', 'list', '--user', 'tess', '--all')).stdout);
  assert.equal(all[0]!.STATE, 'revoked');
  assert.notEqual(all[0]!.REVOKED, '-');

  const missing = await onlyDatabaseUrl('token', 'revoke', '00000000-0000-4000-8000-000000000000');
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^kubegate: no token with id/);
  const usage = await onlyDatabaseUrl('token', 'revoke');
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /missing ID[\s\S]*kubegate admin token revoke --help/);
});
