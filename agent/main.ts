/**
 * `kubegate agent`: config → wiring → signals. The only place the agent
 * process exits.
 */
import { createLogger } from '../common/log.js';
import { isKgError } from '../common/errors.js';
import { configOrExit } from '../common/config.js';
import { loadAgentConfig } from './config.js';
import { startAgent } from './app.js';

export async function runAgent(): Promise<void> {
  const config = configOrExit(loadAgentConfig);
  const log = createLogger({ name: 'kubegate-agent', level: config.logLevel });
  const app = await startAgent(config, log).catch((err: unknown) => {
    log.fatal(
      { code: isKgError(err) ? err.code : undefined },
      isKgError(err) ? err.message : String(err),
    );
    process.exit(1);
  });
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}
