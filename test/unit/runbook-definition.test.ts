/**
 * Runbook definitions (proxy/runbooks/definition.ts): what validateRunbook
 * accepts, and that it names every problem at once, each with its place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTemplate, validateRunbook } from '../../proxy/runbooks/definition.js';

const deployments = { group: 'apps', version: 'v1', resource: 'deployments', namespaced: true };

/** A small valid runbook to vary. */
function base(): Record<string, unknown> {
  return {
    name: 'scale-it',
    description: 'Scale a deployment.',
    parameters: [
      { name: 'deployment', type: 'string', required: true, pattern: '[a-z0-9-]+' },
      { name: 'replicas', type: 'integer', minimum: 0, maximum: 10, default: 1 },
      { name: 'ns', type: 'string', required: true },
    ],
    targets: { clusters: ['prod-1'], namespace: { param: 'ns', allowed: ['a', 'b'] } },
    steps: [
      {
        name: 'scale',
        action: 'scale',
        target: { ...deployments, name: '{{deployment}}' },
        replicas: '{{replicas}}',
      },
    ],
  };
}

function withStep(step: Record<string, unknown>, over: Record<string, unknown> = {}) {
  return { ...base(), steps: [step], ...over };
}

function problemsOf(raw: unknown): string[] {
  const r = validateRunbook(raw);
  assert.equal(r.spec, undefined, 'no spec when there are problems');
  return r.problems;
}

function hasProblem(problems: string[], re: RegExp): void {
  assert.ok(
    problems.some((p) => re.test(p)),
    `expected a problem matching ${re}, got:\n${problems.join('\n')}`,
  );
}

test('a valid runbook is accepted, as a copy that shares nothing with the input', () => {
  const raw = base();
  const r = validateRunbook(raw);
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.spec, raw);
  assert.notEqual(r.spec, raw);
  (raw.steps as Record<string, unknown>[])[0]!.name = 'changed';
  assert.equal(r.spec!.steps[0]!.name, 'scale');
});

test('every action with its fields is accepted', () => {
  const steps = [
    {
      name: 'apply',
      action: 'apply',
      resource: { group: '', version: 'v1', resource: 'configmaps', namespaced: true },
      manifest: {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'cm-{{deployment}}', namespace: 'ignored' },
        data: { replicas: '{{replicas}}', where: '{{namespace}}' },
      },
    },
    {
      name: 'patch',
      action: 'patch',
      onFailure: 'continue',
      target: { ...deployments, name: '{{deployment}}' },
      patchType: 'strategic',
      patch: { spec: { paused: true } },
    },
    { name: 'scale', action: 'scale', target: { ...deployments, name: 'web' }, replicas: 2 },
    { name: 'restart', action: 'restart', target: { ...deployments, name: 'web' } },
    {
      name: 'delete',
      action: 'delete',
      target: { group: '', version: 'v1', resource: 'pods', namespaced: true, name: 'p' },
    },
    {
      name: 'job',
      action: 'job',
      timeoutSeconds: 600,
      manifest: {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: { name: 'migrate' },
        spec: {
          template: { spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'x' }] } },
        },
      },
    },
    {
      name: 'wait',
      action: 'wait',
      target: { ...deployments, name: 'web' },
      condition: { type: 'Available' },
      timeoutSeconds: 60,
    },
    { name: 'read', action: 'read', target: { ...deployments, name: 'web' } },
    { name: 'logs', action: 'logs', pod: '{{deployment}}-0', container: 'app', tailLines: 100 },
    {
      name: 'node',
      action: 'read',
      target: { group: '', version: 'v1', resource: 'nodes', namespaced: false, name: 'n1' },
    },
  ];
  const r = validateRunbook({ ...base(), steps });
  assert.deepEqual(r.problems, []);
  assert.equal(r.spec!.steps.length, steps.length);
});

