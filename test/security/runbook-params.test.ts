/**
 * Hostile runbook parameters: a value can never change which object a step
 * touches or the structure of what is sent. Each hostile value is either
 * refused (with every problem listed) or provably inert — the rendered
 * object deep-equals the template with the value placed as one string.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { validateRunbook, type RunbookSpec } from '../../proxy/runbooks/definition.js';
import { validateParams } from '../../proxy/runbooks/params.js';
import { renderRun } from '../../proxy/runbooks/render.js';
import { catalogue } from '../../proxy/runbooks/catalogue.js';

const deployments = { group: 'apps', version: 'v1', resource: 'deployments', namespaced: true };

/** A manifest with the free-text parameter in a whole value, inside text, in a list and deep down. */
const manifestTemplate = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'cfg', labels: { fixed: 'yes' }, annotations: { note: '{{text}}' } },
  data: {
    whole: '{{text}}',
    inside: 'before {{text}} after',
    twice: '{{text}}{{text}}',
    other: '{{name}}',
    list: ['{{text}}', 'x', 1],
    deep: { a: { b: { c: ['{{text}}'] } } },
  },
};

/** What rendering must give for `text`: the template with the value placed, built here by hand. */
function expected(text: string, name: string) {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'cfg',
      namespace: 'team-a',
      labels: { fixed: 'yes' },
      annotations: { note: text },
    },
    data: {
      whole: text,
      inside: `before ${text} after`,
      twice: text + text,
      other: name,
      list: [text, 'x', 1],
      deep: { a: { b: { c: [text] } } },
    },
  };
}

function freeText(): RunbookSpec {
  const r = validateRunbook({
    name: 'free-text',
    description: 'A parameter with no pattern, placed in many places.',
    parameters: [
      { name: 'text', type: 'string', maxLength: 4096, default: '' },
      { name: 'name', type: 'string', default: 'n' },
      { name: 'obj', type: 'string', default: 'web' },
    ],
    targets: { namespace: { fixed: 'team-a' } },
    steps: [
      {
        name: 'apply',
        action: 'apply',
        resource: { group: '', version: 'v1', resource: 'configmaps', namespaced: true },
        manifest: manifestTemplate,
      },
      { name: 'read', action: 'read', target: { ...deployments, name: '{{obj}}' } },
    ],
  });
  assert.deepEqual(r.problems, []);
  return r.spec!;
}

const hostile = [
  'a"b',
  "it's",
  '}',
  '}}',
  '"},{"',
  '"}, "kind": "Secret", "x": {"',
  '{{namespace}}',
  '{{name}}',
  '{{text}}',
  '{{',
  '../',
  '../../secrets',
  'a/b',
  '%2e%2e',
  '%2F',
  'key: value\n- x',
  '---\napiVersion: v1\nkind: Secret\n',
  '{"apiVersion":"v1","kind":"Secret"}',
  '[1,2,{"a":"b"}]',
  '\u0000',
  'nul\u0000inside',
  'line\nbreak\r\n',
  '\u2028\u2029',
  '__proto__',
  'constructor',
  '$patch: delete',
  '\\',
  '\\"',
  '<script>',
  '',
];

function renderText(text: string) {
  const s = freeText();
  const p = validateParams(s, { text });
  assert.deepEqual(p.problems, [], JSON.stringify(text));
  const r = renderRun(s, p.values!, p.namespace);
  assert.deepEqual(r.problems, [], JSON.stringify(text));
  return r.steps!;
}

test('hostile values are inert in a manifest: the template with the value placed as one string', () => {
  for (const text of hostile) {
    const [apply, read] = renderText(text);
    assert.deepEqual(apply!.call!.body, expected(text, 'n'), JSON.stringify(text));
    // The wire form parses back to the same object: the value never breaks out of its string.
    assert.deepEqual(JSON.parse(JSON.stringify(apply!.call!.body)), expected(text, 'n'));
    assert.equal(apply!.call!.path, '/api/v1/namespaces/team-a/configmaps/cfg');
    assert.equal(read!.read!.path, '/apis/apps/v1/namespaces/team-a/deployments/web');
  }
  assert.equal(({} as Record<string, unknown>).kind, undefined, 'no prototype pollution');
});

test('placeholders inside a value are not expanded again', () => {
  const [apply] = renderText('{{name}} and {{namespace}}');
  const data = (apply!.call!.body as { data: Record<string, unknown> }).data;
  assert.equal(data.whole, '{{name}} and {{namespace}}');
  assert.equal(data.other, 'n');
});

