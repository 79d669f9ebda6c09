import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeReview } from '../../proxy/authz/review-protobuf.js';
import { KgError } from '../../common/errors.js';

// Captured from kubectl v1.34.5 `auth can-i list pods` (-v=8 body dump).
const kubectlCanIListPods =
  '6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a656374416363657373526576696577123d0a100a0012001a0022002a00320038004200121f0a1d0a0764656661756c7412046c6973741a0022002a04706f647332003a001a08080012001a0020001a002200';
const pb = 'application/vnd.kubernetes.protobuf';

test('decodes the SelfSubjectAccessReview kubectl really sends', () => {
  const r = decodeReview(Buffer.from(kubectlCanIListPods, 'hex'), pb, 'access');
  assert.deepEqual(r, {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes: { namespace: 'default', verb: 'list', resource: 'pods' } },
  });
});

test('JSON bodies pass through; garbage is a 400, never a crash', () => {
  assert.deepEqual(
    decodeReview(Buffer.from('{"spec":{"namespace":"x"}}'), 'application/json', 'rules'),
    { spec: { namespace: 'x' } },
  );
  assert.throws(() => decodeReview(Buffer.from('nope'), 'application/json', 'rules'), KgError);
  assert.throws(() => decodeReview(Buffer.from('nope'), pb, 'access'), KgError);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        decodeReview(Buffer.concat([Buffer.from('k8s\0'), Buffer.from(bytes)]), pb, 'access');
      } catch (err) {
        assert.ok(err instanceof KgError && err.code === 'KG_ERR_BAD_REQUEST');
      }
    }),
    { numRuns: 3000 },
  );
});
