/**
 * The runbook commands of the CLI (proxy/cli/runbooks.ts): how `kubegate
 * run` turns its command line into the body of POST /api/v1/runs, what it
 * refuses before asking, how --wait reports a run's progress and exits,
 * and the text of `runs list`, `runs get` and `runbook get`. The HTTP parts
 * run against a small fake of the REST API on localhost; no database.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { commands } from '../../proxy/cli/commands.js';
import { main } from '../../proxy/cli/main.js';
import { parseCommandLine, processIo, UsageError } from '../../proxy/cli/args.js';
import {
  definitionFrom,
  diffHunks,
  paramsOf,
  Progress,
  runBody,
  runbookText,
  runsTable,
  runSummary,
  runText,
  type RunView,
  type StepView,
} from '../../proxy/cli/runbooks.js';
import { refusal } from '../../proxy/cli/rest.js';
import { catalogue } from '../../proxy/runbooks/catalogue.js';

async function inProcess(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  const out = new PassThrough();
  const err = new PassThrough();
  out.on('data', (b: Buffer) => (stdout += b.toString()));
  err.on('data', (b: Buffer) => (stderr += b.toString()));
  const code = await main(argv, { stdout: out, stderr: err, env: { DATABASE_URL: '', ...env } });
  return { code, stdout, stderr };
}

function parseRun(argv: string[]) {
  const c = commands.find((x) => x.path === 'run')!;
  return parseCommandLine('run', argv, c.options ?? {}, c.args ?? [], processIo)!;
}

const step = (over: Partial<StepView> = {}): StepView => ({
  index: 0,
  name: 'scale',
  action: 'scale',
  status: 'running',
  message: '',
  diff: null,
  ...over,
});

function run(over: Partial<RunView> = {}): RunView {
  return {
    id: '0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b',
    runbook: 'scale-deployment',
    version: 1,
    namespace: 'platform-demo',
    params: { namespace: 'platform-demo', deployment: 'demo-app', replicas: 3 },
    dryRun: false,
    requester: { name: 'ticketing', kind: 'robot', groups: ['ticket-systems'] },
    ticket: 'INC-42',
    status: 'queued',
    createdAt: '2026-12-06T20:00:00.000Z',
    finishedAt: null,
    targets: [{ cluster: 'dev', status: 'queued', message: '', steps: [] }],
    ...over,
  };
}

const diff = '  spec:\n-   replicas: 1\n+   replicas: 3\n';

describe('kubegate run: the command line', () => {
  test('--param: a value may hold = and commas; every mistake at once', () => {
    assert.deepEqual(paramsOf(['a=b=c', 'list=x,y', 'empty=']), {
      params: { a: 'b=c', list: 'x,y', empty: '' },
      problems: [],
    });
    assert.deepEqual(paramsOf(['novalue', '=x', 'a=1', 'a=2']).problems, [
      '--param "novalue" must look like name=value',
      '--param "=x" must look like name=value',
      '--param a is given more than once',
    ]);
    // A name that is an Object.prototype member is an ordinary (then unknown) parameter.
    const odd = paramsOf(['__proto__=x', 'constructor=y']);
    assert.deepEqual(odd.problems, []);
    assert.equal(JSON.stringify(odd.params), '{"__proto__":"x","constructor":"y"}');
  });

  test('the body of POST /api/v1/runs: only what was given, parameters as text', () => {
    const minimal = runBody(
      parseRun(['scale-deployment', '--cluster', 'dev', '--param', 'replicas=3']),
    );
    assert.deepEqual(minimal, {
      body: { runbook: 'scale-deployment', clusters: ['dev'], params: { replicas: '3' } },
      headers: {},
    });
    const full = runBody(
      parseRun([
        'scale-deployment',
        '--cluster',
        'a,b',
        '--cluster=c',
        '--selector',
        'env=prod,tier in (web)',
        '--param',
        'namespace=platform-demo',
        '--param',
        'note=x=y,z',
        '--ticket',
        'INC-42',
        '--reason',
        'load test',
        '--dry-run',
        '--wait',
        '--canary',
        '1',
        '--concurrency',
        '2',
        '--offline-wait',
        '5m',
        '--idempotency-key',
        'INC-42-1',
      ]),
    );
    assert.deepEqual(full.body, {
      runbook: 'scale-deployment',
      clusters: ['a', 'b', 'c'],
      selector: {
        matchLabels: { env: 'prod' },
        matchExpressions: [{ key: 'tier', operator: 'In', values: ['web'] }],
      },
      params: { namespace: 'platform-demo', note: 'x=y,z' },
      ticket: 'INC-42',
      reason: 'load test',
      dryRun: true,
      canary: 1,
      concurrency: 2,
      offlineWait: '5m',
    });
    assert.deepEqual(full.headers, { 'idempotency-key': 'INC-42-1' });
  });

  test('mistakes are usage errors (exit 2) listing every one, before anything is sent', async () => {
    assert.throws(
      () =>
        runBody(
          parseRun([
            'x',
            '--param',
            'bad',
            '--canary',
            '-1',
            '--offline-wait',
            'soon',
            '--concurrency',
            'two',
            '--selector',
            'a in (',
            '--idempotency-key',
            'has space',
          ]),
        ),
      (e: Error) => {
        assert.ok(e instanceof UsageError);
        for (const re of [
          /--selector: /,
          /--param "bad" must look like name=value/,
          /--canary must be a whole number of at least 0 \(got "-1"\)/,
          /--offline-wait must be a duration such as 90s or 5m \(got "soon"\)/,
          /--concurrency must be a whole number of at least 1 \(got "two"\)/,
          /--idempotency-key must be 1 to 128 visible ASCII characters/,
        ])
          assert.match(e.message, re);
        return true;
      },
    );
    // No server is named: a usage error never gets as far as reading a kubeconfig.
    const r = await inProcess(['run', 'scale-deployment', '--param', 'replicas=3']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^kubegate run: say where: --cluster NAME \(repeatable\) or --selector/);
    assert.match(r.stderr, /Run "kubegate run --help" for usage/);
    const missing = await inProcess(['run', '--cluster', 'dev']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing NAME/);
  });

  test('--help says that no Idempotency-Key is sent unless given, and the exit codes', async () => {
    const r = await inProcess(['run', '--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^Usage: kubegate run NAME \[--cluster NAME\]\.\.\./);
    assert.match(r.stdout, /No\s+Idempotency-Key is sent unless --idempotency-key is given/);
    assert.match(r.stdout, /exits 0 when\s+the\s+run succeeded and 1 when it failed/);
    for (const path of ['runs', 'runbook', 'admin runbook']) {
      const g = await inProcess([...path.split(' '), '--help']);
      assert.equal(g.code, 0);
      assert.match(g.stdout, new RegExp(`kubegate ${path} (list|get|apply)`));
    }
  });
});

describe('kubegate run --wait: progress', () => {
  test('each change is said once: statuses, steps as they start and finish, diffs when finished', () => {
    const p = new Progress();
    assert.deepEqual(p.update(run()), [
      'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: queued',
      'dev: queued',
    ]);
    assert.deepEqual(p.update(run()), [], 'nothing changed, nothing said');
    const running = run({
      status: 'running',
      targets: [{ cluster: 'dev', status: 'running', message: '', steps: [step()] }],
    });
    assert.deepEqual(p.update(running), [
      'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: running',
      'dev: running',
      'dev: step 1 scale: running',
    ]);
    const done = run({
      status: 'succeeded',
      finishedAt: '2026-12-06T20:00:04.250Z',
      targets: [
        {
          cluster: 'dev',
          status: 'succeeded',
          message: '',
          steps: [step({ status: 'succeeded', message: 'replicas 1 → 3', diff })],
        },
      ],
    });
    assert.deepEqual(p.update(done), [
      'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: succeeded',
      'dev: step 1 scale: succeeded: replicas 1 → 3',
      '      spec:\n    -   replicas: 1\n    +   replicas: 3',
      'dev: succeeded',
    ]);
    assert.equal(
      runSummary(done),
      'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b succeeded (1 cluster) in 4.3s',
    );
  });

  test('a step seen only once finished; a failure with its message; several clusters', () => {
    const p = new Progress();
    const failed = run({
      status: 'failed',
      finishedAt: '2026-12-06T20:00:02.000Z',
      targets: [
        {
          cluster: 'a',
          status: 'failed',
          message: 'step 1 (delete) failed',
          steps: [
            step({
              name: 'delete',
              action: 'delete',
              status: 'failed',
              message: '404: pods "x" not found',
            }),
            step({ index: 1, name: 'wait', action: 'wait', status: 'skipped' }),
          ],
        },
        { cluster: 'b', status: 'offline', message: 'cluster is offline', steps: [] },
      ],
    });
    assert.deepEqual(p.update(failed), [
      'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: failed',
      'a: step 1 delete: failed: 404: pods "x" not found',
      'a: step 2 wait: skipped',
      'a: failed: step 1 (delete) failed',
      'b: offline: cluster is offline',
    ]);
    assert.equal(
      runSummary(failed),
      'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b failed (failed on a; offline on b) in 2.0s',
    );
  });

  test('a run waiting for approval names the approval; its preview diff is shown', () => {
    const p = new Progress();
    const waiting = run({
      status: 'awaiting-approval',
      dryRun: false,
      approval: { id: 'ap-1', status: 'pending' },
      targets: [
        {
          cluster: 'dev',
          status: 'queued',
          message: '',
          steps: [],
          preview: [{ index: 0, name: 'scale', status: 'succeeded', message: '', diff }],
        },
      ],
    });
    assert.deepEqual(p.update(waiting), [
      'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: awaiting-approval (approval ap-1: kubegate request get ap-1)',
      'dev: step 1 scale would be succeeded',
      '      spec:\n    -   replicas: 1\n    +   replicas: 3',
      'dev: queued',
    ]);
  });

  test('--wait shows the changed lines of a diff with context, ... where lines are left out', () => {
    const whole = [
      '--- live',
      '+++ requested',
      ' a: 1',
      ' b: 2',
      ' c: 3',
      ' d: 4',
      '-e: 5',
      '+e: 6',
      ' f: 7',
      ' g: 8',
      ' h: 9',
      ' i: 10',
      ' j: 11',
      '+k: 12',
    ].join('\n');
    assert.equal(
      diffHunks(whole, 2),
      [
        '...',
        ' c: 3',
        ' d: 4',
        '-e: 5',
        '+e: 6',
        ' f: 7',
        ' g: 8',
        '...',
        ' i: 10',
        ' j: 11',
        '+k: 12',
      ].join('\n'),
    );
    assert.equal(diffHunks('-a\n b\n', 1), '-a\n b');
    assert.equal(
      diffHunks(' nothing changed\n x\n'),
      ' nothing changed\n x',
      'no changed line: whole',
    );
  });

  test('a refused run: a 422 lists every problem on its own line; others say the detail', () => {
    assert.equal(
      refusal(422, {
        detail: 'run is invalid: params: a; clusters: b',
        problems: ['params: a', 'clusters: b'],
      }),
      '422: run refused, 2 problems:\n  - params: a\n  - clusters: b',
    );
    assert.equal(
      refusal(403, { detail: 'robot "t" may not run runbook "x"' }),
      '403: robot "t" may not run runbook "x"',
    );
    assert.equal(refusal(502, {}, 'bad gateway\n'), '502: bad gateway');
  });
});

describe('kubegate run against a fake API', () => {
  let server: Server;
  let base: string;
  const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] =
    [];
  /** Answers to GET /api/v1/runs/ID, one per poll; the last repeats. */
  let snapshots: RunView[] = [];
  let postAnswer: { status: number; body: unknown } = { status: 201, body: run() };

  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (b: Buffer) => (body += b.toString()));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        const answer = (status: number, v: unknown) => {
          res.writeHead(status, {
            'content-type': status >= 400 ? 'application/problem+json' : 'application/json',
          });
          res.end(JSON.stringify(v));
        };
        if (req.headers.authorization !== 'Bearer tok') return answer(401, { detail: 'no token' });
        if (req.method === 'POST' && req.url === '/api/v1/runs')
          return answer(postAnswer.status, postAnswer.body);
        if (req.method === 'GET' && req.url?.startsWith('/api/v1/runs/'))
          return answer(200, snapshots.length > 1 ? snapshots.shift() : snapshots[0]);
        if (req.method === 'GET' && req.url?.startsWith('/api/v1/runs'))
          return answer(200, { items: [snapshots[0]] });
        answer(404, { detail: `no route ${req.url}` });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const env = () => ({ KUBEGATE_SERVER: base, KUBEGATE_TOKEN: 'tok' });

  test('without --wait: the id on stdout, the status on stderr, exit 0; no Idempotency-Key', async () => {
    seen.length = 0;
    postAnswer = { status: 201, body: run() };
    const r = await inProcess(
      [
        'run',
        'scale-deployment',
        '--cluster',
        'dev',
        '--param',
        'replicas=3',
        '--ticket',
        'INC-42',
      ],
      env(),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b\n');
    assert.equal(
      r.stderr,
      'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: scale-deployment v1 in platform-demo on dev, ticket INC-42; queued\n',
    );
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.headers['idempotency-key'], undefined);
    assert.deepEqual(JSON.parse(seen[0]!.body), {
      runbook: 'scale-deployment',
      clusters: ['dev'],
      params: { replicas: '3' },
      ticket: 'INC-42',
    });
  });

  test(
    '--wait follows the run to success (exit 0) or failure (exit 1)',
    { timeout: 20_000 },
    async () => {
      seen.length = 0;
      postAnswer = { status: 201, body: run() };
      snapshots = [
        run({
          status: 'running',
          targets: [{ cluster: 'dev', status: 'running', message: '', steps: [step()] }],
        }),
        run({
          status: 'succeeded',
          finishedAt: '2026-12-06T20:00:03.000Z',
          targets: [
            {
              cluster: 'dev',
              status: 'succeeded',
              message: '',
              steps: [step({ status: 'succeeded', diff })],
            },
          ],
        }),
      ];
      const ok = await inProcess(
        ['run', 'scale-deployment', '--cluster', 'dev', '--wait', '--idempotency-key', 'k-1'],
        env(),
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(seen[0]!.headers['idempotency-key'], 'k-1');
      assert.equal(
        ok.stdout,
        [
          '0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b',
          'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: queued',
          'dev: queued',
          'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: running',
          'dev: running',
          'dev: step 1 scale: running',
          'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b: succeeded',
          'dev: step 1 scale: succeeded',
          '      spec:',
          '    -   replicas: 1',
          '    +   replicas: 3',
          'dev: succeeded',
          'run 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b succeeded (1 cluster) in 3.0s',
          '',
        ].join('\n'),
      );
      assert.ok(seen.every((s) => s.headers.authorization === 'Bearer tok'));

      for (const status of ['failed', 'cancelled', 'unknown']) {
        snapshots = [
          run({
            status,
            finishedAt: '2026-12-06T20:00:01.000Z',
            targets: [{ cluster: 'dev', status, message: '', steps: [] }],
          }),
        ];
        const bad = await inProcess(
          ['run', 'scale-deployment', '--cluster', 'dev', '--wait'],
          env(),
        );
        assert.equal(bad.code, 1, `${status}: ${bad.stdout}`);
        assert.ok(
          bad.stdout.endsWith(
            `\nrun 0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b ${status} (${status} on dev) in 1.0s\n`,
          ),
          bad.stdout,
        );
      }
    },
  );

  test('an earlier run of the same key is said so; a 422 prints every problem, exit 1', async () => {
    postAnswer = {
      status: 200,
      body: run({ status: 'succeeded', finishedAt: '2026-12-06T20:00:01.000Z' }),
    };
    const again = await inProcess(
      ['run', 'scale-deployment', '--cluster', 'dev', '--idempotency-key', 'k-1'],
      env(),
    );
    assert.equal(again.code, 0);
    assert.match(again.stderr, /was made before with this Idempotency-Key/);

    postAnswer = {
      status: 422,
      body: {
        status: 422,
        code: 'KG_ERR_VALIDATION',
        detail: 'run is invalid: params: replicas: …; clusters: "nope" …',
        problems: [
          'params: parameters.replicas: must be an integer',
          'clusters: "nope" is not a cluster kubegate knows',
        ],
      },
    };
    const r = await inProcess(['run', 'scale-deployment', '--cluster', 'nope', '--wait'], env());
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(
      r.stderr,
      'kubegate: 422: run refused, 2 problems:\n' +
        '  - params: parameters.replicas: must be an integer\n' +
        '  - clusters: "nope" is not a cluster kubegate knows\n',
    );
    const unauth = await inProcess(['runs', 'list'], {
      KUBEGATE_SERVER: base,
      KUBEGATE_TOKEN: 'x',
    });
    assert.equal(unauth.code, 1);
    assert.equal(unauth.stderr, 'kubegate: 401: no token\n');
  });
});

