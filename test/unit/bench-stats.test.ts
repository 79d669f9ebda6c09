import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  diffSpread,
  fmtSpread,
  median,
  percentile,
  percentiles,
  ratioSpread,
  spread,
} from '../../bench/stats.js';

test('percentile interpolates between the nearest ranks', () => {
  const xs = [10, 1, 4, 7]; // sorted: 1 4 7 10
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile(xs, 100), 10);
  assert.equal(percentile(xs, 50), 5.5);
  assert.equal(percentile(xs, 25), 3.25);
  assert.deepEqual(percentiles(xs, [0, 50, 100]), [1, 5.5, 10]);
});

test('median of odd and even samples, empty and non-finite values', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
  assert.equal(median([NaN, 5, Infinity]), 5);
});

test('percentile refuses out-of-range p', () => {
  assert.throws(() => percentile([1], 101), RangeError);
  assert.throws(() => percentile([1], -1), RangeError);
});

test('p99 of 1..1000 is near the top', () => {
  const xs = Array.from({ length: 1000 }, (_, i) => i + 1);
  assert.ok(Math.abs(percentile(xs, 99) - 990.01) < 1e-9);
});

test('ratioSpread pairs rounds and skips a zero denominator', () => {
  const s = ratioSpread([50, 60, 40, 10], [100, 100, 100, 0]);
  assert.equal(s.n, 3);
  assert.equal(s.median, 0.5);
  assert.equal(s.min, 0.4);
  assert.equal(s.max, 0.6);
  assert.throws(() => ratioSpread([1], [1, 2]), RangeError);
});

test('diffSpread is round by round, not a difference of medians', () => {
  // Medians are 2 and 2, but each round differs by +1, +1, -3.
  const s = diffSpread([2, 3, 1], [1, 2, 4]);
  assert.deepEqual(s, { n: 3, median: 1, min: -3, max: 1 });
});

test('spread and its formatting', () => {
  assert.deepEqual(spread([5, 1, 3]), { n: 3, median: 3, min: 1, max: 5 });
  assert.equal(fmtSpread(spread([0.5, 0.4, 0.6])), '0.50 (0.40–0.60)');
  assert.equal(fmtSpread(spread([2]), 1, ' ms'), '2.0 ms');
  assert.equal(fmtSpread(spread([])), 'n/a');
});
