/**
 * `kubegate proxy`: config → wiring → signals. The only place the proxy
 * process exits.
 */
import { createLogger } from '../common/log.js';
import { isKgError } from '../common/errors.js';
import { configOrExit } from '../common/config.js';
import { loadProxyConfig } from './config.js';
import { startProxy } from './app.js';

export async function runProxy(): Promise<void> {
  const config = configOrExit(loadProxyConfig);
  const log = createLogger({ name: 'kubegate-proxy', level: config.logLevel });
  const app = await startProxy(config, log).catch((err: unknown) => {
    log.fatal({ err }, isKgError(err) ? err.message : 'proxy failed to start');
    process.exit(1);
  });
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
