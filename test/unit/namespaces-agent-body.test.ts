/**
 * The namespaces control message as the agent checks it
 * (agent/namespaces/body.ts): only a body that is not a list of named
 * entries, or that is too long, is refused whole; a hostile entry — reserved
 * or malformed names, kinds outside the three, objects not named kubegate-…,
 * keys that are not Kubernetes keys (`__proto__` included), huge or deep
 * specs — becomes that entry's error, and what is kept is copied field by
 * field.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  maxObjectsPerNamespace,
  namespaceNameProblem,
  namespacesBody,
  type CheckedEntry,
} from '../../agent/namespaces/body.js';
import { isKgError } from '../../common/errors.js';
import { maxNamespacesPerMessage } from '../../common/tunnel-protocol.js';

const quota = {
  apiVersion: 'v1',
  kind: 'ResourceQuota',
  metadata: { name: 'kubegate-quota' },
  spec: { hard: { pods: '10' } },
};
const good = (name = 'team-a', extra: Record<string, unknown> = {}) => ({
  name,
  labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
  annotations: { 'kubegate.dev/owner': 'alice' },
  objects: [quota],
  ...extra,
});

/** One entry through the parser (from JSON text, as it arrives). */
function one(entry: unknown): CheckedEntry {
  const parsed = JSON.parse(JSON.stringify({ namespaces: [entry] })) as unknown;
  return namespacesBody(parsed)[0]!;
}
const problem = (entry: unknown) => one(entry).problem ?? '';

const refusedWhole = (value: unknown, field: RegExp) =>
  assert.throws(
    () => namespacesBody(value),
    (e: unknown) => isKgError(e) && e.status === 400 && field.test(e.message),
  );

test('refused whole: not an object with a list, too many entries, an entry without a name', () => {
  for (const v of [null, [], 'x', 1, {}, { namespaces: {} }, { namespaces: 'team-a' }])
    refusedWhole(v, /namespaces must be a list/);
  refusedWhole(
    { namespaces: Array.from({ length: maxNamespacesPerMessage + 1 }, (_, i) => good(`ns-${i}`)) },
    /more than 500/,
  );
  refusedWhole({ namespaces: [good(), { labels: {} }] }, /namespaces\[1\]\.name must be a string/);
  refusedWhole({ namespaces: [good(), null] }, /namespaces\[1\]\.name/);
  refusedWhole({ namespaces: [{ name: 7 }] }, /namespaces\[0\]\.name/);
  // 500 is fine.
  const ok = namespacesBody({
    namespaces: Array.from({ length: maxNamespacesPerMessage }, (_, i) => good(`ns-${i}`)),
  });
  assert.equal(ok.length, 500);
  assert.ok(ok.every((e) => e.desired));
});

test('a good entry is copied field by field; unknown fields go, the namespace is ours to set', () => {
  const e = one(
    good('team-a', {
      evil: true,
      objects: [
        {
          ...quota,
          status: { used: {} },
          metadata: {
            name: 'kubegate-quota',
            namespace: 'kube-system',
            ownerReferences: [{ kind: 'Namespace' }],
            labels: { tier: 'gold' },
          },
        },
      ],
    }),
  );
  assert.equal(e.problem, undefined);
  assert.deepEqual(e.desired, {
    name: 'team-a',
    labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
    annotations: { 'kubegate.dev/owner': 'alice' },
    objects: [
      {
        apiVersion: 'v1',
        kind: 'ResourceQuota',
        metadata: { name: 'kubegate-quota', labels: { tier: 'gold' }, annotations: {} },
        spec: { hard: { pods: '10' } },
      },
    ],
  });
  assert.equal(one(good('team-a', { retire: true })).desired?.retire, true);
  assert.equal(one(good('team-a', { retire: false })).desired?.retire, undefined);
  assert.match(problem(good('team-a', { retire: 'yes' })), /retire must be true or false/);
});

test('names that are not DNS labels, and reserved namespaces, are refused per entry', () => {
  for (const name of [
    '',
    'Team-A',
    'team_a',
    '-team',
    'team-',
    'team.a',
    'a'.repeat(64),
    '../x',
    'tëam',
    '__proto__',
  ])
    assert.match(problem(good(name)), /is not a DNS label/, JSON.stringify(name));
  for (const name of [
    'default',
    'kube-system',
    'kube-public',
    'kube-node-lease',
    'kubegate-system',
  ])
    assert.match(problem(good(name)), /is reserved/, name);
  assert.match(namespaceNameProblem('agent-home', 'agent-home') ?? '', /is reserved/);
  assert.equal(namespaceNameProblem('a'.repeat(63), 'kubegate-system'), undefined);
  // The other entries of the message are kept.
  const list = namespacesBody({ namespaces: [good('kube-system'), good('team-a')] });
  assert.ok(list[0]!.problem);
  assert.ok(list[1]!.desired);
});

test('a namespace listed twice: the second is refused', () => {
  const [a, b] = namespacesBody({ namespaces: [good(), good()] });
  assert.ok(a!.desired);
  assert.match(b!.problem ?? '', /listed twice/);
});