test('every problem at once, each naming its place', () => {
  const problems = problemsOf({
    name: 'Bad_Name',
    description: 'x'.repeat(1001),
    parameters: [
      { name: 'dup', type: 'string' },
      { name: 'dup', type: 'integer' },
      { name: 'n', type: 'float' },
      { name: 'i', type: 'integer', minimum: 5, maximum: 1, default: 9 },
      { name: 's', type: 'string', pattern: '(', maxLength: 5000, enum: [] },
    ],
    targets: { namespace: { fixed: 'Not A Label' } },
    steps: [
      { name: 'a', action: 'explode' },
      {
        name: 'a',
        action: 'scale',
        target: { ...deployments, name: '../secrets' },
        replicas: -1,
      },
      {
        name: 'w',
        action: 'wait',
        target: { ...deployments, name: 'x' },
        condition: {},
        timeoutSeconds: 0,
      },
    ],
  });
  for (const re of [
    /^name: "Bad_Name" is not a valid runbook name/,
    /^description: must be at most 1000 characters/,
    /^parameters\[1\]\.name: "dup" declared twice/,
    /^parameters\[2\]\.type: "float" is not one of/,
    /^parameters\[3\]\.maximum: must be at least the minimum/,
    /^parameters\[4\]\.maxLength: must be an integer from 1 to 4096/,
    /^parameters\[4\]\.pattern: not a valid regular expression/,
    /^parameters\[4\]\.enum: must be a list of 1 to 100 strings/,
    /^targets\.namespace\.fixed: must be a namespace name/,
    /^steps\[0\]\.action: "explode" is not one of apply, patch, scale/,
    /^steps\[1\]\.name: "a" used twice/,
    /^steps\[1\]\.target\.name: "\.\.\/secrets" is not a valid object name/,
    /^steps\[1\]\.replicas: must be an integer from 0 to/,
    /^steps\[2\]\.condition\.type: must be a non-empty literal string/,
    /^steps\[2\]\.timeoutSeconds: must be an integer from 1 to 3600/,
  ]) {
    hasProblem(problems, re);
  }
});

test('a default must suit its own parameter', () => {
  const spec = base();
  spec.parameters = [
    { name: 'a', type: 'integer', minimum: 0, maximum: 3, default: 7 },
    { name: 'b', type: 'string', enum: ['x', 'y'], default: 'z' },
    { name: 'c', type: 'boolean', default: 'true' },
    { name: 'd', type: 'string', pattern: '[a-z]+', default: 'ABC', required: 'no' },
    { name: 'deployment', type: 'string', required: true },
    { name: 'replicas', type: 'integer', minimum: 0, required: true },
    { name: 'ns', type: 'string', required: true },
  ];
  const problems = problemsOf(spec);
  hasProblem(problems, /^parameters\[0\]\.default: must be at most 3$/);
  hasProblem(problems, /^parameters\[1\]\.default: "z" is not one of "x", "y"/);
  hasProblem(problems, /^parameters\[2\]\.default: must be true or false/);
  hasProblem(problems, /^parameters\[3\]\.default: "ABC" does not match the pattern/);
  hasProblem(problems, /^parameters\[3\]\.required: must be true or false/);
  assert.equal(problems.length, 5, problems.join('\n'));
});

test('a parameter a step or the namespace rule uses is required or has a default', () => {
  const spec = base();
  spec.parameters = [
    { name: 'deployment', type: 'string' },
    { name: 'replicas', type: 'integer', minimum: 0, default: 1 },
    { name: 'ns', type: 'string' },
    { name: 'unused', type: 'boolean' },
  ];
  assert.deepEqual(problemsOf(spec), [
    'parameters[0]: deployment is used by a step or the namespace rule; make it required or give it a default',
    'parameters[2]: ns is used by a step or the namespace rule; make it required or give it a default',
  ]);
});

