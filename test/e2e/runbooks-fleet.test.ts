/**
 * Fleet runs and durability of runbook runs (issue #20): one request over
 * several clusters (two real ones, each its own apiserver behind its own agent),
 * PostgreSQL, two proxy replicas.
 *
 * - a run over three clusters with one offline (registered, its agent never
 *   connected): two succeed, one is reported offline once the run's offline
 *   wait passes;
 * - a canary that fails holds the rest of the fleet back;
 * - the replica running a step is killed (-9) mid-step: the other replica
 *   takes the run over, reports that step as unknown, and never sends it
 *   again — the Job it created exists once.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import type { Proc } from '../support/proc.js';
import { startLoadBalancer, type LoadBalancer } from '../support/lb.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- answers are read field by field */

let stack: Stack;
let ca: string;
let botToken: string;
let base: string;
let tunnels: LoadBalancer | undefined;

function tokenOf(kubeconfigFile: string): string {
  return (parse(readFileSync(kubeconfigFile, 'utf8')) as { users: { user: { token: string } }[] })
    .users[0]!.user.token;
}

async function api(token: string, method: string, path: string, body?: unknown) {
  const r = await httpGet(`${base}${path}`, {
    ca,
    token,
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    timeoutMs: 30_000,
  });
  return { status: r.status, json: r.body ? (JSON.parse(r.body) as any) : {} };
}

async function finished(id: string, timeoutMs = 60_000) {
  let run: any;
  await until(
    async () => {
      run = (await api(botToken, 'GET', `/api/v1/runs/${id}`)).json;
      return !['awaiting-approval', 'queued', 'running'].includes(run.status);
    },
    timeoutMs,
    `run ${id} to finish`,
  );
  return run;
}

const byCluster = (run: any) =>
  Object.fromEntries(run.targets.map((t: any) => [t.cluster, t.status])) as Record<string, string>;

const admin = (cluster: string) => ({ kubeconfig: stack.clusters.get(cluster)!.kubeconfig });

