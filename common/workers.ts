/**
 * Several processes per proxy replica or agent (issue #23, item 5). One
 * Node process runs JavaScript on one core; with KUBEGATE_WORKERS above 1
 * the process started becomes the primary, which forks that many workers
 * with node:cluster and keeps them running.
 *
 * - Proxy (proxy/main.ts): the workers share the listening sockets the
 *   primary holds (front, tunnel, enrollment: connections are handed out in
 *   turn), and each is otherwise a whole replica of its own — its own
 *   replica id, peer port, database pools and audit spool — so what the
 *   design already does for several replicas (relaying to the one holding a
 *   cluster's tunnel, agents spreading their tunnels over distinct replicas,
 *   leases for periodic work) is what makes the workers of one pod share
 *   the load.
 * - Agent (agent/main.ts): each worker keeps its own tunnels and answers the
 *   requests on them; the primary keeps what must be one per agent, the
 *   identity and the just-in-time accounts, and the workers ask it over IPC.
 *
 * The primary serves the metrics of all its workers and its own, combined
 * by each metric's aggregator (mostly sums); starts a worker again when one
 * dies after it was ready; and on SIGTERM passes the signal on and waits
 * for every worker to drain.
 */
import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import {
  AggregatorRegistry,
  type MetricObjectWithValues,
  type MetricValue,
  type Registry,
} from 'prom-client';
import type { Logger } from './log.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';

/** `auto` takes at most this many, whatever the machine offers. */
export const maxAutoWorkers = 8;

/** The environment variable a worker finds its index in (0-based). */
const indexEnv = 'KUBEGATE_WORKER_INDEX';

/** A worker tells the primary it is serving with this message. */
const readyMessage = 'kubegate:worker-ready';
/** The primary asks each worker for its metrics (as JSON) with this, and the worker answers. */
const metricsAsk = 'kubegate:metrics?';
const metricsAnswer = 'kubegate:metrics';
type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/** The message for a bad KUBEGATE_WORKERS value, or undefined when it is good. */
export function workersProblem(value: unknown): string | undefined {
  if (value === 'auto') return undefined;
  return typeof value === 'string' && /^[1-9]\d?$/.test(value) && Number(value) <= 64
    ? undefined
    : `must be "auto" or a whole number from 1 to 64, got ${JSON.stringify(value)}`;
}

/**
 * The container's CPU limit in cores (cgroup v2 `cpu.max`, else v1
 * `cpu.cfs_quota_us` / `cpu.cfs_period_us`), or undefined when there is none.
 */
export function cgroupCpuLimit(
  read: (path: string) => string = (p) => readFileSync(p, 'utf8'),
): number | undefined {
  const tryRead = (p: string) => {
    try {
      return read(p).trim();
    } catch {
      return undefined;
    }
  };
  const v2 = tryRead('/sys/fs/cgroup/cpu.max');
  if (v2 !== undefined) {
    const [quota, period] = v2.split(/\s+/);
    if (quota === 'max' || !quota || !period) return undefined;
    const cores = Number(quota) / Number(period);
    return Number.isFinite(cores) && cores > 0 ? cores : undefined;
  }
  const quota = Number(tryRead('/sys/fs/cgroup/cpu/cpu.cfs_quota_us'));
  const period = Number(tryRead('/sys/fs/cgroup/cpu/cpu.cfs_period_us'));
  return quota > 0 && period > 0 ? quota / period : undefined;
}

/**
 * How many workers a setting means: a number as given; `auto` one per core
 * of the container's CPU limit (rounded up), or per core the process may run
 * on when there is no limit, at most maxAutoWorkers.
 */
export function workerCount(
  setting: string,
  limit: () => number | undefined = cgroupCpuLimit,
  cores: () => number = availableParallelism,
): number {
  if (setting !== 'auto') return Number(setting);
  const l = limit();
  const n = l !== undefined ? Math.ceil(l - 1e-9) : cores();
  return Math.max(1, Math.min(maxAutoWorkers, n));
}

/** This process's worker index, when it is a worker of a primary; else undefined. */
export function workerIndex(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const i = Number(process.env[indexEnv]);
  return Number.isInteger(i) && i >= 0 ? i : undefined;
}

/**
 * Called by a worker once it serves: the primary then restarts it if it
 * dies, and its scrapes ask this worker for `registry`.
 */
export function workerReady(registry: Registry): void {
  if (!cluster.isWorker) return;
  process.on('message', (m: { kg?: string; id?: number }) => {
    if (m?.kg !== metricsAsk) return;
    registry.getMetricsAsJSON().then(
      (metrics) => process.send?.({ kg: metricsAnswer, id: m.id, metrics }),
      () => process.send?.({ kg: metricsAnswer, id: m.id, metrics: [] }),
    );
  });
  process.send?.(readyMessage);
}

