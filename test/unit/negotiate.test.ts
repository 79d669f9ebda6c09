import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { bodyType, negotiate } from '../../proxy/authz/negotiate.js';
import { selfReviewKind, userReview } from '../../proxy/authz/self-review.js';
import { requestInfo } from '../../proxy/authz/request-info.js';
import { KgError } from '../../common/errors.js';

const notAcceptable = (e: unknown) =>
  e instanceof KgError && e.status === 406 && e.reason === 'NotAcceptable';

test('Accept: JSON, YAML, wildcards and no Accept are served', () => {
  assert.equal(negotiate(undefined), 'json');
  assert.equal(negotiate(''), 'json');
  assert.equal(negotiate('application/json'), 'json');
  assert.equal(negotiate('application/json, */*'), 'json');
  assert.equal(negotiate('*/*'), 'json');
  assert.equal(negotiate('application/*'), 'json');
  assert.equal(negotiate('application/yaml'), 'yaml');
  assert.equal(negotiate('application/vnd.kubernetes.protobuf,application/json'), 'json');
  assert.equal(negotiate('application/yaml;q=0.5, application/json'), 'json');
});

test('Accept: a conversion (as=Table) or protobuf alone is 406, as from the apiserver', () => {
  assert.throws(() => negotiate('application/json;as=Table;v=v1;g=meta.k8s.io'), notAcceptable);
  assert.throws(
    () => negotiate('application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io'),
    notAcceptable,
  );
  assert.throws(() => negotiate('application/vnd.kubernetes.protobuf'), notAcceptable);
  assert.throws(() => negotiate('text/html'), notAcceptable);
  assert.throws(() => negotiate('application/json;q=0'), notAcceptable);
  // A conversion with a plain fallback is fine (kubectl get asks like this).
  assert.equal(negotiate('application/json;as=Table;v=v1;g=meta.k8s.io, application/json'), 'json');
});

test('property: negotiate never throws anything but a 406, whatever the header', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (h) => {
      try {
        assert.ok(['json', 'yaml'].includes(negotiate(h)));
      } catch (e) {
        assert.ok(notAcceptable(e), String(e));
      }
    }),
    { numRuns: 3000 },
  );
});

test('Content-Type: JSON, YAML and protobuf decode; anything else is 415', () => {
  assert.equal(bodyType(undefined), 'json');
  assert.equal(bodyType('application/json; charset=utf-8'), 'json');
  assert.equal(bodyType('application/yaml'), 'yaml');
  assert.equal(bodyType('application/vnd.kubernetes.protobuf'), 'protobuf');
  assert.throws(
    () => bodyType('text/plain'),
    (e) => e instanceof KgError && e.status === 415 && e.reason === 'UnsupportedMediaType',
  );
});

test('whoami: a SelfSubjectReview is answered with the kubegate identity, robots named as the cluster sees them', () => {
  const info = requestInfo('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', '');
  assert.equal(selfReviewKind(info), 'user');
  const now = new Date('2026-12-06T10:00:00.123Z');
  const u = userReview(
    { user: 'alice', groups: ['dev', 'ops'], kind: 'user' },
    { name: 'prod', labels: {} },
    'v1',
    now,
  );
  assert.deepEqual(u, {
    kind: 'SelfSubjectReview',
    apiVersion: 'authentication.k8s.io/v1',
    metadata: { creationTimestamp: '2026-12-06T10:00:00Z' },
    status: {
      userInfo: {
        username: 'alice',
        groups: ['dev', 'ops', 'system:authenticated'],
        extra: { 'kubegate.dev/cluster': ['prod'], 'kubegate.dev/identity-kind': ['user'] },
      },
    },
  });
  const r = userReview(
    { user: 'ci', groups: [], kind: 'robot' },
    { name: 'prod', labels: {} },
    'v1beta1',
    now,
  );
  assert.equal(
    (r.status as { userInfo: { username: string } }).userInfo.username,
    'kubegate:robot:ci',
  );
  assert.equal(r.apiVersion, 'authentication.k8s.io/v1beta1');
  // Not a self review: a named object, another group, a namespace.
  for (const path of [
    '/apis/authentication.k8s.io/v1/selfsubjectreviews/x',
    '/apis/authentication.k8s.io/v1/tokenreviews',
    '/apis/authentication.k8s.io/v1/namespaces/a/selfsubjectreviews',
  ])
    assert.equal(selfReviewKind(requestInfo('POST', path, '')), undefined, path);
});
