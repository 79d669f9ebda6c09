/**
 * P12: what session recording costs. Exec sessions through kubegate pull
 * 128 MiB each from the bench upstream, alternately into a namespace that is
 * recorded (the default policy, best effort, into PostgreSQL) and one a
 * policy turns recording off for: same proxy, agent, upstream and client, in
 * interleaved rounds, so the ratio comes from one run. CPU of the proxy is
 * read from /proc around each session.
 *
 * Then one recorded session of 1 GiB: the RSS of the proxy and the agent is
 * sampled while it runs (flat means the recording is streamed to the store,
 * never held), and the recording is downloaded through the REST API as an
 * auditor and its output counted: complete means every byte of stdout is in
 * it, in order of arrival.
 */
import { loadavg } from 'node:os';
import * as https from 'node:https';
import { cpuSeconds, rotate, sleep, type BenchContext, type Target } from '../context.js';
import { fmtSpread, median, ratioSpread, spread } from '../stats.js';
import { openStream } from '../ws-client.js';
import { mb, rssOf } from '../memory.js';
import type { Row } from '../table.js';

const mib = 128;
const bigMib = 1024;
const rounds = 3;
const unrecordedNs = 'bench-unrecorded';
/** RSS that grows less than this over a 1 GiB session is flat: a few chunks and buffers. */
const flatBytes = 64 * 1024 * 1024;

interface Sample {
  mbps: number;
  proxyCpu: number;
  clean: boolean;
  detail: string;
}

async function session(ctx: BenchContext, t: Target, ns: string, size: number): Promise<Sample> {
  const pid = ctx.stack.main.proxy.child.pid!;
  const before = cpuSeconds(pid);
  const r = await openStream(t, 'exec', size, 300_000, ns);
  const cpu = cpuSeconds(pid) - before;
  return {
    mbps: r.bytes / 1e6 / (r.ms / 1000),
    proxyCpu: (cpu * 100) / (r.bytes / 1e6),
    clean: r.clean,
    detail: r.detail,
  };
}

interface Recording {
  id: string;
  status: string;
  reason: string;
}

/** The latest recording of `pod`, once it is closed (the proxy closes it as the session ends). */
async function latestRecording(ctx: BenchContext, pod: string): Promise<Recording> {
  for (let i = 0; ; i++) {
    const [row] = await ctx.stack.sql<Recording>(
      `SELECT id::text, status, reason FROM recordings WHERE pod = $1 ORDER BY started_at DESC LIMIT 1`,
      [pod],
    );
    if (!row) throw new Error(`no recording of pod ${pod}`);
    if (row.status !== 'recording' || i === 100) return row;
    await sleep(100);
  }
}

