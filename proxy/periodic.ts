/**
 * Housekeeping that runs now and then every so often (audit partitions, the
 * recording sweep): a run that fails is logged and tried again next time,
 * never thrown out of the timer. The timer never keeps the process alive.
 */
export function runEvery(
  everyMs: number,
  task: () => Promise<unknown>,
  failed: (err: Error) => void,
): { stop(): void } {
  const go = () => void task().catch(failed);
  go();
  const timer = setInterval(go, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
