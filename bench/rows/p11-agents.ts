/**
 * P11: simulated agents against two replicas. Clusters are registered in
 * bulk, each gets a real agent certificate from the agent CA (recorded like
 * an enrollment records it), and a load process opens one idle tunnel per
 * cluster: the first batch to replica A, the rest split over A and B. RSS of
 * A after a forced GC at idle and at two tunnel counts gives the cost per
 * tunnel. Then B is killed (-9): its simulated agents dial A again with the
 * agent's jittered back-off, and the time from each drop to the tunnel being
 * up on A is the reconnect time. Every cluster is then asked one GET through
 * A's front to show none is starved. Last, with thousands of tunnel rows in
 * the registry, what a replica's heartbeat reads: the whole registry (as it
 * used to) against the replicas table plus one per-cluster lookup.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createPool } from '../../proxy/db/pool.js';
import { loadCas } from '../../proxy/pki/ca-store.js';
import { parseMasterKey } from '../../proxy/pki/master-key.js';
import { clusterUri } from '../../common/tunnel-protocol.js';
import { createCsr, generateKeyPair } from '../../common/pki.js';
import { parseHostPort } from '../../common/config.js';
import { H2Client } from '../h2-client.js';
import { percentile } from '../stats.js';
import { cpuSeconds, sleep, type BenchContext } from '../context.js';
import { mb, rssAfterGc } from '../memory.js';
import type { Replica } from '../stack.js';
import type { Row } from '../table.js';
import type { SimConnect, SimReconnected } from '../sim-agents-main.js';

export async function p11Agents(
  ctx: BenchContext,
  [replica, other]: [Replica, Replica],
  budgetMs: number,
): Promise<Row[]> {
  const t0 = Date.now();
  const n1 = 500;
  // Connecting runs at 30–300 tunnels/s here depending on the machine's load.
  const n2 = budgetMs > 300_000 ? 5000 : budgetMs > 150_000 ? 2000 : 1000;
  const names = Array.from({ length: n2 }, (_, i) => `sim-${String(i + 1).padStart(5, '0')}`);
  await ctx.stack.sql(
    `INSERT INTO clusters (name, labels) SELECT n, '{"sim":"true"}'::jsonb FROM unnest($1::text[]) AS n`,
    [names],
  );
  await ctx.stack.grant({
    users: ['bench'],
    role: 'view',
    selector: { matchLabels: { sim: 'true' } },
  });

  // Real agent certificates: one key, one certificate per cluster, recorded by serial.
  const pool = createPool({
    url: ctx.stack.databaseUrl,
    max: 2,
    applicationName: 'kubegate-bench',
  });
  const pair = await generateKeyPair();
  const certs: { cluster: string; certPem: string }[] = [];
  try {
    const cas = await loadCas(pool, parseMasterKey(ctx.stack.masterKey));
    const csr = await createCsr('sim', pair);
    const serials: string[] = [];
    const notAfters: Date[] = [];
    for (const cluster of names) {
      const issued = await cas.agent.signCsr(csr, {
        commonName: cluster,
        usage: 'client',
        ttlMs: 6 * 3_600_000,
        uris: [clusterUri(cluster)],
      });
      certs.push({ cluster, certPem: issued.certPem });
      serials.push(issued.serial);
      notAfters.push(issued.notAfter);
    }
    await pool.query(
      `INSERT INTO agent_certs (serial, cluster_id, not_after)
       SELECT s.serial, c.id, s.not_after
         FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS s(serial, name, not_after)
         JOIN clusters c ON c.name = s.name`,
      [serials, names, notAfters],
    );
  } finally {
    await pool.end();
  }
  ctx.log(
    `  P11: ${n2} clusters and certificates ready (${((Date.now() - t0) / 1000).toFixed(1)} s)`,
  );

  const child = fork(fileURLToPath(new URL('../sim-agents-main.js', import.meta.url)), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '' },
    // KG_BENCH_P11_PROF: the simulated agents' own CPU profile too (written at their exit).
    execArgv: process.env.KG_BENCH_P11_PROF
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.KG_BENCH_P11_PROF}.sim`]
      : [],
  });
  await new Promise((r) => child.once('message', r));
  let nextId = 1;
  const ask = <T>(msg: object) =>
    new Promise<T>((resolve) => {
      const id = nextId++;
      const onMsg = (m: { id: number; result: T }) => {
        if (m.id !== id) return;
        child.off('message', onMsg);
        resolve(m.result);
      };
      child.on('message', onMsg);
      child.send({ id, ...msg });
    });
  const a = parseHostPort(replica.tunnelAddress);
  const connect = (tunnels: typeof certs, to = replica) => {
    const { host, port } = parseHostPort(to.tunnelAddress);
    const msg: SimConnect = {
      op: 'connect',
      host,
      port,
      caPem: ctx.stack.proxyCaPem,
      keyPem: pair.keyPem,
      tunnels,
      concurrency: 32,
      // Every simulated agent redials when dropped, as real ones do: B's to A, A's to A.
      failover: a,
    };
    return ask<number>(msg);
  };

  try {
    const idle = await rssAfterGc(replica.proxy);
    const c0 = Date.now();
    const up1 = await connect(certs.slice(0, n1));
    const rate = up1 / ((Date.now() - c0) / 1000);
    await sleep(500);
    const at1 = await rssAfterGc(replica.proxy);
    // The rest split over both replicas: half more on A, half on B.
    const rest = certs.slice(n1);
    const half = Math.floor(rest.length / 2);
    const [upA, upB] = await Promise.all([
      connect(rest.slice(0, half)),
      connect(rest.slice(half), other),
    ]);
    const up2 = up1 + upA;
    await sleep(1000);
    const at2 = await rssAfterGc(replica.proxy);
    ctx.log(
      `  P11: ${up2} tunnels up on ${replica.name}, ${upB} on ${other.name} (${rate.toFixed(0)}/s)`,
    );
    const per = (at2 - at1) / (up2 - up1);
    const at5k = at2 + per * Math.max(0, 5000 - up2);

    // None starved: every cluster answers through A, half of them relayed to B.
    const { ok, lat, failed } = await askEveryCluster(ctx, replica, names);
    // Kill -9 B: its agents come back on A.
    const registry = await registryReads(ctx, names);
    if (process.env.KG_BENCH_P11_PROF) {
      replica.proxy.child.kill('SIGWINCH');
      await replica.proxy.waitFor(/kg-bench-profiling/, 10_000);
    }
    // CPU of the surviving replica and of the simulated agents while the dropped tunnels
    // come back: per tunnel it does not depend on how busy the machine is, the wall times do.
    const cpu0 = [cpuSeconds(replica.proxy.child.pid!), cpuSeconds(child.pid!)];
    await other.proxy.stop('SIGKILL');
    const killedAt = Date.now();
    const bound = Date.now() + Math.min(90_000, Math.max(30_000, budgetMs / 4));
    let back: number[] = [];
    let dials = 0;
    while (Date.now() < bound) {
      ({ ms: back, dials } = await ask<SimReconnected>({ op: 'reconnects' }));
      if (back.length >= upB) break; // includes any of A's own tunnels dropped meanwhile
      await sleep(250);
    }
    const [cpuA, cpuSim] = [
      cpuSeconds(replica.proxy.child.pid!) - cpu0[0]!,
      cpuSeconds(child.pid!) - cpu0[1]!,
    ];
    const backS = (Date.now() - killedAt) / 1000;
    const perTunnel = (s: number) => ((s * 1000) / Math.max(1, back.length)).toFixed(1);
    ctx.log(
      `  P11: ${back.length}/${upB} tunnels of the killed replica back on ${replica.name} (${dials} dials; CPU ${cpuA.toFixed(1)} s replica, ${cpuSim.toFixed(1)} s simulated agents in ${backS.toFixed(0)} s)`,
    );
    const afterKill = await askEveryCluster(ctx, replica, names);

    const f = (q: number) => percentile(lat, q).toFixed(1);
    const r = (q: number) => (back.length ? percentile(back, q).toFixed(0) : '—');
    const rssMet = mb(at5k) <= 1024;
    const allBack = back.length >= upB;
    return [
      {
        id: 'P11',
        what: `idle simulated agents, 2 replicas (measured at ${up2} on one${up2 < 5000 ? ', projected to 5,000' : ''}, ${upB} on the other)`,
        upstream: 'simulated agents',
        goal: '5,000 agents ≤ 1 GB RSS, none starved',
        result: `RSS at 5,000: ${mb(at5k).toFixed(0)} MB; ${ok}/${names.length} clusters answered${failed ? ` (${failed})` : ''}`,
        absolute: `per tunnel ${(per / 1024).toFixed(1)} KiB; RSS idle ${mb(idle).toFixed(0)} MB, at ${up1} ${mb(at1).toFixed(0)} MB, at ${up2} ${mb(at2).toFixed(0)} MB; ${rate.toFixed(0)} tunnels/s to connect; GET to every cluster through one replica (half relayed to the other) p50 ${f(50)} / p99 ${f(99)} / max ${f(100)} ms`,
        verdict: up2 + upB < n2 ? 'error' : rssMet && ok === names.length ? 'met' : 'not met',
      },
      {
        id: 'P11-reconnect',
        what: `kill -9 of the replica holding ${upB} of them → agents back on the other (jittered back-off)`,
        upstream: 'simulated agents',
        goal: 'none starved; no stampede',
        result: `reconnect p50 ${r(50)} ms, p99 ${r(99)} ms, max ${r(100)} ms; ${back.length}/${upB} back within ${Math.round((bound - killedAt) / 1000)} s`,
        absolute: `${dials} dials for ${upB} dropped tunnels; CPU per tunnel back ${perTunnel(cpuA)} ms on ${replica.name}, ${perTunnel(cpuSim)} ms in the simulated agents (${cpuA.toFixed(1)} s and ${cpuSim.toFixed(1)} s over ${backS.toFixed(0)} s); then ${afterKill.ok}/${names.length} clusters answered${afterKill.failed ? ` (${afterKill.failed})` : ''}; registry read per heartbeat at ${registry.tunnels} tunnel rows: whole registry ${registry.all.toFixed(2)} ms (${registry.tunnels} rows) before, now replicas table ${registry.replicas.toFixed(2)} ms (${registry.replicaRows} rows) + on demand per remote cluster ${registry.perCluster.toFixed(2)} ms`,
        verdict: allBack && afterKill.ok === names.length ? 'met' : 'not met',
      },
    ];
  } finally {
    child.disconnect();
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}

/** One GET to every cluster through `replica`'s front, 64 at a time: answered count and latencies. */
async function askEveryCluster(ctx: BenchContext, replica: Replica, names: string[]) {
  const client = new H2Client(
    replica.publicUrl,
    ctx.stack.proxyCaPem,
    ctx.targets.kubegate.headers,
  );
  const lat: number[] = [];
  const codes = new Map<number, number>();
  let ok = 0;
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++]!;
      const r = await client
        .get(`/k8s/${name}/api/v1/namespaces/default/configmaps/x`, { timeoutMs: 10_000 })
        .catch(() => ({ status: 0, totalMs: NaN }));
      if (r.status === 200) ok++;
      else codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
      lat.push(r.totalMs);
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  client.close();
  const failed = [...codes].map(([c, n]) => `${n}×${c || 'no answer'}`).join(', ');
  return { ok, lat, failed };
}

