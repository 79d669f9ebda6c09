import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bearerToken, hashToken, looksLikeToken, mintToken } from '../../proxy/authn/token.js';
import { checkSubjectNames } from '../../proxy/authn/token-store.js';
import { KgError } from '../../common/errors.js';

test('minted tokens are kg_ + 43 base64url characters and unique', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const t = mintToken();
    assert.ok(looksLikeToken(t), t);
    assert.ok(!seen.has(t));
    seen.add(t);
  }
});

test('the stored hash is SHA-256 hex and never contains the token', () => {
  const t = mintToken();
  const h = hashToken(t);
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.ok(!h.includes(t.slice(3, 15)));
  assert.equal(hashToken(t), h, 'deterministic, so lookup by hash works');
  assert.notEqual(hashToken(mintToken()), h);
});

test('bearerToken parses only the Bearer scheme', () => {
  assert.equal(bearerToken('Bearer kg_abc'), 'kg_abc');
  assert.equal(bearerToken('bearer kg_abc'), 'kg_abc');
  assert.equal(bearerToken('Basic YWxpY2U6cHc='), undefined);
  assert.equal(bearerToken(undefined), undefined);
  assert.equal(bearerToken('Bearer a b'), undefined);
});

test('property: anything but a well-formed token is rejected by shape before any lookup', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 60 }), (s) => {
      if (looksLikeToken(s)) assert.match(s, /^kg_[A-Za-z0-9_-]{43}$/);
    }),
  );
  assert.ok(!looksLikeToken('kg_' + 'a'.repeat(42)));
  assert.ok(!looksLikeToken('kg_' + 'a'.repeat(44)));
  assert.ok(!looksLikeToken('kg_' + 'a'.repeat(42) + '%'));
});

test('token subjects cannot claim Kubernetes system identities', () => {
  assert.throws(() => checkSubjectNames('system:admin', []), KgError);
  assert.throws(() => checkSubjectNames('alice', ['system:masters']), KgError);
  assert.throws(() => checkSubjectNames('alice', ['']), KgError);
  checkSubjectNames('alice', ['developers']);
});
