/**
 * Runbooks end to end (issue #20): real kubectl, a real apiserver with kwok
 * nodes behind the agent, PostgreSQL, the REST API.
 *
 * A developer may only read namespace platform-demo: `kubectl scale` is
 * Forbidden. A ticket system (a robot) asks kubegate to run the built-in
 * runbook scale-deployment for ticket INC-42; the agent runs it as the
 * runbook's own ServiceAccount, which may patch deployments in that
 * namespace and nothing else; the deployment reaches 3 ready replicas, and
 * the run records who asked, for which ticket, each step and its diff, with
 * every API call it made in the central audit log.
 */
import { after, before, describe, test } from 'node:test';
import { createHmac } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { serviceAccountName } from '../../agent/jit/names.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { freePort } from '../support/ports.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- answers are read field by field */

let stack: Stack;
let ca: string;
let adminToken: string;
let robotToken: string;
let devKubeconfig: string;
let leadToken: string;
/** What the ticket system's webhook receiver got. */
const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
let receiver: http.Server;
let hookSecret = '';
let metricsPort = 0;
const admin = () => ({ kubeconfig: stack.cluster.kubeconfig });

function tokenOf(kubeconfigFile: string): string {
  return (parse(readFileSync(kubeconfigFile, 'utf8')) as { users: { user: { token: string } }[] })
    .users[0]!.user.token;
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
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    ...(headers ? { headers } : {}),
    timeoutMs: 30_000,
  });
  // The test reads answers field by field; their shapes are what it asserts.

  return { status: r.status, headers: r.headers, json: r.body ? (JSON.parse(r.body) as any) : {} };
}

async function finished(id: string) {
  let run: { status: string } | undefined;
  await until(
    async () => {
      run = (await api(robotToken, 'GET', `/api/v1/runs/${id}`)).json;
      return !['queued', 'running'].includes(run!.status);
    },
    60_000,
    `run ${id} to finish`,
  );

  return run as any;
}

async function replicas(ns: string, name: string): Promise<{ spec: number; ready: number }> {
  const out = await kubectlOk(['get', 'deployment', name, '-n', ns, '-o', 'json'], admin());
  const d = JSON.parse(out) as { spec: { replicas: number }; status: { readyReplicas?: number } };
  return { spec: d.spec.replicas, ready: d.status.readyReplicas ?? 0 };
}

const scale = (replicasWanted: unknown, extra: Record<string, unknown> = {}) => ({
  runbook: 'scale-deployment',
  clusters: ['dev'],
  params: { namespace: 'platform-demo', deployment: 'demo-app', replicas: replicasWanted },
  ticket: 'INC-42',
  ...extra,
});