test('unknown fields are problems at every level', () => {
  const spec = base();
  spec.extra = 1;
  (spec.parameters as Record<string, unknown>[])[0]!.minimum = 1; // an integer field on a string
  (spec.targets as Record<string, unknown>).cluster = 'typo';
  (spec.targets as { namespace: Record<string, unknown> }).namespace.fixed = 'a';
  const step = (spec.steps as Record<string, unknown>[])[0]!;
  step.patch = {};
  (step.target as Record<string, unknown>).kind = 'Deployment';
  const problems = problemsOf(spec);
  hasProblem(problems, /^extra: unknown field/);
  hasProblem(problems, /^parameters\[0\]\.minimum: unknown field/);
  hasProblem(problems, /^targets\.cluster: unknown field/);
  hasProblem(problems, /^targets\.namespace: must have exactly one of fixed, param, none/);
  hasProblem(problems, /^steps\[0\]\.patch: unknown field/);
  hasProblem(problems, /^steps\[0\]\.target\.kind: unknown field/);
});

test('templates: keys never, unknown references and unterminated braces are problems', () => {
  const problems = problemsOf(
    withStep({
      name: 'p',
      action: 'patch',
      target: { ...deployments, name: '{{nosuch}}' },
      patchType: 'merge',
      patch: {
        metadata: { labels: { '{{deployment}}': 'x', 'app-{{ns}}': 'y' } },
        spec: { a: 'x{{deployment', b: ['{{ 1bad }}'], c: '{{replicas}}}}' },
      },
    }),
  );
  hasProblem(problems, /^steps\[0\]\.target\.name: \{\{nosuch\}\} is not a declared parameter/);
  hasProblem(
    problems,
    /^steps\[0\]\.patch\.metadata\.labels\["\{\{deployment\}\}"\]: a key may not hold a placeholder/,
  );
  hasProblem(
    problems,
    /^steps\[0\]\.patch\.metadata\.labels\["app-\{\{ns\}\}"\]: a key may not hold a placeholder/,
  );
  hasProblem(problems, /^steps\[0\]\.patch\.spec\.a: unterminated "\{\{"/);
  hasProblem(problems, /^steps\[0\]\.patch\.spec\.b\[0\]: "\{\{ 1bad \}\}" is not a placeholder/);
  assert.ok(
    !problems.some((p) => p.startsWith('steps[0].patch.spec.c')),
    'a trailing "}}" is text',
  );
});

test('apiVersion, kind and metadata.namespace of a manifest are literal; apiVersion agrees with the resource', () => {
  const problems = problemsOf(
    withStep({
      name: 'a',
      action: 'apply',
      resource: deployments,
      manifest: {
        apiVersion: '{{deployment}}',
        kind: '{{deployment}}',
        metadata: { name: 'x', namespace: '{{ns}}' },
      },
    }),
  );
  hasProblem(problems, /^steps\[0\]\.manifest\.apiVersion: must be literal/);
  hasProblem(problems, /^steps\[0\]\.manifest\.kind: must be literal/);
  hasProblem(problems, /^steps\[0\]\.manifest\.metadata\.namespace: must be literal/);

  const mismatch = problemsOf(
    withStep({
      name: 'a',
      action: 'apply',
      resource: deployments,
      manifest: { apiVersion: 'v1', kind: 'Deployment', metadata: { name: 'x' } },
    }),
  );
  hasProblem(
    mismatch,
    /^steps\[0\]\.manifest\.apiVersion: "v1" does not agree with the resource \("apps\/v1"\)/,
  );

  const job = problemsOf(
    withStep({
      name: 'j',
      action: 'job',
      timeoutSeconds: 5,
      manifest: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { generateName: 'x-' } },
    }),
  );
  hasProblem(
    job,
    /^steps\[0\]\.manifest\.apiVersion: "apps\/v1" does not agree with the resource \("batch\/v1"\)/,
  );
  hasProblem(
    job,
    /^steps\[0\]\.manifest\.kind: "Deployment" does not agree with the resource \(jobs hold Job\)/,
  );
  hasProblem(job, /^steps\[0\]\.manifest\.metadata\.generateName: not supported/);
  hasProblem(job, /^steps\[0\]\.manifest\.metadata\.name: must be a non-empty string/);
});