test('hostile values in an object name are render problems, never a path', () => {
  const s = freeText();
  // "constructor" is a valid object name like any other word: it renders as one.
  const bad = hostile.filter((h) => h !== '' && h !== 'constructor');
  for (const obj of [...bad, 'UPPER', 'a..b', '-a', 'a'.repeat(254), '.', '..', 'a b']) {
    const p = validateParams(s, { obj, text: 'x' });
    if (p.problems.length > 0) continue; // refused already (too long)
    const r = renderRun(s, p.values!, p.namespace);
    assert.equal(r.steps, undefined, JSON.stringify(obj));
    assert.equal(r.problems.length, 1, JSON.stringify(obj));
    assert.match(r.problems[0]!, /^steps\[1\]\.target\.name: .* is not a valid object name/s);
  }
  const ctor = validateParams(s, { obj: 'constructor', text: 'x' });
  assert.equal(
    renderRun(s, ctor.values!, ctor.namespace).steps![1]!.read!.path,
    '/apis/apps/v1/namespaces/team-a/deployments/constructor',
  );
  const empty = validateParams(s, { obj: '', text: 'x' });
  assert.match(
    renderRun(s, empty.values!, empty.namespace).problems[0]!,
    /not a valid object name/,
  );
});

test('the catalogue refuses hostile values, every problem listed at once', () => {
  const rb = catalogue.find((c) => c.name === 'set-image')!;
  const p = validateParams(rb, {
    namespace: '../kube-system',
    deployment: 'a/b',
    container: '"},{"',
    image: 'nginx\n- x: y',
  });
  assert.equal(p.values, undefined);
  assert.equal(p.problems.length, 4, p.problems.join('\n'));
  for (const [i, name] of ['namespace', 'deployment', 'container', 'image'].entries()) {
    assert.match(
      p.problems[i]!,
      new RegExp(`^parameters\\.${name}: .* does not match the pattern`),
    );
  }
  const scale = catalogue.find((c) => c.name === 'scale-deployment')!;
  for (const namespace of ['%2e%2e', '..', 'a/b', 'kube-system/secrets', '{{namespace}}']) {
    const q = validateParams(scale, { namespace, deployment: 'x', replicas: 1 });
    assert.equal(q.namespace, undefined);
    assert.equal(q.problems.length, 1, namespace);
  }
});

test('1 MB strings are refused by length before any pattern runs', () => {
  const r = validateRunbook({
    name: 'slow-pattern',
    description: '',
    // A pattern the 1 MB value would match: only the length can refuse it.
    parameters: [
      { name: 'x', type: 'string', pattern: '[a]*', maxLength: 4096, required: true },
      { name: 'y', type: 'string' },
    ],
    targets: { namespace: { none: true } },
    steps: [
      {
        name: 'r',
        action: 'read',
        target: { group: '', version: 'v1', resource: 'nodes', namespaced: false, name: '{{x}}' },
      },
    ],
  });
  assert.deepEqual(r.problems, []);
  const mb = 'a'.repeat(1 << 20);
  // Watch every regular expression run while the parameters are checked.
  const longest = { exec: 0 };
  const exec = RegExp.prototype.exec;
  RegExp.prototype.exec = function (this: RegExp, s: string) {
    longest.exec = Math.max(longest.exec, String(s).length);
    return exec.call(this, s);
  };
  let p;
  try {
    p = validateParams(r.spec!, { x: mb, y: mb });
  } finally {
    RegExp.prototype.exec = exec;
  }
  assert.deepEqual(p.problems, [
    'parameters.x: must be at most 4096 characters (got 1048576)',
    'parameters.y: must be at most 253 characters (got 1048576)',
  ]);
  assert.ok(longest.exec <= 4096, `a pattern ran on ${longest.exec} characters`);
  // Exactly at the cap the pattern does run (the spy sees it).
  const atCap = 'a'.repeat(4096);
  assert.deepEqual(validateParams(r.spec!, { x: atCap }).values, { x: atCap });
  // The hard cap holds even when the definition asks for more.
  const big = validateRunbook({
    ...freeText(),
    parameters: [{ name: 'text', type: 'string', maxLength: 1 << 20 }],
  });
  assert.match(
    big.problems.join('\n'),
    /parameters\[0\]\.maxLength: must be an integer from 1 to 4096/,
  );
});

