/** The groups claim in every shape a provider sends, and the sign-in identity built from it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { readGroupsClaim, type GroupsClaim } from '../../proxy/identity/groups.js';
import { loginIdentity } from '../../proxy/identity/login-identity.js';
import { KgError } from '../../common/errors.js';

const table: {
  name: string;
  claims: Record<string, unknown>;
  claim?: string;
  want: GroupsClaim;
}[] = [
  {
    name: 'array',
    claims: { groups: ['a', 'b'] },
    want: { kind: 'groups', groups: ['a', 'b'], form: 'array', dropped: [] },
  },
  {
    name: 'comma-separated string, spaces and empties',
    claims: { groups: ' a, b ,,c ' },
    want: { kind: 'groups', groups: ['a', 'b', 'c'], form: 'string', dropped: [] },
  },
  {
    name: 'a single group as a string',
    claims: { groups: 'admins' },
    want: { kind: 'groups', groups: ['admins'], form: 'string', dropped: [] },
  },
  {
    name: 'duplicates once',
    claims: { groups: ['a', 'a', ' a '] },
    want: { kind: 'groups', groups: ['a'], form: 'array', dropped: [] },
  },
  {
    name: 'system: groups dropped',
    claims: { groups: ['system:masters', 'dev'] },
    want: { kind: 'groups', groups: ['dev'], form: 'array', dropped: ['system:masters'] },
  },
  { name: 'missing', claims: { sub: 'x' }, want: { kind: 'missing' } },
  { name: 'null', claims: { groups: null }, want: { kind: 'missing' } },
  {
    name: 'empty array is an empty list, not missing',
    claims: { groups: [] },
    want: { kind: 'groups', groups: [], form: 'array', dropped: [] },
  },
  {
    name: 'Entra ID distributed claim',
    claims: {
      _claim_names: { groups: 'src1' },
      _claim_sources: { src1: { endpoint: 'https://x' } },
    },
    want: { kind: 'overage', marker: '_claim_names' },
  },
  {
    name: 'overage wins over a (partial) list',
    claims: { groups: ['a'], _claim_names: { groups: 'src1' } },
    want: { kind: 'overage', marker: '_claim_names' },
  },
  {
    name: 'overage for a custom claim name',
    claim: 'roles',
    claims: { _claim_names: { roles: 'src1' } },
    want: { kind: 'overage', marker: '_claim_names' },
  },
  {
    name: '_claim_names for another claim is not an overage of groups',
    claims: { groups: ['a'], _claim_names: { address: 'src1' } },
    want: { kind: 'groups', groups: ['a'], form: 'array', dropped: [] },
  },
  {
    name: 'hasgroups true',
    claims: { hasgroups: true },
    want: { kind: 'overage', marker: 'hasgroups' },
  },
  {
    name: 'hasgroups "true"',
    claims: { hasgroups: 'true' },
    want: { kind: 'overage', marker: 'hasgroups' },
  },
  {
    name: 'hasgroups false is no marker',
    claims: { hasgroups: false, groups: ['a'] },
    want: { kind: 'groups', groups: ['a'], form: 'array', dropped: [] },
  },
  {
    name: 'a number is invalid',
    claims: { groups: 7 },
    want: {
      kind: 'invalid',
      detail:
        'the "groups" claim is a number; expected a list of strings or a comma-separated string',
    },
  },
  {
    name: 'an object is invalid',
    claims: { groups: { a: 1 } },
    want: {
      kind: 'invalid',
      detail:
        'the "groups" claim is a object; expected a list of strings or a comma-separated string',
    },
  },
  {
    name: 'a list with a non-string is invalid',
    claims: { groups: ['a', 3] },
    want: {
      kind: 'invalid',
      detail: 'the "groups" claim is a list with a number in it; expected only strings',
    },
  },
];

for (const t of table) {
  test(`groups claim: ${t.name}`, () => {
    assert.deepEqual(readGroupsClaim(t.claims, t.claim ?? 'groups'), t.want);
  });
}

test('groups claim (property): every kept name is trimmed, non-empty, not system:*, from the input', () => {
  fc.assert(
    fc.property(fc.array(fc.string()), fc.boolean(), (names, asString) => {
      const input = asString ? names.map((n) => n.replace(/,/g, '')).join(',') : names;
      const r = readGroupsClaim({ groups: input }, 'groups');
      assert.equal(r.kind, 'groups');
      if (r.kind !== 'groups') return;
      const expected = (asString ? (input as string).split(',') : names).map((n) => n.trim());
      for (const g of r.groups) {
        assert.equal(g, g.trim());
        assert.notEqual(g, '');
        assert.ok(!g.startsWith('system:'));
        assert.ok(expected.includes(g));
      }
      for (const e of expected)
        if (e !== '' && !e.startsWith('system:')) assert.ok(r.groups.includes(e), `kept ${e}`);
      assert.equal(new Set(r.groups).size, r.groups.length);
    }),
  );
});

function logger() {
  const lines: string[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(c: Buffer, _e, cb) {
        lines.push(c.toString());
        cb();
      },
    }),
  );
  return { log, lines };
}

const settings = { usernameClaim: 'email', groupsClaim: 'groups', overage: 'refuse' as const };
const base = { iss: 'https://idp.example', sub: 's1', email: 'a@example.com', name: 'A' };

test('sign-in identity: user name from the configured claim, groups read, missing groups logged', () => {
  const { log, lines } = logger();
  assert.deepEqual(loginIdentity({ ...base, groups: ['x'] }, settings, log), {
    issuer: 'https://idp.example',
    subject: 's1',
    username: 'a@example.com',
    email: 'a@example.com',
    name: 'A',
    groups: ['x'],
  });
  assert.equal(lines.length, 0);
  assert.deepEqual(loginIdentity(base, settings, log).groups, []);
  assert.match(lines.join(''), /sent no \\"groups\\" claim/);
  const bySub = loginIdentity(
    { ...base, groups: 'g1,g2' },
    { ...settings, usernameClaim: 'sub' },
    log,
  );
  assert.equal(bySub.username, 's1');
  assert.deepEqual(bySub.groups, ['g1', 'g2']);
});

test('sign-in identity: refusals', () => {
  const { log } = logger();
  const refused = (claims: Record<string, unknown>, s = settings, re: RegExp) =>
    assert.throws(
      () => loginIdentity(claims, s, log),
      (e: unknown) => e instanceof KgError && e.code === 'KG_ERR_FORBIDDEN' && re.test(e.message),
    );
  refused({ ...base, _claim_names: { groups: 'src' } }, settings, /too many groups/);
  refused({ ...base, hasgroups: true }, settings, /groups overage/);
  refused({ ...base, groups: 5 }, settings, /is a number/);
  refused({ ...base, email: undefined }, settings, /no "email" claim/);
  refused({ ...base, email: 'system:admin' }, settings, /reserved/);
  refused({ ...base, email_verified: false }, settings, /not verified/);
  refused({ ...base, sub: '' }, settings, /no issuer or subject/);
  // The fallback: an overage signs in with no groups.
  const fb = loginIdentity(
    { ...base, hasgroups: true },
    { ...settings, overage: 'no-groups' },
    log,
  );
  assert.deepEqual(fb.groups, []);
});
