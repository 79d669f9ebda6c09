/**
 * Metrics: names follow kubegate_<subsystem>_<name>_<unit>, labels stay
 * bounded whatever clients send, scrape-time gauges read the live objects, and
 * /metrics is served on its own port (404 elsewhere).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Registry } from 'prom-client';
import { startMetricsServer } from '../../common/metrics-server.js';
import { ProxyMetrics } from '../../proxy/metrics.js';
import { AgentMetrics } from '../../agent/metrics.js';
import { TunnelRegistry, type Tunnel } from '../../proxy/tunnel/registry.js';
import type { Pool } from '../../proxy/db/pool.js';
import type { RequestContext } from '../../proxy/context.js';

const forbiddenLabels = /^(user|username|group|groups|path|uri|url|token|subject|ip|name)$/;

async function families(registry: Registry) {
  return (await registry.getMetricsAsJSON()) as unknown as {
    name: string;
    type: string;
    values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
  }[];
}

async function value(registry: Registry, name: string, labels: Record<string, string> = {}) {
  const fam = (await families(registry)).find((f) => f.name === name);
  assert.ok(fam, `metric ${name} exists`);
  const v = fam.values.find(
    (x) =>
      (x.metricName === undefined || x.metricName === name) &&
      Object.entries(labels).every(([k, want]) => String(x.labels[k]) === want),
  );
  return v?.value;
}

for (const [program, make] of [
  ['proxy', () => new ProxyMetrics().registry],
  ['agent', () => new AgentMetrics().registry],
] as const) {
  test(`${program}: every kubegate metric is named kubegate_<subsystem>_<name>_<unit>, labels bounded`, async () => {
    const fams = (await families(make())).filter((f) => f.name.startsWith('kubegate_'));
    assert.ok(fams.length >= 8, `${fams.length} kubegate metrics`);
    for (const f of fams) {
      assert.match(f.name, /^kubegate_[a-z]+_[a-z0-9]+(_[a-z0-9]+)*$/, f.name);
      if (f.type === 'counter')
        assert.match(f.name, /_total$/, `${f.name}: counters end in _total`);
      if (f.type === 'histogram')
        assert.match(f.name, /_seconds$/, `${f.name}: latency in seconds`);
      for (const v of f.values)
        for (const l of Object.keys(v.labels))
          assert.doesNotMatch(l, forbiddenLabels, `${f.name} has an unbounded label "${l}"`);
    }
  });
}

test('proxy: requests counted by cluster, verb and code; latency split proxy/upstream', async () => {
  const m = new ProxyMetrics();
  m.setSources({ isKnownCluster: (c) => c === 'eu-1' });
  m.observeRequest('eu-1', 'list', 200, 0.002, 0.015);
  m.observeRequest('eu-1', 'list', 200, 0.001, 0.01);
  m.observeRequest('eu-1', 'get', 403, 0.001);
  const r = m.registry;
  assert.equal(
    await value(r, 'kubegate_http_requests_total', { cluster: 'eu-1', verb: 'list', code: '200' }),
    2,
  );
  assert.equal(
    await value(r, 'kubegate_http_requests_total', { cluster: 'eu-1', verb: 'get', code: '403' }),
    1,
  );
  const fams = await families(r);
  const count = (name: string) =>
    fams
      .find((f) => f.name === name)!
      .values.filter((v) => v.metricName === `${name}_count`)
      .reduce((a, v) => a + v.value, 0);
  assert.equal(count('kubegate_http_proxy_duration_seconds'), 3);
  assert.equal(count('kubegate_http_upstream_duration_seconds'), 2, 'only forwarded requests');
});

test('proxy: unknown clusters, odd verbs and codes collapse into fixed values (property)', async () => {
  const m = new ProxyMetrics();
  m.setSources({ isKnownCluster: (c) => c === 'eu-1' });
  fc.assert(
    fc.property(fc.string(), fc.option(fc.string()), fc.integer(), (cluster, verb, code) => {
      m.observeRequest(cluster, verb ?? undefined, code, 0.001);
    }),
    { numRuns: 300 },
  );
  const fam = (await families(m.registry)).find((f) => f.name === 'kubegate_http_requests_total')!;
  const known = new Set([
    'get',
    'list',
    'watch',
    'create',
    'update',
    'patch',
    'delete',
    'deletecollection',
    'proxy',
    'post',
    'put',
    'head',
    'options',
    'other',
    'unknown',
  ]);
  for (const v of fam.values) {
    assert.ok(['eu-1', '_other'].includes(String(v.labels.cluster)), String(v.labels.cluster));
    assert.ok(known.has(String(v.labels.verb)), String(v.labels.verb));
    assert.match(String(v.labels.code), /^([1-5][0-9][0-9]|unknown)$/);
  }
});

test('proxy: even registered clusters are capped, so the series count stays bounded', () => {
  const m = new ProxyMetrics();
  m.setSources({ isKnownCluster: () => true });
  const labels = new Set<string>();
  for (let i = 0; i < 2500; i++) labels.add(m.cluster(`c-${i}`));
  assert.ok(labels.size <= 2001, `${labels.size} distinct cluster labels`);
  assert.ok(labels.has('_other'));
  assert.equal(m.cluster('c-1'), 'c-1', 'a cluster seen before keeps its label');
});

test('proxy: open streams go up and down once, however often the end is reported', async () => {
  const m = new ProxyMetrics();
  m.setSources({ isKnownCluster: () => true });
  const end1 = m.openStream('eu-1', 'watch');
  const end2 = m.openStream('eu-1', 'watch');
  assert.equal(
    await value(m.registry, 'kubegate_http_open_streams', { cluster: 'eu-1', kind: 'watch' }),
    2,
  );
  end1();
  end1();
  assert.equal(
    await value(m.registry, 'kubegate_http_open_streams', { cluster: 'eu-1', kind: 'watch' }),
    1,
  );
  end2();
  assert.equal(
    await value(m.registry, 'kubegate_http_open_streams', { cluster: 'eu-1', kind: 'watch' }),
    0,
  );
});

test('proxy: tunnels, streams and the DB pool are read from the live objects at scrape time', async () => {
  const m = new ProxyMetrics();
  const registry = new TunnelRegistry();
  const tunnel = (cluster: string, active: number, closed = false) =>
    ({ cluster, active, session: { closed, destroyed: closed } }) as unknown as Tunnel;
  registry.add(tunnel('eu-1', 3));
  registry.add(tunnel('eu-1', 1));
  registry.add(tunnel('us-2', 0, true));
  const pool = { totalCount: 7, idleCount: 5, waitingCount: 1 } as unknown as Pool;
  m.setSources({
    knownClusters: () => ['eu-1', 'us-2', 'ap-3'],
    tunnels: registry,
    pool,
    poolMax: 10,
    isKnownCluster: () => true,
    policyAgeSeconds: () => 0.4,
  });
  const r = m.registry;
  assert.equal(await value(r, 'kubegate_tunnel_connected', { cluster: 'eu-1' }), 2);
  assert.equal(
    await value(r, 'kubegate_tunnel_connected', { cluster: 'us-2' }),
    0,
    'closed tunnels do not count',
  );
  assert.equal(
    await value(r, 'kubegate_tunnel_connected', { cluster: 'ap-3' }),
    0,
    'a known cluster without tunnels reports 0, so an offline alert can see it',
  );
  assert.equal(await value(r, 'kubegate_tunnel_active_streams', { cluster: 'eu-1' }), 4);
  assert.equal(await value(r, 'kubegate_db_pool_connections', { state: 'idle' }), 5);
  assert.equal(await value(r, 'kubegate_db_pool_connections', { state: 'waiting' }), 1);
  assert.equal(await value(r, 'kubegate_db_pool_connections', { state: 'max' }), 10);
  assert.equal(await value(r, 'kubegate_authz_policy_age_seconds'), 0.4);
  registry.remove(registry.tunnels('eu-1')[0]!);
  assert.equal(
    await value(r, 'kubegate_tunnel_connected', { cluster: 'eu-1' }),
    1,
    'follows the registry',
  );
});

test('agent: tunnels, certificate expiry and JIT accounts from the live objects', async () => {
  const m = new AgentMetrics();
  const tunnels = [{ connected: true }, { connected: false }];
  const notAfter = new Date('2030-01-01T00:00:00Z');
  m.setSources({
    tunnels,
    certificateNotAfter: () => notAfter,
    jit: () => ({ accounts: 3, created: 5, deleted: 2, tokenRequests: 9, reconcileErrors: 0 }),
  });
  m.observeUpstream('get', 200, 0.01);
  m.observeUpstream('BREW', 418, 0.01);
  m.observeTunnel('up');
  const r = m.registry;
  assert.equal(await value(r, 'kubegate_agent_tunnels_connected'), 1);
  assert.equal(await value(r, 'kubegate_agent_tunnels_wanted'), 2);
  assert.equal(
    await value(r, 'kubegate_agent_certificate_expiry_timestamp_seconds'),
    notAfter.getTime() / 1000,
  );
  assert.equal(await value(r, 'kubegate_jit_service_accounts'), 3);
  assert.equal(await value(r, 'kubegate_jit_service_accounts_created_total'), 5);
  assert.equal(await value(r, 'kubegate_jit_token_requests_total'), 9);
  assert.equal(await value(r, 'kubegate_jit_reconcile_errors_total'), 0);
  assert.equal(await value(r, 'kubegate_agent_requests_total', { method: 'GET', code: '200' }), 1);
  assert.equal(
    await value(r, 'kubegate_agent_requests_total', { method: 'other', code: '418' }),
    1,
  );
  tunnels[1]!.connected = true;
  assert.equal(await value(r, 'kubegate_agent_tunnels_connected'), 2);
});

for (const [program, start, metric] of [
  [
    'proxy',
    (p: number) => startMetricsServer('127.0.0.1', p, new ProxyMetrics().registry),
    'kubegate_http_requests_total',
  ],
  [
    'agent',
    (p: number) => startMetricsServer('127.0.0.1', p, new AgentMetrics().registry),
    'kubegate_agent_requests_total',
  ],
] as const) {
  test(`${program}: /metrics is served on its own port, nothing else is`, async () => {
    const server = await start(0);
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const ok = await fetch(`${base}/metrics`);
      assert.equal(ok.status, 200);
      assert.match(ok.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await ok.text();
      assert.match(text, new RegExp(`# TYPE ${metric} counter`));
      assert.match(text, /kubegate_build_info\{program="\w+",version="\d+\.\d+\.\d+[^"]*"\} 1/);
      assert.match(text, /nodejs_eventloop_lag_seconds/);
      assert.equal((await fetch(`${base}/`)).status, 404);
      assert.equal((await fetch(`${base}/k8s/x`)).status, 404);
      assert.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
    } finally {
      await server.close();
    }
  });
}

test('proxy: the request lifecycle — begin, sent, headers, end — fills every series once', async () => {
  const m = new ProxyMetrics();
  m.setSources({ isKnownCluster: () => true });
  const ctx = (over: Partial<RequestContext>) =>
    ({ auditId: 'a', receivedAt: Date.now(), ...over }) as RequestContext;
  const identity = { user: 'alice' } as RequestContext['identity'];
  const route = { cluster: 'eu-1' } as RequestContext['route'];
  const watch = ctx({
    route,
    identity,
    info: { verb: 'watch' } as RequestContext['info'],
    decision: { allowed: true } as RequestContext['decision'],
  });
  m.beginRequest(watch);
  m.markSent(watch);
  m.markHeaders(watch);
  const r = m.registry;
  assert.equal(await value(r, 'kubegate_http_open_streams', { cluster: 'eu-1', kind: 'watch' }), 1);
  m.endRequest(watch, 200);
  m.endRequest(watch, 200); // a second close report changes nothing
  assert.equal(await value(r, 'kubegate_http_open_streams', { cluster: 'eu-1', kind: 'watch' }), 0);
  assert.equal(
    await value(r, 'kubegate_http_requests_total', { cluster: 'eu-1', verb: 'watch', code: '200' }),
    1,
  );
  assert.equal(await value(r, 'kubegate_authz_decisions_total', { decision: 'allow' }), 1);

  const denied = ctx({
    route,
    identity,
    info: { verb: 'get' } as RequestContext['info'],
    decision: { allowed: false } as RequestContext['decision'],
  });
  m.beginRequest(denied);
  m.endRequest(denied, 403);
  const stale = ctx({ route, identity, info: { verb: 'get' } as RequestContext['info'] });
  m.beginRequest(stale);
  m.endRequest(stale, 503);
  const anonymous = ctx({ route });
  m.beginRequest(anonymous);
  m.endRequest(anonymous, 401);
  assert.equal(await value(r, 'kubegate_authz_decisions_total', { decision: 'deny' }), 1);
  assert.equal(await value(r, 'kubegate_authz_decisions_total', { decision: 'unavailable' }), 1);
  assert.equal(await value(r, 'kubegate_http_requests_total', { verb: 'unknown', code: '401' }), 1);
  const fams = await families(r);
  const count = (name: string) =>
    fams
      .find((f) => f.name === name)!
      .values.filter((v) => v.metricName === `${name}_count`)
      .reduce((a, v) => a + v.value, 0);
  assert.equal(count('kubegate_http_proxy_duration_seconds'), 4);
  assert.equal(count('kubegate_http_upstream_duration_seconds'), 1, 'only the forwarded one');
});
