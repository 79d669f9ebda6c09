/**
 * The Kubernetes grammar module: label keys and values, selectors as objects
 * and as text, field selectors. The text parser serves two readers — the CLI
 * (`--selector`) and request-info (may a list's field selector name the
 * object?) — and the properties at the end pin how they relate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KgError } from '../../common/errors.js';
import {
  formatSelector,
  isLabelKey,
  isLabelValue,
  labelKeyProblem,
  labelValueProblem,
  listLabelSelectorAccepted,
  parseFieldSelectorName,
  parseSelectorRequirements,
  parseSelectorText,
  selectorMatches,
  validateSelector,
  type LabelSelector,
  type SelectorRequirement,
} from '../../common/kube-grammar.js';

// --- label keys and values ---------------------------------------------------

const validKeys = [
  'a',
  'A',
  '9',
  'app',
  'a-b_c.d',
  'x'.repeat(63),
  'in',
  'a/b',
  'example.com/tier',
  'app.kubernetes.io/name',
  'a-1.b-2.c/x',
  `${'a'.repeat(253)}/x`,
  `${'a.'.repeat(126)}a/${'x'.repeat(63)}`,
];
const invalidKeys = [
  '',
  '-a',
  'a-',
  '_a',
  'a_',
  '.a',
  'a.',
  'x'.repeat(64),
  'a b',
  'é',
  'a\n',
  '\u00a0a',
  'a\u00a0',
  'a=b',
  '/a',
  'a/',
  'A/b',
  'a_b/c',
  'a..b/x',
  'a.-b/x',
  'a-.b/x',
  '-a/x',
  'a-/x',
  '.a/x',
  `${'a'.repeat(254)}/x`,
  `a/${'x'.repeat(64)}`,
  'a/b/c',
  'a//b',
];
for (const k of validKeys) {
  test(`label key ${JSON.stringify(k.length > 40 ? `${k.slice(0, 20)}…(${k.length})` : k)} is valid`, () => {
    assert.equal(isLabelKey(k), true);
    assert.equal(labelKeyProblem(k, 'at'), undefined);
  });
}
for (const k of invalidKeys) {
  test(`label key ${JSON.stringify(k.length > 40 ? `${k.slice(0, 20)}…(${k.length})` : k)} is refused`, () => {
    assert.equal(isLabelKey(k), false);
    assert.match(labelKeyProblem(k, 'at') ?? '', /^at: ".*" is not a valid label key \(/s);
  });
}

test('a prefix must be a DNS-1123 subdomain: "a..b/x" is refused everywhere (the cluster and binding checks once accepted it)', () => {
  // The pattern cluster labels and binding selectors used allowed '.' and '-'
  // anywhere inside the prefix; Kubernetes does not, and neither does
  // request-info. One rule now, Kubernetes' own.
  assert.equal(isLabelKey('a..b/x'), false);
  const problems: string[] = [];
  assert.equal(validateSelector({ matchLabels: { 'a..b/x': 'v' } }, 'sel', problems), undefined);
  assert.match(problems[0] ?? '', /^sel\.matchLabels: "a\.\.b\/x" is not a valid label key/);
  assert.equal(listLabelSelectorAccepted('a..b/x=v'), false);
});

for (const v of ['', 'a', 'A-b_c.9', 'x'.repeat(63), 'in']) {
  test(`label value ${JSON.stringify(v.length > 40 ? `x…(${v.length})` : v)} is valid`, () => {
    assert.equal(isLabelValue(v), true);
    assert.equal(labelValueProblem(v, 'at'), undefined);
  });
}
for (const v of ['x'.repeat(64), '-a', 'a-', '.a', 'a b', 'a/b', 'é', 'a,b', ' ']) {
  test(`label value ${JSON.stringify(v.length > 40 ? `x…(${v.length})` : v)} is refused`, () => {
    assert.equal(isLabelValue(v), false);
    assert.match(labelValueProblem(v, 'at') ?? '', /^at: ".*" is not a valid label value/);
  });
}
test('a label value that is not a string is refused', () => {
  assert.equal(labelValueProblem(3, 'at'), 'at: must be a string');
  assert.equal(labelValueProblem(null, 'at'), 'at: must be a string');
});

// --- selectors as objects ----------------------------------------------------

test('validateSelector returns a clean copy and lists every problem', () => {
  const problems: string[] = [];
  assert.deepEqual(
    validateSelector(
      {
        matchLabels: { env: 'prod' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }],
      },
      'sel',
      problems,
    ),
    {
      matchLabels: { env: 'prod' },
      matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }],
    },
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(validateSelector({}, 'sel', problems), {});
  assert.equal(
    validateSelector(
      {
        extra: 1,
        matchLabels: { 'bad key!': 'x', ok: 3 },
        matchExpressions: [
          { key: 'a', operator: 'Gt', values: ['1'] },
          { key: 'a', operator: 'In' },
          { key: 'a', operator: 'Exists', values: ['x'] },
          'nope',
        ],
      },
      'sel',
      problems,
    ),
    undefined,
  );
  assert.deepEqual(problems, [
    'sel.extra: unknown field (allowed: matchLabels, matchExpressions)',
    `sel.matchLabels: "bad key!" is not a valid label key (an optional DNS subdomain prefix and '/', then at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends)`,
    'sel.matchLabels["ok"]: must be a string',
    'sel.matchExpressions[0].operator: "Gt" is not one of In, NotIn, Exists, DoesNotExist',
    'sel.matchExpressions[1].values: must be non-empty for operator In',
    'sel.matchExpressions[2].values: must be empty for operator Exists',
    'sel.matchExpressions[3]: must be an object with key, operator and values',
  ]);
  for (const bad of [null, [], 'env=prod', 3]) {
    const p: string[] = [];
    assert.equal(validateSelector(bad, 'sel', p), undefined);
    assert.equal(p.length, 1);
  }
});

// --- selectors as text: the CLI ----------------------------------------------

const cliCases: [string, LabelSelector][] = [
  ['env=prod', { matchLabels: { env: 'prod' } }],
  ['env==prod', { matchLabels: { env: 'prod' } }],
  ['env=', { matchLabels: { env: '' } }],
  ['env!=', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: [''] }] }],
  ['  env = prod  ', { matchLabels: { env: 'prod' } }],
  ['env=prod,env=prod', { matchLabels: { env: 'prod' } }],
  ['a in(b)', { matchExpressions: [{ key: 'a', operator: 'In', values: ['b'] }] }],
  ['a\tin\n(\rb , c )', { matchExpressions: [{ key: 'a', operator: 'In', values: ['b', 'c'] }] }],
  ['a notin ()', { matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] }],
  ['! a', { matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }],
  ['in=a', { matchLabels: { in: 'a' } }],
  ['!in', { matchExpressions: [{ key: 'in', operator: 'DoesNotExist' }] }],
  ['a=in', { matchLabels: { a: 'in' } }],
  ['constructor=x', { matchLabels: { constructor: 'x' } }],
  // Not a separator for Kubernetes: part of the key, which validation then refuses.
  ['env\u00a0=prod', { matchLabels: { 'env\u00a0': 'prod' } }],
  ['a\u2003b', { matchExpressions: [{ key: 'a\u2003b', operator: 'Exists' }] }],
];
for (const [text, want] of cliCases) {
  test(`CLI selector ${JSON.stringify(text)}`, () => {
    const sel = parseSelectorText(text);
    assert.deepEqual(sel, want);
    // `NotIn [""]` is written `k notin ()`, which reads back as the empty set.
    if (text !== 'env!=') assert.deepEqual(parseSelectorText(formatSelector(sel)), sel);
  });
}

const cliRefused: [string, RegExp][] = [
  ['', /empty selector/],
  ['  \t', /empty selector/],
  [',', /expected a label key, found ","/],
  ['a,', /expected a label key, found the end/],
  [',a', /expected a label key, found ","/],
  ['a,,b', /expected a label key, found ","/],
  ['a in (b', /unbalanced parentheses/],
  ['a in b)', /unbalanced parentheses/],
  ['a in ((b))', /expected a label value, found "\("/],
  ['a in (b,,c)', /expected a label value, found ","/],
  ['a in (,b)', /expected a label value, found ","/],
  ['a in (b,)', /expected a label value, found "\)"/],
  ['a in (b c)', /expected "," or "\)", found "c"/],
  ['a in', /expected "\(" after "in", found the end/],
  ['a notin b', /expected "\(" after "notin", found "b"/],
  ['a in (b) c', /expected "," or the end, found "c"/],
  ['a > 3', /'<' and '>' are not supported/],
  ['a<3', /'<' and '>' are not supported/],
  ['a=b=c', /expected "," or the end, found "="/],
  ['!a=b', /expected "," or the end, found "="/],
  ['!!a', /expected a label key after "!", found "!"/],
  ['a b', /expected =, ==, !=, in, notin, "," or the end, found "b"/],
  ['(a)', /expected a label key, found "\("/],
  ['=b', /expected a label key, found "="/],
  ['!=b', /expected a label key, found "!="/],
  ['a = = b', /expected "," or the end, found "="/],
  ['env=prod,env=dev', /"env" cannot equal both "prod" and "dev"/],
];
for (const [text, why] of cliRefused) {
  test(`CLI refuses ${JSON.stringify(text)}`, () => {
    assert.throws(
      () => parseSelectorText(text),
      (err: unknown) => {
        assert.ok(err instanceof KgError);
        assert.equal(err.code, 'KG_ERR_BAD_REQUEST');
        assert.ok(err.message.startsWith(`selector ${JSON.stringify(text)}: `), err.message);
        assert.match(err.message, why);
        return true;
      },
    );
  });
}

test('`__proto__=x` stays a key of its own (refused by validation), it never vanishes into {}', () => {
  const sel = parseSelectorText('__proto__=x');
  assert.ok(Object.hasOwn(sel.matchLabels ?? {}, '__proto__'));
  const problems: string[] = [];
  assert.equal(validateSelector(sel, 'sel', problems), undefined);
  assert.match(problems[0] ?? '', /"__proto__" is not a valid label key/);
});

test('`in ()` is the empty set for the CLI, which validation refuses by name', () => {
  const problems: string[] = [];
  assert.equal(validateSelector(parseSelectorText('a in ()'), 'sel', problems), undefined);
  assert.deepEqual(problems, ['sel.matchExpressions[0].values: must be non-empty for operator In']);
  assert.equal(listLabelSelectorAccepted('a in ()'), false);
});

test('very long selectors are read in linear time', () => {
  const many = Array.from({ length: 50_000 }, (_, i) => `k${i}=v`).join(',');
  const t0 = Date.now();
  assert.equal(Object.keys(parseSelectorText(many).matchLabels ?? {}).length, 50_000);
  assert.equal(listLabelSelectorAccepted(many), true);
  const longKey = 'a'.repeat(1_000_000);
  assert.deepEqual(parseSelectorText(longKey), {
    matchExpressions: [{ key: longKey, operator: 'Exists' }],
  });
  assert.equal(listLabelSelectorAccepted(longKey), false);
  assert.equal(listLabelSelectorAccepted(`a in (${'b,'.repeat(100_000)}b)`), true);
  assert.throws(() => parseSelectorText('('.repeat(100_000)), /unbalanced parentheses/);
  assert.equal(listLabelSelectorAccepted(')'.repeat(100_000)), false);
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

// --- selectors as text: request-info's list acceptance -----------------------

const listAccepted = [
  '',
  '  ',
  'a',
  '!a',
  'a=b',
  'a==b',
  'a!=b',
  'a=',
  'a=,b',
  'app=web,tier in (a,b),!legacy',
  'a in (b)',
  'a notin (b, c)',
  '!in',
  '!notin',
  'example.com/a=in',
  `${'a'.repeat(253)}/${'b'.repeat(63)}=${'c'.repeat(63)}`,
];
const listRefused = [
  ',',
  'a,',
  ',a',
  'a,,b',
  '=x',
  'a>1',
  'a<1',
  'in',
  'notin=a',
  'in in (a)',
  'a in ()',
  'a in (b,,c)',
  'a in (b,)',
  'a in (b',
  'a in b',
  'a b',
  '-a',
  'a=-b',
  'a..b/c',
  'a\u00a0=b',
  'a=b\u00a0',
  `a=${'c'.repeat(64)}`,
  `${'b'.repeat(64)}`,
  '!a=b',
  '!!a',
  '(a)',
];
for (const s of listAccepted) {
  test(`list labelSelector ${JSON.stringify(s.length > 40 ? `${s.slice(0, 20)}…` : s)} decodes`, () =>
    assert.equal(listLabelSelectorAccepted(s), true));
}
for (const s of listRefused) {
  test(`list labelSelector ${JSON.stringify(s.length > 40 ? `${s.slice(0, 20)}…` : s)} does not`, () =>
    assert.equal(listLabelSelectorAccepted(s), false));
}

/**
 * request-info's acceptance as it was written before the grammar moved here,
 * kept verbatim as the oracle: the shared parser must accept exactly the same
 * strings (it decides whether a field selector may name the object).
 */
