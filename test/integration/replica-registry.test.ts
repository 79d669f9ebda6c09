/**
 * The replica registry against real PostgreSQL: a heartbeat reads only the
 * replicas table, and where a cluster's tunnels are is looked up on demand,
 * per cluster, cached for one heartbeat; a miss looks again sooner; stale
 * and draining replicas are handled as before (issue #9 follow-up: the
 * registry must stay cheap at thousands of tunnels).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { ReplicaRegistry } from '../../proxy/ha/replica-registry.js';
import { createLogger } from '../../common/log.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';
import { until } from '../support/http.js';

let server: PgServer;
let pool: Pool;
const registries: ReplicaRegistry[] = [];
let b: ReplicaRegistry;
const log = createLogger({ name: 'test', level: process.env.KG_TEST_LOG ?? 'silent' });

/** Wait for the registries' batched writes (bounded; the machine may be busy). */
async function tunnelRows(n: number): Promise<void> {
  await until(
    async () => {
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM replica_tunnels');
      return Number(rows[0]!.n) === n;
    },
    20_000,
    `${n} tunnel rows written`,
  );
}

/** Statements the registry sends, by the table they read (counted on the pool). */
const reads = { replicas: 0, tunnels: 0 };

function registry(id: string, heartbeatMs = 60_000): ReplicaRegistry {
  const r = new ReplicaRegistry({
    pool,
    replicaId: id,
    peerAddress: `127.0.0.1:${10_000 + registries.length}`,
    heartbeatMs,
    staleAfterMs: 5000,
    log,
  });
  registries.push(r);
  return r;
}

const tunnel = (id: string, cluster: string) => ({
  id,
  cluster,
  agentId: 'agent',
  agentVersion: 'test',
  since: new Date(),
});

before(async () => {
  server = await startPostgres();
  pool = createPool({ url: await createDatabase(server), max: 4 });
  await migrate(pool);
  const query = pool.query.bind(pool) as (...a: unknown[]) => Promise<unknown>;
  (pool as unknown as { query: typeof query }).query = (...args: unknown[]) => {
    const text = typeof args[0] === 'string' ? args[0] : '';
    // Any registry read that touches tunnel rows (the test's own count(*) aside).
    if (/^\s*SELECT(?! count)[\s\S]*replica_tunnels/.test(text)) reads.tunnels++;
    if (/^\s*SELECT[\s\S]*FROM replicas\b/.test(text)) reads.replicas++;
    return query(...args);
  };
});
after(async () => {
  for (const r of registries) await r.stop().catch(() => undefined);
  await pool?.end();
  await server?.stop();
});

test('a refresh reads the replicas only; tunnel locations are read per cluster, once per beat', async () => {
  const a = registry('a');
  b = registry('b');
  await a.start();
  await b.start();
  // Thousands of tunnels on A, all of them rows B's heartbeat used to re-read.
  for (let i = 0; i < 3000; i++) a.tunnelUp(tunnel(`t${i}`, `c${i % 1500}`));
  await tunnelRows(3000); // the batched write

  const before = { ...reads };
  await b.refresh();
  assert.equal(reads.tunnels, before.tunnels, 'a heartbeat does not read tunnel rows');
  assert.equal(reads.replicas, before.replicas + 1);

  const routes = await b.routesFor('c7');
  assert.deepEqual(
    routes.map((r) => r.replica),
    ['a'],
  );
  const afterFirst = reads.tunnels;
  assert.equal(afterFirst, before.tunnels + 1, 'one indexed lookup for the cluster');
  // Concurrent and repeated asks within the beat: answered from the cache.
  await Promise.all(Array.from({ length: 20 }, () => b.routesFor('c7')));
  assert.equal(reads.tunnels, afterFirst);
  // Concurrent misses on another cluster share one query.
  await Promise.all(Array.from({ length: 20 }, () => b.routesFor('c8')));
  assert.equal(reads.tunnels, afterFirst + 1);
  // A replica never routes to itself, and a cluster nobody holds has no route.
  assert.deepEqual(await a.routesFor('c7'), []);
  assert.deepEqual(await b.routesFor('nowhere'), []);
});

test('a miss looks again after 250 ms; a replica that started after the last heartbeat is found', async () => {
  assert.deepEqual(await b.routesFor('moved', 250), []);
  const c = registry('c');
  await c.start(); // B's last refresh predates C
  c.tunnelUp(tunnel('m1', 'moved'));
  await tunnelRows(3001);
  await new Promise((r) => setTimeout(r, 260)); // past the 250 ms a miss is trusted
  const routes = await b.routesFor('moved', 250);
  assert.deepEqual(
    routes.map((r) => [r.replica, r.draining]),
    [['c', false]],
  );
  // Draining peers come last.
  const d = registry('d');
  await d.start();
  d.tunnelUp(tunnel('m2', 'moved'));
  await c.setDraining();
  await tunnelRows(3002);
  await b.refresh();
  const ordered = await b.routesFor('moved', 0);
  assert.deepEqual(
    ordered.map((r) => [r.replica, r.draining]),
    [
      ['d', false],
      ['c', true],
    ],
  );
  // A stopped replica's tunnels are gone with it.
  await d.stop();
  await b.refresh();
  assert.deepEqual(
    (await b.routesFor('moved', 0)).map((r) => r.replica),
    ['c'],
  );
});
