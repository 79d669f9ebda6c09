/**
 * The console's own endpoints over a real HTTP server, decided on a policy
 * snapshot built here: which clusters a caller reaches and with what access,
 * what a draft binding would reach (or why it is not valid yet), who may ask,
 * and failing closed when the replica cannot vouch for its policy.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { KgError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { createConsoleApiHandler } from '../../proxy/console/api.js';
import type { ClusterHealth } from '../../proxy/ha/cluster-health.js';
import type { ApiCaller } from '../../proxy/api/types.js';
import type { PolicyState } from '../../proxy/authz/policy-store.js';
import { builtinRoles } from '../../proxy/authz/builtin-roles.js';
import type { Binding } from '../../proxy/authz/types.js';

const callers: Record<string, ApiCaller> = {
  ada: { user: 'ada', kind: 'user', groups: ['admins'], actor: 'user:ada' },
  dev: { user: 'dev', kind: 'user', groups: ['developers'], actor: 'user:dev' },
  root: { user: 'root', kind: 'user', groups: ['admins', 'developers'], actor: 'user:root' },
};

const bindings: Binding[] = [
  {
    id: 'b1',
    subjects: [{ kind: 'Group', name: 'developers' }],
    role: 'view',
    clusters: { selector: { matchLabels: { env: 'dev' } } },
    namespaces: ['team-a'],
    expiresAt: new Date(Date.now() + 3_600_000),
  },
  {
    id: 'b2',
    subjects: [{ kind: 'Group', name: 'developers' }],
    role: 'edit',
    clusters: { names: ['dev-1', 'off'] },
    namespaces: [],
  },
  {
    id: 'old',
    subjects: [{ kind: 'Group', name: 'developers' }],
    role: 'admin',
    clusters: { names: ['prod'] },
    namespaces: [],
    expiresAt: new Date(Date.now() - 1000),
  },
];

const state: PolicyState = {
  snapshot: {
    roles: new Map(builtinRoles.map((r) => [r.name, { name: r.name, rules: r.rules }])),
    bindings,
  },
  clusters: new Map(
    [
      { name: 'dev-2', labels: { env: 'dev' }, disabled: false },
      { name: 'dev-1', labels: { env: 'dev' }, disabled: false },
      { name: 'prod', labels: { env: 'prod' }, disabled: false },
      { name: 'off', labels: { env: 'dev' }, disabled: true },
    ].map((c) => [c.name, c]),
  ),
  loadedAt: new Date(),
};

/** Fleet-wide health as the replica registry would report it: dev-1 online through replica-a. */
const online: Record<string, ClusterHealth> = {
  'dev-1': {
    online: true,
    since: new Date(0),
    agentVersion: '1.2.3',
    agentVersions: ['1.2.3'],
    replicas: [{ replica: 'replica-a', tunnels: 1, since: new Date(0), draining: false }],
  },
};
/** The names each health lookup asked for: one batch per answer, never per cluster. */
const asked: string[][] = [];

let server: Server;
let port: number;
let stale = false;

function call(
  who: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        port,
        method,
        path,
        agent: false,
        headers: {
          ...(who ? { 'x-test-caller': who } : {}),
          ...(text ? { 'content-type': 'application/json' } : {}),
        },
      },
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
    req.end(text);
  });
}