function previousListAcceptance(s: string): boolean {
  const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
  const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
  const isKey = (k: string): boolean => {
    const slash = k.indexOf('/');
    const name = slash < 0 ? k : k.slice(slash + 1);
    if (slash >= 0) {
      const prefix = k.slice(0, slash);
      if (prefix === '' || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) return false;
    }
    return name.length <= 63 && QUALIFIED_NAME.test(name);
  };
  const isValue = (v: string) => v === '' || (v.length <= 63 && QUALIFIED_NAME.test(v));
  const SPECIAL = '=!(),<>';
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
  const lex = (): string[] | undefined => {
    const tokens: string[] = [];
    let i = 0;
    while (i < s.length) {
      const c = s[i] as string;
      if (isSpace(c)) {
        i++;
      } else if (SPECIAL.includes(c)) {
        if (c === '<' || c === '>') return undefined;
        const two = s.slice(i, i + 2);
        const tok = two === '!=' || two === '==' ? two : c;
        tokens.push(tok);
        i += tok.length;
      } else {
        let j = i;
        while (j < s.length && !SPECIAL.includes(s[j] as string) && !isSpace(s[j])) j++;
        tokens.push(s.slice(i, j));
        i = j;
      }
    }
    return tokens;
  };
  const isIdent = (t: string | undefined): t is string =>
    t !== undefined && !SPECIAL.includes(t[0] as string);
  const t = lex();
  if (!t) return false;
  let i = 0;
  if (t.length === 0) return true;
  for (;;) {
    if (t[i] === '!') {
      i++;
      if (!isIdent(t[i]) || !isKey(t[i] as string)) return false;
      i++;
    } else {
      const key = t[i];
      if (!isIdent(key) || key === 'in' || key === 'notin' || !isKey(key)) return false;
      i++;
      const op = t[i];
      if (op === '=' || op === '==' || op === '!=') {
        i++;
        if (isIdent(t[i])) {
          if (!isValue(t[i] as string)) return false;
          i++;
        }
      } else if (op === 'in' || op === 'notin') {
        i++;
        if (t[i] !== '(') return false;
        i++;
        for (;;) {
          if (!isIdent(t[i]) || !isValue(t[i] as string)) return false;
          i++;
          if (t[i] === ')') break;
          if (t[i] !== ',') return false;
          i++;
        }
        i++;
      } else if (op !== undefined && op !== ',') {
        return false;
      }
    }
    if (i === t.length) return true;
    if (t[i] !== ',') return false;
    i++;
  }
}

