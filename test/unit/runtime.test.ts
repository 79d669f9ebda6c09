/**
 * Every make target runs on Node.js 24 LTS: when the machine's node is older,
 * the Makefile installs the pinned release into .tools/node and puts it first
 * on PATH, so the test runner (and every proxy and agent it starts, which use
 * process.execPath) run on it. This fails when a target runs on the
 * machine's older node instead.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/repo.js';

test('the tests run on Node.js 24 or newer, as package.json engines says', () => {
  const major = Number(process.versions.node.split('.')[0]);
  assert.ok(
    major >= 24,
    `running on Node ${process.version} (${process.execPath}): run tests through make`,
  );
  const engines = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')).engines.node;
  assert.equal(engines, '>=24');
});

test('the Makefile pins the Node 24 it installs, with a checksum for each platform it offers', () => {
  const mk = readFileSync(join(repoRoot(), 'Makefile'), 'utf8');
  const version = /^NODE_VERSION := (\d+)\.\d+\.\d+$/m.exec(mk);
  assert.ok(version, 'NODE_VERSION is pinned to an exact release');
  assert.equal(version[1], '24');
  for (const platform of ['linux-x64', 'linux-arm64'])
    assert.match(mk, new RegExp(`^NODE_INTEGRITY_${platform} := sha512-[A-Za-z0-9+/]{86}==$`, 'm'));
});
