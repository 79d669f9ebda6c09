/**
 * Namespace profiles (proxy/namespaces/profile-spec.ts), the objects a
 * profile gives a namespace (desired.ts) and the rule that an owner never
 * hands out more than they hold (proxy/authz/covers.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { nameProblem, validateProfile } from '../../proxy/namespaces/profile-spec.js';
import { desiredNamespace } from '../../proxy/namespaces/desired.js';
import { uncovered } from '../../proxy/authz/covers.js';
import { builtinRoles } from '../../proxy/authz/builtin-roles.js';

const ok = (raw: unknown) => {
  const r = validateProfile(raw);
  assert.deepEqual(r.problems, []);
  return r.profile!;
};
const problems = (raw: unknown) => validateProfile(raw).problems.join('\n');
const base = { name: 'dev', clusters: { names: ['dev'] } };

describe('namespace profiles', () => {
  test('defaults: admin owners, edit and view members, default-deny, five each, no approval', () => {
    const p = ok(base);
    assert.equal(p.ownerRole, 'admin');
    assert.deepEqual(p.memberRoles, ['edit', 'view']);
    assert.equal(p.networkPolicy, 'default-deny');
    assert.equal(p.perUserLimit, 5);
    assert.equal(p.approval, null);
    assert.deepEqual(p.naming, { prefix: '', pattern: '', maxLength: 63 });
  });

  test('every problem at once, each naming its field', () => {
    const text = problems({
      name: 'Bad_Name',
      clusters: {},
      quota: { pods: 'lots', 'bad key!': '1' },
      networkPolicy: 'open',
      labels: { 'kubegate.dev/owner': 'x', ok: 'not a valid value!' },
      perUserLimit: -1,
      approval: { approvers: { groups: [] } },
      surprise: true,
    });
    for (const want of [
      /^name:/m,
      /^clusters: give names/m,
      /quota.pods: "lots" is not a quantity/,
      /quota: "bad key!" is not a resource name/,
      /^networkPolicy:/m,
      /"kubegate.dev\/owner" is set by kubegate itself/,
      /labels.ok: .* is not a valid label value/,
      /^perUserLimit:/m,
      /approval.approvers.groups: name at least one group/,
      /^surprise: unknown field/m,
    ])
      assert.match(text, want);
  });

  test('hostile input: not an object, __proto__ keys, huge maps', () => {
    assert.match(problems([]), /must be a JSON object/);
    assert.match(problems(null), /must be a JSON object/);
    assert.match(
      problems({ ...base, quota: JSON.parse('{"__proto__": "5", "pods": "3"}') }),
      /"__proto__" is not a resource name/,
    );
    assert.match(
      problems({ ...base, annotations: JSON.parse('{"__proto__": {"polluted": true}}') }),
      /"__proto__" is not a valid label key/,
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`r${i}`, '1']));
    assert.match(problems({ ...base, quota: many }), /at most 50 resources/);
  });

  test('name patterns that could backtrack for ever are refused', () => {
    for (const bad of ['(a+)+', '(a*)*b', '([a-z]+)*', '(\\w+){2,}', '(?=x)a', '(a)\\1'])
      assert.match(problems({ ...base, naming: { pattern: bad } }), /naming.pattern/, bad);
    assert.match(problems({ ...base, naming: { pattern: '[' } }), /not a regular expression/);
    ok({ ...base, naming: { pattern: '[a-z]+-(dev|test)' } });
  });

  test('the name rule says what it wants', () => {
    const p = ok({ ...base, naming: { prefix: 'team-', maxLength: 20, pattern: 'team-[a-z]+' } });
    assert.equal(nameProblem(p, 'team-a'), undefined);
    assert.match(nameProblem(p, 'payments')!, /start with "team-"/);
    assert.match(nameProblem(p, 'team-abcdefghijklmnopq')!, /at most 20 characters/);
    assert.match(nameProblem(p, 'team-a1')!, /match team-\[a-z\]\+/);
    assert.match(nameProblem(p, 'Team-A')!, /DNS label/);
    assert.match(nameProblem(p, 'team-a\n')!, /DNS label/);
    const open = ok(base);
    for (const reserved of ['default', 'kube-system', 'kube-public', 'kubegate-system'])
      assert.match(nameProblem(open, reserved)!, /reserved/);
  });

  test('what a namespace gets: quota, limits, deny-from-outside, labels', () => {
    const p = ok({
      ...base,
      quota: { pods: '2' },
      limits: { default: { cpu: '200m' } },
      labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
    });
    const d = desiredNamespace({ name: 'team-a', profile: p, owner: 'dev@example.com' });
    assert.equal(d.labels['kubegate.dev/namespace-profile'], 'dev');
    assert.equal(d.labels['pod-security.kubernetes.io/enforce'], 'baseline');
    assert.equal(d.annotations['kubegate.dev/owner'], 'dev@example.com');
    assert.deepEqual(
      d.objects.map((o) => `${o.kind}/${o.metadata.name}`),
      [
        'ResourceQuota/kubegate-quota',
        'LimitRange/kubegate-limits',
        'NetworkPolicy/kubegate-default-deny',
        'NetworkPolicy/kubegate-allow-same-namespace',
      ],
    );
    const none = desiredNamespace({
      name: 'x',
      profile: ok({ ...base, networkPolicy: 'none' }),
      owner: 'o',
    });
    assert.deepEqual(none.objects, []);
  });
});

describe('an owner gives only what they hold', () => {
  const rules = (name: string) => builtinRoles.find((r) => r.name === name)!.rules;
  test('admin covers edit and view; edit does not cover admin; view covers nothing more', () => {
    assert.deepEqual(uncovered(rules('admin'), rules('edit')), []);
    assert.deepEqual(uncovered(rules('admin'), rules('view')), []);
    assert.deepEqual(uncovered(rules('edit'), rules('view')), []);
    assert.ok(uncovered(rules('edit'), rules('admin')).length > 0);
    assert.ok(uncovered(rules('view'), rules('edit')).length > 0);
    assert.deepEqual(uncovered([], []), []);
  });
  test('wildcards asked for need wildcards held; explicit-only verbs need naming', () => {
    const held = [{ apiGroups: ['apps'], resources: ['*'], verbs: ['*'] }];
    assert.deepEqual(
      uncovered(held, [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }]),
      [],
    );
    assert.ok(
      uncovered(held, [{ apiGroups: ['*'], resources: ['deployments'], verbs: ['get'] }]).length,
    );
    assert.ok(
      uncovered(held, [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['escalate'] }])
        .length,
    );
    assert.ok(
      uncovered(
        [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }],
        [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['*'] }],
      ).length,
    );
    const named = [
      { apiGroups: [''], resources: ['configmaps'], resourceNames: ['a'], verbs: ['get'] },
    ];
    assert.deepEqual(uncovered(named, named), []);
    assert.ok(
      uncovered(named, [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get'] }]).length,
    );
  });
});
