/**
 * Runbooks from the command line, end to end: the real `kubegate` binary
 * against a real stack (PostgreSQL, the proxy, an agent in front of a real
 * apiserver with kwok nodes).
 *
 * An operator whose fleet kubeconfig may only read platform-demo, and whose
 * group may run three runbooks there, runs `kubegate run … --wait`: the
 * progress is printed as the run goes, the exit code says how it ended (0
 * succeeded, 1 a failing step), a refused request lists every problem, and
 * `runs list/get` show the history. An admin applies a small custom runbook
 * with `kubegate admin runbook apply`, and the operator runs it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { runKubegate } from '../support/proc.js';

let stack: Stack;
let opsKubeconfig: string;
let leadKubeconfig: string;
const admin = () => ({ kubeconfig: stack.cluster.kubeconfig });

/** `kubegate ARGS` as the operator (their fleet kubeconfig; no database settings). */
function asOps(args: string[]) {
  return runKubegate([...args, '--kubeconfig', opsKubeconfig], {
    DATABASE_URL: '',
    KUBECONFIG: '',
    KUBEGATE_SERVER: '',
    KUBEGATE_TOKEN: '',
  });
}

/** `kubegate ARGS` as a platform lead (their fleet kubeconfig). */
function asLead(args: string[]) {
  return runKubegate([...args, '--kubeconfig', leadKubeconfig], {
    DATABASE_URL: '',
    KUBECONFIG: '',
    KUBEGATE_SERVER: '',
    KUBEGATE_TOKEN: '',
  });
}

