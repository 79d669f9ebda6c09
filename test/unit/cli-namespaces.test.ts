/**
 * The self-service namespace commands of the CLI (proxy/cli/namespaces.ts):
 * how `kubegate namespace …` and `kubegate admin namespace-profile …` turn
 * their command lines into REST calls, what they refuse before asking, how
 * `create --wait` follows a namespace to ready (or not) and exits, and the
 * text they print. The HTTP parts run against a small fake of the REST API
 * on localhost; no database.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../../proxy/cli/main.js';
import {
  createdText,
  namespaceTable,
  namespaceText,
  NamespaceProgress,
  profileFrom,
  type NamespaceView,
} from '../../proxy/cli/namespaces.js';

async function inProcess(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const out = new PassThrough();
  const err = new PassThrough();
  out.on('data', (b: Buffer) => (stdout += b.toString()));
  err.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await main(argv, { stdout: out, stderr: err, env: { DATABASE_URL: '', ...env } });
  return { code, stdout, stderr };
}

function ns(over: Partial<NamespaceView> = {}): NamespaceView {
  return {
    cluster: 'dev',
    name: 'team-a',
    profile: 'dev',
    owner: 'dev@example.com',
    ownerKind: 'user',
    status: 'provisioning',
    message: '',
    requestedBy: 'dev@example.com',
    reason: '',
    createdAt: '2026-12-07T05:00:00.000Z',
    readyAt: null,
    reconciledAt: null,
    endedAt: null,
    drift: 0,
    yourRole: 'admin',
    mayManage: true,
    ...over,
  };
}

describe('kubegate namespace: the text it prints', () => {
  test('create without --wait: each status, then what to do next', () => {
    assert.equal(
      createdText([ns()], undefined),
      'dev/team-a: provisioning\n' +
        'follow it: kubegate namespace get team-a --cluster dev (or ask again with --wait)\n',
    );
    assert.equal(
      createdText([ns({ status: 'ready' }), ns({ cluster: 'prod', status: 'ready' })], undefined),
      'dev/team-a: ready\nprod/team-a: ready\nready: kubectl --context dev -n team-a get all\n',
    );
    assert.equal(
      createdText([ns({ status: 'awaiting-approval', approvalId: 'a-1' })], 'a-1'),
      'dev/team-a: awaiting-approval (approval a-1)\n' +
        'waiting for approval a-1; approvers were notified. Follow it: kubegate request get a-1\n' +
        'follow it: kubegate namespace get team-a --cluster dev (or ask again with --wait)\n',
    );
  });

  test('progress says each change once, with the message', () => {
    const p = new NamespaceProgress();
    assert.deepEqual(p.update(ns()), ['dev/team-a: provisioning']);
    assert.deepEqual(p.update(ns()), []);
    assert.deepEqual(p.update(ns({ message: 'quota created' })), [
      'dev/team-a: provisioning — quota created',
    ]);
    assert.deepEqual(p.update(ns({ cluster: 'prod' })), ['prod/team-a: provisioning']);
    assert.deepEqual(p.update(ns({ status: 'ready', message: 'ready' })), ['dev/team-a: ready']);
  });

  test('the list table and one namespace with its members', () => {
    assert.equal(
      namespaceTable([ns({ status: 'ready', drift: 2 }), ns({ name: 'b', yourRole: undefined })]),
      'CLUSTER  NAME    PROFILE  STATUS        OWNER            ROLE   DRIFT  CREATED\n' +
        'dev      team-a  dev      ready         dev@example.com  admin  2      2026-12-07T05:00:00.000Z\n' +
        'dev      b       dev      provisioning  dev@example.com  -      0      2026-12-07T05:00:00.000Z\n',
    );
    const text = namespaceText(
      ns({
        status: 'ready',
        readyAt: '2026-12-07T05:00:02.000Z',
        drift: 1,
        members: [
          { kind: 'User', name: 'dev@example.com', role: 'admin', owner: true },
          { kind: 'Group', name: 'qa', role: 'view', owner: false },
        ],
      }),
    );
    assert.equal(
      text,
      [
        'namespace:    team-a',
        'cluster:      dev',
        'profile:      dev',
        'status:       ready',
        'owner:        dev@example.com',
        'your role:    admin (you may manage it)',
        'requested by: dev@example.com',
        'created:      2026-12-07T05:00:00.000Z',
        'ready:        2026-12-07T05:00:02.000Z',
        'drift:        1 correction',
        'members:',
        '  KIND   NAME             ROLE   OWNER',
        '  User   dev@example.com  admin  yes',
        '  Group  qa               view',
        '',
      ].join('\n'),
    );
  });

  test('a profile file: YAML or JSON, read-only fields left out, a name needed', () => {
    assert.deepEqual(profileFrom('name: dev\nversion: 3\nupdatedBy: x\nperUserLimit: 2\n', 'f'), {
      name: 'dev',
      perUserLimit: 2,
    });
    assert.deepEqual(profileFrom('{"name":"qa","updatedAt":"t"}', 'f'), { name: 'qa' });
    assert.throws(() => profileFrom('- a\n', 'p.yaml'), /p\.yaml: must hold one namespace profile/);
    assert.throws(
      () => profileFrom('description: x\n', 'p.yaml'),
      /p\.yaml: the profile needs a name/,
    );
  });
});

describe('kubegate namespace against a fake API', () => {
  let server: Server;
  let base: string;
  const seen: { method: string; url: string; body: string; ifMatch?: string }[] = [];
  /** Answers by "METHOD path"; a list is one answer per call, the last repeating. */
  let answers: Record<string, { status: number; body?: unknown }[]> = {};

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (b: Buffer) => (body += b.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, body, ifMatch: req.headers['if-match'] });
        const list = answers[`${req.method} ${req.url}`];
        const a = list ? (list.length > 1 ? list.shift()! : list[0]!) : undefined;
        const status = req.headers.authorization !== 'Bearer tok' ? 401 : (a?.status ?? 404);
        const out =
          status === 401 ? { detail: 'no token' } : a ? a.body : { detail: `no route ${req.url}` };
        res.writeHead(status, {
          'content-type': status >= 400 ? 'application/problem+json' : 'application/json',
        });
        res.end(status === 204 ? undefined : JSON.stringify(out));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => {
    seen.length = 0;
    answers = {};
  });

  const env = () => ({ KUBEGATE_SERVER: base, KUBEGATE_TOKEN: 'tok' });

  test('create sends name, profile, clusters and reason; prints the status', async () => {
    answers['POST /api/v1/namespaces'] = [{ status: 201, body: { items: [ns()] } }];
    const r = await inProcess(
      ['namespace', 'create', 'team-a', '--profile', 'dev', '--cluster', 'dev', '--reason', 'why'],
      env(),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(seen[0]!.body), {
      name: 'team-a',
      profile: 'dev',
      clusters: ['dev'],
      reason: 'why',
    });
    assert.match(r.stdout, /^dev\/team-a: provisioning\n/);
  });

  test('create --wait follows every namespace to ready (exit 0) or not (exit 1)', async () => {
    answers['POST /api/v1/namespaces'] = [
      { status: 201, body: { items: [ns(), ns({ cluster: 'prod' })] } },
    ];
    answers['GET /api/v1/namespaces/dev/team-a'] = [
      { status: 200, body: ns({ message: 'quota created' }) },
      { status: 200, body: ns({ status: 'ready' }) },
    ];
    answers['GET /api/v1/namespaces/prod/team-a'] = [
      { status: 200, body: ns({ cluster: 'prod', status: 'ready' }) },
    ];
    const ok = await inProcess(
      ['namespace', 'create', 'team-a', '--profile', 'dev', '--cluster', 'dev,prod', '--wait'],
      env(),
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(
      ok.stdout,
      [
        'dev/team-a: provisioning',
        'prod/team-a: provisioning',
        'dev/team-a: provisioning — quota created',
        'prod/team-a: ready',
        'dev/team-a: ready',
        'ready: dev/team-a, prod/team-a',
        '',
      ].join('\n'),
    );
    assert.deepEqual(JSON.parse(seen[0]!.body).clusters, ['dev', 'prod']);

    seen.length = 0;
    answers['POST /api/v1/namespaces'] = [
      {
        status: 202,
        body: {
          items: [ns({ status: 'awaiting-approval', approvalId: 'a-9' })],
          approvalId: 'a-9',
        },
      },
    ];
    answers['GET /api/v1/namespaces/dev/team-a'] = [
      { status: 200, body: ns({ status: 'denied', message: 'not this quarter' }) },
    ];
    const denied = await inProcess(
      ['namespace', 'create', 'team-a', '--profile', 'qa', '--cluster', 'dev', '--wait'],
      env(),
    );
    assert.equal(denied.code, 1);
    assert.equal(
      denied.stdout,
      [
        'waiting for approval a-9 (kubegate request get a-9)',
        'dev/team-a: awaiting-approval (approval a-9)',
        'dev/team-a: denied — not this quarter',
        'not ready: dev/team-a denied',
        '',
      ].join('\n'),
    );
  });

  test("a refusal shows the server's reason and exits 1; usage mistakes exit 2 without a call", async () => {
    answers['POST /api/v1/namespaces'] = [
      {
        status: 422,
        body: { detail: 'name "x" breaks the rule of profile dev: it must start with team-' },
      },
    ];
    const r = await inProcess(
      ['namespace', 'create', 'x', '--profile', 'dev', '--cluster', 'dev'],
      env(),
    );
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      'kubegate: 422: name "x" breaks the rule of profile dev: it must start with team-\n',
    );
    seen.length = 0;
    for (const argv of [
      ['namespace', 'create', 'x', '--profile', 'dev'],
      ['namespace', 'add-member', 'x', '--cluster', 'dev', '--role', 'edit'],
      [
        'namespace',
        'add-member',
        'x',
        '--cluster',
        'dev',
        '--user',
        'a',
        '--group',
        'b',
        '--role',
        'edit',
      ],
      ['namespace', 'get', 'x'],
      ['namespace', 'list', '-o', 'xml'],
    ]) {
      const u = await inProcess(argv, env());
      assert.equal(u.code, 2, `${argv.join(' ')}: ${u.stderr}`);
    }
    assert.equal(seen.length, 0, 'nothing was asked');
  });

  test('list, get, members, add-member, remove-member, transfer, delete: the calls and the answers', async () => {
    answers['GET /api/v1/namespaces?cluster=dev&all=true'] = [
      { status: 200, body: { items: [ns({ status: 'ready' })] } },
    ];
    const list = await inProcess(
      ['namespace', 'list', '--cluster', 'dev', '--all', '-o', 'json'],
      env(),
    );
    assert.equal(list.code, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout)[0].name, 'team-a');

    answers['GET /api/v1/namespaces/dev/team-a'] = [
      { status: 200, body: ns({ status: 'ready', members: [] }) },
    ];
    const get = await inProcess(['namespace', 'get', 'team-a', '--cluster', 'dev'], env());
    assert.match(get.stdout, /^members:\n {2}\(none\)$/m);

    answers['GET /api/v1/namespaces/dev/team-a/members'] = [
      {
        status: 200,
        body: { items: [{ kind: 'Group', name: 'qa', role: 'view', owner: false }] },
      },
    ];
    const members = await inProcess(['namespace', 'members', 'team-a', '--cluster', 'dev'], env());
    assert.equal(members.stdout, 'KIND   NAME  ROLE  OWNER\nGroup  qa    view\n');

    answers['PUT /api/v1/namespaces/dev/team-a/members/User/bob%40example.com'] = [
      { status: 200, body: { kind: 'User', name: 'bob@example.com', role: 'edit', owner: false } },
    ];
    const add = await inProcess(
      [
        'namespace',
        'add-member',
        'team-a',
        '--cluster',
        'dev',
        '--user',
        'bob@example.com',
        '--role',
        'edit',
      ],
      env(),
    );
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, 'User bob@example.com is edit in dev/team-a\n');
    assert.deepEqual(JSON.parse(seen.at(-1)!.body), { role: 'edit' });

    answers['DELETE /api/v1/namespaces/dev/team-a/members/Group/qa'] = [{ status: 204 }];
    const rm = await inProcess(
      ['namespace', 'remove-member', 'team-a', '--cluster', 'dev', '--group', 'qa'],
      env(),
    );
    assert.equal(rm.stdout, 'Group qa removed from dev/team-a\n');

    answers['POST /api/v1/namespaces/dev/team-a/owner'] = [
      { status: 200, body: ns({ owner: 'bob@example.com' }) },
    ];
    const tr = await inProcess(
      ['namespace', 'transfer', 'team-a', '--cluster', 'dev', '--to', 'bob@example.com'],
      env(),
    );
    assert.equal(tr.stdout, 'dev/team-a: owner is now bob@example.com\n');
    assert.deepEqual(JSON.parse(seen.at(-1)!.body), { user: 'bob@example.com' });

    answers['DELETE /api/v1/namespaces/dev/team-a'] = [
      {
        status: 202,
        body: ns({
          status: 'ready',
          message: 'deletion waits for approval',
          retireApprovalId: 'a-2',
        }),
      },
    ];
    const del = await inProcess(['namespace', 'delete', 'team-a', '--cluster', 'dev'], env());
    assert.equal(del.stdout, 'dev/team-a: ready — deletion waits for approval\n');
    assert.equal(del.stderr, 'the deletion waits for approval a-2: kubegate request get a-2\n');
  });

  test('admin namespace-profile apply creates, then replaces; get prints YAML; delete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-prof-'));
    const file = join(dir, 'dev.yaml');
    writeFileSync(
      file,
      'name: dev\nversion: 7\nclusters:\n  names: [dev]\nnetworkPolicy: default-deny\n',
    );
    const sent = { name: 'dev', clusters: { names: ['dev'] }, networkPolicy: 'default-deny' };

    answers['GET /api/v1/namespace-profiles/dev'] = [{ status: 404, body: { detail: 'no' } }];
    answers['POST /api/v1/namespace-profiles'] = [{ status: 201, body: { ...sent, version: 1 } }];
    const created = await inProcess(['admin', 'namespace-profile', 'apply', '-f', file], env());
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stderr, 'namespace profile "dev" created (version 1)\n');
    assert.deepEqual(JSON.parse(seen.at(-1)!.body), sent);

    answers['GET /api/v1/namespace-profiles/dev'] = [
      { status: 200, body: { ...sent, version: 1 } },
    ];
    answers['PUT /api/v1/namespace-profiles/dev'] = [
      { status: 200, body: { ...sent, version: 2 } },
    ];
    const replaced = await inProcess(
      ['admin', 'namespace-profile', 'apply', '--file', file],
      env(),
    );
    assert.equal(replaced.stderr, 'namespace profile "dev" replaced (version 2)\n');
    assert.equal(seen.at(-1)!.method, 'PUT');
    assert.equal(seen.at(-1)!.ifMatch, '"1"', 'the version read goes back as If-Match');

    const yaml = await inProcess(['admin', 'namespace-profile', 'get', 'dev'], env());
    assert.match(yaml.stdout, /^name: dev\n/);
    assert.match(yaml.stdout, /^version: 1$/m);

    answers['DELETE /api/v1/namespace-profiles/dev'] = [
      { status: 409, body: { detail: 'namespace profile "dev" is used by 2 namespaces' } },
    ];
    const refused = await inProcess(['admin', 'namespace-profile', 'delete', 'dev'], env());
    assert.equal(refused.code, 1);
    assert.equal(
      refused.stderr,
      'kubegate: 409: namespace profile "dev" is used by 2 namespaces\n',
    );
  });
});