describe('console API', () => {
  before(async () => {
    const sink = new Writable({ write: (_c, _e, cb) => cb() });
    const handler = createConsoleApiHandler({
      // Who calls is decided by the real caller resolver elsewhere (console-security e2e);
      // here a header names one of the fixed callers.
      resolveCaller: async (req) => {
        const c = callers[String(req.headers['x-test-caller'])];
        if (!c) throw new KgError('KG_ERR_UNAUTHENTICATED', 'who are you');
        return c;
      },
      adminGroups: ['admins'],
      policy: () => {
        if (stale) throw new KgError('KG_ERR_UNAVAILABLE', 'policy not current', { retryAfter: 1 });
        return state;
      },
      health: async (names) => {
        asked.push([...names]);
        return new Map(
          names.flatMap((n) => (online[n] ? [[n, structuredClone(online[n])] as const] : [])),
        );
      },
      log: createLogger({ name: 'test', destination: sink }),
    });
    server = createServer((req, res) => {
      if (!handler(req, res)) {
        res.writeHead(418);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  test('my clusters: enabled, reached now, sorted, with my access and health', async () => {
    const r = await call('dev', 'GET', '/api/v1/console/clusters');
    assert.equal(r.status, 200);
    const items = r.body.items as {
      name: string;
      health: Record<string, unknown>;
      access: { role: string; namespaces: string[]; expiresAt: string | null }[];
    }[];
    assert.deepEqual(
      items.map((c) => c.name),
      ['dev-1', 'dev-2'],
      'not prod (expired binding), not off (disabled)',
    );
    assert.deepEqual(
      items[0]!.access.map((a) => [a.role, a.namespaces.join(',')]),
      [
        ['view', 'team-a'],
        ['edit', ''],
      ],
    );
    assert.ok(items[0]!.access[0]!.expiresAt);
    assert.equal(items[0]!.health.online, true);
    assert.equal(items[0]!.health.agentVersion, '1.2.3');
    assert.equal(items[0]!.health.since, new Date(0).toISOString());
    assert.equal(items[0]!.health.replicas, undefined, 'which replica holds a tunnel: admins only');
    assert.deepEqual(items[1]!.health, {
      online: false,
      since: null,
      agentVersion: null,
      agentVersions: [],
    });
    assert.deepEqual(asked.at(-1), ['dev-1', 'dev-2'], 'one lookup for the clusters reached');
    const root = await call('root', 'GET', '/api/v1/console/clusters');
    const [first] = root.body.items as { health: { replicas: { replica: string }[] } }[];
    assert.deepEqual(
      first!.health.replicas.map((x) => x.replica),
      ['replica-a'],
      'an admin sees which replica holds the tunnel',
    );
    const none = await call('ada', 'GET', '/api/v1/console/clusters');
    assert.deepEqual(none.body.items, [], 'an admin with no binding reaches nothing');
  });

  test('binding reach: what a valid draft reaches; problems for one that is not', async () => {
    const draft = {
      subjects: [{ kind: 'Group', name: 'sre' }],
      role: 'view',
      clusters: { names: ['prod', 'future'], selector: { matchLabels: { env: 'dev' } } },
      namespaces: ['kube-system'],
    };
    const r = await call('ada', 'POST', '/api/v1/console/binding-reach', draft);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.problems, []);
    const clusters = r.body.clusters as { name: string; disabled: boolean; online: boolean }[];
    assert.deepEqual(
      clusters.map((c) => [c.name, c.disabled, c.online]),
      [
        ['dev-1', false, true],
        ['dev-2', false, false],
        ['off', true, false],
        ['prod', false, false],
      ],
    );
    assert.deepEqual(r.body.unregistered, ['future']);
    assert.deepEqual(r.body.namespaces, ['kube-system']);
    assert.equal(r.body.clusterWide, false);
    const every = await call('ada', 'POST', '/api/v1/console/binding-reach', {
      ...draft,
      clusters: { selector: {} },
      namespaces: [],
    });
    assert.equal((every.body.clusters as unknown[]).length, 4);
    assert.equal(every.body.clusterWide, true);

    const bad = await call('ada', 'POST', '/api/v1/console/binding-reach', {
      subjects: [],
      role: 'no-such-role',
      clusters: {},
    });
    assert.equal(bad.status, 200);
    const problems = (bad.body.problems as string[]).join('\n');
    assert.match(problems, /subjects/);
    assert.match(problems, /clusters: give names and\/or a selector/);
    const unknownRole = await call('ada', 'POST', '/api/v1/console/binding-reach', {
      ...draft,
      role: 'no-such-role',
    });
    assert.match((unknownRole.body.problems as string[]).join(), /"no-such-role" does not exist/);
    assert.deepEqual(unknownRole.body.clusters, []);
  });

  test('who may ask, methods, parameters, unknown paths, other paths', async () => {
    assert.equal((await call(undefined, 'GET', '/api/v1/console/clusters')).status, 401);
    assert.equal((await call('dev', 'POST', '/api/v1/console/binding-reach', {})).status, 403);
    // Tunnels per replica are in GET /api/v1/clusters' health block now (admin API).
    assert.equal((await call('ada', 'GET', '/api/v1/console/tunnels')).status, 404);
    assert.equal((await call('ada', 'GET', '/api/v1/console/binding-reach')).status, 405);
    assert.equal((await call('ada', 'DELETE', '/api/v1/console/clusters')).status, 405);
    assert.equal((await call('ada', 'GET', '/api/v1/console/clusters?x=1')).status, 400);
    assert.equal((await call('ada', 'GET', '/api/v1/console/nope')).status, 404);
    assert.equal((await call('ada', 'GET', '/api/v1/clusters')).status, 418);
  });

  test('fails closed with 503 when the replica cannot vouch for its policy', async () => {
    stale = true;
    try {
      assert.equal((await call('dev', 'GET', '/api/v1/console/clusters')).status, 503);
    } finally {
      stale = false;
    }
  });
});
