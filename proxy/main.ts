/**
 * `kubegate proxy`: config → wiring → signals. The only place the proxy
 * process exits. With KUBEGATE_WORKERS above 1 this process supervises that
 * many workers (common/workers.ts), each of which runs the rest of this file
 * as a replica of its own.
 */
import { join } from 'node:path';
import { createLogger } from '../common/log.js';
import { isKgError } from '../common/errors.js';
import { configOrExit, parseHostPort } from '../common/config.js';
import { runPrimary, workerCount, workerIndex, workerReady } from '../common/workers.js';
import { loadProxyConfig, type ProxyConfig } from './config.js';
import { startProxy } from './app.js';
import { proxyMetrics } from './metrics.js';
import { adoptSpools, defaultSpoolDir } from './audit/spool-dir.js';

export async function runProxy(): Promise<void> {
  const loaded = configOrExit(loadProxyConfig);
  const index = workerIndex();
  const workers = workerCount(loaded.workers);
  const spoolDir = loaded.auditSpoolDir || defaultSpoolDir(loaded.databaseUrl, loaded.listen);
  if (index === undefined) {
    // Segments a different number of workers left behind go to the processes there are now.
    const log = createLogger({ name: 'kubegate-proxy', level: loaded.logLevel });
    let release: () => void;
    try {
      release = adoptSpools(spoolDir, workers, log);
    } catch (err) {
      log.fatal({ err }, isKgError(err) ? err.message : 'audit spool directory unusable');
      process.exit(1);
    }
    if (workers > 1) {
      // The primary holds the spool directory for as long as its workers run.
      const m = loaded.metricsListen ? parseHostPort(loaded.metricsListen) : undefined;
      return runPrimary({ workers, log, metrics: m });
    }
    release();
  }
  const config = index === undefined ? loaded : asWorker(loaded, index, spoolDir);
  const root = createLogger({ name: 'kubegate-proxy', level: config.logLevel });
  const log = index === undefined ? root : root.child({ worker: index });
  const app = await startProxy(config, log).catch((err: unknown) => {
    log.fatal({ err }, isKgError(err) ? err.message : 'proxy failed to start');
    process.exit(1);
  });
  workerReady(proxyMetrics.registry);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    // Drain (in-flight requests, up to drainTimeout) plus 10 s to flush and close.
    const force = setTimeout(() => process.exit(1), config.drainTimeout + 10_000);
    force.unref();
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * Worker `i`'s settings: a replica id, peer port and audit spool of its own
 * (peer port n + i when one is set; port 0 stays a free port per worker);
 * the primary serves the metrics.
 */
export function asWorker(c: ProxyConfig, i: number, spoolDir: string): ProxyConfig {
  const shift = (hostPort: string) => {
    const { host, port } = parseHostPort(hostPort);
    const h = host.includes(':') ? `[${host}]` : host;
    return `${h}:${port === 0 ? 0 : port + i}`;
  };
  return Object.freeze({
    ...c,
    replicaId: `${c.replicaId}-w${i}`,
    peerListen: shift(c.peerListen),
    peerAddress: c.peerAddress ? shift(c.peerAddress) : c.peerAddress,
    auditSpoolDir: join(spoolDir, `worker-${i}`),
    metricsListen: '',
  });
}
