/**
 * The metrics documentation, the Grafana dashboard and the alert rules use
 * only metrics that exist, and every metric kubegate defines is described in
 * docs/metrics.md — so renaming a metric cannot silently blank a panel or
 * mute an alert.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { ProxyMetrics } from '../../proxy/metrics.js';
import { AgentMetrics } from '../../agent/metrics.js';
import { repoRoot } from '../support/repo.js';

const doc = (name: string) => readFileSync(join(repoRoot(), 'docs', name), 'utf8');

async function defined(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const r of [new ProxyMetrics().registry, new AgentMetrics().registry]) {
    for (const m of await r.getMetricsAsJSON()) out.set(m.name, String(m.type));
  }
  return out;
}

/** Metric names a text refers to, with histogram suffixes mapped to their family. */
function referenced(text: string, known: Map<string, string>): Set<string> {
  const out = new Set<string>();
  for (const [name] of text.matchAll(/\b(?:kubegate|nodejs|process)_[a-z0-9_]+\b/g)) {
    const family = name.replace(/_(bucket|count|sum)$/, '');
    out.add(known.get(family) === 'histogram' ? family : name);
  }
  return out;
}

test('every kubegate metric is described in docs/metrics.md', async () => {
  const known = await defined();
  const text = doc('metrics.md');
  for (const name of known.keys()) {
    if (!name.startsWith('kubegate_')) continue;
    assert.ok(text.includes(`\`${name}\``), `${name} is described in docs/metrics.md`);
  }
});

for (const file of ['metrics.md', 'grafana-dashboard.json', 'prometheus-alerts.yaml']) {
  test(`docs/${file} refers only to metrics that exist`, async () => {
    const known = await defined();
    const refs = referenced(doc(file), known);
    assert.ok(refs.size >= 5, `${refs.size} metrics referenced`);
    for (const name of refs)
      assert.ok(known.has(name), `${file} uses ${name}, which nothing defines`);
  });
}

test('the dashboard is valid Grafana JSON with a query in every panel', () => {
  const dash = JSON.parse(doc('grafana-dashboard.json')) as {
    uid: string;
    panels: { type: string; title: string; targets?: { expr: string }[] }[];
  };
  assert.ok(dash.uid);
  const panels = dash.panels.filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 15, `${panels.length} panels`);
  for (const p of panels) {
    assert.ok(p.targets?.length, `${p.title} has a query`);
    for (const t of p.targets!) assert.match(t.expr, /kubegate_/, `${p.title}`);
  }
});

test('every alert has an expression, a severity, a summary and a runbook that exists', () => {
  const rule = parse(doc('prometheus-alerts.yaml')) as {
    kind: string;
    spec: {
      groups: {
        rules: {
          alert: string;
          expr: string;
          labels: { severity: string };
          annotations: { summary: string; runbook: string };
        }[];
      }[];
    };
  };
  assert.equal(rule.kind, 'PrometheusRule');
  const operations = doc('operations.md');
  const anchors = new Set(
    [...operations.matchAll(/^#+ (.+)$/gm)].map((m) =>
      m[1]!
        .toLowerCase()
        .replace(/[^a-z0-9 -]/g, '')
        .replace(/ /g, '-'),
    ),
  );
  const alerts = rule.spec.groups.flatMap((g) => g.rules);
  assert.ok(alerts.length >= 10);
  for (const a of alerts) {
    assert.match(a.expr, /kubegate_/, a.alert);
    assert.ok(['critical', 'warning', 'info'].includes(a.labels.severity), a.alert);
    assert.ok(a.annotations.summary, a.alert);
    const anchor = /^docs\/operations\.md#(.+)$/.exec(a.annotations.runbook)?.[1];
    assert.ok(anchor && anchors.has(anchor), `${a.alert}: runbook ${a.annotations.runbook} exists`);
  }
});