/** Median of `n` timed runs of one query. */
async function timed(ctx: BenchContext, text: string, params: unknown[], n = 15): Promise<number> {
  const xs: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await ctx.stack.sql(text, params);
    xs.push(performance.now() - t);
  }
  return percentile(xs, 50);
}

/**
 * What one heartbeat reads: the query proxy/ha/replica-registry.ts ran
 * before (every live replica joined with every tunnel row) against the one
 * it runs now (the replicas table), and the per-cluster lookup a request
 * for a remote cluster costs at most once per heartbeat.
 */
async function registryReads(ctx: BenchContext, clusters: string[]) {
  const stale = ['5000'];
  const count = await ctx.stack.sql<{ n: string }>('SELECT count(*) AS n FROM replica_tunnels');
  const replicas = await ctx.stack.sql<{ n: string }>('SELECT count(*) AS n FROM replicas');
  return {
    tunnels: Number(count[0]!.n),
    replicaRows: Number(replicas[0]!.n),
    all: await timed(
      ctx,
      `SELECT r.id, r.peer_address, r.draining, t.cluster
         FROM replicas r LEFT JOIN replica_tunnels t ON t.replica_id = r.id
        WHERE r.heartbeat_at >= now() - ($1 || ' milliseconds')::interval`,
      stale,
    ),
    replicas: await timed(
      ctx,
      `SELECT id, peer_address, draining FROM replicas
        WHERE heartbeat_at >= now() - ($1 || ' milliseconds')::interval`,
      stale,
    ),
    perCluster: await timed(
      ctx,
      'SELECT DISTINCT replica_id FROM replica_tunnels WHERE cluster = $1 AND replica_id <> $2',
      [clusters[Math.floor(clusters.length / 2)]!, 'x'],
    ),
  };
}
