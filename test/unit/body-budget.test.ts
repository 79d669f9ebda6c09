/**
 * The request-body budget (issue #17, item 7): bytes held in memory are
 * bounded per identity and per replica, leases give back exactly what they
 * took, and a whole-body read refuses past the budget (429) and when the
 * body stops arriving (408).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { BodyBudget, budgetKey } from '../../proxy/forward/body-budget.js';
import { readBody } from '../../proxy/http/read-body.js';
import { KgError } from '../../common/errors.js';

test('property: no identity and no replica ever holds more than its bound; releases give all back', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 1000 }),
      fc.integer({ min: 1, max: 3000 }),
      fc.array(
        fc.record({
          who: fc.integer({ min: 0, max: 3 }),
          n: fc.integer({ min: 0, max: 400 }),
          op: fc.constantFrom('add', 'setTo', 'release'),
        }),
        { maxLength: 200 },
      ),
      (perIdentity, perReplica, ops) => {
        const budget = new BodyBudget(perIdentity, perReplica);
        const leases = [0, 1, 2, 3].map((i) => budget.lease(`user:u${i}`));
        for (const op of ops) {
          const lease = leases[op.who]!;
          const before = lease.held;
          if (op.op === 'release') lease.release();
          else if (op.op === 'add') {
            const ok = lease.add(op.n);
            assert.equal(lease.held, ok ? before + op.n : before);
          } else {
            const ok = lease.setTo(op.n);
            assert.equal(lease.held, ok ? op.n : before);
            if (op.n <= before) assert.ok(ok, 'lowering a charge always succeeds');
          }
          for (const l of leases) assert.ok(budget.held(l.identity) <= perIdentity);
          assert.ok(budget.held() <= perReplica);
          assert.equal(
            budget.held(),
            leases.reduce((a, l) => a + l.held, 0),
          );
        }
        for (const l of leases) l.release();
        assert.equal(budget.held(), 0);
      },
    ),
  );
});

test('robots and users with one name are distinct budget keys', () => {
  assert.notEqual(budgetKey({ user: 'ci', kind: 'robot' }), budgetKey({ user: 'ci' }));
  assert.equal(budgetKey({ user: 'ci' }), budgetKey({ user: 'ci', kind: 'user' }));
});

test('readBody: past the identity budget is a 429 and nothing stays charged after release', async () => {
  const budget = new BodyBudget(1000, 10_000);
  const lease = budget.lease('user:alice');
  const body = new PassThrough();
  const read = readBody(body, 1_000_000, { lease });
  body.write(Buffer.alloc(600));
  body.write(Buffer.alloc(600));
  await assert.rejects(read, (err: KgError) => {
    assert.equal(err.code, 'KG_ERR_BODY_BUDGET');
    assert.equal(err.status, 429);
    return true;
  });
  assert.equal(budget.held('user:alice'), 600);
  lease.release();
  assert.equal(budget.held(), 0);
});

test('readBody: a body that stops arriving is a 408; one that keeps arriving is read whole', async () => {
  const stalled = new PassThrough();
  const t0 = performance.now();
  const read = readBody(stalled, 1_000_000, { idleMs: 200 });
  stalled.write('{"a":');
  await assert.rejects(read, (err: KgError) => {
    assert.equal(err.code, 'KG_ERR_BODY_TIMEOUT');
    assert.equal(err.status, 408);
    return true;
  });
  assert.ok(performance.now() - t0 >= 190);

  const slow = new PassThrough();
  const whole = readBody(slow, 1_000_000, { idleMs: 200 });
  for (let i = 0; i < 5; i++) {
    slow.write('x');
    await new Promise((r) => setTimeout(r, 100));
  }
  slow.end('y');
  assert.equal((await whole).toString(), 'xxxxxy');
});
