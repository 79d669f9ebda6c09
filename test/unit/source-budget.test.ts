import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SourceBudget } from '../../proxy/authn/source-budget.js';

test('a source gets its burst, then refills at the set rate; other sources are untouched', () => {
  let now = 0;
  const b = new SourceBudget({ burst: 3, perSecond: 2, now: () => now });
  assert.equal(b.take('a'), true);
  assert.equal(b.take('a'), true);
  assert.equal(b.take('a'), true);
  assert.equal(b.take('a'), false);
  assert.equal(b.allows('a'), false);
  assert.equal(b.retryAfter('a'), 1);
  assert.equal(b.allows('b'), true, 'another address has its own budget');
  now += 500; // one unit back
  assert.equal(b.take('a'), true);
  assert.equal(b.take('a'), false);
  now += 10_000; // capped at the burst
  for (let i = 0; i < 3; i++) assert.equal(b.take('a'), true);
  assert.equal(b.take('a'), false);
});

test('a spray of addresses cannot grow the table past its bound', () => {
  let now = 0;
  const b = new SourceBudget({ burst: 2, perSecond: 1, maxSources: 100, now: () => now });
  for (let i = 0; i < 10_000; i++) {
    b.take(`10.0.${i >> 8}.${i & 255}`);
    now += 1;
  }
  assert.ok(b.size <= 100, `size ${b.size}`);
});
