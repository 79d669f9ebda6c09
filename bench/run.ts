/**
 * `make bench`: kubegate (proxy + agent, authentication and authorization on)
 * side by side with direct access and with nginx as two TLS hops, on this
 * machine over loopback, bounded in time. Prints one table of ratios with the
 * goal beside each row and writes it, with the machine details, the limits
 * of goals not met and CPU profiles, to docs/benchmarks.md.
 *
 * Environment: KG_BENCH_REAL=0 skips the real test cluster rows;
 * KG_BENCH_MINUTES caps the whole run (default 14); KG_BENCH_ROWS=P2,P3,profile
 * runs only those groups (while tuning; P2-rd,P3-rd are the remotedialer rows);
 * KG_BENCH_AB=front-nodelay adds an A/B row for a proposed change
 * (rows/experiment.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../test/support/repo.js';
import { freePort } from '../test/support/ports.js';
import { kubectlOk } from '../test/support/kubectl.js';
import { ensureTools } from './tools.js';
import { machine } from './machine.js';
import { makeBenchCerts } from './certs.js';
import { startUpstream } from './upstream-proc.js';
import { startBenchStack, type BenchStack, type Replica } from './stack.js';
import { startNginx } from './nginx.js';
import { buildRemotedialer, startRemotedialer } from './remotedialer.js';
import { H2Client } from './h2-client.js';
import { Budget, sleep, type BenchContext, type Target } from './context.js';
import { pendingRow, renderText, type Row } from './table.js';
import { writeReport } from './report.js';
import { limitsFor } from './limits.js';
import { p1Latency } from './rows/p1-latency.js';
import { p2Throughput, type CpuPerRequest } from './rows/p2-throughput.js';
import { p3List } from './rows/p3-list.js';
import { p4Watches } from './rows/p4-watches.js';
import { p5Stall } from './rows/p5-stall.js';
import { p6Exec } from './rows/p6-exec.js';
import { p12Recording } from './rows/p12-recording.js';
import { p7Jit } from './rows/p7-jit.js';
import { p8Audit } from './rows/p8-audit.js';
import { p9Revocation } from './rows/p9-revocation.js';
import { p10Reconnect } from './rows/p10-reconnect.js';
import { p11Agents } from './rows/p11-agents.js';
import { auditSetting, execMissing, jitAvailable } from './rows/pending.js';
import { profileRun, type Profiles } from './rows/profile-run.js';
import { experimentRow } from './rows/experiment.js';
import { rdList, rdThroughput } from './rows/peer-remotedialer.js';
import { p2Workers } from './rows/p2-workers.js';

const t0 = Date.now();
const log = (m: string) =>
  console.log(`[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);

async function waitAllowed(t: Target, path: string): Promise<void> {
  const c = new H2Client(t.base, t.ca, t.headers);
  try {
    let last = '';
    for (let i = 0; i < 300; i++) {
      const r = await c
        .get(t.prefix + path)
        .catch((err: Error) => ({ status: 0, error: err.message }));
      if (r.status === 200) return;
      last = `${r.status} ${r.error ?? ''}`.trim();
      await sleep(100);
    }
    throw new Error(`${t.name}: ${t.prefix}${path} did not answer 200 within 30 s (last: ${last})`);
  } finally {
    c.close();
  }
}

let budgetLeft = () => Infinity;
const only = process.env.KG_BENCH_ROWS?.split(',').map((s) => s.trim().toUpperCase());
const wanted = (id: string) => !only || only.includes(id.toUpperCase());

/** Run one group of rows; a failure becomes an error row, never the end of the run. */
async function attempt(
  rows: Row[],
  id: string,
  what: string,
  fn: () => Promise<Row[]>,
): Promise<void> {
  if (!wanted(id) && !id.startsWith('X-')) return;
  if (budgetLeft() < 20_000) {
    rows.push({
      id,
      what,
      upstream: '—',
      goal: '—',
      result: 'skipped: time budget',
      absolute: '—',
      verdict: 'skipped',
    });
    return;
  }
  log(`${id}: ${what}`);
  try {
    rows.push(...(await fn()));
  } catch (err) {
    log(`${id} failed: ${(err as Error).stack ?? String(err)}`);
    rows.push({
      id,
      what,
      upstream: '—',
      goal: '—',
      result: `error: ${(err as Error).message.split('\n')[0]}`,
      absolute: '—',
      verdict: 'error',
    });
  }
}

