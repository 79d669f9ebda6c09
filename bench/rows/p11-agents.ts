/**
 * P11: simulated agents on one replica. Clusters are registered in bulk,
 * each gets a real agent certificate from the agent CA (recorded like an
 * enrollment records it), and a load process opens one idle tunnel per
 * cluster against a dedicated replica. RSS after a forced GC at idle and at
 * two tunnel counts gives the cost per tunnel; then every cluster is asked
 * one GET through the replica's front to show none is starved.
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
import { sleep, type BenchContext } from '../context.js';
import { mb, rssAfterGc } from '../memory.js';
import type { Replica } from '../stack.js';
import type { Row } from '../table.js';
import type { SimConnect } from '../sim-agents-main.js';

export async function p11Agents(
  ctx: BenchContext,
  replica: Replica,
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
  });
  await new Promise((r) => child.once('message', r));
  let nextId = 1;
  const connect = (tunnels: typeof certs) =>
    new Promise<number>((resolve) => {
      const id = nextId++;
      const onMsg = (m: { id: number; result: number }) => {
        if (m.id !== id) return;
        child.off('message', onMsg);
        resolve(m.result);
      };
      child.on('message', onMsg);
      const { host, port } = parseHostPort(replica.tunnelAddress);
      const msg: SimConnect & { id: number } = {
        id,
        op: 'connect',
        host,
        port,
        caPem: ctx.stack.proxyCaPem,
        keyPem: pair.keyPem,
        tunnels,
        concurrency: 32,
      };
      child.send(msg);
    });

  try {
    const idle = await rssAfterGc(replica.proxy);
    const c0 = Date.now();
    const up1 = await connect(certs.slice(0, n1));
    const rate = up1 / ((Date.now() - c0) / 1000);
    await sleep(500);
    const at1 = await rssAfterGc(replica.proxy);
    const up2 = up1 + (await connect(certs.slice(n1)));
    await sleep(1000);
    const at2 = await rssAfterGc(replica.proxy);
    ctx.log(`  P11: ${up2}/${n2} tunnels up (${rate.toFixed(0)}/s)`);
    const per = (at2 - at1) / (up2 - up1);
    const at5k = at2 + per * Math.max(0, 5000 - up2);

    // None starved: one GET to every cluster through the replica, 64 at a time.
    const client = new H2Client(
      replica.publicUrl,
      ctx.stack.proxyCaPem,
      ctx.targets.kubegate.headers,
    );
    const lat: number[] = [];
    let ok = 0;
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const name = names[next++]!;
        const r = await client
          .get(`/k8s/${name}/api/v1/namespaces/default/configmaps/x`, { timeoutMs: 10_000 })
          .catch(() => ({ status: 0, totalMs: NaN }));
        if (r.status === 200) ok++;
        lat.push(r.totalMs);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    client.close();
    const f = (q: number) => percentile(lat, q).toFixed(1);
    const rssMet = mb(at5k) <= 1024;
    return [
      {
        id: 'P11',
        what: `idle simulated agents on one replica (measured at ${up2}${up2 < 5000 ? ', projected to 5,000' : ''})`,
        upstream: 'simulated agents',
        goal: '5,000 agents ≤ 1 GB RSS, none starved',
        result: `RSS at 5,000: ${mb(at5k).toFixed(0)} MB; ${ok}/${names.length} clusters answered`,
        absolute: `per tunnel ${(per / 1024).toFixed(1)} KiB; RSS idle ${mb(idle).toFixed(0)} MB, at ${up1} ${mb(at1).toFixed(0)} MB, at ${up2} ${mb(at2).toFixed(0)} MB; ${rate.toFixed(0)} tunnels/s to connect; GET to every cluster p50 ${f(50)} / p99 ${f(99)} / max ${f(100)} ms`,
        verdict: up2 < n2 ? 'error' : rssMet && ok === names.length ? 'met' : 'not met',
      },
    ];
  } finally {
    child.disconnect();
    await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  }
}
