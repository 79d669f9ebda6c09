/**
 * Statistics for the benchmark: order statistics over samples and the
 * spread of ratios measured round by round. Pure functions, no timing here,
 * so test/unit/bench-stats.test.ts can check them with fixed numbers.
 */

/** Sorted copy, ascending; NaN and infinities are dropped. */
function sorted(xs: readonly number[]): number[] {
  return xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
}

/**
 * The p-th percentile (0 ≤ p ≤ 100) by linear interpolation between the two
 * nearest ranks (the "R-7" / NumPy default). NaN for an empty sample.
 */
export function percentile(xs: readonly number[], p: number): number {
  if (p < 0 || p > 100) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  if (s.length === 1) return s[0]!;
  const pos = (p / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** Several percentiles of one sample, sorted once. */
export function percentiles(xs: readonly number[], ps: readonly number[]): number[] {
  const s = sorted(xs);
  return ps.map((p) => percentile(s, p));
}

export interface Spread {
  /** Number of finite values. */
  n: number;
  median: number;
  min: number;
  max: number;
}

/** Median and range of a set of per-round figures. */
export function spread(xs: readonly number[]): Spread {
  const s = sorted(xs);
  return {
    n: s.length,
    median: median(s),
    min: s.length ? s[0]! : NaN,
    max: s.length ? s[s.length - 1]! : NaN,
  };
}

/**
 * Ratios a[i] / b[i] of figures measured side by side in the same round,
 * summarised as median and range. Rounds where either side is missing or b
 * is zero are left out (and so reduce `n`).
 */
export function ratioSpread(a: readonly number[], b: readonly number[]): Spread {
  if (a.length !== b.length) throw new RangeError(`rounds differ: ${a.length} vs ${b.length}`);
  return spread(a.map((x, i) => (b[i] ? x / b[i]! : NaN)));
}

/** Differences a[i] − b[i], round by round, as median and range. */
export function diffSpread(a: readonly number[], b: readonly number[]): Spread {
  if (a.length !== b.length) throw new RangeError(`rounds differ: ${a.length} vs ${b.length}`);
  return spread(a.map((x, i) => x - b[i]!));
}

/** "0.41 (0.35–0.52)", with `digits` decimals. */
export function fmtSpread(s: Spread, digits = 2, unit = ''): string {
  if (!s.n) return 'n/a';
  const f = (x: number) => x.toFixed(digits);
  return s.n === 1 || s.min === s.max
    ? `${f(s.median)}${unit}`
    : `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)})`;
}

/** Signed figure: "+0.41". */
export function signed(x: number, digits = 2): string {
  return (x >= 0 ? '+' : '') + x.toFixed(digits);
}