async function main(): Promise<void> {
  const budget = new Budget(Number(process.env.KG_BENCH_MINUTES ?? 14) * 60_000);
  budgetLeft = () => budget.leftMs();
  ensureTools(log);
  const mach = machine();
  const dir = mkdtempSync(join(tmpdir(), 'kg-bench-'));
  const rows: Row[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  let cpu: CpuPerRequest | undefined;
  let profiles: Profiles | undefined;
  try {
    const certs = await makeBenchCerts(dir);
    const upstream = await startUpstream(certs.upstreamCert, certs.upstreamKey);
    stops.push(() => upstream.stop());
    const audit = await auditSetting();
    const stack: BenchStack = await startBenchStack(
      join(dir, 'stack'),
      log,
      audit ? { [audit.env]: audit.on } : {},
    );
    stops.push(() => stack.stop());
    const tokenFile = join(dir, 'upstream-token');
    writeFileSync(tokenFile, 'bench-agent-token', { mode: 0o600 });
    const agentEnv = await stack.registerCluster('bench', {
      url: upstream.url,
      caFile: certs.caFile,
      tokenFile,
    });
    log('starting the agent for "bench" (bench upstream)');
    const agent = await stack.startAgent('bench', agentEnv);
    const benchToken = await stack.token('bench');
    await stack.grant({ users: ['bench'], role: 'cluster-admin', clusters: ['bench', 'real'] });
    log('starting nginx (two TLS hops)');
    const nginx = await startNginx(
      join(dir, 'nginx'),
      { hop1: await freePort(), hop2: await freePort(), upstream: upstream.port },
      certs,
    );
    stops.push(() => nginx.stop());
    const benchCa = (await import('node:fs')).readFileSync(certs.caFile, 'utf8');
    const auth = { authorization: `Bearer ${benchToken}` };
    const ctx: BenchContext = {
      dir,
      stack,
      upstream,
      nginx,
      agent,
      agentEnv,
      benchToken,
      budget,
      log,
      targets: {
        direct: { name: 'direct', base: upstream.url, prefix: '', headers: {}, ca: benchCa },
        kubegate: {
          name: 'kubegate',
          base: stack.main.publicUrl,
          prefix: '/k8s/bench',
          headers: auth,
          ca: stack.proxyCaPem,
        },
        nginx: {
          name: 'nginx',
          base: `https://127.0.0.1:${nginx.port}`,
          prefix: '',
          headers: {},
          ca: benchCa,
        },
      },
    };
    const small = '/api/v1/namespaces/default/configmaps/bench-1k';
    for (const t of Object.values(ctx.targets)) await waitAllowed(t, small);
    // Rancher's remotedialer, both shapes: built (cached) and started by the first of its rows.
    let rdStarted: Promise<unknown> | undefined;
    const remotedialer = () =>
      (rdStarted ??= (async () => {
        log('building and starting remotedialer (its example, and with TLS)');
        buildRemotedialer(log);
        const at = join(dir, 'remotedialer');
        const base = { upstreamPort: upstream.port, caFile: certs.caFile };
        const example = await startRemotedialer(at, { ...base, shape: 'example' });
        stops.push(() => example.stop());
        const cert = { certFile: certs.frontCert, keyFile: certs.frontKey };
        const tls = await startRemotedialer(at, { ...base, shape: 'tls', cert });
        stops.push(() => tls.stop());
        ctx.remotedialer = { example, tls };
      })());
    const jit = await jitAvailable();

    // The real test cluster first, then stopped: its controllers would load the machine.
    if (process.env.KG_BENCH_REAL !== '0' && wanted('P1-real')) {
      let real: Awaited<ReturnType<BenchStack['addRealCluster']>> | undefined;
      await attempt(rows, 'P1-real', 'real test cluster', async () => {
        const added = (real = await stack.addRealCluster('real'));
        const c = added.cluster;
        await kubectlOk(
          [
            'create',
            'clusterrolebinding',
            'kg-bench',
            '--clusterrole=cluster-admin',
            '--user=bench',
          ],
          { kubeconfig: c.kubeconfig },
        );
        ctx.real = {
          direct: {
            name: 'direct',
            base: c.server,
            prefix: '',
            headers: { authorization: `Bearer ${c.token}` },
            ca: c.ca,
          },
          kubegate: { ...ctx.targets.kubegate, prefix: '/k8s/real' },
          pids: { agent: added.agent.child.pid!, cluster: c.pid },
        };
        await waitAllowed(ctx.real.kubegate, '/api/v1/namespaces/default');
        const out: Row[] = [];
        if (jit)
          out.push(
            await p7Jit(
              ctx,
              ctx.real.kubegate,
              'real',
              '/api/v1/namespaces/default/configmaps',
              'real test cluster',
            ),
          );
        const p1 = await p1Latency(ctx, true);
        return [...p1, ...out];
      });
      await real?.cluster.stop();
      ctx.real = undefined;
    }

    await attempt(rows, 'P1', 'latency at a fixed rate', () => p1Latency(ctx, false));
    await attempt(rows, 'P2', 'throughput over the h2 front', async () => {
      const r = await p2Throughput(ctx);
      cpu = r.cpu;
      return r.rows;
    });
    await attempt(rows, 'P2-workers', 'one replica on 1 and 2 workers', () => p2Workers(ctx));
    await attempt(rows, 'P2-rd', '1 KiB GET against remotedialer', async () => {
      await remotedialer();
      return rdThroughput(ctx);
    });
    await attempt(rows, 'P3', '200 MiB LIST', () => p3List(ctx));
    await attempt(rows, 'P3-rd', '200 MiB LIST against remotedialer', async () => {
      await remotedialer();
      return rdList(ctx);
    });
    for (const x of (process.env.KG_BENCH_AB ?? '').split(',').filter(Boolean))
      await attempt(rows, `X-${x}`, `experiment ${x}`, () => experimentRow(ctx, x));
    await attempt(rows, 'P4', 'concurrent watches', () =>
      p4Watches(ctx, Math.max(40_000, Math.min(100_000, budget.leftMs() - 400_000))),
    );
    if (ctx.agent.child.exitCode !== null || ctx.agent.child.signalCode !== null) {
      log('  the agent of "bench" ended during P4; starting it again for the next rows');
      ctx.agent = await stack.startAgent('bench', agentEnv);
    }
    // Let the proxy and agent finish tearing down P4's watches first.
    await attempt(rows, 'P5', 'stalled watch reader', async () => {
      const t = performance.now();
      await waitAllowed(ctx.targets.kubegate, small);
      const recovered = performance.now() - t;
      if (recovered > 1000)
        log(`  kubegate answered 200 again ${(recovered / 1000).toFixed(1)} s after P4`);
      return p5Stall(ctx);
    });
    const noExec = execMissing();
    if (noExec)
      rows.push(
        pendingRow(
          'P6',
          'exec / port-forward stream',
          '≥ 150 MB/s per session; ≤ 0.5 core per 100 MB/s',
          noExec,
        ),
      );
    else {
      await attempt(rows, 'P6', 'exec / port-forward streams', () => p6Exec(ctx));
      await attempt(rows, 'P12', 'session recording on vs off', () => p12Recording(ctx));
    }
    if (jit)
      await attempt(rows, 'P7', 'JIT first request', async () => [
        await p7Jit(
          ctx,
          ctx.targets.kubegate,
          'bench',
          '/api/v1/namespaces/default/configmaps/bench-1k',
          'bench upstream (fake API)',
        ),
      ]);
    else
      rows.push(
        pendingRow(
          'P7',
          'first request of a user (JIT account)',
          '≤ 150 ms over warm',
          'JIT service accounts not built',
        ),
      );

    // A second replica with its own agent: audit off (P8), revocation on every replica (P9), restarts (P10).
    let second: Replica | undefined;
    if (['P8', 'P9', 'P10'].some(wanted)) {
      second = await stack.startReplica('proxy-r2', audit ? { [audit.env]: audit.off } : {});
      const env = { ...agentEnv, KUBEGATE_TUNNEL_ADDRESS: second.tunnelAddress };
      await stack.startAgent('bench', env, false);
      await waitAllowed({ ...ctx.targets.kubegate, base: second.publicUrl }, small);
    }
    const r2 = second;
    if (!audit)
      rows.push(
        pendingRow(
          'P8',
          'audit on vs off',
          '≤ 10% throughput, ≤ +1 ms p99; zero events lost',
          'audit not built',
        ),
      );
    else if (r2) await attempt(rows, 'P8', 'audit on/off', () => p8Audit(ctx, r2));
    if (r2) {
      await attempt(rows, 'P9', 'revocation to enforcement', () =>
        p9Revocation(ctx, [stack.main, r2]),
      );
      await attempt(rows, 'P10', 'kill -9 of a tunnel-holding replica', async () => {
        const r3 = await stack.startReplica('proxy-p10');
        try {
          return await p10Reconnect(ctx, [stack.main, r2, r3]);
        } finally {
          await r3.stop();
        }
      });
    }
    await attempt(rows, 'P11', 'simulated agents', async () => {
      // KG_BENCH_P11_PROF=<file>: CPU profile of the surviving replica while it takes the reconnects.
      const prof = process.env.KG_BENCH_P11_PROF;
      const a = await stack.startReplica('proxy-p11', prof ? { KG_BENCH_CPU_PROF: prof } : {});
      const b = await stack.startReplica('proxy-p11b');
      return p11Agents(ctx, [a, b], budget.leftMs() - 60_000);
    });
    if (budget.allows(40_000) && wanted('profile')) {
      log('profiles: node --cpu-prof on a replica and an agent');
      profiles = await profileRun(ctx).catch((err: unknown) => {
        log(`profiling failed: ${String(err)}`);
        return undefined;
      });
    }
  } finally {
    for (const fn of stops.reverse()) await fn().catch(() => undefined);
    // KG_BENCH_KEEP=1 keeps the logs of every process and the profiles.
    if (process.env.KG_BENCH_KEEP === '1') log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }

  rows.sort((a, b) => order(a.id) - order(b.id));
  const limits = limitsFor(rows, cpu, profiles);
  const elapsed = (Date.now() - t0) / 1000;
  console.log('\n' + renderText(rows) + '\n');
  for (const l of limits) console.log(`- ${l}`);
  if (profiles) console.log('\n' + profiles.text);
  const file = join(repoRoot(), 'docs', 'benchmarks.md');
  // A partial run reports only the rows asked for (P11 includes P11-reconnect, P2-rd P2-rd-h2) into the full table.
  const ran = only
    ? rows.filter(
        (r) =>
          wanted(r.id) ||
          wanted(r.id.replace(/-.*$/, '')) ||
          only.some((o) => r.id.toUpperCase().startsWith(`${o}-`)),
      )
    : rows;
  writeReport(
    file,
    {
      rows: ran,
      machine: mach,
      limits: only ? limitsFor(ran, cpu, profiles) : limits,
      profiles: profiles?.text,
      elapsedS: elapsed,
    },
    only ? ran.map((r) => r.id) : undefined,
  );
  console.log(`\nwrote ${file} (${elapsed.toFixed(0)} s in all)`);
}

function order(id: string): number {
  const m = /^P(\d+)(.*)$/.exec(id);
  return m ? Number(m[1]) * 10 + (m[2] ? 1 : 0) : 999;
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