const gapArb = fc.constantFrom('', '', ' ', '  ', '\t', '\n', '\r', '\u00a0', '\u2003', '\v');
const keyArb = fc.constantFrom(
  'a',
  'env',
  'tier',
  'example.com/tier',
  'in',
  'notin',
  'a..b/x',
  '-x',
  'A/b',
  'é',
  'x'.repeat(64),
  '__proto__',
);
const valueArb = fc.constantFrom(
  '',
  'prod',
  'web',
  'in',
  'notin',
  '-v',
  'v_1',
  'é',
  'y'.repeat(64),
);
/** One requirement, mostly well-formed, with the gaps a person or an attacker might leave. */
const requirementArb = fc.oneof(
  fc.tuple(gapArb, keyArb, gapArb).map(([g1, k, g2]) => `${g1}${k}${g2}`),
  fc.tuple(gapArb, keyArb).map(([g, k]) => `!${g}${k}`),
  fc
    .tuple(keyArb, gapArb, fc.constantFrom('=', '==', '!='), gapArb, valueArb)
    .map(([k, g1, op, g2, v]) => `${k}${g1}${op}${g2}${v}`),
  fc
    .tuple(
      keyArb,
      gapArb,
      fc.constantFrom('in', 'notin'),
      gapArb,
      fc.array(fc.tuple(gapArb, valueArb), { maxLength: 4 }),
    )
    .map(([k, g1, op, g2, vs]) => `${k} ${op}${g1}(${vs.map(([g, v]) => g + v).join(',')})${g2}`),
);
const fragmentArb = fc.constantFrom(
  'a',
  'in',
  'notin',
  '!',
  '=',
  '==',
  '!=',
  '(',
  ')',
  ',',
  ' ',
  '\t',
  '\u00a0',
  '<',
  '>',
  'b.c/d',
  '-',
);
const selectorTextArb = fc.oneof(
  fc.array(requirementArb, { maxLength: 4 }).map((rs) => rs.join(',')),
  fc.array(fc.oneof(requirementArb, fragmentArb), { maxLength: 8 }).map((rs) => rs.join('')),
  fc.string({ maxLength: 30 }),
);

