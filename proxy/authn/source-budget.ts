/**
 * Per-source budgets for work that costs the database before we know who is
 * asking: token lookups that miss the cache, sign-in starts. Each source
 * address has a token bucket (`burst` at most, refilled at `perSecond`);
 * failures spend it. A flood of made-up tokens from one address therefore
 * reaches PostgreSQL `burst` times and then gets 429 at once, while known
 * tokens from the same address are still served from the cache.
 *
 * The table is bounded: past `maxSources` entries, full buckets are dropped
 * first, then the oldest, so a spray of addresses cannot grow memory.
 */
export interface SourceBudgetOptions {
  burst?: number;
  perSecond?: number;
  maxSources?: number;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class SourceBudget {
  readonly burst: number;
  readonly perSecond: number;
  private readonly maxSources: number;
  private readonly now: () => number;
  private readonly buckets = new Map<string, Bucket>();

  constructor(opts: SourceBudgetOptions = {}) {
    this.burst = opts.burst ?? 60;
    this.perSecond = opts.perSecond ?? 10;
    this.maxSources = opts.maxSources ?? 100_000;
    this.now = opts.now ?? Date.now;
  }

  /** True when `source` may spend one more unit now (nothing is spent). */
  allows(source: string): boolean {
    return this.level(source) >= 1;
  }

  /** Seconds until `source` has one unit again (for Retry-After), at least 1. */
  retryAfter(source: string): number {
    const missing = 1 - this.level(source);
    return Math.max(1, Math.ceil(missing / this.perSecond));
  }

  /** Spend one unit (a failed lookup, a sign-in start). Returns false if none was left. */
  spend(source: string): boolean {
    const now = this.now();
    const b = this.refill(source, now);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    this.buckets.delete(source); // re-insert: the Map's order is least recently spent first
    this.buckets.set(source, b);
    if (this.buckets.size > this.maxSources) this.trim(now);
    return true;
  }

  /** Spend if there is a unit; the one call for "may this source do this costly thing now?". */
  take(source: string): boolean {
    return this.spend(source);
  }

  /** Give back a unit taken for something that turned out fine (a known token). */
  refund(source: string): void {
    const b = this.buckets.get(source);
    if (b) b.tokens = Math.min(this.burst, b.tokens + 1);
  }

  get size(): number {
    return this.buckets.size;
  }

  private level(source: string): number {
    const b = this.buckets.get(source);
    if (!b) return this.burst;
    return Math.min(this.burst, b.tokens + ((this.now() - b.at) / 1000) * this.perSecond);
  }

  private refill(source: string, now: number): Bucket {
    const b = this.buckets.get(source) ?? { tokens: this.burst, at: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    return b;
  }

  private trim(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(k);
    }
    for (const k of this.buckets.keys()) {
      if (this.buckets.size <= this.maxSources) break;
      this.buckets.delete(k);
    }
  }
}
