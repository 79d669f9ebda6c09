import type { Logger } from './log.js';

export interface Periodic {
  /** Run a pass now (after the one in progress, if any) and wait for it. */
  tick(): Promise<void>;
  /** No more passes; waits for the one in progress. */
  stop(): Promise<void>;
}

/**
 * Run `pass` every `everyMs`, never two at once (a tick that finds a pass
 * still running is skipped). A failing pass is logged once ("<what> failed;
 * retrying") until one succeeds ("<what> recovered"): an outage is two log
 * lines, not one per tick. The timer does not keep the process alive.
 */
export function startPeriodic(
  what: string,
  everyMs: number,
  pass: () => Promise<void>,
  log: Logger,
): Periodic {
  let running: Promise<void> | undefined;
  let failing = false;
  const once = async () => {
    try {
      await pass();
      if (failing) log.info(`${what} recovered`);
      failing = false;
    } catch (err) {
      if (!failing) log.warn({ err: (err as Error).message }, `${what} failed; retrying`);
      failing = true;
    }
  };
  const start = () => (running = once().finally(() => (running = undefined)));
  const timer = setInterval(() => {
    if (!running) void start();
  }, everyMs);
  timer.unref();
  return {
    async tick() {
      while (running) await running;
      await start();
    },
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
