/**
 * One stalled reader does not slow the others (issue 7, back-pressure): a watch whose client
 * stops reading is held by per-stream flow control — HTTP/2 windows on the front and on the
 * tunnel — while every other stream on the same tunnel goes on. A ~40 MB flood of 64 KiB
 * ConfigMap updates is watched twice through kubegate: one watcher never reads, the other must
 * receive every event. Meanwhile a third watch on a quiet namespace must see each small change
 * promptly and GETs must keep answering; the proxy's and agent's memory must not grow with the
 * flood (the stalled stream holds windows, not the flood). Numbers are printed for the record
 * (bench/ P5 measures the latency effect); the assertions are on behaviour and generous bounds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { until } from '../support/http.js';

const UPDATES = 600;
const PAD = 64 * 1024;
/** Budget for one small event or GET on a loaded 2-core machine; an unbounded stall is minutes. */
const BUDGET_MS = 5_000;
const MAX_GROWTH_MB = 64;

let stack: Stack;
let token: string;
let ca: Buffer;

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

/** A request straight to the apiserver as its admin (the flood does not go through kubegate). */
function direct(method: string, path: string, body?: unknown): Promise<number> {
  const c = stack.cluster;
  const u = new URL(c.server);
  const text = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method,
        ca: c.ca,
        headers: {
          authorization: `Bearer ${c.token}`,
          'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json',
          'content-length': Buffer.byteLength(text),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** An h2 session of its own to kubegate (each watcher is a separate client). */
function session(): http2.ClientHttp2Session {
  const s = http2.connect(stack.publicUrl, { ca });
  s.on('error', () => undefined);
  return s;
}

interface Watch {
  stream: http2.ClientHttp2Stream;
  /** Lines (events) received so far, parsed. */
  events: { type: string; object: { metadata: { name: string }; data?: Record<string, string> } }[];
  at: number[];
  /** The server ended it (e.g. the apiserver closing a watcher that fell behind). */
  ended: boolean;
}

function watch(s: http2.ClientHttp2Session, ns: string, read: boolean): Promise<Watch> {
  return new Promise((resolve, reject) => {
    const stream = s.request({
      ':path': `/k8s/dev/api/v1/namespaces/${ns}/configmaps?watch=1&allowWatchBookmarks=false`,
      authorization: `Bearer ${token}`,
    });
    const w: Watch = { stream, events: [], at: [], ended: false };
    stream.on('close', () => (w.ended = true));
    stream.on('response', (h) => {
      if (h[':status'] !== 200) return reject(new Error(`watch ${ns}: ${h[':status']}`));
      if (read) {
        let buf = '';
        stream.on('data', (c: Buffer) => {
          buf += c.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            w.events.push(JSON.parse(buf.slice(0, nl)) as Watch['events'][number]);
            w.at.push(Date.now());
            buf = buf.slice(nl + 1);
          }
        });
      }
      resolve(w);
    });
    stream.on('error', reject);
    stream.end();
  });
}

function timedGet(s: http2.ClientHttp2Session, path: string): Promise<number> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const r = s.request({ ':path': path, authorization: `Bearer ${token}` });
    r.on('response', (h) => {
      if (h[':status'] !== 200) reject(new Error(`GET ${path}: ${h[':status']}`));
    });
    r.on('data', () => undefined);
    r.on('end', () => resolve(Date.now() - t0));
    r.on('error', reject);
    r.end();
  });
}

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