describe('runbooks', { timeout: 600_000 }, () => {
  before(async () => {
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    metricsPort = await freePort();
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 2 }],
      proxyEnv: { KUBEGATE_METRICS_LISTEN: `127.0.0.1:${metricsPort}` },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    for (const ns of ['platform-demo', 'other']) {
      await kubectlOk(['create', 'namespace', ns], admin());
      await kubectlOk(
        ['create', 'deployment', 'demo-app', '--image=registry.example/demo:1', '-n', ns],
        admin(),
      );
    }
    adminToken = tokenOf(await stack.kubeconfig('root@example.com', ['kubegate-admins']));
    await grant(stack, {
      groups: ['developers'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['platform-demo'],
    });
    // The fleet kubeconfig names the clusters the person has a binding on.
    devKubeconfig = await stack.kubeconfig('dev@example.com', ['developers']);
    const role = await api(adminToken, 'POST', '/api/v1/roles', {
      name: 'runbook-runner',
      description: 'may ask for the scale and delete-pod runbooks',
      rules: [
        {
          apiGroups: ['kubegate.dev'],
          resources: ['runbooks'],
          verbs: ['run'],
          resourceNames: ['scale-deployment', 'delete-pod'],
        },
      ],
    });
    assert.equal(role.status, 201, JSON.stringify(role.json));
    const robot = await api(adminToken, 'POST', '/api/v1/robots', {
      name: 'ticketing',
      groups: ['ticket-systems'],
    });
    assert.equal(robot.status, 201, JSON.stringify(robot.json));
    robotToken = robot.json.token.token as string;
    await grant(stack, {
      groups: ['ticket-systems'],
      role: 'runbook-runner',
      clusters: ['dev'],
      namespaces: ['platform-demo'],
    });
    leadToken = tokenOf(await stack.kubeconfig('lead@example.com', ['platform-leads']));
    // Scaling in platform-demo waits for a platform lead.
    const policy = await api(adminToken, 'POST', '/api/v1/approval-policies', {
      name: 'demo-scaling',
      kind: 'runbook',
      description: 'a platform lead approves scaling in platform-demo',
      runbooks: ['scale-deployment'],
      approvers: { groups: ['platform-leads'] },
      clusters: { selector: { matchLabels: { env: 'dev' } } },
      namespaces: ['platform-demo'],
    });
    assert.equal(policy.status, 201, JSON.stringify(policy.json));
    const hook = await api(adminToken, 'POST', '/api/v1/approval-webhooks', {
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/tickets`,
      format: 'json',
    });
    assert.equal(hook.status, 201, JSON.stringify(hook.json));
    hookSecret = hook.json.secret as string;
    // The binding reaches the proxy through LISTEN/NOTIFY.
    await until(
      async () => (await api(robotToken, 'POST', '/api/v1/runs', scale('x'))).status === 422,
      10_000,
      'the robot to be allowed to ask',
    );
  });
  after(async () => {
    await stack?.stop();
    receiver?.close();
  });

  test('the developer cannot scale by hand', async () => {
    const r = await kubectl(
      [
        'scale',
        'deployment',
        'demo-app',
        '-n',
        'platform-demo',
        '--replicas=3',
        '--context',
        'dev',
      ],
      { kubeconfig: devKubeconfig },
    );
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden|forbidden/);
  });

  test('the ticket system runs scale-deployment: it runs as the runbook, recorded and audited', async () => {
    const key = { 'idempotency-key': 'INC-42-scale-1' };
    const created = await api(robotToken, 'POST', '/api/v1/runs', scale(3), key);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const id = created.json.id as string;
    assert.equal(created.headers.location, `/api/v1/runs/${id}`);
    // The same key and request: the same run, not a second one.
    const again = await api(robotToken, 'POST', '/api/v1/runs', scale(3), key);
    assert.equal(again.status, 200);
    assert.equal(again.json.id, id);
    // The same key for another request: refused.
    const other = await api(robotToken, 'POST', '/api/v1/runs', scale(4), key);
    assert.equal(other.status, 409, JSON.stringify(other.json));

    // It waits for a platform lead, who sees the rendered steps and the dry run's diff.
    assert.equal(created.json.status, 'awaiting-approval', JSON.stringify(created.json));
    const approvalId = created.json.approval.id as string;
    let approval: Record<string, any> = {};
    await until(
      async () => {
        approval = (await api(leadToken, 'GET', `/api/v1/approvals/${approvalId}`)).json;
        return typeof approval.diff === 'string';
      },
      30_000,
      'the dry run to reach the approval',
    );
    assert.equal(approval.kind, 'run');
    assert.equal(approval.run.id, id);
    assert.equal(approval.run.ticket, 'INC-42');
    assert.deepEqual(approval.run.clusters, ['dev']);
    assert.deepEqual(approval.run.steps, [{ index: 0, name: 'scale', action: 'scale' }]);
    assert.match(approval.diff, /^# cluster dev$/m);
    assert.match(approval.diff, /^\+\s+replicas: 3$/m);
    // Nothing ran yet: the dry run changed nothing.
    assert.equal((await replicas('platform-demo', 'demo-app')).spec, 1);
    // The robot cannot approve its own run; the lead can.
    const self = await api(robotToken, 'POST', `/api/v1/approvals/${approvalId}/approve`, {});
    assert.notEqual(self.status, 200);
    const ok = await api(leadToken, 'POST', `/api/v1/approvals/${approvalId}/approve`, {
      reason: 'INC-42 needs capacity',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));

    const run = await finished(id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    assert.equal(run.ticket, 'INC-42');
    assert.deepEqual(run.approval, { id: approvalId, status: 'approved' });
    assert.deepEqual(run.requester, {
      name: 'ticketing',
      kind: 'robot',
      groups: ['ticket-systems'],
    });
    const [target] = run.targets;
    assert.equal(target.cluster, 'dev');
    assert.equal(target.steps.length, 1);
    assert.equal(target.steps[0].status, 'succeeded');
    assert.match(target.steps[0].diff, /^-\s+replicas: 1$/m);
    assert.match(target.steps[0].diff, /^\+\s+replicas: 3$/m);
    await until(
      async () => (await replicas('platform-demo', 'demo-app')).ready === 3,
      60_000,
      'demo-app to have 3 ready replicas',
    );
    // Every API call of the run is in the audit log, as the runbook, beside the run:
    // first the approvers' dry run, then the run itself. Audit events are written in
    // batches, so the last call's may land a moment after the run is reported done.
    let rows: { verb: string; username: string; user_kind: string; code: number; uri: string }[] =
      [];
    await until(
      async () => {
        rows = await stack.sql(
          `SELECT verb, username, user_kind, code, event->>'requestURI' AS uri FROM audit_events
            WHERE source = 'runbook' AND event->'annotations'->>'kubegate.dev/run-id' = $1
            ORDER BY stage_at`,
          [id],
        );
        return rows.length >= 4;
      },
      10_000,
      "the run's four API calls in the audit log",
    );
    const path = '/apis/apps/v1/namespaces/platform-demo/deployments/demo-app';
    assert.deepEqual(
      rows.map((r) => `${r.verb} ${r.username} ${r.user_kind} ${r.code} ${r.uri}`),
      [
        `get scale-deployment runbook 200 ${path}`,
        `patch scale-deployment runbook 200 ${path}?dryRun=All`,
        `get scale-deployment runbook 200 ${path}`,
        `patch scale-deployment runbook 200 ${path}`,
      ],
    );
    // The ticket system hears the outcome, signed with the webhook's secret.
    let outcome: { headers: http.IncomingHttpHeaders; body: string } | undefined;
    await until(
      async () => {
        outcome = received.find((h) => {
          const p = JSON.parse(h.body) as { type: string; run?: { id: string } };
          return p.type === 'run.succeeded' && p.run?.id === id;
        });
        return outcome !== undefined;
      },
      30_000,
      'the run.succeeded webhook',
    );
    const ts = String(outcome!.headers['x-kubegate-timestamp']);
    const want = createHmac('sha256', hookSecret).update(`v1:${ts}:${outcome!.body}`).digest('hex');
    assert.equal(outcome!.headers['x-kubegate-signature'], `v1=${want}`);
    const payload = JSON.parse(outcome!.body) as { run: Record<string, string> };
    assert.equal(payload.run.status, 'succeeded');
    assert.equal(payload.run.requester, 'robot:ticketing');
    assert.match(payload.run.summary, /scale-deployment succeeded \(INC-42\)/);
    assert.ok(
      received.some((h) => (JSON.parse(h.body) as { type: string }).type === 'run.requested'),
    );
    const metrics = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then((r) => r.text());
    assert.match(
      metrics,
      /^kubegate_runbook_run_seconds_count\{runbook="scale-deployment",outcome="succeeded"\} 1$/m,
    );
    const history = await api(robotToken, 'GET', '/api/v1/runs?ticket=INC-42');
    assert.ok(history.json.items.some((r: { id: string }) => r.id === id));
  });

  test("the runbook's ServiceAccount may patch deployments in platform-demo and nothing else", async () => {
    const sa = serviceAccountName('runbook', 'scale-deployment');
    assert.match(sa, /^kg-b-/);
    const token = (
      await kubectlOk(['create', 'token', sa, '-n', 'kubegate-system'], admin())
    ).trim();
    const can = async (...args: string[]) =>
      (
        await kubectl(['auth', 'can-i', ...args, '--token', token], {
          kubeconfig: stack.cluster.kubeconfig,
        })
      ).stdout.trim();
    assert.equal(await can('patch', 'deployments', '-n', 'platform-demo'), 'yes');
    assert.equal(await can('get', 'nodes'), 'no');
    assert.equal(await can('patch', 'deployments', '-n', 'other'), 'no');
    assert.equal(await can('delete', 'deployments', '-n', 'platform-demo'), 'no');
  });

  test('hostile parameters are refused with every problem listed, before anything runs', async () => {
    const before = await stack.sql<{ n: number }>('SELECT count(*)::int AS n FROM runbook_runs');
    for (const bad of [
      { deployment: 'demo-app", "x": "y', replicas: '3}' },
      { deployment: '../secrets', replicas: 3 },
      { deployment: 'demo-app\nkind: Secret', replicas: 3 },
      { deployment: 'x'.repeat(4096), replicas: 3 },
      { deployment: 'demo-app', replicas: 1e6, extra: 'y' },
    ]) {
      const r = await api(robotToken, 'POST', '/api/v1/runs', {
        ...scale(0),
        params: { namespace: 'platform-demo', ...bad },
      });
      assert.equal(r.status, 422, JSON.stringify(r.json).slice(0, 300));
      assert.ok(Array.isArray(r.json.problems) && r.json.problems.length >= 1);
    }
    // A megabyte never reaches the parameter checks: the body limit refuses it first.
    const huge = await api(robotToken, 'POST', '/api/v1/runs', {
      ...scale(3),
      params: { namespace: 'platform-demo', deployment: 'x'.repeat(1024 * 1024), replicas: 3 },
    });
    assert.equal(huge.status, 413);
    assert.equal(huge.json.code, 'KG_ERR_BODY_TOO_LARGE');
    const two = await api(robotToken, 'POST', '/api/v1/runs', {
      ...scale('three'),
      params: { namespace: 'platform-demo', deployment: 'a/b', replicas: 'three' },
    });
    assert.equal(two.status, 422);
    assert.equal(two.json.problems.length, 2, JSON.stringify(two.json.problems));
    const unknownField = await api(robotToken, 'POST', '/api/v1/runs', {
      ...scale(3),
      cluster: 'x',
    });
    assert.equal(unknownField.status, 422);
    const after = await stack.sql<{ n: number }>('SELECT count(*)::int AS n FROM runbook_runs');
    assert.equal(after[0]!.n, before[0]!.n);
  });

  test('who may run what is central RBAC', async () => {
    // The robot may run it in platform-demo only.
    const elsewhere = await api(robotToken, 'POST', '/api/v1/runs', {
      ...scale(2),
      params: { namespace: 'other', deployment: 'demo-app', replicas: 2 },
    });
    assert.equal(elsewhere.status, 403, JSON.stringify(elsewhere.json));
    assert.match(
      elsewhere.json.detail,
      /may not run runbook "scale-deployment" in namespace "other"/,
    );
    // The developer may not run it at all, and never sees the robot's runs.
    const devToken = tokenOf(devKubeconfig);
    const dev = await api(devToken, 'POST', '/api/v1/runs', scale(2));
    assert.equal(dev.status, 403);
    const list = await api(devToken, 'GET', '/api/v1/runs');
    assert.equal(list.status, 200);
    assert.deepEqual(list.json.items, []);
    // A runbook not granted: cordon-node.
    const cordon = await api(robotToken, 'POST', '/api/v1/runs', {
      runbook: 'cordon-node',
      clusters: ['dev'],
      params: { node: 'kwok-node-0' },
    });
    assert.equal(cordon.status, 403);
    // Unknown clusters and runbooks are clear errors.
    const nowhere = await api(robotToken, 'POST', '/api/v1/runs', {
      ...scale(2),
      clusters: ['nope'],
    });
    assert.equal(nowhere.status, 422);
    const missing = await api(robotToken, 'POST', '/api/v1/runs', { ...scale(2), runbook: 'nope' });
    assert.equal(missing.status, 404);
  });

  test('a denied run creates nothing', async () => {
    const r = await api(robotToken, 'POST', '/api/v1/runs', scale(0));
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.equal(r.json.status, 'awaiting-approval');
    const no = await api(leadToken, 'POST', `/api/v1/approvals/${r.json.approval.id}/deny`, {
      reason: 'not during the sale',
    });
    assert.equal(no.status, 200, JSON.stringify(no.json));
    const run = (await api(robotToken, 'GET', `/api/v1/runs/${r.json.id}`)).json;
    assert.equal(run.status, 'denied');
    assert.equal(run.targets[0].status, 'cancelled');
    assert.deepEqual(run.targets[0].steps, []);
    assert.equal((await replicas('platform-demo', 'demo-app')).spec, 3);
    // A cancelled one (while it waits) withdraws its approval request.
    const w = await api(robotToken, 'POST', '/api/v1/runs', scale(1));
    const cancelled = await api(robotToken, 'POST', `/api/v1/runs/${w.json.id}/cancel`, {
      reason: 'ticket closed',
    });
    assert.equal(cancelled.status, 200, JSON.stringify(cancelled.json));
    assert.equal(cancelled.json.status, 'cancelled');
    assert.equal(cancelled.json.approval.status, 'withdrawn');
    const again = await api(robotToken, 'POST', `/api/v1/runs/${w.json.id}/cancel`, {});
    assert.equal(again.status, 409);
  });

  test('a dry run shows the diff and changes nothing', async () => {
    const r = await api(robotToken, 'POST', '/api/v1/runs', scale(5, { dryRun: true }));
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const run = await finished(r.json.id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    assert.match(run.targets[0].steps[0].diff, /^\+\s+replicas: 5$/m);
    assert.match(run.targets[0].steps[0].message, /dry run/);
    assert.equal((await replicas('platform-demo', 'demo-app')).spec, 3);
  });

  test("a failing step is reported with the apiserver's message", async () => {
    const r = await api(robotToken, 'POST', '/api/v1/runs', {
      runbook: 'delete-pod',
      clusters: ['dev'],
      params: { namespace: 'platform-demo', pod: 'no-such-pod' },
      ticket: 'INC-43',
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const run = await finished(r.json.id);
    assert.equal(run.status, 'failed');
    assert.match(run.targets[0].steps[0].message, /404: pods "no-such-pod" not found/);
    assert.match(run.targets[0].message, /step 1 \(.*\) failed/);
  });
});