/**
 * Every live worker's metrics and the primary's own (`own`), combined by
 * each metric's aggregator (sum unless it says otherwise). A worker that
 * does not answer within 3 s is left out of this scrape.
 */
let asked = 0;

function scrapeAll(workers: Worker[], own: Registry | undefined): Promise<string> {
  const ask = (w: Worker) =>
    new Promise<MetricsJson>((resolve) => {
      const id = ++asked; // unique across scrapes, which may overlap
      const done = (metrics: MetricsJson) => {
        clearTimeout(timer);
        w.off('message', onMessage);
        resolve(metrics);
      };
      const onMessage = (m: { kg?: string; id?: number; metrics?: MetricsJson }) => {
        if (m?.kg === metricsAnswer && m.id === id) done(m.metrics ?? []);
      };
      const timer = setTimeout(() => done([]), 3000);
      w.on('message', onMessage);
      w.send({ kg: metricsAsk, id });
    });
  return Promise.all([
    own ? own.getMetricsAsJSON() : Promise.resolve([]),
    ...workers.map(ask),
  ]).then((all) => AggregatorRegistry.aggregate(all as MetricsJson[]).metrics());
}

export interface PrimaryOptions {
  workers: number;
  log: Logger;
  /** The primary's own metrics, added to its workers' (the agent's identity and JIT accounts). */
  registry?: Registry;
  /** Called for each worker forked (again), before it runs: what the primary serves it. */
  onFork?: (worker: Worker, index: number) => void;
  /** Where the summed metrics of all workers are served; absent: nowhere. */
  metrics?: { host: string; port: number };
  /** A worker that dies after it was ready is started again after this (doubling to 30 s when it keeps dying). */
  restartDelayMs?: number;
}

/**
 * Run as the primary: fork the workers, keep them running, serve their
 * metrics, and stop them on SIGTERM or SIGINT. Exits the process: 0 when
 * every worker stopped cleanly, 1 when one failed before it was ready (as a
 * single process that cannot start exits 1) or ended badly on stop.
 */
export async function runPrimary(o: PrimaryOptions): Promise<void> {
  const log = o.log;
  const ready = new Set<number>();
  const byIndex = new Map<number, Worker>();
  let stopping = false;
  let failed = false;
  let delay = o.restartDelayMs ?? 1000;
  let metrics: MetricsServer | undefined;

  const indexOf = (w: Worker) => [...byIndex].find(([, x]) => x === w)?.[0] ?? -1;
  const fork = (i: number) => {
    const w = cluster.fork({ [indexEnv]: String(i) });
    byIndex.set(i, w);
    // A message to a worker that just died fails with EPIPE; without a listener
    // that error would end the primary and every other worker with it.
    w.on('error', (err: Error) =>
      log.warn({ worker: i, err: err.message }, 'worker channel error'),
    );
    o.onFork?.(w, i);
    w.on('message', (m: unknown) => {
      if (m === readyMessage) {
        ready.add(i);
        log.info({ worker: i, workerPid: w.process.pid }, 'worker serving');
      }
    });
    w.on('exit', (code, signal) => {
      byIndex.delete(i);
      const wasReady = ready.delete(i);
      if (stopping) {
        if (code !== 0) failed = true;
        if (byIndex.size === 0) finish();
        return;
      }
      if (!wasReady) {
        // It could not start (the database, a port): the others would not either.
        log.error({ worker: i, code, signal }, 'a worker failed to start; stopping');
        failed = true;
        stop('worker failed');
        return;
      }
      log.error(
        { worker: i, code, signal, restartInMs: delay },
        'a worker died; starting it again',
      );
      const d = delay;
      delay = Math.min(30_000, delay * 2);
      // Not unref'd: with every worker gone, this timer is what keeps the primary alive.
      setTimeout(() => {
        if (!stopping) fork(i);
      }, d);
    });
  };

  const finish = () => {
    void (metrics?.close() ?? Promise.resolve()).finally(() => process.exit(failed ? 1 : 0));
  };

  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ why, workers: byIndex.size }, 'stopping the workers');
    if (byIndex.size === 0) return finish();
    for (const w of byIndex.values()) w.process.kill('SIGTERM');
  };

  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  if (o.metrics) {
    metrics = await startMetricsServer(o.metrics.host, o.metrics.port, {
      contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE,
      metrics: () =>
        scrapeAll(
          [...byIndex.values()].filter((w) => ready.has(indexOf(w))),
          o.registry,
        ),
    });
  }
  log.info({ workers: o.workers, metricsPort: metrics?.port }, 'starting workers');
  for (let i = 0; i < o.workers; i++) fork(i);
}