describe('fleet runs and durability', { timeout: 900_000 }, () => {
  before(async () => {
    stack = await startStack({
      clusters: [
        { name: 'east', labels: { env: 'fleet' } },
        { name: 'west', labels: { env: 'fleet' } },
      ],
      proxyEnv: { KUBEGATE_RUNBOOK_LEASE: '3s' },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    base = stack.publicUrl;
    // A third cluster of the fleet whose agent never connects: registered, nothing more
    // (no control plane to start, so this file weighs on the machine like two clusters).
    await stack.admin(['cluster', 'add', 'north', '--label', 'env=fleet', '--out', '/dev/null']);
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    const adminToken = tokenOf(await stack.kubeconfig('root@example.com', ['kubegate-admins']));
    const role = await api(adminToken, 'POST', '/api/v1/roles', {
      name: 'fleet-runner',
      description: 'may run every runbook',
      rules: [{ apiGroups: ['kubegate.dev'], resources: ['runbooks'], verbs: ['run'] }],
    });
    assert.equal(role.status, 201, JSON.stringify(role.json));
    botToken = tokenOf(await stack.kubeconfig('fleet-bot@example.com', ['fleet-ops']));
    await grant(stack, {
      groups: ['fleet-ops'],
      role: 'fleet-runner',
      selector: { matchLabels: { env: 'fleet' } },
    });
    for (const spec of [
      {
        name: 'mark',
        description: 'write a marker ConfigMap in default',
        parameters: [{ name: 'value', type: 'string', required: true, pattern: '[a-z0-9-]{1,20}' }],
        targets: { selector: { matchLabels: { env: 'fleet' } }, namespace: { fixed: 'default' } },
        steps: [
          {
            name: 'marker',
            action: 'apply',
            resource: { group: '', version: 'v1', resource: 'configmaps', namespaced: true },
            manifest: {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata: { name: 'fleet-mark' },
              data: { value: '{{value}}' },
            },
          },
        ],
      },
      {
        name: 'slow-wait',
        description: 'wait 3 s for a condition that never comes',
        parameters: [],
        targets: { namespace: { fixed: 'default' } },
        steps: [
          {
            name: 'never',
            action: 'wait',
            target: {
              group: '',
              version: 'v1',
              resource: 'configmaps',
              namespaced: true,
              name: 'never-there',
            },
            condition: { type: 'Ready' },
            timeoutSeconds: 3,
          },
        ],
      },
      {
        name: 'slow-job',
        description: 'a Job that never finishes on a cluster without nodes',
        parameters: [],
        targets: { clusters: ['east'], namespace: { fixed: 'default' } },
        steps: [
          {
            name: 'job',
            action: 'job',
            timeoutSeconds: 600,
            manifest: {
              apiVersion: 'batch/v1',
              kind: 'Job',
              metadata: { name: 'kg-slow' },
              spec: {
                template: {
                  spec: {
                    restartPolicy: 'Never',
                    containers: [{ name: 'x', image: 'registry.example/x:1' }],
                  },
                },
              },
            },
          },
        ],
      },
    ]) {
      const r = await api(adminToken, 'POST', '/api/v1/runbooks', spec);
      assert.equal(r.status, 201, JSON.stringify(r.json));
    }
    await until(
      async () =>
        (await api(botToken, 'POST', '/api/v1/runs', { runbook: 'mark', selector: {} })).status ===
        422,
      10_000,
      'the bot to be allowed to ask',
    );
  });
  after(async () => {
    await stack?.stop();
    await tunnels?.close();
  });

  test('three clusters, one offline: two succeed and one is reported offline', async () => {
    const r = await api(botToken, 'POST', '/api/v1/runs', {
      runbook: 'mark',
      selector: { matchLabels: { env: 'fleet' } },
      params: { value: 'one' },
      offlineWait: '3s',
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.deepEqual(
      r.json.targets.map((t: any) => t.cluster),
      ['east', 'north', 'west'],
    );
    const run = await finished(r.json.id);
    assert.deepEqual(byCluster(run), { east: 'succeeded', north: 'offline', west: 'succeeded' });
    assert.equal(run.status, 'offline');
    assert.match(run.targets[1].message, /no agent connected within 3 s/);
    for (const c of ['east', 'west']) {
      const v = await kubectlOk(
        ['get', 'configmap', 'fleet-mark', '-n', 'default', '-o', 'jsonpath={.data.value}'],
        admin(c),
      );
      assert.equal(v, 'one');
    }
    assert.deepEqual(run.targets[1].steps, []);
  });

  test('a failing canary holds the rest of the fleet back', async () => {
    await kubectlOk(
      ['create', 'deployment', 'web', '--image=registry.example/web:1', '-n', 'default'],
      admin('west'),
    );
    // east has no deployment "web": the canary fails there, and west is never touched.
    const r = await api(botToken, 'POST', '/api/v1/runs', {
      runbook: 'scale-deployment',
      clusters: ['east', 'west'],
      params: { namespace: 'default', deployment: 'web', replicas: 4 },
      canary: 1,
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.deepEqual(byCluster(r.json), { east: 'queued', west: 'held' });
    const run = await finished(r.json.id);
    assert.deepEqual(byCluster(run), { east: 'failed', west: 'cancelled' });
    assert.match(run.targets[1].message, /held back: canary cluster east did not succeed/);
    assert.deepEqual(run.targets[1].steps, []);
    const replicas = await kubectlOk(
      ['get', 'deployment', 'web', '-n', 'default', '-o', 'jsonpath={.spec.replicas}'],
      admin('west'),
    );
    assert.equal(replicas, '1');
    // With the canary first where it works, the rest follow once it succeeded.
    await kubectlOk(
      ['create', 'deployment', 'web', '--image=registry.example/web:1', '-n', 'default'],
      admin('east'),
    );
    const ok = await api(botToken, 'POST', '/api/v1/runs', {
      runbook: 'scale-deployment',
      clusters: ['west', 'east'],
      params: { namespace: 'default', deployment: 'web', replicas: 2 },
      canary: 1,
      concurrency: 1,
    });
    const done = await finished(ok.json.id);
    assert.deepEqual(byCluster(done), { west: 'succeeded', east: 'succeeded' });
    const [west, east] = done.targets;
    assert.ok(Date.parse(east.startedAt) >= Date.parse(west.finishedAt), JSON.stringify(done));
  });

  test('a cluster waiting for a slot (concurrency 1) is not taken for offline', async () => {
    const r = await api(botToken, 'POST', '/api/v1/runs', {
      runbook: 'slow-wait',
      clusters: ['east', 'west'],
      concurrency: 1,
      offlineWait: '1s',
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const run = await finished(r.json.id);
    // Each waited its 3 s in turn; neither was reported offline.
    assert.deepEqual(byCluster(run), { east: 'failed', west: 'failed' });
    for (const t of run.targets) assert.match(t.steps[0].message, /Ready was not True within 3 s/);
  });

  test('kill -9 of the replica running a step: reported unknown, never sent twice', async () => {
    const replica = await stack.startReplica();
    // east's agent dials both replicas through one balanced address, as behind
    // a Kubernetes Service, and holds a tunnel on each: either can take the run over.
    tunnels = await startLoadBalancer([
      stack.env.KUBEGATE_TUNNEL_LISTEN!,
      replica.env.KUBEGATE_TUNNEL_LISTEN!,
    ]);
    await stack.agents.get('east')!.stop();
    await stack.startAgent('east', tunnels.address, { KUBEGATE_REBALANCE_INTERVAL: '1s' });
    await until(
      async () =>
        (
          await stack.sql<{ n: number }>(
            `SELECT count(DISTINCT replica_id)::int AS n FROM replica_tunnels WHERE cluster = 'east'`,
          )
        )[0]!.n === 2,
      60_000,
      "east's agent to hold tunnels on both replicas",
    );
    const r = await api(botToken, 'POST', '/api/v1/runs', {
      runbook: 'slow-job',
      clusters: ['east'],
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const id = r.json.id as string;
    let owner = '';
    await until(
      async () => {
        const rows = await stack.sql<{ owner: string; status: string }>(
          `SELECT t.owner, s.status FROM runbook_run_targets t
             JOIN runbook_run_steps s ON s.run_id = t.run_id AND s.cluster = t.cluster
            WHERE t.run_id = $1`,
          [id],
        );
        owner = rows[0]?.owner ?? '';
        const job = await kubectl(['get', 'job', 'kg-slow', '-n', 'default'], admin('east'));
        return rows[0]?.status === 'running' && job.code === 0;
      },
      30_000,
      'the Job step to be running',
    );
    const procs: Proc[] = [stack.proxy, replica.proxy];
    const victim = procs.find((p) => p.output().includes(`"replica":"${owner}"`));
    assert.ok(victim, `no replica process says it is ${owner}`);
    await victim.stop('SIGKILL');
    base = victim === stack.proxy ? replica.publicUrl : stack.publicUrl;
    const run = await finished(id, 120_000);
    assert.equal(run.status, 'unknown', JSON.stringify(run));
    const [step] = run.targets[0].steps;
    assert.equal(step.status, 'unknown');
    assert.match(
      step.message,
      /whether it took effect on the cluster is unknown, and it was not sent again/,
    );
    const jobs = JSON.parse(
      await kubectlOk(['get', 'jobs', '-n', 'default', '-o', 'json'], admin('east')),
    ) as { items: { metadata: { name: string } }[] };
    assert.deepEqual(
      jobs.items.map((j) => j.metadata.name),
      ['kg-slow'],
    );
  });
});
