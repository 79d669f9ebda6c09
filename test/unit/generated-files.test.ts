/**
 * Generated files must match their sources, so they cannot drift:
 * docs/configuration.md from the config schemas, and the agent chart's
 * shared data from proxy/clusters/bootstrap-yaml.ts. Regenerate with
 * `make docs` (which also runs Prettier over them, as this test does).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as prettier from 'prettier';
import { configReference, formatDuration } from '../../proxy/cli/config-reference.js';
import { agentChartData, agentChartDataPath } from '../../proxy/cli/agent-chart-data.js';
import { agentLabels, agentRbacRules } from '../../proxy/clusters/bootstrap-yaml.js';
import { proxySchema } from '../../proxy/config.js';
import { agentSchema } from '../../agent/config.js';
import { repoRoot } from '../support/repo.js';

async function formatted(text: string, relPath: string): Promise<string> {
  const file = join(repoRoot(), relPath);
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(text, { ...options, filepath: file });
}

function checkedIn(relPath: string): string {
  return readFileSync(join(repoRoot(), relPath), 'utf8');
}

test('docs/configuration.md is generated from the current schemas (else: make docs)', async () => {
  const want = await formatted(configReference(), 'docs/configuration.md');
  assert.equal(
    checkedIn('docs/configuration.md'),
    want,
    'docs/configuration.md is stale: run `make docs` and commit the result',
  );
});

test('the configuration reference names every field of both schemas, with its key', () => {
  const text = configReference();
  for (const [key, spec] of [...Object.entries(proxySchema), ...Object.entries(agentSchema)]) {
    assert.ok(text.includes(`### \`${spec.env}\``), `${spec.env} has a heading`);
    assert.ok(text.includes(`key \`${key}\``), `${key} is named`);
  }
  // Secrets are marked, and no default value of a secret is ever printed.
  assert.match(text, /### `KUBEGATE_MASTER_KEY`[\s\S]*?secret: never logged/);
});

test('defaults are the ones the programs apply, durations in the units people write', () => {
  const text = configReference();
  const section = (env: string) => {
    const start = text.indexOf(`### \`${env}\``);
    assert.ok(start >= 0, env);
    const end = text.indexOf('\n### ', start + 1);
    return text.slice(start, end < 0 ? undefined : end);
  };
  assert.match(section('KUBEGATE_TOKEN_TTL'), /default: `12h`/);
  assert.match(section('KUBEGATE_MAX_REQUEST_BODY'), /default: `3145728`/);
  assert.match(section('KUBEGATE_RECONNECT_BASE'), /default: `250ms`/);
  assert.match(section('KUBEGATE_TLS_HOSTS'), /default: `localhost,127\.0\.0\.1`/);
  assert.match(section('DATABASE_URL'), /\*\*required\*\*/);
  assert.doesNotMatch(section('DATABASE_URL'), /default:/);
});

test('formatDuration picks the largest exact unit', () => {
  const table: [number, string][] = [
    [0, '0ms'],
    [250, '250ms'],
    [1000, '1s'],
    [1500, '1500ms'],
    [90_000, '90s'],
    [3_600_000, '1h'],
    [43_200_000, '12h'],
    [86_400_000, '1d'],
  ];
  for (const [ms, want] of table) assert.equal(formatDuration(ms), want, String(ms));
});

test('the agent chart shared data is generated from bootstrap-yaml.ts (else: make docs)', async () => {
  const want = await formatted(agentChartData(), agentChartDataPath);
  assert.equal(
    checkedIn(agentChartDataPath),
    want,
    `${agentChartDataPath} is stale: run \`make docs\` and commit the result`,
  );
  const parsed = JSON.parse(checkedIn(agentChartDataPath)) as Record<string, unknown>;
  assert.deepEqual(parsed.labels, agentLabels);
  assert.deepEqual(parsed.rbacRules, agentRbacRules);
});