test('__proto__ and constructor: refused as parameter names, inert as manifest keys', () => {
  for (const name of ['__proto__', 'constructor', 'valueOf', 'toString']) {
    const r = validateRunbook({ ...freeText(), parameters: [{ name, type: 'string' }] });
    assert.ok(
      r.problems.some((p) => p.startsWith('parameters[0].name:')),
      `${name}: ${r.problems.join('; ')}`,
    );
  }
  const s = freeText();
  const input = JSON.parse('{"__proto__": {"polluted": 1}, "constructor": "x", "text": "ok"}');
  const p = validateParams(s, input);
  assert.deepEqual(p.problems, [
    'parameters.__proto__: unknown parameter (declared: text, name, obj)',
    'parameters.constructor: unknown parameter (declared: text, name, obj)',
  ]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);

  // As a manifest key: __proto__ is refused where the runbook is written…
  const withProto = JSON.parse(
    '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"__proto__":{"x":"{{text}}"}}}',
  );
  const refused = validateRunbook({
    ...freeText(),
    steps: [
      {
        name: 'a',
        action: 'apply',
        resource: { group: '', version: 'v1', resource: 'configmaps', namespaced: true },
        manifest: withProto,
      },
    ],
  });
  assert.deepEqual(refused.problems, [
    'steps[0].manifest.data.__proto__: "__proto__" is not allowed as a key',
  ]);
  // …and constructor is data like any other key, an own property of the rendered object.
  const withCtor = JSON.parse(
    '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"constructor":"{{text}}"}}',
  );
  const ok = validateRunbook({
    ...freeText(),
    steps: [
      {
        name: 'a',
        action: 'apply',
        resource: { group: '', version: 'v1', resource: 'configmaps', namespaced: true },
        manifest: withCtor,
      },
    ],
  });
  assert.deepEqual(ok.problems, []);
  const [a] = renderRun(
    ok.spec!,
    { text: '{"polluted":1}', name: 'n', obj: 'web' },
    'team-a',
  ).steps!;
  const data = (a!.call!.body as { data: Record<string, unknown> }).data;
  assert.ok(Object.hasOwn(data, 'constructor'));
  assert.equal(data.constructor, '{"polluted":1}');
});

test('repeated and unknown parameters are problems, with every bad value besides', () => {
  const rb = catalogue.find((c) => c.name === 'scale-deployment')!;
  const p = validateParams(rb, [
    'namespace=team-a',
    'replicas=3',
    'replicas=4',
    'bogus=1',
    'deployment=../x',
    'noequals',
    '=x',
  ]);
  assert.equal(p.values, undefined);
  assert.deepEqual(p.problems, [
    'parameters[5]: must be "name=value"',
    'parameters[6]: must be "name=value"',
    'parameters.replicas: given more than once',
    'parameters.bogus: unknown parameter (declared: namespace, deployment, replicas)',
    `parameters.deployment: "../x" does not match the pattern ${JSON.stringify((rb.parameters[1] as { pattern: string }).pattern)}`,
  ]);
  assert.deepEqual(validateParams(rb, 'namespace=x').problems, [
    'parameters: must be an object of name → value',
    'parameters.namespace: required',
    'parameters.deployment: required',
    'parameters.replicas: required',
  ]);
});

test('types: integers from JSON or digits only, booleans from true/false only', () => {
  const s = validateRunbook({
    name: 'types',
    description: '',
    parameters: [
      { name: 'i', type: 'integer', minimum: -5, maximum: 5 },
      { name: 'b', type: 'boolean' },
      { name: 'big', type: 'integer' },
    ],
    targets: { namespace: { none: true } },
    steps: [
      {
        name: 'r',
        action: 'read',
        target: { group: '', version: 'v1', resource: 'nodes', namespaced: false, name: 'n' },
      },
    ],
  }).spec!;
  assert.deepEqual(validateParams(s, { i: '-3', b: 'false', big: '9007199254740991' }).values, {
    i: -3,
    b: false,
    big: 9007199254740991,
  });
  for (const [input, problem] of [
    [{ i: 1.5 }, 'parameters.i: must be an integer'],
    [{ i: '1.0' }, 'parameters.i: must be an integer'],
    [{ i: ' 1' }, 'parameters.i: must be an integer'],
    [{ i: '0x1' }, 'parameters.i: must be an integer'],
    [{ i: '1e1' }, 'parameters.i: must be an integer'],
    [{ i: 6 }, 'parameters.i: must be at most 5'],
    [{ i: '-6' }, 'parameters.i: must be at least -5'],
    [{ i: true }, 'parameters.i: must be an integer'],
    [{ big: 9007199254740992 }, 'parameters.big: must be an integer'],
    [{ big: '9007199254740993' }, 'parameters.big: must be an integer'],
    [{ big: '99999999999999999999' }, 'parameters.big: must be an integer'],
    [{ b: 'yes' }, 'parameters.b: must be true or false'],
    [{ b: 1 }, 'parameters.b: must be true or false'],
    [{ b: 'True' }, 'parameters.b: must be true or false'],
  ] as const) {
    assert.deepEqual(validateParams(s, input).problems, [problem], JSON.stringify(input));
  }
});

/** The shape of a JSON value: every string replaced by one marker, keys kept. */
function shape(v: unknown): unknown {
  if (typeof v === 'string') return '<string>';
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, shape(x)]));
  }
  return v;
}