test('object kinds other than the three, and mismatched apiVersions, are refused', () => {
  for (const kind of [
    'Secret',
    'Role',
    'RoleBinding',
    'ClusterRoleBinding',
    'Namespace',
    'resourcequota',
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    7,
    null,
  ])
    assert.match(
      problem(good('team-a', { objects: [{ ...quota, kind }] })),
      /is not one kubegate manages/,
      String(kind),
    );
  assert.match(
    problem(good('team-a', { objects: [{ ...quota, kind: 'NetworkPolicy' }] })),
    /apiVersion of a NetworkPolicy must be networking\.k8s\.io\/v1/,
  );
  assert.match(
    problem(good('team-a', { objects: [{ ...quota, apiVersion: 'v2' }] })),
    /apiVersion of a ResourceQuota must be v1/,
  );
});

test('object names must be kubegate-… DNS subdomains; duplicates and too many are refused', () => {
  for (const name of ['quota', 'kube-quota', 'kubegate-Quota', 'kubegate-', 'x/kubegate-a', 7])
    assert.match(
      problem(good('team-a', { objects: [{ ...quota, metadata: { name } }] })),
      /metadata\.name/,
      String(name),
    );
  assert.match(problem(good('team-a', { objects: [quota, quota] })), /listed twice/);
  const many = Array.from({ length: maxObjectsPerNamespace + 1 }, (_, i) => ({
    ...quota,
    metadata: { name: `kubegate-q${i}` },
  }));
  assert.match(problem(good('team-a', { objects: many })), /more than 32/);
  assert.match(problem(good('team-a', { objects: {} })), /objects must be a list/);
  assert.match(problem(good('team-a', { objects: [null] })), /objects\[0\] must be an object/);
});

test('labels and annotations must be Kubernetes keys and values; __proto__ pollutes nothing', () => {
  const hostile = JSON.parse(
    '{"name":"team-a","objects":[],"labels":{"__proto__":"x","ok":"y"},"annotations":{}}',
  ) as unknown;
  const e = namespacesBody({ namespaces: [hostile] })[0]!;
  assert.match(e.problem ?? '', /"__proto__" is not a valid label key/);
  assert.equal(({} as Record<string, unknown>).x, undefined, 'no prototype was touched');
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ labels: { 'a b': 'x' } }, /not a valid label key/],
    [{ labels: { 'Example.com/x': 'x' } }, /not a valid label key/],
    [{ labels: { x: 'a'.repeat(64) } }, /not a valid label value/],
    [{ labels: { x: 'bad value' } }, /not a valid label value/],
    [{ labels: { x: 1 } }, /must be a string/],
    [{ labels: [] }, /labels must be an object/],
    [{ annotations: { 'a b': 'x' } }, /not a valid label key/],
    [{ annotations: { x: {} } }, /must be a string/],
    [{ annotations: { x: 'a'.repeat(300 * 1024) } }, /more than 256 KiB/],
    [{ objects: [{ ...quota, metadata: { name: 'kubegate-q', labels: { '': 'x' } } }] }, /key/],
  ];
  for (const [extra, re] of cases) assert.match(problem(good('team-a', extra)), re);
  // Any annotation value is fine, up to the limit.
  assert.ok(one(good('team-a', { annotations: { note: 'free text: ✓ / spaces' } })).desired);
});

test('specs must be objects, shallow enough and small enough', () => {
  const deep: Record<string, unknown> = {};
  let at = deep;
  for (let i = 0; i < 40; i++) at = (at.x = {}) as Record<string, unknown>;
  const cases: [unknown, RegExp][] = [
    [undefined, /spec must be an object/],
    [[], /spec must be an object/],
    ['x', /spec must be an object/],
    [deep, /nested too deep/],
    [{ hard: { x: 'a'.repeat(70 * 1024) } }, /more than 64 KiB/],
  ];
  for (const [spec, re] of cases)
    assert.match(problem(good('team-a', { objects: [{ ...quota, spec }] })), re);
  // A key the apiserver does not know is passed on as data (it refuses it: fieldValidation=Strict).
  const odd = JSON.parse('{"hard":{"pods":"1"},"__proto__":{"polluted":true}}') as unknown;
  const e = namespacesBody({
    namespaces: [{ ...good(), objects: [{ ...quota, spec: odd }] }],
  })[0]!;
  const spec = e.desired!.objects[0]!.spec;
  assert.equal(Object.getPrototypeOf(spec), Object.prototype);
  assert.match(JSON.stringify(spec), /"__proto__":\{"polluted":true\}/);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('an entry with many problems names the first three and counts the rest', () => {
  const p = problem(
    good('team-a', { labels: { 'a b': '1', 'c d': '2', 'e f': '3', 'g h': '4', 'i j': '5' } }),
  );
  assert.match(p, /^namespace "team-a" refused: /);
  assert.match(p, /\(and 2 more\)$/);
});