describe(
  'a stalled watch reader does not slow other streams on the tunnel',
  { timeout: 600_000 },
  () => {
    before(async () => {
      stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
      for (const ns of ['flood', 'calm'])
        await kubectlOk(['create', 'namespace', ns], { kubeconfig: stack.cluster.kubeconfig });
      await grant(stack, { users: ['sam'], role: 'view', clusters: ['dev'] });
      const cfg = readFileSync(await stack.kubeconfig('sam'), 'utf8');
      token = /token: (kg_\S+)/.exec(cfg)![1]!;
      ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(cfg)![1]!, 'base64');
      const pad = 'p'.repeat(PAD);
      assert.equal(
        await direct('POST', '/api/v1/namespaces/flood/configmaps', {
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'flood' },
          data: { seq: '-1', pad },
        }),
        201,
      );
    });
    after(async () => {
      await stack?.stop();
    });

    test('the flood reaches the reading watcher whole while the stalled one holds only windows', async () => {
      const proxyPid = stack.proxy.child.pid!;
      const agentPid = stack.agents.get('dev')!.child.pid!;
      const sStalled = session();
      const sReader = session();
      const sCalm = session();
      try {
        // Warm up (JIT account, connections), then note the resting memory.
        await timedGet(sCalm, '/k8s/dev/api/v1/namespaces/calm/configmaps');
        const stalled = await watch(sStalled, 'flood', false);
        const reader = await watch(sReader, 'flood', true);
        const calm = await watch(sCalm, 'calm', true);
        const rest = { proxy: rssMb(proxyPid), agent: rssMb(agentPid) };
        const peak = { ...rest };
        const sampler = setInterval(() => {
          peak.proxy = Math.max(peak.proxy, rssMb(proxyPid));
          peak.agent = Math.max(peak.agent, rssMb(agentPid));
        }, 20);

        // The flood, straight on the apiserver: every update is a ~64 KiB watch event.
        let flooding = true;
        const flood = (async () => {
          for (let i = 0; i < UPDATES; i++) {
            const code = await direct('PATCH', '/api/v1/namespaces/flood/configmaps/flood', {
              data: { seq: String(i), pad: `${i % 10}`.repeat(PAD) },
            });
            assert.equal(code, 200);
          }
          flooding = false;
        })();

        // While it runs: small changes on the quiet namespace and GETs, each timed.
        const lags: number[] = [];
        const gets: number[] = [];
        for (let i = 0; flooding || i < 5; i++) {
          const name = `calm-${i}`;
          const t0 = Date.now();
          assert.equal(
            await direct('POST', '/api/v1/namespaces/calm/configmaps', {
              apiVersion: 'v1',
              kind: 'ConfigMap',
              metadata: { name },
            }),
            201,
          );
          await until(
            async () => calm.events.some((e) => e.object.metadata.name === name),
            BUDGET_MS,
            `the quiet watch seeing ${name} during the flood`,
          );
          lags.push(calm.at[calm.events.findIndex((e) => e.object.metadata.name === name)]! - t0);
          const g = await timedGet(sCalm, '/k8s/dev/api/v1/namespaces/calm/configmaps?limit=1');
          assert.ok(g < BUDGET_MS, `GET took ${g} ms during the flood`);
          gets.push(g);
          await new Promise((r) => setTimeout(r, 100));
        }
        await flood;
        await until(
          async () => reader.events.some((e) => e.object.data?.seq === String(UPDATES - 1)),
          60_000,
          `the reading watcher receiving the last update (it has ${reader.events.length} events, last seq ${reader.events.at(-1)?.object.data?.seq}, ended: ${reader.ended})`,
        );
        clearInterval(sampler);
        const seqs = reader.events
          .filter((e) => e.type === 'MODIFIED')
          .map((e) => Number(e.object.data!.seq));
        assert.deepEqual(
          seqs,
          Array.from({ length: UPDATES }, (_, i) => i),
          'every update, in order, reached the watcher that reads',
        );
        const growth = { proxy: peak.proxy - rest.proxy, agent: peak.agent - rest.agent };
        const f = (n: number) => n.toFixed(1);
        process.stderr.write(
          `# slow reader: ${UPDATES} x ${PAD / 1024} KiB events (${f((UPDATES * PAD) / 1e6)} MB) to two watchers, one stalled\n` +
            `#   quiet watch lag p50 ${pct(lags, 50)} ms, max ${Math.max(...lags)} ms over ${lags.length}; GET p50 ${pct(gets, 50)} ms, max ${Math.max(...gets)} ms\n` +
            `#   RSS growth during the flood: proxy +${f(growth.proxy)} MB (rest ${f(rest.proxy)}), agent +${f(growth.agent)} MB (rest ${f(rest.agent)})\n`,
        );
        assert.ok(growth.proxy < MAX_GROWTH_MB, `proxy grew ${f(growth.proxy)} MB`);
        assert.ok(growth.agent < MAX_GROWTH_MB, `agent grew ${f(growth.agent)} MB`);

        // The stalled watch was really attached and held back: reading it now yields events.
        let got = 0;
        stalled.stream.on('data', (c: Buffer) => (got += c.length));
        await until(async () => got > 0, 20_000, 'the stalled watch delivering once read');
        process.stderr.write(`#   the stalled watch held ${got} bytes for its reader\n`);
      } finally {
        for (const s of [sStalled, sReader, sCalm]) s.destroy();
      }
    });
  },
);