test('property: any accepted string leaves the manifest keys and shape unchanged', () => {
  const s = freeText();
  const templateShape = shape({
    ...manifestTemplate,
    metadata: { ...manifestTemplate.metadata, namespace: 'x' },
  });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.string({
          unit: fc.constantFrom(
            '{',
            '}',
            '"',
            "'",
            ':',
            '-',
            '\n',
            '/',
            '.',
            '%',
            '\\',
            'a',
            ' ',
            '$',
            '\u0000',
          ),
          maxLength: 60,
        }),
        fc.constantFrom(...hostile),
        fc.json(),
      ),
      (text) => {
        const p = validateParams(s, { text });
        if (p.problems.length > 0) return; // refused: nothing to render
        const r = renderRun(s, p.values!, p.namespace);
        assert.deepEqual(r.problems, []);
        const body = r.steps![0]!.call!.body;
        assert.deepEqual(shape(body), templateShape);
        assert.deepEqual(body, expected(text, 'n'));
        assert.deepEqual(JSON.parse(JSON.stringify(body)), body);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: any string in an object name is refused or is a valid name in one path segment', () => {
  const s = freeText();
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.string({
          unit: fc.constantFrom('a', 'z', '0', '-', '.', '/', '%', '2', 'e', '?', '#'),
          maxLength: 20,
        }),
      ),
      (obj) => {
        const p = validateParams(s, { obj, text: 'x' });
        if (p.problems.length > 0) return;
        const r = renderRun(s, p.values!, p.namespace);
        if (r.problems.length > 0) {
          assert.equal(r.steps, undefined);
          return;
        }
        assert.match(obj, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
        assert.equal(r.steps![1]!.read!.path, `/apis/apps/v1/namespaces/team-a/deployments/${obj}`);
      },
    ),
    { numRuns: 300 },
  );
});

test('the run namespace: only an allowed one, the fixed one, or none at all', () => {
  const make = (namespace: unknown) =>
    validateRunbook({
      name: 'ns-rule',
      description: '',
      parameters: [{ name: 'target', type: 'string', required: true }],
      targets: { namespace },
      steps: [{ name: 'r', action: 'read', target: { ...deployments, name: 'web' } }],
    }).spec!;
  const allowed = make({ param: 'target', allowed: ['team-a', 'team-b'] });
  assert.equal(validateParams(allowed, { target: 'team-b' }).namespace, 'team-b');
  assert.deepEqual(validateParams(allowed, { target: 'kube-system' }).problems, [
    'parameters.target: "kube-system" is not one of the allowed namespaces (team-a, team-b)',
  ]);
  assert.deepEqual(validateParams(allowed, { target: 'Team-A' }).problems, [
    'parameters.target: "Team-A" is not a namespace name (a DNS label)',
  ]);
  // The caller's namespace stands for the parameter, and must agree with it when both are given.
  assert.equal(validateParams(allowed, {}, 'team-a').namespace, 'team-a');
  assert.deepEqual(validateParams(allowed, { target: 'team-a' }, 'team-b').problems, [
    'namespace: "team-b" disagrees with parameter target ("team-a")',
  ]);
  assert.deepEqual(validateParams(allowed, {}, 'kube-system').problems, [
    'parameters.target: "kube-system" is not one of the allowed namespaces (team-a, team-b)',
  ]);
  assert.deepEqual(validateParams(allowed, {}).problems, ['parameters.target: required']);

  const fixed = make({ fixed: 'ops' });
  assert.equal(validateParams(fixed, { target: 'x' }).namespace, 'ops');
  assert.deepEqual(validateParams(fixed, { target: 'x' }, 'kube-system').problems, [
    'namespace: this runbook runs only in "ops"',
  ]);
});

test('a flood of bad input gives a bounded list of problems', () => {
  const input: Record<string, string> = {};
  for (let i = 0; i < 10_000; i++) input[`bogus${i}`] = 'x';
  const p = validateParams(freeText(), input);
  assert.equal(p.problems.length, 101);
  assert.equal(p.problems[100], '… and 9900 more problems');
  const labels: Record<string, string> = {};
  for (let i = 0; i < 5_000; i++) labels[`k{{${i}`] = 'v';
  const r = validateRunbook({
    ...freeText(),
    steps: [
      {
        name: 'p',
        action: 'patch',
        target: { ...deployments, name: 'x' },
        patchType: 'merge',
        patch: { metadata: { labels } },
      },
    ],
  });
  assert.equal(r.problems.length, 101);
  assert.match(r.problems[100]!, /^… and \d+ more problems$/);
});

test('a read step may not put a Secret into the run result', () => {
  const r = validateRunbook({
    ...freeText(),
    steps: [
      {
        name: 'leak',
        action: 'read',
        target: { group: '', version: 'v1', resource: 'secrets', namespaced: true, name: 'db' },
      },
    ],
  });
  assert.deepEqual(r.problems, [
    "steps[0].target: a read may not return a Secret (its data would be in the run's result)",
  ]);
});