test('property: the shared parser accepts exactly what request-info accepted before', () => {
  fc.assert(
    fc.property(selectorTextArb, (s) => {
      assert.equal(listLabelSelectorAccepted(s), previousListAcceptance(s));
    }),
    { numRuns: 20_000 },
  );
});

/** apimachinery's meaning of one requirement on a label set. */
function requirementMatches(r: SelectorRequirement, labels: Record<string, string>): boolean {
  const present = Object.hasOwn(labels, r.key);
  const value = labels[r.key];
  switch (r.op) {
    case '':
      return present;
    case '!':
      return !present;
    case '=':
    case '==':
    case 'in':
      return present && r.values.includes(value as string);
    case '!=':
    case 'notin':
      return !present || !r.values.includes(value as string);
  }
}

const labelsArb = fc.dictionary(
  fc.constantFrom('a', 'env', 'tier', 'example.com/tier', 'in', 'notin'),
  fc.constantFrom('', 'prod', 'web', 'in'),
  { maxKeys: 4 },
);

/**
 * The CLI and request-info read selectors with the same parser; they differ
 * only where they must:
 *  - the empty selector: no requirement for the apiserver, a mistake for the
 *    CLI (a binding for every cluster is chosen explicitly, as `{}`);
 *  - `k=a,k=b`: valid for the apiserver (it matches nothing), refused by the
 *    CLI, whose matchLabels cannot hold both;
 *  - `in` or `notin` as the key of anything but `!k`: the CLI accepts it as
 *    the apiserver does, request-info does not (it only ever withholds a name);
 *  - `in ()`: the CLI reads the empty set, which validation refuses;
 *    request-info refuses it outright — both refuse.
 * Wherever both accept, the CLI's LabelSelector means what the text means.
 */
