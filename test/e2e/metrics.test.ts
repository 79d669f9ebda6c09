/**
 * /metrics after real traffic: a proxy and an agent with their metrics
 * servers on (KUBEGATE_METRICS_LISTEN), kubectl requests through the stack,
 * then the scraped series must have the documented names, only bounded
 * labels (never a user, a path or a token), and counters that moved.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { freePort } from '../support/ports.js';
import { httpGet } from '../support/http.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Prometheus text format → samples (enough of it for our own output). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    assert.ok(m, `unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function sum(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

async function scrape(port: number): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200, `metrics on port ${port}`);
  const text = await res.text();
  return { text, samples: parseMetrics(text) };
}

let stack: Stack;
let proxyPort: number;
let agentPort: number;
let alice: string;
let bob: string;

describe('/metrics after real traffic', { timeout: 600_000 }, () => {
  before(async () => {
    proxyPort = await freePort();
    agentPort = await freePort();
    stack = await startStack({
      proxyEnv: { KUBEGATE_METRICS_LISTEN: `127.0.0.1:${proxyPort}` },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    // Restart the agent with its metrics server on, as the chart's metrics.enabled does.
    const env = stack.agentEnv.get('dev')!;
    stack.agentEnv.set('dev', { ...env, KUBEGATE_METRICS_LISTEN: `127.0.0.1:${agentPort}` });
    await stack.agents.get('dev')!.stop();
    await stack.startAgent('dev');
    const admin = { kubeconfig: stack.cluster.kubeconfig };
    await kubectlOk(
      ['create', 'clusterrolebinding', 'devs-view', '--clusterrole=view', '--group=developers'],
      admin,
    );
    await grant(stack, { groups: ['developers'], role: 'view', clusters: ['dev'] });
    // bob may only look elsewhere: his kubeconfig names the cluster, his list in default is refused.
    await grant(stack, {
      users: ['bob'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['elsewhere'],
    });
    alice = await stack.kubeconfig('alice', ['developers']);
    bob = await stack.kubeconfig('bob', []);
  });
  after(async () => {
    await stack?.stop();
  });

  test('proxy counters, histograms and gauges move with traffic; labels stay bounded', async () => {
    const before = (await scrape(proxyPort)).samples;
    const reqs = (labels: Record<string, string>, s: Sample[]) =>
      sum(s, 'kubegate_http_requests_total', labels);

    for (let i = 0; i < 3; i++)
      await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig: alice });
    const denied = await kubectl(['-n', 'default', 'get', 'configmaps'], { kubeconfig: bob });
    assert.match(denied.stderr, /Forbidden/);
    // A cluster nobody registered: counted, but never as a label value of its own.
    const cfg = await kubectlOk(['config', 'view', '--raw', '-o', 'json'], { kubeconfig: alice });
    const parsed = JSON.parse(cfg) as {
      users: { user: { token: string } }[];
      clusters: { cluster: { 'certificate-authority-data': string } }[];
    };
    const token = parsed.users[0]!.user.token;
    const ca = Buffer.from(
      parsed.clusters[0]!.cluster['certificate-authority-data'],
      'base64',
    ).toString();
    const invented = `no-such-cluster-${Date.now()}`;
    const r = await httpGet(`${stack.publicUrl}/k8s/${invented}/api/v1/namespaces`, { token, ca });
    assert.ok(r.status >= 400, `unknown cluster answered ${r.status}`);

    // An open watch shows in the open-streams gauge while it lasts.
    const watcher = spawn(
      kubectlPath(),
      ['--kubeconfig', alice, '-n', 'default', 'get', 'configmaps', '-w', '-o', 'name'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let seen = '';
    watcher.stdout.on('data', (b: Buffer) => (seen += b.toString()));
    try {
      const t0 = Date.now();
      while (!seen.includes('configmap/')) {
        if (Date.now() - t0 > 20_000) throw new Error(`watch showed nothing: ${seen}`);
        await new Promise((res) => setTimeout(res, 50));
      }
      // kubectl prints the LIST's names first and opens the watch after it: wait for the watch.
      const w0 = Date.now();
      while (
        sum((await scrape(proxyPort)).samples, 'kubegate_http_open_streams', {
          cluster: 'dev',
          kind: 'watch',
        }) < 1
      ) {
        if (Date.now() - w0 > 10_000) assert.fail('the open watch is not counted');
        await new Promise((res) => setTimeout(res, 50));
      }
    } finally {
      watcher.kill('SIGINT');
    }

    const { text, samples: afterS } = await scrape(proxyPort);
    const moved = (name: string, labels: Record<string, string>) =>
      sum(afterS, name, labels) - sum(before, name, labels);

    assert.ok(
      moved('kubegate_http_requests_total', { cluster: 'dev', verb: 'list', code: '200' }) >= 3,
    );
    assert.ok(
      moved('kubegate_http_requests_total', { cluster: 'dev', verb: 'list', code: '403' }) >= 1,
    );
    assert.ok(
      reqs({ cluster: '_other' }, afterS) - reqs({ cluster: '_other' }, before) >= 1,
      'the invented cluster is counted as _other',
    );
    assert.ok(!text.includes(invented), 'an invented cluster name never becomes a label value');
    assert.ok(
      moved('kubegate_http_proxy_duration_seconds_count', { cluster: 'dev', verb: 'list' }) >= 4,
    );
    assert.ok(
      moved('kubegate_http_upstream_duration_seconds_count', { cluster: 'dev', verb: 'list' }) >= 3,
    );
    assert.ok(moved('kubegate_authz_decisions_total', { cluster: 'dev', decision: 'allow' }) >= 3);
    assert.ok(moved('kubegate_authz_decisions_total', { cluster: 'dev', decision: 'deny' }) >= 1);
    assert.ok(moved('kubegate_authn_token_cache_lookups_total', {}) >= 4);
    assert.equal(
      sum(afterS, 'kubegate_tunnel_connected', { cluster: 'dev' }),
      2,
      'two tunnels (KUBEGATE_TUNNELS default)',
    );
    assert.ok(sum(afterS, 'kubegate_db_pool_connections', { state: 'total' }) >= 1);
    assert.ok(sum(afterS, 'kubegate_authz_policy_age_seconds') < 5, 'policy confirmed recently');
    assert.equal(sum(afterS, 'kubegate_build_info', { program: 'proxy' }), 1);

    // Once the watch ended, the gauge is back down.
    const t0 = Date.now();
    while (
      sum((await scrape(proxyPort)).samples, 'kubegate_http_open_streams', {
        cluster: 'dev',
        kind: 'watch',
      }) !== 0
    ) {
      if (Date.now() - t0 > 10_000) assert.fail('the ended watch is still counted as open');
      await new Promise((res) => setTimeout(res, 100));
    }

    // Bounded labels only: no user, group, token or path anywhere in the output.
    for (const s of afterS.filter((x) => x.name.startsWith('kubegate_'))) {
      for (const [k, v] of Object.entries(s.labels)) {
        assert.ok(
          [
            'cluster',
            'verb',
            'code',
            'kind',
            'decision',
            'result',
            'state',
            'outcome',
            'program',
            'version',
            'le',
            'quantile',
            'method',
            'event',
          ].includes(k),
          `${s.name} label ${k}`,
        );
        assert.ok(!/alice|bob|developers|kg_|\//.test(v), `${s.name}{${k}="${v}"}`);
      }
    }
  });

  test('agent counters and gauges move with traffic', async () => {
    const before = (await scrape(agentPort)).samples;
    for (let i = 0; i < 3; i++)
      await kubectlOk(['-n', 'default', 'get', 'configmaps'], { kubeconfig: alice });
    const { samples: afterS } = await scrape(agentPort);
    const moved = (name: string, labels: Record<string, string>) =>
      sum(afterS, name, labels) - sum(before, name, labels);
    assert.ok(moved('kubegate_agent_requests_total', { method: 'GET', code: '200' }) >= 3);
    assert.ok(moved('kubegate_agent_upstream_duration_seconds_count', { method: 'GET' }) >= 3);
    assert.equal(sum(afterS, 'kubegate_agent_tunnels_connected'), 2);
    assert.equal(sum(afterS, 'kubegate_agent_tunnels_wanted'), 2);
    assert.ok(sum(afterS, 'kubegate_agent_tunnel_events_total', { event: 'up' }) >= 2);
    assert.ok(
      sum(afterS, 'kubegate_agent_certificate_expiry_timestamp_seconds') > Date.now() / 1000,
      'a certificate that has not expired',
    );
    assert.equal(sum(afterS, 'kubegate_agent_open_streams'), 0, 'nothing in flight now');
    assert.equal(sum(afterS, 'kubegate_build_info', { program: 'agent' }), 1);
  });
});
