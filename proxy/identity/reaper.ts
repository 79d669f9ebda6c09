/**
 * Background upkeep on every replica: revoke robot tokens whose rotation
 * overlap has ended (so their open watches end everywhere, see
 * robot-store.ts), and now and then delete expired sessions and abandoned
 * sign-ins. Runs never overlap; a failing database is logged once per
 * outage, not once per tick.
 */
import type { Logger } from '../../common/log.js';
import type { Pool } from '../db/pool.js';
import { revokeEndedOverlaps } from './robot-store.js';
import { sweepExpired } from './session-store.js';
import { startPeriodic } from '../../common/periodic.js';

const sweepEveryMs = 60_000;

export function startReaper(
  pool: Pool,
  log: Logger,
  intervalMs: number,
): { stop(): Promise<void> } {
  let lastSweep = 0;
  return startPeriodic(
    'identity upkeep',
    intervalMs,
    async () => {
      const n = await revokeEndedOverlaps(pool);
      if (n) log.info({ tokens: n }, 'revoked robot tokens whose rotation overlap ended');
      if (Date.now() - lastSweep >= sweepEveryMs) {
        lastSweep = Date.now();
        await sweepExpired(pool);
      }
    },
    log,
  );
}
