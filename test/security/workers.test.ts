/**
 * KUBEGATE_WORKERS under hostile or careless settings, with the real
 * binaries: a value that is not "auto" or 1–64 is refused before anything
 * is forked (no fork bomb from a typo like 1000 or -1), and workers that
 * cannot start stop the primary with exit 1 instead of being started again
 * forever, leaving no process behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive as alive, runKubegate } from '../support/proc.js';

const proxyEnv = () => ({
  DATABASE_URL: 'postgres://kg@127.0.0.1:1/kg', // nothing listens there
  KUBEGATE_MASTER_KEY: randomBytes(32).toString('base64'),
  KUBEGATE_PUBLIC_URL: 'https://127.0.0.1:1',
  KUBEGATE_TUNNEL_ADDRESS: '127.0.0.1:2',
  KUBEGATE_LISTEN: '127.0.0.1:0',
  KUBEGATE_TUNNEL_LISTEN: '127.0.0.1:0',
  KUBEGATE_ENROLL_LISTEN: '127.0.0.1:0',
  KUBEGATE_AUDIT_SPOOL_DIR: mkdtempSync(join(tmpdir(), 'kg-sec-workers-')),
});

const agentEnv = {
  KUBEGATE_CLUSTER: 'dev',
  KUBEGATE_TUNNEL_ADDRESS: '127.0.0.1:2',
  KUBEGATE_ENROLL_ADDRESS: '127.0.0.1:3',
  KUBEGATE_APISERVER_URL: 'https://127.0.0.1:4',
};

for (const program of ['proxy', 'agent'] as const) {
  test(`${program}: KUBEGATE_WORKERS beyond 1–64 or "auto" is refused before anything is forked`, async () => {
    for (const bad of ['1000', '0', '-1', '2.5', 'auto;2', ' 2', 'all', '9999999999']) {
      const env = program === 'proxy' ? proxyEnv() : agentEnv;
      const r = await runKubegate([program], { ...env, KUBEGATE_WORKERS: bad });
      assert.equal(r.code, 2, `${bad}: ${r.stderr}${r.stdout}`); // a configuration error
      const out = r.stdout + r.stderr;
      assert.match(out, /KUBEGATE_WORKERS/, bad);
      assert.match(out, /must be "auto" or a whole number from 1 to 64/, bad);
      assert.doesNotMatch(out, /starting workers/, `${bad}: nothing forked`);
    }
  });
}

test('proxy: workers that cannot start stop the primary (exit 1), none left running, no restart loop', async () => {
  const r = await runKubegate(['proxy'], { ...proxyEnv(), KUBEGATE_WORKERS: '3' });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg: string; pid: number; worker?: number });
  assert.ok(lines.some((l) => l.msg === 'a worker failed to start; stopping'));
  assert.ok(!lines.some((l) => l.msg === 'a worker died; starting it again'), 'never restarted');
  const workerPids = new Set(lines.filter((l) => l.worker !== undefined).map((l) => l.pid));
  assert.ok(workerPids.size >= 1, 'the workers logged why they could not start');
  for (const pid of workerPids) assert.ok(!alive(pid), `worker ${pid} still running`);
});
