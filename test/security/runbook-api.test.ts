/**
 * Attacks on the runbooks REST API and on the runbook identity (issue #20),
 * against a real stack (proxy, agent, apiserver, PostgreSQL):
 *
 * - a person claiming the runbook identity through the Kubernetes path;
 * - other people's runs: neither readable nor cancellable, nor even shown
 *   to exist;
 * - hostile request shapes: deep nesting, huge lists, odd Idempotency-Keys,
 *   path tricks on run ids, unknown and repeated query parameters;
 * - definitions: only admins write them; templates in keys, built-in
 *   names and unknown fields are refused;
 * - the runbook's permissions never reach the person who asks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { runbookUserPrefix } from '../../common/identity-key.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- answers are read field by field */

let stack: Stack;
let ca: string;
let admin: string;
let alice: string;
let bob: string;

function tokenOf(file: string): string {
  return (parse(readFileSync(file, 'utf8')) as { users: { user: { token: string } }[] }).users[0]!
    .user.token;
}

async function api(
  token: string,
  method: string,
  path: string,
  body?: unknown,
  headers?: Record<string, string>,
) {
  const r = await httpGet(`${stack.publicUrl}${path}`, {
    ca,
    token,
    method,
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    ...(headers ? { headers } : {}),
    timeoutMs: 30_000,
  });
  let json: any = {};
  try {
    json = r.body ? JSON.parse(r.body) : {};
  } catch {
    json = { raw: r.body };
  }
  return { status: r.status, json, headers: r.headers };
}

const scale = (extra: Record<string, unknown> = {}) => ({
  runbook: 'scale-deployment',
  clusters: ['dev'],
  params: { namespace: 'team', deployment: 'web', replicas: 2 },
  ...extra,
});

