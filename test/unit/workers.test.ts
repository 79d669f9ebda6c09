/**
 * Several workers per replica (common/workers.ts): how many `auto` means,
 * what each worker's settings become (proxy/main.ts), and where the audit
 * spool segments of another worker count go (proxy/audit/spool-dir.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cgroupCpuLimit,
  maxAutoWorkers,
  workerCount,
  workersProblem,
} from '../../common/workers.js';
import { asWorker } from '../../proxy/main.js';
import { loadProxyConfig } from '../../proxy/config.js';
import { adoptSpools } from '../../proxy/audit/spool-dir.js';

test('KUBEGATE_WORKERS: "auto" or 1–64, nothing else', () => {
  for (const ok of ['auto', '1', '2', '16', '64']) assert.equal(workersProblem(ok), undefined, ok);
  for (const bad of ['0', '-1', '65', '1.5', ' 2', '2 ', 'two', '', '01', '1e1', 'AUTO', 4])
    assert.match(workersProblem(bad) ?? '', /must be "auto" or a whole number/, String(bad));
});

test('auto: the CPU limit rounded up, else the cores, within 1..max', () => {
  assert.equal(
    workerCount(
      '3',
      () => 1,
      () => 16,
    ),
    3,
  );
  assert.equal(
    workerCount(
      'auto',
      () => 2,
      () => 16,
    ),
    2,
  );
  assert.equal(
    workerCount(
      'auto',
      () => 1.5,
      () => 16,
    ),
    2,
  );
  assert.equal(
    workerCount(
      'auto',
      () => 0.2,
      () => 16,
    ),
    1,
  );
  assert.equal(
    workerCount(
      'auto',
      () => 4.0000000001,
      () => 16,
    ),
    4,
  );
  assert.equal(
    workerCount(
      'auto',
      () => undefined,
      () => 3,
    ),
    3,
  );
  assert.equal(
    workerCount(
      'auto',
      () => undefined,
      () => 96,
    ),
    maxAutoWorkers,
  );
  assert.equal(
    workerCount(
      'auto',
      () => 40,
      () => 96,
    ),
    maxAutoWorkers,
  );
});

test('the CPU limit from cgroup v2, v1, or none', () => {
  const fs = (files: Record<string, string>) => (p: string) => {
    if (!(p in files)) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return files[p]!;
  };
  assert.equal(cgroupCpuLimit(fs({ '/sys/fs/cgroup/cpu.max': '150000 100000\n' })), 1.5);
  assert.equal(cgroupCpuLimit(fs({ '/sys/fs/cgroup/cpu.max': 'max 100000\n' })), undefined);
  assert.equal(cgroupCpuLimit(fs({ '/sys/fs/cgroup/cpu.max': 'garbage' })), undefined);
  assert.equal(
    cgroupCpuLimit(
      fs({
        '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '200000',
        '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
      }),
    ),
    2,
  );
  assert.equal(
    cgroupCpuLimit(
      fs({
        '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1',
        '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000',
      }),
    ),
    undefined,
  );
  assert.equal(cgroupCpuLimit(fs({})), undefined);
});

test("a worker's settings: own replica id, peer port, spool; no metrics server of its own", () => {
  const c = loadProxyConfig({
    DATABASE_URL: 'postgres://x@127.0.0.1/kg',
    KUBEGATE_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    KUBEGATE_PUBLIC_URL: 'https://kubegate.example.com',
    KUBEGATE_TUNNEL_ADDRESS: 'tunnel.example.com:8443',
    KUBEGATE_REPLICA_ID: 'pod-a',
    KUBEGATE_PEER_LISTEN: '0.0.0.0:8446',
    KUBEGATE_PEER_ADDRESS: '[fd00::5]:8446',
    KUBEGATE_METRICS_LISTEN: '0.0.0.0:9090',
    KUBEGATE_WORKERS: '2',
  });
  const w = asWorker(c, 1, '/spool');
  assert.equal(w.replicaId, 'pod-a-w1');
  assert.equal(w.peerListen, '0.0.0.0:8447');
  assert.equal(w.peerAddress, '[fd00::5]:8447');
  assert.equal(w.auditSpoolDir, join('/spool', 'worker-1'));
  assert.equal(w.metricsListen, '');
  assert.ok(Object.isFrozen(w));
  // Port 0 stays "any free port" (each worker's own: the peer listener is exclusive).
  const z = asWorker({ ...c, peerListen: '127.0.0.1:0', peerAddress: '' }, 3, '/spool');
  assert.equal(z.peerListen, '127.0.0.1:0');
  assert.equal(z.peerAddress, '');
  assert.equal(asWorker(c, 0, '/spool').replicaId, 'pod-a-w0');
});

function segment(dir: string, seq: number, text: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${String(seq).padStart(12, '0')}.jsonl`), text);
}

function contents(dir: string): string[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort()
    .map((n) => readFileSync(join(dir, n), 'utf8'));
}

test('spool segments of another layout go to the processes there are now, none overwritten', () => {
  const d = mkdtempSync(join(tmpdir(), 'kg-spool-adopt-'));
  segment(d, 1, 'single-1\n'); // left by a single process
  segment(join(d, 'worker-0'), 1, 'w0-1\n');
  segment(join(d, 'worker-1'), 7, 'w1-7\n');
  segment(join(d, 'worker-2'), 1, 'w2-1\n'); // left by a third worker
  segment(join(d, 'worker-3'), 2, 'w3-2\n');
  writeFileSync(join(d, 'worker-3', 'notes.txt'), 'not a segment');
  // Now two workers.
  adoptSpools(d, 2)();
  assert.deepEqual(contents(d), []);
  assert.deepEqual(contents(join(d, 'worker-0')), ['w0-1\n', 'single-1\n', 'w2-1\n']);
  assert.deepEqual(contents(join(d, 'worker-1')), ['w1-7\n', 'w3-2\n']);
  assert.deepEqual(readdirSync(join(d, 'worker-3')), ['notes.txt']);
  // Back to one process: every worker's segments to the directory itself.
  adoptSpools(d, 1)();
  assert.deepEqual(contents(d).sort(), ['single-1\n', 'w0-1\n', 'w1-7\n', 'w2-1\n', 'w3-2\n']);
  assert.deepEqual(contents(join(d, 'worker-0')), []);
});

test('adopting needs the directory: a live holder refuses, and a primary keeps it', () => {
  const d = mkdtempSync(join(tmpdir(), 'kg-spool-adopt-'));
  const release = adoptSpools(d, 2);
  // A second primary (or a single process) on the same directory is refused.
  writeFileSync(join(d, 'lock'), String(process.ppid)); // a live process other than us
  assert.throws(() => adoptSpools(d, 2), /in use by process/);
  release();
});