test('property: the CLI and request-info agree wherever both accept', () => {
  fc.assert(
    fc.property(selectorTextArb, labelsArb, (s, labels) => {
      const reqs = parseSelectorRequirements(s);
      let sel: LabelSelector | undefined;
      try {
        const parsed = parseSelectorText(s);
        sel = validateSelector(parsed, 'sel', []) ? parsed : undefined;
      } catch (err) {
        assert.ok(err instanceof KgError && err.code === 'KG_ERR_BAD_REQUEST');
      }
      const listOk = listLabelSelectorAccepted(s);
      if (listOk && sel === undefined) {
        assert.ok(Array.isArray(reqs));
        const eq = new Map<string, Set<string>>();
        for (const r of reqs)
          if (r.op === '=' || r.op === '==')
            eq.set(r.key, (eq.get(r.key) ?? new Set()).add(r.values[0] as string));
        const conflicting = [...eq.values()].some((vs) => vs.size > 1);
        assert.ok(reqs.length === 0 || conflicting, `CLI refused ${JSON.stringify(s)}`);
      }
      if (sel !== undefined && !listOk) {
        assert.ok(Array.isArray(reqs));
        assert.ok(
          reqs.some((r) => r.op !== '!' && (r.key === 'in' || r.key === 'notin')),
          `request-info refused ${JSON.stringify(s)}`,
        );
      }
      if (sel !== undefined) {
        assert.ok(Array.isArray(reqs));
        assert.equal(
          selectorMatches(sel, labels),
          reqs.every((r) => requirementMatches(r, labels)),
          JSON.stringify({ s, labels }),
        );
      }
    }),
    { numRuns: 20_000 },
  );
});

// --- field selectors ---------------------------------------------------------

const fieldCases: [string, { name: string | undefined } | undefined][] = [
  ['', { name: undefined }],
  [',', { name: undefined }],
  ['metadata.name=web', { name: 'web' }],
  ['metadata.name==web', { name: 'web' }],
  ['metadata.name!=web', { name: undefined }],
  ['metadata.name=', { name: '' }],
  ['spec.nodeName=n1,metadata.name=web', { name: 'web' }],
  ['metadata.name=b,metadata.name=a', { name: 'a' }],
  ['metadata.name=a\\,b', { name: 'a,b' }],
  ['metadata.name=a\\=b\\\\', { name: 'a=b\\' }],
  ['metadata.name=a\\b', undefined],
  ['metadata.name=a\\', undefined],
  ['metadata.name=a=b', undefined],
  ['metadata.name', undefined],
  ['a=b,c', undefined],
  [' metadata.name=web', { name: undefined }],
  ['metadata.name= web', { name: ' web' }],
];
for (const [sel, want] of fieldCases) {
  test(`field selector ${JSON.stringify(sel)}`, () =>
    assert.deepEqual(parseFieldSelectorName(sel), want));
}
