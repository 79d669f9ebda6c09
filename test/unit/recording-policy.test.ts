/**
 * Recording policies (proxy/recording/policy.ts): which policy applies to a
 * session, the strictest winning, stdin only where a recording policy asks,
 * the default when none matches; and hostile policy bodies refused with
 * every problem named.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decide, validatePolicy, type RecordingPolicy } from '../../proxy/recording/policy.js';
import { isKgError } from '../../common/errors.js';

const prod = { name: 'prod-1', labels: { env: 'prod' } };
const dev = { name: 'dev-1', labels: { env: 'dev' } };
const p = (x: Partial<RecordingPolicy> & { name: string }): RecordingPolicy => ({
  clusters: {},
  namespaces: [],
  mode: 'best-effort',
  recordStdin: false,
  ...x,
});

test('no policy matches: the default, without stdin', () => {
  assert.deepEqual(decide([], prod, 'a', 'best-effort'), {
    mode: 'best-effort',
    stdin: false,
    policy: '',
  });
  const only = [p({ name: 'x', clusters: { names: ['other'] }, mode: 'required' })];
  assert.deepEqual(decide(only, prod, 'a', 'off'), { mode: 'off', stdin: false, policy: '' });
});

test('the strictest matching policy wins; a narrow off cannot undo a fleet-wide required', () => {
  const ps = [
    p({
      name: 'fleet',
      clusters: { selector: { matchLabels: { env: 'prod' } } },
      mode: 'required',
    }),
    p({ name: 'quiet', namespaces: ['scratch'], mode: 'off' }),
    p({ name: 'stdin', namespaces: ['scratch'], mode: 'best-effort', recordStdin: true }),
  ];
  assert.deepEqual(decide(ps, prod, 'scratch', 'off'), {
    mode: 'required',
    stdin: true,
    policy: 'fleet',
  });
  assert.deepEqual(decide(ps, dev, 'scratch', 'required'), {
    mode: 'best-effort',
    stdin: true,
    policy: 'stdin',
  });
  assert.deepEqual(decide(ps, dev, 'other', 'best-effort'), {
    mode: 'best-effort',
    stdin: false,
    policy: '',
  });
  // stdin is not recorded by an off policy's say-so
  const offStdin = [p({ name: 'o', mode: 'off', recordStdin: true })];
  assert.deepEqual(decide(offStdin, dev, 'x', 'best-effort'), {
    mode: 'off',
    stdin: false,
    policy: 'o',
  });
});

test('clusters by name or by selector, either matching', () => {
  const ps = [
    p({
      name: 'both',
      clusters: { names: ['dev-1'], selector: { matchLabels: { env: 'prod' } } },
      mode: 'required',
    }),
  ];
  assert.equal(decide(ps, dev, 'a', 'off').mode, 'required');
  assert.equal(decide(ps, prod, 'a', 'off').mode, 'required');
  assert.equal(decide(ps, { name: 'qa', labels: {} }, 'a', 'off').mode, 'off');
});

test('hostile policy bodies: every problem named, nothing stored half-checked', () => {
  const bad: [unknown, RegExp][] = [
    [[], /must be a JSON object/],
    [{ name: 'X', mode: 'required' }, /name: a DNS label/],
    [{ name: 'a', mode: 'always' }, /mode: one of off, best-effort, required/],
    [{ name: 'a', mode: 'off', extra: 1 }, /extra: unknown field/],
    [{ name: 'a', mode: 'off', namespaces: ['../x'] }, /namespaces/],
    [{ name: 'a', mode: 'off', namespaces: Array(300).fill('a') }, /namespaces/],
    [{ name: 'a', mode: 'off', clusters: { names: [1] } }, /clusters.names/],
    [
      { name: 'a', mode: 'off', clusters: { selector: { matchLabels: { 'a b': 'c' } } } },
      /clusters.selector/,
    ],
    [{ name: 'a', mode: 'off', clusters: { every: true } }, /clusters.every: unknown field/],
    [{ name: 'a', mode: 'off', recordStdin: 'yes' }, /recordStdin/],
  ];
  for (const [body, why] of bad) {
    assert.throws(
      () => validatePolicy(body),
      (err) => isKgError(err) && err.status === 422 && why.test(err.message),
      JSON.stringify(body).slice(0, 80),
    );
  }
  assert.deepEqual(validatePolicy({ name: 'ok', mode: 'required', namespaces: ['a', 'a'] }), {
    name: 'ok',
    clusters: {},
    namespaces: ['a'],
    mode: 'required',
    recordStdin: false,
  });
});
