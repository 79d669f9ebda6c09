/**
 * Robot and user names never collide (issue #17 item 10): the subject kind is
 * part of the identity key, of the JIT ServiceAccount and binding names and
 * labels, and of the name a robot is impersonated as.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  clusterUserName,
  identityKey,
  robotUserPrefix,
  runbookUserPrefix,
  type SubjectKind,
} from '../../common/identity-key.js';
import {
  bindingName,
  kindLabel,
  serviceAccountName,
  subjectLabels,
  userKey,
  userLabel,
} from '../../agent/jit/names.js';
import { identityProblem } from '../../agent/forward/forward.js';

const kind = fc.constantFrom<SubjectKind>('user', 'robot', 'runbook');
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

test('robot ci and user ci: different keys, accounts, bindings, labels and cluster names', () => {
  assert.notEqual(identityKey('user', 'ci'), identityKey('robot', 'ci'));
  assert.notEqual(userKey('user', 'ci'), userKey('robot', 'ci'));
  assert.match(serviceAccountName('user', 'ci'), /^kg-u-[0-9a-f]{16}$/);
  assert.match(serviceAccountName('robot', 'ci'), /^kg-r-[0-9a-f]{16}$/);
  assert.notEqual(bindingName('user', 'ci', 'edit@abc'), bindingName('robot', 'ci', 'edit@abc'));
  assert.equal(subjectLabels('robot', 'ci')[kindLabel], 'robot');
  assert.equal(subjectLabels('user', 'ci')[userLabel], userKey('user', 'ci'));
  assert.equal(clusterUserName('user', 'ci'), 'ci');
  assert.equal(clusterUserName('robot', 'ci'), `${robotUserPrefix}ci`);
});

test('the new names never reuse a legacy name (sha256 of the bare user name)', async () => {
  const { createHash } = await import('node:crypto');
  for (const u of ['ci', 'alice@example.com', 'user:ci', 'robot:ci'])
    assert.notEqual(
      serviceAccountName('user', u),
      `kg-u-${createHash('sha256').update(u).digest('hex').slice(0, 16)}`,
    );
});

test('property: distinct subjects get distinct keys and account names', () => {
  fc.assert(
    fc.property(kind, fc.string(), kind, fc.string(), (k1, n1, k2, n2) => {
      fc.pre(k1 !== k2 || n1 !== n2);
      assert.notEqual(identityKey(k1, n1), identityKey(k2, n2));
      assert.notEqual(serviceAccountName(k1, n1), serviceAccountName(k2, n2));
    }),
  );
});

test('property: any name, however long or odd, gives a valid, kind-prefixed account name', () => {
  fc.assert(
    fc.property(kind, fc.string({ maxLength: 2000 }), (k, n) => {
      const sa = serviceAccountName(k, n);
      assert.match(sa, DNS1123_LABEL);
      assert.ok(sa.startsWith({ user: 'kg-u-', robot: 'kg-r-', runbook: 'kg-b-' }[k]));
      assert.match(bindingName(k, n, 'x@0123456789ab'), DNS1123_LABEL);
    }),
  );
});

test('the agent refuses a person who claims the robot prefix, or an unknown kind', () => {
  assert.match(
    identityProblem({ user: `${robotUserPrefix}ci`, groups: [] }) ?? '',
    /reserved for robots/,
  );
  assert.match(
    identityProblem({ user: `${robotUserPrefix}ci`, groups: [], kind: 'user' }) ?? '',
    /reserved for robots/,
  );
  assert.equal(identityProblem({ user: 'ci', groups: [], kind: 'robot' }), undefined);
  assert.match(
    identityProblem({ user: 'ci', groups: [], kind: 'admin' as 'user' }) ?? '',
    /subject kind/,
  );
});

test('a runbook is a subject of its own: kg-b- accounts, its own cluster name, never claimed by a person', () => {
  assert.match(serviceAccountName('runbook', 'scale-deployment'), /^kg-b-[0-9a-f]{16}$/);
  assert.notEqual(serviceAccountName('runbook', 'ci'), serviceAccountName('robot', 'ci'));
  assert.notEqual(serviceAccountName('runbook', 'ci'), serviceAccountName('user', 'ci'));
  assert.equal(subjectLabels('runbook', 'ci')[kindLabel], 'runbook');
  assert.equal(clusterUserName('runbook', 'ci'), `${runbookUserPrefix}ci`);
  assert.equal(identityProblem({ user: 'ci', groups: [], kind: 'runbook' }), undefined);
  for (const kind of [undefined, 'user'] as const)
    assert.match(
      identityProblem({ user: `${runbookUserPrefix}ci`, groups: [], ...(kind ? { kind } : {}) }) ??
        '',
      /reserved for robots and runbooks/,
    );
});
