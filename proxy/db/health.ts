/**
 * Is PostgreSQL answering right now? A stopped database refuses connections
 * at once, but a hung one (a partition, a failover, a frozen server) accepts
 * them and then says nothing, so every query waits for its timeout. The
 * policy connection's heartbeat (a `SELECT 1` every 250 ms) feeds this: when
 * a heartbeat has been outstanding longer than `suspectAfterMs`, the database
 * is *suspect* and the pool refuses new work at once instead of queueing it
 * behind the hang (`db/pool.ts`). Callers then answer from memory within the
 * policy's staleness bound, or fail closed with `Retry-After`; audit events
 * go to the spool. The first answer clears it.
 *
 * A heartbeat judged late is judged once more after `setImmediate`, so an
 * answer already sitting in the socket while the event loop was busy (a long
 * synchronous job, a GC pause) counts as an answer, not as a hang.
 */
export interface DbHealthOptions {
  /** A heartbeat outstanding this long marks the database suspect. */
  suspectAfterMs?: number;
  now?: () => number;
}

export class DbHealth {
  readonly suspectAfterMs: number;
  private outstandingSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private suspectSince: number | undefined;
  private readonly listeners: ((suspect: boolean) => void)[] = [];
  private readonly suspectWaiters = new Set<() => void>();

  constructor(opts: DbHealthOptions = {}) {
    this.suspectAfterMs = opts.suspectAfterMs ?? 600;
  }

  /** True while the database is not answering; new queries fail fast. */
  get suspect(): boolean {
    return this.suspectSince !== undefined;
  }

  /** How long it has been suspect (ms), 0 when healthy. */
  suspectForMs(now = Date.now()): number {
    return this.suspectSince === undefined ? 0 : now - this.suspectSince;
  }

  onChange(fn: (suspect: boolean) => void): void {
    this.listeners.push(fn);
  }

  /** Call `fn` once when the database next turns suspect; returns the way to cancel. */
  onSuspect(fn: () => void): () => void {
    this.suspectWaiters.add(fn);
    return () => this.suspectWaiters.delete(fn);
  }

  /** A probe was sent; call `answered()` or `failed()` when it settles. */
  probeSent(now = Date.now()): void {
    if (this.outstandingSince !== undefined) return;
    this.outstandingSince = now;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // Let I/O that is already readable be processed before judging.
      setImmediate(() => {
        if (this.outstandingSince !== undefined) this.setSuspect(true);
      });
    }, this.suspectAfterMs);
    this.timer.unref();
  }

  /** The database answered: healthy. */
  answered(): void {
    this.outstandingSince = undefined;
    clearTimeout(this.timer);
    this.setSuspect(false);
  }

  /**
   * The probe failed (connection refused, reset or timed out). A refusal is
   * already fast, so it changes nothing here; the probe is no longer pending.
   */
  failed(): void {
    this.outstandingSince = undefined;
    clearTimeout(this.timer);
  }

  /** Mark suspect now (e.g. the heartbeat connection could not even be opened in time). */
  markSuspect(): void {
    this.setSuspect(true);
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  private setSuspect(s: boolean): void {
    if (s === this.suspect) return;
    this.suspectSince = s ? Date.now() : undefined;
    for (const fn of this.listeners) fn(s);
    if (s) {
      const waiters = [...this.suspectWaiters];
      this.suspectWaiters.clear();
      for (const fn of waiters) fn();
    }
  }
}

/**
 * The error the pool gives while the database is suspect. Its code is
 * SQLSTATE 08006 (connection failure), so every place that already treats a
 * lost connection as an outage (503 + Retry-After, spool) treats this alike.
 */
export class DatabaseUnresponsiveError extends Error {
  readonly code = '08006';
  constructor() {
    super('the database is not answering (a heartbeat is overdue); not waiting on it');
  }
}
