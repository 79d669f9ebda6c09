/**
 * A 200 MB LIST through kubegate with kubectl, streamed with bounded memory: 200 ConfigMaps
 * of ~1 MB each (and 20 of them elsewhere, for a 20 MB list) are created directly on the
 * apiserver; kubectl lists each namespace through kubegate in one page while this test samples
 * the resident memory (VmRSS, /proc) of the proxy and the agent processes. A proxy or agent
 * that buffered the answer would grow by about its size; a streaming one grows by its window
 * sizes, whatever the size of the list. Numbers are printed for the record (bench/ P3 measures
 * the same with forced GC); the assertion is on the difference between the two lists.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as https from 'node:https';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';

const PAD = 1_000_000;
/** Growth of the 200 MB list's peak over the 20 MB list's, per process. Buffering would be ~180 MB. */
const MAX_EXTRA_MB = 48;

let stack: Stack;
let kubeconfig: string;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

/** Create `count` ConfigMaps of ~1 MB in `ns`, straight on the apiserver, 4 at a time. */
async function fill(ns: string, count: number): Promise<void> {
  const c = stack.cluster;
  const u = new URL(c.server);
  const post = (i: number) =>
    new Promise<void>((resolve, reject) => {
      // Random, so that nothing on the way could shrink it much.
      const pad = randomBytes((PAD / 4) * 3).toString('base64');
      const body = JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `big-${i}` },
        data: { pad },
      });
      const req = https.request(
        {
          host: u.hostname,
          port: u.port,
          path: `/api/v1/namespaces/${ns}/configmaps`,
          method: 'POST',
          ca: c.ca,
          headers: {
            authorization: `Bearer ${c.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 201 ? resolve() : reject(new Error(`create: ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < count) await post(next++);
    }),
  );
}

interface Measured {
  names: number;
  ms: number;
  peak: { proxy: number; agent: number };
  idle: { proxy: number; agent: number };
}

/** kubectl get (one page) through kubegate, sampling the proxy's and agent's RSS meanwhile. */
async function listMeasured(ns: string): Promise<Measured> {
  const proxyPid = stack.proxy.child.pid!;
  const agentPid = stack.agents.get('dev')!.child.pid!;
  const idle = { proxy: rssMb(proxyPid), agent: rssMb(agentPid) };
  const peak = { ...idle };
  const sampler = setInterval(() => {
    peak.proxy = Math.max(peak.proxy, rssMb(proxyPid));
    peak.agent = Math.max(peak.agent, rssMb(agentPid));
  }, 20);
  const t0 = Date.now();
  try {
    const out = await new Promise<string>((resolve, reject) => {
      // JSONPath output fetches whole objects in one page of up to 500 (-o name and the
      // default table ask the server for metadata or a Table only).
      const k = spawn(
        kubectlPath(),
        [
          '--kubeconfig',
          kubeconfig,
          '-n',
          ns,
          'get',
          'configmaps',
          '-o',
          'jsonpath={range .items[*]}{.metadata.name}{"\\n"}{end}',
          '--request-timeout=300s',
          // client-go asks for gzip and the apiserver compresses large lists: measure the
          // 200 MB as such, not what it compresses to.
          '--disable-compression=true',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '' } },
      );
      let stdout = '';
      let stderr = '';
      k.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      k.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      k.once('error', reject);
      k.once('close', (code) =>
        code === 0 ? resolve(stdout) : reject(new Error(`kubectl get failed (${code}): ${stderr}`)),
      );
    });
    const ms = Date.now() - t0;
    return {
      names: out.split('\n').filter((l) => l.startsWith('big-')).length,
      ms,
      peak,
      idle,
    };
  } finally {
    clearInterval(sampler);
  }
}

async function listBytes(ns: string): Promise<number> {
  const rows = await stack.sql<{ bytes: string }>(
    `SELECT (event->>'bytesOut') AS bytes FROM audit_events
      WHERE stage = 'ResponseComplete' AND event->>'verb' = 'list'
        AND event->'objectRef'->>'namespace' = $1 AND event->'objectRef'->>'resource' = 'configmaps'
      ORDER BY received_at DESC LIMIT 1`,
    [ns],
  );
  return Number(rows[0]?.bytes ?? 0);
}

describe('a 200 MB list through kubegate with bounded memory', { timeout: 900_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    for (const ns of ['small', 'big'])
      await kubectlOk(['create', 'namespace', ns], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, { users: ['lisa'], role: 'view', clusters: ['dev'] });
    kubeconfig = await stack.kubeconfig('lisa');
    await fill('small', 20);
    await fill('big', 200);
  });
  after(async () => {
    await stack?.stop();
  });

  test('kubectl lists 20 MB and 200 MB; proxy and agent RSS do not grow with the size', async () => {
    // Warm up: the JIT account, connections, code paths.
    await listMeasured('small');
    const small = await listMeasured('small');
    const smallBytes = await listBytes('small');
    const big = await listMeasured('big');
    const bigBytes = await listBytes('big');
    assert.equal(small.names, 20);
    assert.equal(big.names, 200);
    assert.ok(bigBytes > 200_000_000, `the big list carried ${bigBytes} bytes through kubegate`);
    const extra = {
      proxy: big.peak.proxy - small.peak.proxy,
      agent: big.peak.agent - small.peak.agent,
    };
    const f = (n: number) => n.toFixed(1);
    process.stderr.write(
      `# big list: 20 MB (${smallBytes} B) in ${small.ms} ms, 200 MB (${bigBytes} B) in ${big.ms} ms ` +
        `(${f(bigBytes / 1e6 / (big.ms / 1000))} MB/s through kubectl)\n` +
        `#   proxy RSS idle ${f(big.idle.proxy)} MB, peak 20 MB ${f(small.peak.proxy)}, peak 200 MB ${f(big.peak.proxy)} (+${f(extra.proxy)})\n` +
        `#   agent RSS idle ${f(big.idle.agent)} MB, peak 20 MB ${f(small.peak.agent)}, peak 200 MB ${f(big.peak.agent)} (+${f(extra.agent)})\n`,
    );
    assert.ok(
      extra.proxy < MAX_EXTRA_MB,
      `proxy grew ${f(extra.proxy)} MB more for 200 MB than for 20 MB`,
    );
    assert.ok(
      extra.agent < MAX_EXTRA_MB,
      `agent grew ${f(extra.agent)} MB more for 200 MB than for 20 MB`,
    );
  });
});