describe('readable output', () => {
  const finished = run({
    status: 'failed',
    reason: 'INC-42 load',
    finishedAt: '2026-12-06T20:00:02.500Z',
    approval: { id: 'ap-1', status: 'approved' },
    targets: [
      {
        cluster: 'dev',
        status: 'failed',
        message: 'step 2 (read) failed',
        steps: [
          step({ status: 'succeeded', message: 'scaled', diff }),
          step({
            index: 1,
            name: 'read',
            action: 'read',
            status: 'failed',
            message: '404: not found',
            result: { kind: 'Status', code: 404 },
          }),
        ],
      },
    ],
  });

  test('runs list: a table of id, runbook, status, clusters, requester, ticket, created', () => {
    const text = runsTable([
      finished,
      run({
        id: 'r2',
        dryRun: true,
        ticket: '',
        requester: { name: 'ann', kind: 'user' },
        targets: [],
      }),
    ]);
    assert.equal(
      text,
      'ID                                    RUNBOOK                        STATUS  CLUSTERS    REQUESTER        TICKET  CREATED\n' +
        '0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b  scale-deployment v1            failed  dev=failed  robot:ticketing  INC-42  2026-12-06T20:00:00.000Z\n' +
        'r2                                    scale-deployment v1 (dry run)  queued  -           ann              -       2026-12-06T20:00:00.000Z\n',
    );
  });

  test('runs get: who, what, each step with its message, diff and result', () => {
    assert.equal(
      runText(finished),
      `run:        0d6e5a52-1b3c-4a51-9b7e-5c1f2d3e4a5b
runbook:    scale-deployment v1
status:     failed
namespace:  platform-demo
params:     deployment=demo-app namespace=platform-demo replicas=3
requester:  ticketing (robot, groups ticket-systems)
ticket:     INC-42
reason:     INC-42 load
approval:   ap-1 approved
created:    2026-12-06T20:00:00.000Z
finished:   2026-12-06T20:00:02.500Z in 2.5s

cluster dev: failed: step 2 (read) failed
  step 1 scale (scale): succeeded: scaled
    diff:
        spec:
      -   replicas: 1
      +   replicas: 3
  step 2 read (read): failed: 404: not found
    result:
      kind: Status
      code: 404
`,
    );
  });

  test('runs get: a fleet run shows its canary and concurrency; a cancelled one why', () => {
    const fleet = runText(
      run({
        status: 'cancelled',
        canary: 1,
        concurrency: 2,
        offlineWait: 60,
        cancelReason: 'cancelled by user:ann: ticket closed',
        targets: [
          { cluster: 'a', status: 'succeeded', message: '', steps: [] },
          {
            cluster: 'b',
            status: 'cancelled',
            message: 'not run: the run was cancelled',
            steps: [],
          },
        ],
      }),
    );
    assert.match(fleet, /^fleet: {6}canary 1, concurrency 2, offline wait 60s$/m);
    assert.match(fleet, /^cancel: {5}cancelled by user:ann: ticket closed$/m);
    assert.match(
      fleet,
      /^cluster a: succeeded\n\ncluster b: cancelled: not run: the run was cancelled$/m,
    );
    assert.doesNotMatch(runText(run()), /^(fleet|cancel):/m);
  });

  test('runbook get: parameters with types, defaults and bounds; targets; steps', () => {
    const spec = catalogue.find((s) => s.name === 'scale-deployment')!;
    const text = runbookText({ ...spec, version: 1, builtin: true });
    assert.match(text, /^name: {8}scale-deployment\nversion: {5}1 \(built in\)\n/);
    assert.match(text, /^targets: {5}any cluster; namespace from parameter namespace$/m);
    assert.match(text, /^ {2}NAME {8}TYPE {5}REQUIRED {2}DEFAULT {2}BOUNDS/m);
    assert.match(
      text,
      /^ {2}replicas {4}integer {2}yes {7}- {8}0\.\.100 +How many pods it should run\.$/m,
    );
    assert.match(text, /^ {2}namespace {3}string {3}yes .*max length 63/m);
    assert.match(
      text,
      /^steps:\n {2}1\. scale \(scale deployments\.apps\/\{\{deployment\}\}\)\n$/m,
    );
    const custom = runbookText({
      ...spec,
      name: 'x',
      version: 3,
      builtin: false,
      updatedBy: 'cli:ann',
      updatedAt: '2026-12-06T19:00:00.000Z',
      parameters: [
        { name: 'mode', type: 'string', enum: ['a', 'b'], default: 'a' },
        { name: 'force', type: 'boolean', default: false },
        { name: 'n', type: 'integer', minimum: 1 },
      ],
      targets: { selector: { matchLabels: { env: 'prod' } }, namespace: { fixed: 'ops' } },
    });
    assert.match(custom, /^version: {5}3\nupdated: {5}2026-12-06T19:00:00\.000Z by cli:ann$/m);
    assert.match(custom, /^targets: {5}clusters matching env=prod; namespace ops$/m);
    assert.match(custom, /^ {2}mode +string +no +a +one of a\|b/m);
    assert.match(custom, /^ {2}force +boolean +no +false +-/m);
    assert.match(custom, /^ {2}n +integer +no +- +>= 1/m);
  });

  test('admin runbook apply reads YAML or JSON and leaves out what runbook get adds', () => {
    const spec = catalogue[0]!;
    const fromGet = JSON.stringify({
      ...spec,
      version: 4,
      builtin: false,
      updatedBy: 'a',
      updatedAt: 'b',
    });
    assert.deepEqual(definitionFrom(fromGet, 'x.json'), spec);
    assert.deepEqual(definitionFrom('name: a\ndescription: b\n', 'x.yaml'), {
      name: 'a',
      description: 'b',
    });
    assert.throws(() => definitionFrom('- a\n- b\n', 'x.yaml'), /x\.yaml: must hold one runbook/);
    assert.throws(() => definitionFrom('a: [', 'x.yaml'), /x\.yaml: not YAML or JSON/);
  });
});
