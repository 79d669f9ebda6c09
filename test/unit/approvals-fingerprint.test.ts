/**
 * The identity of a gated request (body hash, fingerprint), the diff shown
 * to approvers, and webhook signatures.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  bodySha256,
  canonicalJson,
  canonicalQuery,
  requestFingerprint,
  type GatedRequest,
} from '../../proxy/approvals/fingerprint.js';
import { forDisplay, lineDiff, objectDiff } from '../../proxy/approvals/diff.js';
import { sign, verify } from '../../proxy/approvals/signature.js';
import { backoffSeconds, slackPayload, type Notice } from '../../proxy/approvals/notify.js';

const base: GatedRequest = {
  user: 'dev',
  userKind: 'user',
  cluster: 'prod',
  method: 'PATCH',
  kubePath: '/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web',
  rawQuery: 'fieldManager=kubectl&fieldValidation=Strict',
  contentType: 'application/strategic-merge-patch+json',
  bodySha256: bodySha256(Buffer.from('{"spec":{"rules":[]}}'), 'application/json'),
};

/** Re-serialise an object with its keys in another order, at every level. */
function shuffled(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffled(x, seed));
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    const order = seed % 2 ? keys.reverse() : keys.sort();
    return Object.fromEntries(
      order.map((k) => [k, shuffled((v as Record<string, unknown>)[k], seed + 1)]),
    );
  }
  return v;
}

describe('body hash', () => {
  test('JSON: key order and whitespace do not matter (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), (v, seed) => {
        const a = Buffer.from(JSON.stringify(v));
        const b = Buffer.from(JSON.stringify(shuffled(v, seed), null, 2));
        return bodySha256(a, 'application/json') === bodySha256(b, 'application/merge-patch+json');
      }),
    );
  });
  test('JSON: any change of value is a different hash (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.string()), fc.string(), fc.string(), (d, k, x) => {
        const changed = { ...d, [k]: (d[k] ?? '') + x + '!' };
        return (
          bodySha256(Buffer.from(JSON.stringify(d)), 'application/json') !==
          bodySha256(Buffer.from(JSON.stringify(changed)), 'application/json')
        );
      }),
    );
  });
  test('array order matters', () => {
    assert.notEqual(
      bodySha256(Buffer.from('[1,2]'), 'application/json'),
      bodySha256(Buffer.from('[2,1]'), 'application/json'),
    );
  });
  test('non-JSON bodies are hashed byte for byte', () => {
    const yaml = 'a: 1\n';
    assert.notEqual(
      bodySha256(Buffer.from(yaml), 'application/apply-patch+yaml'),
      bodySha256(Buffer.from('a:  1\n'), 'application/apply-patch+yaml'),
    );
    // The same bytes as JSON and as raw are kept apart (no collisions between the two forms).
    assert.notEqual(
      bodySha256(Buffer.from('{}'), 'application/json'),
      bodySha256(Buffer.from('{}'), 'text/plain'),
    );
  });
  test('malformed JSON falls back to the bytes', () => {
    assert.equal(
      bodySha256(Buffer.from('{oops'), 'application/json'),
      bodySha256(Buffer.from('{oops'), 'application/octet-stream'),
    );
  });
  test('canonicalJson sorts keys at every level', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, { f: 1, e: 2 }], c: null } }),
      '{"a":{"c":null,"d":[3,{"e":2,"f":1}]},"b":1}',
    );
  });
});

describe('request fingerprint', () => {
  const fp = requestFingerprint(base);
  const differs: [string, Partial<GatedRequest>][] = [
    ['another user', { user: 'eve' }],
    ['a robot of the same name', { userKind: 'robot' }],
    ['another cluster', { cluster: 'prod-2' }],
    ['another method', { method: 'PUT' }],
    ['another object', { kubePath: base.kubePath + 'x' }],
    ['another query', { rawQuery: 'fieldManager=other' }],
    ['a dry run is another request', { rawQuery: base.rawQuery + '&dryRun=All' }],
    ['another patch type', { contentType: 'application/merge-patch+json' }],
    ['another body', { bodySha256: bodySha256(Buffer.from('{"spec":{}}'), 'application/json') }],
  ];
  for (const [name, change] of differs)
    test(name, () => assert.notEqual(requestFingerprint({ ...base, ...change }), fp));
  const same: [string, Partial<GatedRequest>][] = [
    ['query order', { rawQuery: 'fieldValidation=Strict&fieldManager=kubectl' }],
    ['method case', { method: 'patch' }],
    [
      'content-type parameters',
      { contentType: 'application/strategic-merge-patch+json; charset=utf-8' },
    ],
  ];
  for (const [name, change] of same)
    test(`same despite ${name}`, () =>
      assert.equal(requestFingerprint({ ...base, ...change }), fp));
  test('canonicalQuery keeps repeated values', () => {
    assert.equal(canonicalQuery('b=2&a=1&b=1'), 'a=1&b=1&b=2');
  });
});

