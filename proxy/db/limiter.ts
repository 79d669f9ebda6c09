/**
 * Bounded concurrency with a bounded queue: at most `max` tasks run, at most
 * `maxQueued` wait, and the rest are refused at once (`LimiterFullError`).
 * Used so that unauthenticated work (token lookups) can only ever hold a
 * fixed share of the database, however many requests arrive.
 */
export class LimiterFullError extends Error {
  constructor() {
    super('too many lookups are waiting for the database');
  }
}

export class Limiter {
  private running = 0;
  private readonly queue: (() => void)[] = [];

  constructor(
    readonly max: number,
    readonly maxQueued: number,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.queue.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.max) {
      if (this.queue.length >= this.maxQueued) throw new LimiterFullError();
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.running++;
    }
    try {
      return await task();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.running--;
    }
  }
}