test('the kind of a well-known resource must agree with it', () => {
  const problems = problemsOf(
    withStep({
      name: 'a',
      action: 'apply',
      resource: deployments,
      manifest: { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'x' } },
    }),
  );
  assert.deepEqual(problems, [
    'steps[0].manifest.kind: "StatefulSet" does not agree with the resource (deployments hold Deployment)',
  ]);
  // A resource we do not know (a custom one) takes the kind as written.
  const custom = validateRunbook(
    withStep({
      name: 'a',
      action: 'apply',
      resource: {
        group: 'example.com',
        version: 'v1alpha1',
        resource: 'widgets',
        namespaced: true,
      },
      manifest: { apiVersion: 'example.com/v1alpha1', kind: 'Widget', metadata: { name: 'x' } },
    }),
  );
  assert.deepEqual(custom.problems, []);
});

test('deep manifests and patches are refused without walking them', () => {
  let deep: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 20_000; i++) deep = { d: deep };
  const problems = problemsOf(
    withStep({
      name: 'p',
      action: 'patch',
      target: { ...deployments, name: 'x' },
      patchType: 'merge',
      patch: deep,
    }),
  );
  hasProblem(problems, /^steps\[0\]\.patch: nested deeper than 16 levels/);

  let ok: Record<string, unknown> = { leaf: 1 };
  for (let i = 0; i < 15; i++) ok = { d: ok };
  const r = validateRunbook(
    withStep({
      name: 'p',
      action: 'patch',
      target: { ...deployments, name: 'x' },
      patchType: 'merge',
      patch: ok,
    }),
  );
  assert.deepEqual(r.problems, []);
});

test('namespaces: no namespaced step and no {{namespace}} when the rule is none; scope of known resources', () => {
  const problems = problemsOf({
    ...base(),
    parameters: [{ name: 'node', type: 'string' }],
    targets: { namespace: { none: true } },
    steps: [
      { name: 'r', action: 'read', target: { ...deployments, name: '{{namespace}}' } },
      { name: 'l', action: 'logs', pod: 'p' },
      {
        name: 'n',
        action: 'read',
        target: { group: '', version: 'v1', resource: 'nodes', namespaced: true, name: '{{node}}' },
      },
    ],
  });
  hasProblem(
    problems,
    /^steps\[0\]\.target: deployments are namespaced but the runbook has no namespace/,
  );
  hasProblem(
    problems,
    /^steps\[0\]\.target\.name: \{\{namespace\}\} is used but the runbook has no namespace/,
  );
  hasProblem(problems, /^steps\[1\]: pod logs are namespaced but the runbook has no namespace/);
  hasProblem(problems, /^steps\[2\]\.target\.namespaced: core nodes are cluster-scoped/);
});