describe('runbooks under attack', { timeout: 300_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    const k = { kubeconfig: stack.cluster.kubeconfig };
    await kubectlOk(['create', 'namespace', 'team'], k);
    await kubectlOk(
      ['create', 'deployment', 'web', '--image=registry.example/web:1', '-n', 'team'],
      k,
    );
    admin = tokenOf(await stack.kubeconfig('root@example.com', ['kubegate-admins']));
    const role = await api(admin, 'POST', '/api/v1/roles', {
      name: 'runner',
      description: 'may run scale-deployment',
      rules: [
        {
          apiGroups: ['kubegate.dev'],
          resources: ['runbooks'],
          verbs: ['run'],
          resourceNames: ['scale-deployment'],
        },
      ],
    });
    assert.equal(role.status, 201, JSON.stringify(role.json));
    await grant(stack, {
      groups: ['team'],
      role: 'runner',
      clusters: ['dev'],
      namespaces: ['team'],
    });
    await grant(stack, { groups: ['team'], role: 'view', clusters: ['dev'], namespaces: ['team'] });
    alice = tokenOf(await stack.kubeconfig('alice@example.com', ['team']));
    bob = tokenOf(await stack.kubeconfig('bob@example.com', ['team']));
    await until(
      async () => (await api(alice, 'POST', '/api/v1/runs', scale({ params: {} }))).status === 422,
      10_000,
      'alice to be allowed to ask',
    );
  });
  after(async () => {
    await stack?.stop();
  });

  test("a person named like a runbook's cluster identity is refused by the agent", async () => {
    await grant(stack, {
      users: [`${runbookUserPrefix}scale-deployment`],
      role: 'edit',
      clusters: ['dev'],
    });
    const kc = await stack.kubeconfig(`${runbookUserPrefix}scale-deployment`);
    // --raw: kubectl's discovery would hide the apiserver's message behind "unknown".
    const r = await kubectl(
      ['get', '--raw', '/apis/apps/v1/namespaces/team/deployments', '--context', 'dev'],
      {
        kubeconfig: kc,
      },
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /reserved for robots and runbooks/);
  });

  test("someone else's run: not readable, not cancellable, not listed", async () => {
    const mine = await api(alice, 'POST', '/api/v1/runs', scale({ dryRun: true }));
    assert.equal(mine.status, 201, JSON.stringify(mine.json));
    const id = mine.json.id as string;
    const read = await api(bob, 'GET', `/api/v1/runs/${id}`);
    assert.equal(read.status, 404);
    assert.equal(read.json.detail, `run ${JSON.stringify(id)} not found`);
    const cancel = await api(bob, 'POST', `/api/v1/runs/${id}/cancel`, {});
    assert.equal(cancel.status, 404);
    const list = await api(bob, 'GET', '/api/v1/runs');
    assert.deepEqual(list.json.items, []);
    // An admin sees it.
    assert.equal((await api(admin, 'GET', `/api/v1/runs/${id}`)).status, 200);
  });

  test('hostile request shapes get clear problems, and nothing runs', async () => {
    const before = await stack.sql<{ n: number }>('SELECT count(*)::int AS n FROM runbook_runs');
    let deep: unknown = 1;
    for (let i = 0; i < 200; i++) deep = { a: deep };
    const nested = await api(alice, 'POST', '/api/v1/runs', scale({ params: deep }));
    assert.equal(nested.status, 400, JSON.stringify(nested.json));
    const many = await api(
      alice,
      'POST',
      '/api/v1/runs',
      scale({ clusters: Array.from({ length: 5000 }, (_, i) => `c${i}`) }),
    );
    assert.ok([413, 422].includes(many.status), String(many.status));
    const params = Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`p${i}`, 'x']));
    const wide = await api(alice, 'POST', '/api/v1/runs', scale({ params }));
    assert.equal(wide.status, 422);
    assert.ok(wide.json.problems.length <= 101, String(wide.json.problems.length));
    for (const key of ['', 'x'.repeat(129), 'a b', 'é']) {
      const r = await api(alice, 'POST', '/api/v1/runs', scale(), { 'idempotency-key': key });
      assert.equal(r.status, 400, `key ${JSON.stringify(key)}: ${JSON.stringify(r.json)}`);
    }
    for (const body of [
      '[]',
      '"run"',
      'null',
      '{"runbook": 7}',
      '{"runbook": "scale-deployment"',
    ]) {
      const r = await api(alice, 'POST', '/api/v1/runs', body);
      assert.ok([400, 422].includes(r.status), `${body}: ${r.status}`);
    }
    const types = await api(
      alice,
      'POST',
      '/api/v1/runs',
      scale({ canary: -1, concurrency: 0, offlineWait: '1y', dryRun: 'yes', ticket: '../x' }),
    );
    assert.equal(types.status, 422);
    assert.equal(types.json.problems.length, 5, JSON.stringify(types.json.problems));
    const after = await stack.sql<{ n: number }>('SELECT count(*)::int AS n FROM runbook_runs');
    assert.equal(after[0]!.n, before[0]!.n);
  });

  test('run ids and paths: no traversal, no other routes reached', async () => {
    for (const path of [
      '/api/v1/runs/not-a-uuid',
      '/api/v1/runs/..%2F..%2Froles',
      '/api/v1/runs/%2e%2e',
      '/api/v1/runs/00000000-0000-0000-0000-000000000000',
    ]) {
      const r = await api(alice, 'GET', path);
      assert.equal(r.status, 404, `${path}: ${r.status}`);
      assert.equal(r.headers['content-type'], 'application/problem+json');
    }
    const q = await api(alice, 'GET', '/api/v1/runs?status=running&status=queued');
    assert.equal(q.status, 400);
    const unknown = await api(alice, 'GET', '/api/v1/runs?user=bob');
    assert.equal(unknown.status, 400);
    const badStatus = await api(alice, 'GET', '/api/v1/runs?status=everything');
    assert.equal(badStatus.status, 400);
  });

  test('only admins write runbooks, and bad definitions are refused whole', async () => {
    const def = {
      name: 'evil',
      description: 'templates where they may not go',
      parameters: [{ name: 'k', type: 'string', required: true }],
      targets: { namespace: { fixed: 'team' } },
      steps: [
        {
          name: 'x',
          action: 'apply',
          resource: { group: '', version: 'v1', resource: 'configmaps', namespaced: true },
          manifest: {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: 'x' },
            data: { '{{k}}': 'v' },
          },
        },
      ],
    };
    const asAlice = await api(alice, 'POST', '/api/v1/runbooks', def);
    assert.equal(asAlice.status, 403);
    const bad = await api(admin, 'POST', '/api/v1/runbooks', { ...def, surprise: true });
    assert.equal(bad.status, 422);
    assert.ok(
      bad.json.problems.some((p: string) => /surprise/.test(p)),
      JSON.stringify(bad.json),
    );
    assert.ok(
      bad.json.problems.some((p: string) => /\{\{/.test(p)),
      JSON.stringify(bad.json),
    );
    const builtin = await api(admin, 'POST', '/api/v1/runbooks', {
      ...def,
      name: 'scale-deployment',
      steps: [{ ...def.steps[0], manifest: { ...def.steps[0]!.manifest, data: { k: '{{k}}' } } }],
    });
    assert.equal(builtin.status, 409);
    assert.equal((await api(admin, 'DELETE', '/api/v1/runbooks/scale-deployment')).status, 409);
    assert.equal((await api(admin, 'PUT', '/api/v1/runbooks/scale-deployment', def)).status, 409);
  });

  test("asking for a run never gives the runbook's permissions to the person asking", async () => {
    const r = await api(alice, 'POST', '/api/v1/runs', scale());
    assert.equal(r.status, 201, JSON.stringify(r.json));
    await until(
      async () =>
        (await api(alice, 'GET', `/api/v1/runs/${r.json.id}`)).json.status === 'succeeded',
      60_000,
      'the run to succeed',
    );
    const kc = await stack.kubeconfig('alice@example.com', ['team']);
    const direct = await kubectl(
      ['scale', 'deployment', 'web', '-n', 'team', '--replicas=5', '--context', 'dev'],
      { kubeconfig: kc },
    );
    assert.notEqual(direct.code, 0);
    assert.match(direct.stderr, /forbidden/i);
  });
});
