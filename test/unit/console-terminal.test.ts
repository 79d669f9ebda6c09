/**
 * The console terminal's pieces that need no stack: its query read strictly
 * (each name once, DNS names only, command words as argv, bounded), the exec
 * request it becomes (exactly kubectl's `exec -it`, no parameter smuggled
 * through a value), which upgrades are its, and the pickers over a real HTTP
 * server deciding on a policy snapshot built here (the cluster read behind
 * the pods picker is a fake named as such: the e2e tests read a real one).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { KgError } from '../../common/errors.js';
import {
  execTarget,
  isTerminalTarget,
  parseTerminalQuery,
  terminalRoutes,
} from '../../proxy/console/terminal.js';
import type { ApiCaller } from '../../proxy/api/types.js';
import type { PolicyState } from '../../proxy/authz/policy-store.js';
import type { TokenIdentity } from '../../proxy/authn/identity.js';
import { builtinRoles } from '../../proxy/authz/builtin-roles.js';
import type { Binding } from '../../proxy/authz/types.js';
import { createDispatcher } from '../../proxy/http/routes.js';
import { quietLog } from '../support/route-table.js';

const base = 'cluster=dev-1&namespace=team-a&pod=web-0&container=app';

describe('terminal query', () => {
  test('a well-formed query; the command defaults to sh and keeps its words as argv', () => {
    assert.deepEqual(parseTerminalQuery(base), {
      cluster: 'dev-1',
      namespace: 'team-a',
      pod: 'web-0',
      container: 'app',
      command: ['sh'],
    });
    const t = parseTerminalQuery(
      `${base}&command=sh&command=-c&command=${encodeURIComponent('echo $(id); rm -rf /')}`,
    );
    assert.deepEqual(t.command, ['sh', '-c', 'echo $(id); rm -rf /']);
    assert.equal(parseTerminalQuery(base.replace('web-0', 'web-0.a-b.c')).pod, 'web-0.a-b.c');
  });

  test('refused: repeated, unknown, missing or malformed parameters, traversal, oversized commands', () => {
    const bad: [string, RegExp][] = [
      [`${base}&pod=web-1`, /more than once: pod/],
      [`${base}&namespace=team-b`, /more than once: namespace/],
      [`${base}&tty=false`, /unknown query parameter/],
      ['namespace=team-a&pod=web-0&container=app', /cluster is required/],
      [base.replace('web-0', '..'), /not a valid pod name/],
      [base.replace('web-0', '.'), /not a valid pod name/],
      [base.replace('web-0', 'a..b'), /not a valid pod name/],
      [base.replace('web-0', '..%2F..%2Fsecrets'), /not a valid pod name/],
      [base.replace('web-0', 'web-0%2Fexec'), /not a valid pod name/],
      [base.replace('web-0', 'WEB-0'), /not a valid pod name/],
      [base.replace('web-0', 'x'.repeat(254)), /not a valid pod name/],
      [base.replace('team-a', 'team-a%2F..%2Fkube-system'), /not a valid namespace name/],
      [base.replace('dev-1', 'dev-1%00'), /not a valid cluster name/],
      [base.replace('=app', '=app%3Fcommand%3Did'), /not a valid container name/],
      [`${base}&command=`, /empty program/],
      [`${base}&command=sh&command=a%00b`, /NUL/],
      [`${base}${'&command=x'.repeat(65)}`, /at most 64 arguments/],
      [`${base}&command=${'x'.repeat(8193)}`, /at most 8192 bytes/],
    ];
    for (const [q, why] of bad) {
      assert.throws(
        () => parseTerminalQuery(q),
        (err: unknown) => err instanceof KgError && err.status === 400 && why.test(err.message),
        q.slice(0, 120),
      );
    }
  });

  test('the exec it becomes is kubectl exec -it, and a value cannot add a parameter', () => {
    const t = parseTerminalQuery(`${base}&command=a%26tty%3Dfalse&command=b`);
    const target = execTarget(t);
    assert.equal(
      target,
      '/k8s/dev-1/api/v1/namespaces/team-a/pods/web-0/exec?container=app&command=a%26tty%3Dfalse&command=b&stdin=true&stdout=true&tty=true',
    );
    const q = new URLSearchParams(target.split('?')[1]);
    assert.deepEqual(q.getAll('tty'), ['true']);
    assert.deepEqual(q.getAll('command'), ['a&tty=false', 'b']);
  });

  test('only /api/v1/terminal itself is the terminal’s upgrade', () => {
    assert.equal(isTerminalTarget('/api/v1/terminal?cluster=x'), true);
    assert.equal(isTerminalTarget('/api/v1/terminal'), true);
    for (const u of [
      '/api/v1/terminal/',
      '/api/v1/terminals',
      '/k8s/x/api/v1/terminal',
      '/api/v1/terminal/../x',
      undefined,
    ])
      assert.equal(isTerminalTarget(u), false, String(u));
  });
});

// ---------------------------------------------------------------- pickers

const callers: Record<string, ApiCaller> = {
  dev: { user: 'dev', kind: 'user', groups: ['developers'], actor: 'user:dev' },
  ops: { user: 'ops', kind: 'user', groups: ['ops'], actor: 'user:ops' },
  viewer: { user: 'vic', kind: 'user', groups: ['viewers'], actor: 'user:vic' },
};

const bindings: Binding[] = [
  {
    id: 'b1',
    subjects: [{ kind: 'Group', name: 'developers' }],
    role: 'edit',
    clusters: { names: ['dev-1', 'off'] },
    namespaces: ['team-a'],
  },
  {
    id: 'b2',
    subjects: [{ kind: 'Group', name: 'developers' }],
    role: 'view',
    clusters: { names: ['dev-1'] },
    namespaces: ['team-b'],
  },
  {
    id: 'b3',
    subjects: [{ kind: 'Group', name: 'ops' }],
    role: 'admin',
    clusters: { names: ['dev-2'] },
    namespaces: [],
  },
  {
    id: 'b4',
    subjects: [{ kind: 'Group', name: 'viewers' }],
    role: 'view',
    clusters: { names: ['dev-1', 'dev-2'] },
    namespaces: [],
  },
];

const state: PolicyState = {
  snapshot: {
    roles: new Map(builtinRoles.map((r) => [r.name, { name: r.name, rules: r.rules }])),
    bindings,
  },
  clusters: new Map(
    [
      { name: 'dev-1', labels: {}, disabled: false },
      { name: 'dev-2', labels: {}, disabled: false },
      { name: 'off', labels: {}, disabled: true },
    ].map((c) => [c.name, c]),
  ),
  loadedAt: new Date(),
};

/** What the fake cluster read was asked: as whom, and what. */
const reads: { identity: TokenIdentity; target: string }[] = [];
const fakePodList = {
  items: [
    {
      metadata: { name: 'web-1' },
      spec: { containers: [{ name: 'app' }, { name: 'sidecar' }] },
      status: { phase: 'Running' },
    },
    {
      metadata: { name: 'web-0' },
      spec: { containers: [{ name: 'app' }] },
      status: { phase: 'Running' },
    },
    {
      metadata: { name: 'job-x' },
      spec: { containers: [{ name: 'run' }] },
      status: { phase: 'Succeeded' },
    },
    {
      metadata: { name: 'new-y' },
      spec: { containers: [{ name: 'app' }] },
      status: { phase: 'Pending' },
    },
  ],
};