/** Download a recording's .cast through the REST API and count its output bytes. */
function countOutput(
  ctx: BenchContext,
  id: string,
  token: string,
): Promise<{ events: number; outBytes: number; castBytes: number }> {
  const base = new URL(ctx.stack.main.publicUrl);
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: base.hostname,
        port: base.port,
        path: `/api/v1/recordings/${id}/cast`,
        ca: ctx.stack.proxyCaPem,
        headers: { authorization: `Bearer ${token}` },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`download: ${res.statusCode}`));
        }
        let rest = '';
        let first = true;
        let events = 0;
        let outBytes = 0;
        let castBytes = 0;
        const take = (line: string) => {
          if (!line) return;
          if (first) return void (first = false); // the header
          const ev = JSON.parse(line) as [number, string, string];
          events++;
          if (ev[1] === 'o') outBytes += Buffer.byteLength(ev[2]);
        };
        res.setEncoding('utf8');
        res.on('data', (s: string) => {
          castBytes += Buffer.byteLength(s);
          rest += s;
          let nl: number;
          while ((nl = rest.indexOf('\n')) >= 0) {
            take(rest.slice(0, nl));
            rest = rest.slice(nl + 1);
          }
        });
        res.on('end', () => {
          try {
            take(rest);
            resolve({ events, outBytes, castBytes });
          } catch (err) {
            reject(err as Error);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

export async function p12Recording(ctx: BenchContext): Promise<Row[]> {
  const kg = ctx.targets.kubegate;
  // Recording off in one namespace; everything else keeps the default (best effort).
  await ctx.stack.sql(
    `INSERT INTO recording_policies (name, namespaces, mode, created_by)
       VALUES ('bench-unrecorded', ARRAY[$1], 'off', 'bench') ON CONFLICT (name) DO NOTHING`,
    [unrecordedNs],
  );
  await sleep(2500); // the proxy re-reads policies at most 2 s old
  const auditor = await ctx.stack.token('bench-auditor', ['kubegate-auditors']);

  const recorded = { ns: 'default', samples: [] as Sample[] };
  const unrecorded = { ns: unrecordedNs, samples: [] as Sample[] };
  for (const x of [recorded, unrecorded]) await session(ctx, kg, x.ns, 8); // warm-up
  const failed: string[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const x of rotate([recorded, unrecorded], r)) {
      const s = await session(ctx, kg, x.ns, mib);
      if (!s.clean) failed.push(`${x.ns}: ${s.detail}`);
      x.samples.push(s);
      if (x === recorded) {
        const rec = await latestRecording(ctx, `stream-${mib}`);
        if (rec.status !== 'complete') failed.push(`recording ${rec.status}: ${rec.reason}`);
      }
    }
    ctx.log(`  P12 round ${r + 1}/${rounds}`);
  }
  const [unrecordedRows] = await ctx.stack.sql<{ n: string }>(
    `SELECT count(*)::text AS n FROM recordings WHERE namespace = $1`,
    [unrecordedNs],
  );
  if (unrecordedRows!.n !== '0')
    failed.push(`${unrecordedRows!.n} sessions recorded where the policy said off`);

  // One 1 GiB recorded session; RSS sampled every 250 ms.
  const proxyPid = ctx.stack.main.proxy.child.pid!;
  const agentPid = ctx.agent.child.pid!;
  const rss = { proxy: [] as number[], agent: [] as number[] };
  const sample = () => {
    rss.proxy.push(rssOf(proxyPid));
    rss.agent.push(rssOf(agentPid));
  };
  sample();
  const timer = setInterval(sample, 250);
  let big: Sample;
  try {
    big = await session(ctx, kg, 'default', bigMib);
  } finally {
    clearInterval(timer);
  }
  sample();
  if (!big.clean) failed.push(`1 GiB session: ${big.detail}`);
  const rec = await latestRecording(ctx, `stream-${bigMib}`);
  const got = await countOutput(ctx, rec.id, auditor);
  const complete = rec.status === 'complete' && got.outBytes === bigMib * 1024 * 1024;

  const ratio = ratioSpread(
    recorded.samples.map((s) => s.mbps),
    unrecorded.samples.map((s) => s.mbps),
  );
  const cpuOn = median(recorded.samples.map((s) => s.proxyCpu));
  const cpuOff = median(unrecorded.samples.map((s) => s.proxyCpu));
  const on = spread(recorded.samples.map((s) => s.mbps));
  const off = spread(unrecorded.samples.map((s) => s.mbps));
  const range = (xs: number[]) =>
    `${mb(xs[0]!).toFixed(0)} MiB at the start, at most ${mb(Math.max(...xs)).toFixed(0)}, ${mb(xs[xs.length - 1]!).toFixed(0)} at the end`;
  const cost = 1 - ratio.median;
  const growth = (xs: number[]) => Math.max(...xs) - xs[0]!;
  const flat = growth(rss.proxy) <= flatBytes && growth(rss.agent) <= flatBytes;
  return [
    {
      id: 'P12',
      what: `exec, one session, ${mib} MiB on stdout: recorded (best effort, PostgreSQL) vs recording off`,
      upstream: 'bench upstream',
      goal: 'recording costs ≤ 10% of throughput',
      result: `recorded ${(ratio.median * 100).toFixed(0)}% (${(ratio.min * 100).toFixed(0)}–${(ratio.max * 100).toFixed(0)}%) of unrecorded; proxy CPU per 100 MB ${cpuOn.toFixed(2)} vs ${cpuOff.toFixed(2)} s`,
      absolute: `MB/s: recorded ${fmtSpread(on, 0)}, unrecorded ${fmtSpread(off, 0)}${failed.length ? `; ${failed.length} problem(s): ${failed[0]}` : ''}`,
      verdict: failed.length ? 'error' : cost <= 0.1 ? 'met' : 'not met',
      limit: `recording reads every frame as it passes, turns stdout into asciicast lines (UTF-8 decoding and JSON escaping) and writes them to PostgreSQL on the proxy's one thread; when the store is slower than the session, the session waits for it (bounded memory, complete recordings) instead of dropping the recording; load average ${loadavg()[0]!.toFixed(1)}`,
    },
    {
      id: 'P12-1GiB',
      what: `one recorded exec session of ${bigMib} MiB: proxy and agent RSS, recording complete`,
      upstream: 'bench upstream',
      goal: `RSS flat (grows ≤ ${mb(flatBytes)} MiB); recording complete`,
      result: `${big.mbps.toFixed(0)} MB/s; recording ${rec.status}, ${(got.outBytes / 1024 / 1024).toFixed(0)} MiB of output in ${got.events} events (${(got.castBytes / 1e6).toFixed(0)} MB .cast)`,
      absolute: `RSS proxy: ${range(rss.proxy)}; agent: ${range(rss.agent)} (${rss.proxy.length} samples)`,
      verdict: !complete || !big.clean ? 'error' : flat ? 'met' : 'not met',
    },
  ];
}