test('a parameter named namespace only as the namespace rule; the rule names a declared string parameter', () => {
  const a = problemsOf({
    ...base(),
    parameters: [
      { name: 'namespace', type: 'string' },
      { name: 'deployment', type: 'string' },
      { name: 'replicas', type: 'integer', minimum: 0 },
    ],
    targets: { namespace: { fixed: 'default' } },
  });
  hasProblem(a, /^parameters: "namespace" is the run's namespace/);
  const b = problemsOf({ ...base(), targets: { namespace: { param: 'replicas' } } });
  hasProblem(b, /^targets\.namespace\.param: "replicas" must name a declared string parameter/);
});

test('parameter names that are Object properties or not identifiers are refused', () => {
  for (const name of [
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    '1x',
    'a-b',
    '',
    'x'.repeat(64),
  ]) {
    const spec = base();
    (spec.parameters as unknown[]).push({ name, type: 'string' });
    hasProblem(problemsOf(spec), /^parameters\[3\]\.name: .* is not a valid parameter name/);
  }
});

test('__proto__ is refused as a manifest key; constructor is an ordinary key', () => {
  const patch = JSON.parse(
    '{"metadata":{"labels":{"__proto__":{"polluted":"yes"},"constructor":"c"}}}',
  );
  const problems = problemsOf(
    withStep({
      name: 'p',
      action: 'patch',
      target: { ...deployments, name: 'x' },
      patchType: 'merge',
      patch,
    }),
  );
  assert.deepEqual(problems, [
    'steps[0].patch.metadata.labels.__proto__: "__proto__" is not allowed as a key',
  ]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('replicas as a template must be exactly one integer parameter with a minimum of 0 or more', () => {
  for (const [replicas, re] of [
    ['{{deployment}}', /must be exactly "\{\{parameter\}\}" naming an integer parameter/],
    ['{{replicas}}0', /must be exactly "\{\{parameter\}\}" naming an integer parameter/],
    ['3', /must be exactly "\{\{parameter\}\}" naming an integer parameter/],
    [1.5, /must be an integer from 0 to/],
  ] as const) {
    const problems = problemsOf(
      withStep({ name: 's', action: 'scale', target: { ...deployments, name: 'x' }, replicas }),
    );
    hasProblem(problems, re);
  }
  const spec = base();
  (spec.parameters as Record<string, unknown>[])[1] = { name: 'replicas', type: 'integer' };
  hasProblem(
    problemsOf(spec),
    /^steps\[0\]\.replicas: parameter "replicas" needs a minimum of 0 or more/,
  );
});

test('bounds: at most 32 parameters and 32 steps', () => {
  const parameters = Array.from({ length: 33 }, (_, i) => ({ name: `p${i}`, type: 'boolean' }));
  hasProblem(problemsOf({ ...base(), parameters }), /^parameters: at most 32 \(got 33\)/);
  const step = (base().steps as unknown[])[0] as Record<string, unknown>;
  const steps = Array.from({ length: 33 }, (_, i) => ({ ...step, name: `s${i}` }));
  hasProblem(problemsOf({ ...base(), steps }), /^steps: at most 32 \(got 33\)/);
  hasProblem(problemsOf({ ...base(), steps: [] }), /^steps: must be a non-empty list/);
  assert.deepEqual(validateRunbook(null).problems, ['the runbook must be a JSON object']);
  assert.deepEqual(validateRunbook([]).problems, ['the runbook must be a JSON object']);
});

test('targets: clusters and a label selector are checked', () => {
  const problems = problemsOf({
    ...base(),
    targets: {
      clusters: ['ok', 'ok', 'Bad'],
      selector: { matchLabels: { 'env ': 'prod' } },
      namespace: { param: 'ns', allowed: ['UPPER'] },
    },
  });
  hasProblem(problems, /^targets\.clusters\[1\]: "ok" repeated/);
  hasProblem(problems, /^targets\.clusters\[2\]: must be a cluster name/);
  hasProblem(problems, /^targets\.selector\.matchLabels: "env " is not a valid label key/);
  hasProblem(problems, /^targets\.namespace\.allowed\[0\]: must be a namespace name/);
});

test('parseTemplate splits text and references; a value is never parsed again', () => {
  assert.deepEqual(parseTemplate('app-{{name}}-{{ n2 }}'), {
    parts: ['app-', { ref: 'name' }, '-', { ref: 'n2' }],
  });
  assert.deepEqual(parseTemplate('{{x}}'), { parts: [{ ref: 'x' }] });
  assert.deepEqual(parseTemplate('plain } }} text'), { parts: ['plain } }} text'] });
  assert.ok('problem' in parseTemplate('a {{b'));
  assert.ok('problem' in parseTemplate('{{a{{b}}'));
});