const fakeNamespaceList = {
  items: [
    { metadata: { name: 'kube-system' } },
    { metadata: { name: 'apps' } },
    { metadata: { name: 'Bad/Name' } },
  ],
};

let server: Server;
let port: number;

function call(
  who: string | undefined,
  path: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { port, path, agent: false, headers: who ? { 'x-test-caller': who } : {} },
      (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            body: t ? (JSON.parse(t) as Record<string, unknown>) : {},
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('terminal pickers', () => {
  before(async () => {
    const routes = terminalRoutes({
      resolveCaller: async (req) => {
        const c = callers[String(req.headers['x-test-caller'])];
        if (!c) throw new KgError('KG_ERR_UNAUTHENTICATED', 'who are you');
        return c;
      },
      policy: () => state,
      health: async (names) => new Map(names.map((n) => [n, { online: n === 'dev-1' } as never])),
      readAs: async (who, target) => {
        reads.push({ identity: who.identity, target });
        return { status: 200, json: target.endsWith('/pods') ? fakePodList : fakeNamespaceList };
      },
    });
    const handle = createDispatcher(routes, { log: quietLog, owns: () => true });
    server = createServer((req, res) => void handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('targets: only clusters and namespaces where exec is allowed', async () => {
    const dev = await call('dev', '/api/v1/terminal/targets');
    assert.equal(dev.status, 200);
    // team-b is view only; the disabled cluster is not offered.
    assert.deepEqual(dev.body.items, [
      { name: 'dev-1', namespaces: ['team-a'], allNamespaces: false, online: true },
    ]);
    const ops = await call('ops', '/api/v1/terminal/targets');
    assert.deepEqual(ops.body.items, [
      { name: 'dev-2', namespaces: [], allNamespaces: true, online: false },
    ]);
    const viewer = await call('viewer', '/api/v1/terminal/targets');
    assert.deepEqual(viewer.body.items, [], 'view grants no exec: nothing offered');
    assert.equal((await call(undefined, '/api/v1/terminal/targets')).status, 401);
    assert.equal((await call('dev', '/api/v1/terminal/targets?x=1')).status, 400);
  });

  test('pods: running pods with their containers, read as the caller; refused where exec is not allowed', async () => {
    reads.length = 0;
    const r = await call('dev', '/api/v1/terminal/pods?cluster=dev-1&namespace=team-a');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.items, [
      { name: 'web-0', containers: ['app'] },
      { name: 'web-1', containers: ['app', 'sidecar'] },
    ]);
    assert.equal(reads.length, 1);
    assert.equal(reads[0]!.target, '/k8s/dev-1/api/v1/namespaces/team-a/pods');
    assert.equal(reads[0]!.identity.user, 'dev');
    assert.deepEqual(reads[0]!.identity.groups, ['developers']);
    for (const [who, q] of [
      ['dev', 'cluster=dev-1&namespace=team-b'],
      ['dev', 'cluster=dev-2&namespace=team-a'],
      ['dev', 'cluster=off&namespace=team-a'],
      ['viewer', 'cluster=dev-1&namespace=team-a'],
    ] as const) {
      const refused = await call(who, `/api/v1/terminal/pods?${q}`);
      assert.equal(refused.status, 403, `${who} ${q}`);
      assert.match(String(refused.body.detail), /may not open a terminal/);
    }
    assert.equal(reads.length, 1, 'nothing read from a cluster for a refusal');
    for (const q of [
      'cluster=dev-1&namespace=team-a&namespace=team-b',
      'cluster=dev-1&namespace=..',
      'cluster=dev-1',
      'cluster=dev-1&namespace=team-a&limit=1',
    ]) {
      assert.equal((await call('dev', `/api/v1/terminal/pods?${q}`)).status, 400, q);
    }
  });

  test('namespaces: a namespaced grant offers its own; a cluster-wide one, those the caller can list', async () => {
    reads.length = 0;
    const dev = await call('dev', '/api/v1/terminal/namespaces?cluster=dev-1');
    assert.deepEqual(dev.body, { items: ['team-a'], allNamespaces: false });
    assert.equal(reads.length, 0, 'nothing to read for a namespaced grant');
    const ops = await call('ops', '/api/v1/terminal/namespaces?cluster=dev-2');
    assert.deepEqual(ops.body, { items: ['apps', 'kube-system'], allNamespaces: true });
    assert.equal(reads[0]!.target, '/k8s/dev-2/api/v1/namespaces');
    assert.equal(reads[0]!.identity.user, 'ops');
    for (const [who, cluster] of [
      ['viewer', 'dev-1'],
      ['dev', 'dev-2'],
      ['dev', 'off'],
    ] as const)
      assert.equal((await call(who, `/api/v1/terminal/namespaces?cluster=${cluster}`)).status, 403);
  });

  test('a plain GET on the terminal itself says it is a WebSocket', async () => {
    const r = await call('dev', `/api/v1/terminal?${base}`);
    assert.equal(r.status, 400);
    assert.match(String(r.body.detail), /WebSocket/);
  });
});