/** The run of `runbook` waiting for approval, once there is exactly one: its id and its approval's. */
async function waitingRun(runbook: string): Promise<{ id: string; approval: string }> {
  const t0 = Date.now();
  for (;;) {
    const r = await asOps([
      'runs',
      'list',
      '--runbook',
      runbook,
      '--status',
      'awaiting-approval',
      '--output',
      'json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const items = JSON.parse(r.stdout) as { id: string; approval: { id: string } | null }[];
    if (items.length === 1 && items[0]!.approval)
      return { id: items[0]!.id, approval: items[0]!.approval.id };
    assert.ok(items.length <= 1 && Date.now() - t0 < 20_000, `no single waiting run: ${r.stdout}`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

/** `kubegate admin ARGS` against the stack's database. */
function asAdmin(args: string[]) {
  return runKubegate(['admin', ...args], stack.env);
}

async function deployment(name: string) {
  const out = await kubectlOk(
    ['get', 'deployment', name, '-n', 'platform-demo', '-o', 'json'],
    admin(),
  );
  return JSON.parse(out) as {
    spec: { replicas: number };
    metadata: { annotations?: Record<string, string> };
  };
}

async function runCount(): Promise<number> {
  return (await stack.sql<{ n: number }>('SELECT count(*)::int AS n FROM runbook_runs'))[0]!.n;
}

const scaleArgs = (replicas: string) => [
  'run',
  'scale-deployment',
  '--cluster',
  'dev',
  '--param',
  'namespace=platform-demo',
  '--param',
  'deployment=demo-app',
  '--param',
  `replicas=${replicas}`,
];

/** A runbook an admin writes: note a free-text value on the deployment as an annotation. */
const annotate = {
  name: 'annotate-demo',
  description: 'Write a note on the demo-app Deployment.',
  parameters: [
    { name: 'note', type: 'string', required: true, maxLength: 200, description: 'The note.' },
  ],
  targets: { namespace: { fixed: 'platform-demo' } },
  steps: [
    {
      name: 'annotate',
      action: 'patch',
      target: {
        group: 'apps',
        version: 'v1',
        resource: 'deployments',
        namespaced: true,
        name: 'demo-app',
      },
      patchType: 'merge',
      patch: { metadata: { annotations: { 'example.com/note': '{{note}}' } } },
    },
  ],
};

describe('runbooks from the CLI', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 2 }],
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    await kubectlOk(['create', 'namespace', 'platform-demo'], admin());
    await kubectlOk(
      [
        'create',
        'deployment',
        'demo-app',
        '--image=registry.example/demo:1',
        '-n',
        'platform-demo',
      ],
      admin(),
    );
    const rules = join(stack.dir, 'runner-rules.yaml');
    writeFileSync(
      rules,
      JSON.stringify([
        {
          apiGroups: ['kubegate.dev'],
          resources: ['runbooks'],
          verbs: ['run'],
          resourceNames: ['scale-deployment', 'delete-pod', 'annotate-demo', 'rollout-restart'],
        },
      ]),
    );
    const role = await asAdmin(['role', 'create', 'runbook-runner', '--file', rules]);
    assert.equal(role.code, 0, role.stderr);
    await grant(stack, {
      groups: ['operators'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['platform-demo'],
    });
    await grant(stack, {
      groups: ['operators'],
      role: 'runbook-runner',
      clusters: ['dev'],
      namespaces: ['platform-demo'],
    });
    opsKubeconfig = await stack.kubeconfig('ops@example.com', ['operators']);
    // Restarts wait for a platform lead.
    await grant(stack, {
      groups: ['platform-leads'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['platform-demo'],
    });
    leadKubeconfig = await stack.kubeconfig('lead@example.com', ['platform-leads']);
    const policy = join(stack.dir, 'restart-policy.yaml');
    writeFileSync(
      policy,
      [
        'name: demo-restarts',
        'kind: runbook',
        'description: a platform lead approves restarts in platform-demo',
        'runbooks: [rollout-restart]',
        'approvers: {groups: [platform-leads]}',
        'clusters: {selector: {matchLabels: {env: dev}}}',
        'namespaces: [platform-demo]',
        '',
      ].join('\n'),
    );
    const applied = await asAdmin(['approval', 'policy', 'apply', '--file', policy]);
    assert.equal(applied.code, 0, applied.stderr);
    // The bindings reach the proxy through LISTEN/NOTIFY: wait until a dry run is allowed.
    const t0 = Date.now();
    for (;;) {
      const r = await asOps([...scaleArgs('1'), '--dry-run']);
      if (r.code === 0) break;
      assert.ok(Date.now() - t0 < 15_000, `the operator is never allowed: ${r.stderr}`);
      await new Promise((res) => setTimeout(res, 500));
    }
  });
  after(async () => {
    await stack?.stop();
  });

  test('runbook list and get, as the operator through the proxy', async () => {
    const list = await asOps(['runbook', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME\s+VERSION\s+BUILTIN\s+DESCRIPTION$/m);
    assert.match(list.stdout, /^scale-deployment\s+1\s+yes\s+Set the number of replicas/m);
    const get = await asOps(['runbook', 'get', 'scale-deployment']);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /^ {2}replicas\s+integer\s+yes\s+-\s+0\.\.100\s+How many pods/m);
    assert.match(get.stdout, /^ {2}1\. scale \(scale deployments\.apps\/\{\{deployment\}\}\)$/m);
    const missing = await asOps(['runbook', 'get', 'no-such-runbook']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^kubegate: 404: runbook "no-such-runbook" not found/);
  });

  test('run --wait prints the progress and the diff, and exits 0 when the run succeeds', async () => {
    const r = await asOps([...scaleArgs('2'), '--ticket', 'INC-7', '--wait']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const lines = r.stdout.trimEnd().split('\n');
    const id = lines[0]!;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.match(
      r.stderr,
      new RegExp(
        `^run ${id}: scale-deployment v1 in platform-demo on dev, ticket INC-7; (queued|running)\\n$`,
      ),
    );
    assert.ok(lines.includes(`run ${id}: succeeded`), r.stdout);
    assert.ok(
      lines.some((l) => l.startsWith('dev: step 1 scale: succeeded')),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^ {4}-\s+replicas: 1$/.test(l)),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^ {4}\+\s+replicas: 2$/.test(l)),
      r.stdout,
    );
    // The step's result comes before the cluster's, and the summary is last.
    assert.ok(
      lines.findIndex((l) => l.startsWith('dev: step 1 scale: succeeded')) <
        lines.indexOf('dev: succeeded'),
    );
    // --wait shows the changed lines of the diff with a little context, not the whole object.
    assert.ok(!lines.some((l) => /terminationGracePeriodSeconds/.test(l)), r.stdout);
    assert.match(
      lines[lines.length - 1]!,
      new RegExp(`^run ${id} succeeded \\(1 cluster\\) in \\d+\\.\\ds$`),
    );
    assert.equal((await deployment('demo-app')).spec.replicas, 2);

    // runs list and runs get show it.
    const list = await asOps(['runs', 'list', '--ticket', 'INC-7']);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.trimEnd().split('\n');
    assert.match(rows[0]!, /^ID\s+RUNBOOK\s+STATUS\s+CLUSTERS\s+REQUESTER\s+TICKET\s+CREATED$/);
    assert.equal(rows.length, 2, list.stdout);
    assert.match(
      rows[1]!,
      new RegExp(
        `^${id}\\s+scale-deployment v1\\s+succeeded\\s+\\S+\\s+ops@example\\.com\\s+INC-7\\s+\\d{4}-`,
      ),
    );
    const get = await asOps(['runs', 'get', id]);
    assert.equal(get.code, 0, get.stderr);
    assert.match(
      get.stdout,
      new RegExp(`^run: {8}${id}\\nrunbook: {4}scale-deployment v1\\nstatus: {5}succeeded\\n`),
    );
    assert.match(
      get.stdout,
      /^params: {5}deployment=demo-app namespace=platform-demo replicas=2$/m,
    );
    assert.match(get.stdout, /^requester: {2}ops@example\.com \(user, groups .*operators.*\)$/m);
    assert.match(get.stdout, /^cluster dev: succeeded/m);
    assert.match(get.stdout, /^ {2}step 1 scale \(scale\): succeeded/m);
    assert.match(get.stdout, /^ {6}\+\s+replicas: 2$/m);
    const json = await asOps(['runs', 'get', id, '--output', 'json']);
    assert.equal(json.code, 0);
    assert.equal((JSON.parse(json.stdout) as { id: string; ticket: string }).ticket, 'INC-7');
  });

  test('an Idempotency-Key given twice answers the same run', async () => {
    const first = await asOps([...scaleArgs('2'), '--idempotency-key', 'cli-e2e-1']);
    assert.equal(first.code, 0, first.stderr);
    const before = await runCount();
    const again = await asOps([...scaleArgs('2'), '--idempotency-key', 'cli-e2e-1']);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout, first.stdout);
    assert.match(again.stderr, /was made before with this Idempotency-Key/);
    assert.equal(await runCount(), before);
  });

  test('a dry run shows the diff and changes nothing', async () => {
    // The clusters by label selector this time.
    const args = scaleArgs('5').filter((a) => a !== '--cluster' && a !== 'dev');
    const r = await asOps([...args, '--selector', 'env=dev', '--dry-run', '--wait']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /: dry run of scale-deployment v1 in platform-demo on dev; /);
    assert.match(r.stdout, /^dev: step 1 scale: succeeded: .*dry run/m);
    assert.match(r.stdout, /^ {4}\+\s+replicas: 5$/m);
    assert.match(r.stdout, /^dry run \S+ succeeded \(1 cluster\)/m);
    assert.equal((await deployment('demo-app')).spec.replicas, 2);
  });

  test("a failing step: the apiserver's message, then exit 1", async () => {
    const r = await asOps([
      'run',
      'delete-pod',
      '--cluster',
      'dev',
      '--param',
      'namespace=platform-demo',
      '--param',
      'pod=no-such-pod',
      '--wait',
    ]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    const lines = r.stdout.trimEnd().split('\n');
    const id = lines[0]!;
    assert.ok(
      lines.some((l) => /^dev: step 1 delete: failed: .*404: pods "no-such-pod" not found/.test(l)),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => /^dev: failed: step 1 \(.*\) failed/.test(l)),
      r.stdout,
    );
    assert.match(lines[lines.length - 1]!, new RegExp(`^run ${id} failed \\(failed on dev\\) in `));
    assert.equal(r.stderr.split('\n').length, 2, 'stderr: the status line only');
  });

  test('a refused run lists every problem on its own line and exits 1; usage mistakes exit 2', async () => {
    const before = await runCount();
    const r = await asOps([
      'run',
      'scale-deployment',
      '--cluster',
      'dev',
      '--cluster',
      'nope',
      '--param',
      'namespace=platform-demo',
      '--param',
      'deployment=a/b',
      '--param',
      'replicas=three',
      '--param',
      'extra=x=y',
      '--wait',
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.match(lines[0]!, /^kubegate: 422: run refused, 4 problems:$/);
    assert.equal(lines.length, 5, r.stderr);
    assert.ok(
      lines.slice(1).every((l) => l.startsWith('  - ')),
      r.stderr,
    );
    assert.match(r.stderr, /^ {2}- clusters: "nope" is not a cluster kubegate knows$/m);
    assert.match(r.stderr, /^ {2}- params: parameters\.extra: unknown parameter/m);
    assert.match(r.stderr, /^ {2}- params: .*deployment/m);
    assert.match(r.stderr, /^ {2}- params: .*replicas/m);
    // Not allowed: a 403 that says why.
    const other = await asOps([
      'run',
      'scale-deployment',
      '--cluster',
      'dev',
      '--param',
      'namespace=other',
      '--param',
      'deployment=demo-app',
      '--param',
      'replicas=1',
    ]);
    assert.equal(other.code, 1);
    assert.match(
      other.stderr,
      /^kubegate: 403: user "ops@example\.com" may not run runbook "scale-deployment" in namespace "other"/,
    );
    const usage = await asOps([
      'run',
      'scale-deployment',
      '--param',
      'replicas=1',
      '--param',
      'replicas=2',
    ]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /say where: --cluster NAME/);
    assert.match(usage.stderr, /--param replicas is given more than once/);
    assert.equal(await runCount(), before);
  });

  test('run --wait waits for approval and goes on once a lead approves; runs cancel ends a waiting run', async () => {
    const restart = [
      'run',
      'rollout-restart',
      '--cluster',
      'dev',
      '--param',
      'namespace=platform-demo',
      '--param',
      'deployment=demo-app',
      '--ticket',
      'INC-8',
      '--reason',
      'stuck pods',
      '--wait',
    ];
    const following = asOps(restart);
    const w = await waitingRun('rollout-restart');
    const get = await asOps(['runs', 'get', w.id]);
    assert.match(get.stdout, /^status: {5}awaiting-approval$/m);
    assert.match(get.stdout, /^reason: {5}stuck pods$/m);
    assert.match(get.stdout, new RegExp(`^approval: {3}${w.approval} pending$`, 'm'));
    // The operator may not approve their own run; a lead may.
    const self = await asOps(['request', 'approve', w.approval]);
    assert.equal(self.code, 1);
    assert.match(self.stderr, /^kubegate: 403: /);
    // The lead sees it in their queue and approves it, from the CLI too.
    const queue = await asLead(['request', 'list', '--view', 'approvable']);
    assert.equal(queue.code, 0, queue.stderr);
    assert.match(
      queue.stdout,
      new RegExp(`^${w.approval}\tpending\t.*\trun rollout-restart platform-demo@dev INC-8\t`, 'm'),
    );
    const ok = await asLead(['request', 'approve', w.approval, '--reason', 'go']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, new RegExp(`^${w.approval}\tapproved\t`, 'm'));
    const r = await following;
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines[0], w.id);
    assert.ok(
      lines.includes(
        `run ${w.id}: awaiting-approval (approval ${w.approval}: kubegate request get ${w.approval})`,
      ),
      r.stdout,
    );
    assert.ok(
      lines.some((l) => l.startsWith('dev: step 1 restart: succeeded')),
      r.stdout,
    );
    assert.match(
      lines[lines.length - 1]!,
      new RegExp(`^run ${w.id} succeeded \\(1 cluster\\) in `),
    );
    assert.ok(
      (await deployment('demo-app')).spec.replicas >= 0 &&
        /restartedAt/.test(
          await kubectlOk(
            [
              'get',
              'deployment',
              'demo-app',
              '-n',
              'platform-demo',
              '-o',
              'jsonpath={.spec.template.metadata.annotations}',
            ],
            admin(),
          ),
        ),
      'the pod template carries the restart annotation',
    );

    // Cancelled while it waits: --wait ends with exit 1, and nothing ran.
    const second = asOps(restart);
    const c = await waitingRun('rollout-restart');
    assert.notEqual(c.id, w.id);
    const cancel = await asOps(['runs', 'cancel', c.id, '--reason', 'ticket closed']);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout, `run ${c.id}: cancelled\n`);
    const s = await second;
    assert.equal(s.code, 1, `${s.stdout}\n${s.stderr}`);
    assert.match(
      s.stdout,
      new RegExp(`\\nrun ${c.id} cancelled \\(cancelled on dev\\) in \\d+\\.\\ds\\n$`),
    );
    assert.doesNotMatch(s.stdout, /step 1 restart: (running|succeeded)/);
    const again = await asOps(['runs', 'cancel', c.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^kubegate: 409: /);
    const shown = await asOps(['runs', 'get', c.id]);
    assert.match(shown.stdout, /^cancel: {5}cancelled by user:ops@example\.com: ticket closed$/m);
  });

  test('admin runbook apply: a custom runbook, its versions, run by the operator', async () => {
    const file = join(stack.dir, 'annotate.yaml');
    const bad = join(stack.dir, 'bad.yaml');
    writeFileSync(bad, 'name: Bad_Name\nsteps: []\nextra: 1\n');
    const refused = await asAdmin(['runbook', 'apply', '--file', bad]);
    assert.equal(refused.code, 1);
    const problems = refused.stderr.trimEnd().split('\n');
    assert.match(problems[0]!, /^kubegate: the runbook is invalid, \d+ problems:$/);
    assert.ok(problems.length >= 4, refused.stderr);
    assert.ok(
      problems.slice(1).every((l) => l.startsWith('  - ')),
      refused.stderr,
    );
    assert.match(refused.stderr, /^ {2}- extra: unknown field/m);

    writeFileSync(file, JSON.stringify(annotate));
    const created = await asAdmin(['runbook', 'apply', '--file', file]);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stderr, 'runbook "annotate-demo" created (version 1)\n');
    const same = await asAdmin(['runbook', 'apply', '--file', file]);
    assert.equal(same.stderr, 'runbook "annotate-demo" unchanged (version 1)\n');
    // YAML, as `runbook get --output yaml` prints it, with another description: version 2.
    const yaml = await asOps(['runbook', 'get', 'annotate-demo', '--output', 'yaml']);
    assert.equal(yaml.code, 0, yaml.stderr);
    writeFileSync(file, yaml.stdout.replace('Write a note on', 'Note something on'));
    const replaced = await asAdmin(['runbook', 'apply', '--file', file]);
    assert.equal(replaced.stderr, 'runbook "annotate-demo" replaced (version 2)\n');
    const list = await asAdmin(['runbook', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^annotate-demo\s+2\s+no\s+\d{4}-\S+\s+cli:\S+$/m);
    assert.match(list.stdout, /^scale-deployment\s+1\s+yes\s+-\s+-$/m);
    const builtin = await asAdmin(['runbook', 'delete', 'scale-deployment']);
    assert.equal(builtin.code, 1);
    assert.match(builtin.stderr, /built in and cannot be deleted/);

    const get = await asOps(['runbook', 'get', 'annotate-demo']);
    assert.match(get.stdout, /^version: {5}2$/m);
    assert.match(get.stdout, /^targets: {5}any cluster; namespace platform-demo$/m);
    assert.match(get.stdout, /^ {2}note\s+string\s+yes\s+-\s+max length 200\s+The note\.$/m);

    // A value may hold '=' and ',': it reaches the object as it was typed.
    const r = await asOps([
      'run',
      'annotate-demo',
      '--cluster',
      'dev',
      '--param',
      'note=owner=team-a, ticket INC-9',
      '--wait',
    ]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stderr, /: annotate-demo v2 in platform-demo on dev; (queued|running)$/m);
    assert.match(r.stdout, /^dev: step 1 annotate \(patch\): succeeded/m);
    assert.match(r.stdout, /^ {4}\+\s+example\.com\/note: owner=team-a, ticket INC-9$/m);
    assert.equal(
      (await deployment('demo-app')).metadata.annotations?.['example.com/note'],
      'owner=team-a, ticket INC-9',
    );

    const deleted = await asAdmin(['runbook', 'delete', 'annotate-demo']);
    assert.equal(deleted.code, 0, deleted.stderr);
    const gone = await asOps(['runbook', 'get', 'annotate-demo']);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /404: runbook "annotate-demo" not found/);
    // Its runs stay in the history.
    const history = await asOps(['runs', 'list', '--runbook', 'annotate-demo']);
    assert.match(history.stdout, /annotate-demo v2\s+succeeded/);
  });
});