describe('diff for approvers', () => {
  test('a unified line diff', () => {
    assert.equal(lineDiff('a\nb\nc\n', 'a\nx\nc\n'), '--- live\n+++ requested\n a\n-b\n+x\n c\n');
    assert.equal(lineDiff('', 'a\n'), '--- live\n+++ requested\n+a\n');
  });
  test('server-managed fields and kubectl last-applied are left out', () => {
    const live = {
      metadata: {
        name: 'web',
        resourceVersion: '7',
        uid: 'u',
        managedFields: [{}],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"secret":1}' },
      },
      spec: { host: 'a' },
      status: { x: 1 },
    };
    const d = objectDiff(live, { ...live, spec: { host: 'b' } }, 'ingresses');
    assert.match(d, /^- {2}host: a$/m);
    assert.match(d, /^\+ {2}host: b$/m);
    assert.doesNotMatch(d, /resourceVersion|managedFields|last-applied|status/);
  });
  test('Secret values never appear, but a change still shows', () => {
    const s = (v: string) => ({
      kind: 'Secret',
      metadata: { name: 's' },
      data: { password: Buffer.from(v).toString('base64') },
    });
    const d = objectDiff(s('hunter2'), s('hunter3'), 'secrets');
    assert.doesNotMatch(d, new RegExp(Buffer.from('hunter2').toString('base64')));
    assert.doesNotMatch(d, new RegExp(Buffer.from('hunter3').toString('base64')));
    assert.match(d, /^-.*password: \(redacted, sha256 [0-9a-f]{12}\)$/m);
    assert.match(d, /^\+.*password: \(redacted, sha256 [0-9a-f]{12}\)$/m);
    assert.deepEqual(forDisplay('x', 'secrets'), 'x');
  });
});

describe('webhook signatures', () => {
  const secret = 's3cret-s3cret-s3cret';
  const body = '{"type":"approval.requested"}';
  const now = 1_800_000_000_000;
  const ts = now / 1000;
  test('a signature verifies for its body and timestamp only', () => {
    const sig = sign(secret, ts, body);
    assert.match(sig, /^v1=[0-9a-f]{64}$/);
    assert.equal(verify(secret, String(ts), body, sig, 300, now), true);
    assert.equal(verify(secret, String(ts), body + ' ', sig, 300, now), false);
    assert.equal(verify('other-secret-value', String(ts), body, sig, 300, now), false);
    assert.equal(verify(secret, String(ts + 1), body, sig, 300, now), false);
  });
  test('old timestamps are refused (replays)', () => {
    const old = ts - 3600;
    assert.equal(verify(secret, String(old), body, sign(secret, old, body), 300, now), false);
  });
  test('back-off doubles up to five minutes', () => {
    assert.deepEqual([1, 2, 3, 4, 10, 20].map(backoffSeconds), [1, 2, 4, 8, 300, 300]);
  });
  test('the Slack payload has text and a section block', () => {
    const n: Notice = {
      event: 'approval.requested',
      id: 'i',
      kind: 'access',
      status: 'pending',
      requester: 'user:dev',
      summary: 'dev asks',
      reason: 'why',
      url: 'https://kg/api/v1/approvals/i',
      at: 'now',
    };
    const p = slackPayload(n) as {
      text: string;
      blocks: { type: string; text: { text: string } }[];
    };
    assert.match(p.text, /requested: dev asks/);
    assert.equal(p.blocks[0]!.type, 'section');
    assert.match(p.blocks[0]!.text.text, /<https:\/\/kg\/api\/v1\/approvals\/i\|approval i>/);
  });
});
