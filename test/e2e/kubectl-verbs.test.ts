/**
 * The rest of what kubectl does, through kubegate with the real binary against a cluster whose
 * Pods run on kwok nodes: attach (WebSocket and SPDY), cp both ways (tar over exec), exec with
 * a terminal and stdin (both transports), apply --server-side with field ownership, diff
 * (server-side dry run) and every patch type. What each verb did is checked on the cluster
 * itself with the admin kubeconfig, not only by kubectl's exit code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { appendPodLog } from '../support/cluster.js';
import { until } from '../support/http.js';

const NS = 'verbs';
const transports = [
  { name: 'WebSocket', env: {}, log: /subprotocol is v5\.channel\.k8s\.io/ },
  {
    name: 'SPDY',
    env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
    log: /status="101 Switching Protocols"/,
  },
];

let stack: Stack;
let user: { kubeconfig: string };
let admin: { kubeconfig: string };
let pod: string;
let work: string;

describe(
  'kubectl verbs through kubegate (attach, cp, exec -it, apply, diff, patch)',
  {
    timeout: 600_000,
  },
  () => {
    before(async () => {
      stack = await startStack({
        clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 1 }],
        log: (m) => process.stderr.write(`# ${m}\n`),
      });
      admin = { kubeconfig: stack.cluster.kubeconfig };
      await kubectlOk(['create', 'namespace', NS], admin);
      await grant(stack, { users: ['vera'], role: 'admin', clusters: ['dev'], namespaces: [NS] });
      user = { kubeconfig: await stack.kubeconfig('vera') };
      await kubectlOk(['-n', NS, 'run', 'box', '--image=busybox'], user);
      await kubectlOk(['-n', NS, 'wait', '--for=condition=Ready', 'pod/box', '--timeout=120s'], {
        ...user,
        timeoutMs: 130_000,
      });
      pod = 'box';
      // kwok runs a pod's exec as a local command: cp's tar reads and writes this machine's files.
      work = mkdtempSync(join(stack.dir, 'cp-'));
    });
    after(async () => {
      await stack?.stop();
    });

    for (const t of transports) {
      test(`attach over ${t.name} streams what the container writes`, async () => {
        const child = spawn(
          kubectlPath(),
          ['--kubeconfig', user.kubeconfig, '-v=6', '-n', NS, 'attach', pod],
          { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '', ...t.env } },
        );
        let out = '';
        let err = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr.on('data', (b: Buffer) => (err += b.toString()));
        const tag = `${t.name}-${randomBytes(4).toString('hex')}`;
        try {
          // attach shows only what is written after it connected: keep writing until a line shows.
          let n = 0;
          await until(
            async () => {
              if (child.exitCode !== null) throw new Error(`attach exited: ${err}`);
              await appendPodLog(stack.cluster.podLogsFile!, [`attached ${tag} ${n++}`]);
              return new RegExp(`attached ${tag} \\d+\\n`).test(out);
            },
            60_000,
            `kubectl attach output (stderr ${JSON.stringify(err.slice(-2000))})`,
          );
          assert.match(err, t.log, `kubectl used ${t.name}`);
        } finally {
          child.kill('SIGTERM');
        }
      });

      test(`exec -it over ${t.name}: a terminal of the client's size, stdin, exit code`, async () => {
        // kubectl wants a terminal for -t: script(1) gives it one (33 rows × 101 cols) and feeds
        // it our stdin; the remote shell reads a line from it and answers.
        const inner = [
          'stty cols 101 rows 33;',
          `exec '${kubectlPath()}' --kubeconfig '${user.kubeconfig}' -n ${NS} exec -it ${pod}`,
          // The size travels on its own channel and may land just after the command starts:
          // wait up to 5 s for it.
          `-- sh -c 'tty; for i in $(seq 50); do [ "$(stty size)" != "0 0" ] && break; sleep 0.1; done; stty size; read a b; echo "got-$b-$a"; exit 5'`,
        ].join(' ');
        const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
          const child = spawn('script', ['-qec', inner, '/dev/null'], {
            stdio: ['pipe', 'pipe', 'pipe'],
            env: { ...process.env, KUBECONFIG: '', ...t.env },
          });
          let out = '';
          child.stdout.on('data', (b: Buffer) => (out += b.toString()));
          child.stderr.on('data', (b: Buffer) => (out += b.toString()));
          const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
          child.once('error', reject);
          child.once('close', (code) => {
            clearTimeout(timer);
            child.stdin.destroy();
            resolve({ code, out });
          });
          // Typed, but stdin is not ended: at EOF script(1) would type Ctrl-D into the
          // terminal too, a keystroke that races kubectl's set-up and is sometimes echoed.
          child.stdin.write('kube gate\n');
        });
        assert.equal(r.code, 5, r.out);
        assert.match(r.out, /\/dev\/pts\/\d+\r?\n/, 'the command runs on a terminal');
        assert.match(r.out, /^33 101\r?$/m, 'of the size kubectl sent');
        assert.match(r.out, /^got-gate-kube\r?$/m, 'stdin reached the command');
      });
    }

    test('cp copies a file into the pod and back, byte for byte', async () => {
      const local = join(work, 'local');
      const inPod = join(work, 'pod');
      mkdirSync(local);
      mkdirSync(inPod);
      const content = randomBytes(300 * 1024);
      writeFileSync(join(local, 'up.bin'), content);
      await kubectlOk(['-n', NS, 'cp', join(local, 'up.bin'), `${pod}:${inPod}/in.bin`], {
        ...user,
        timeoutMs: 60_000,
      });
      assert.ok(readFileSync(join(inPod, 'in.bin')).equals(content), 'the pod got the same bytes');

      const back = randomBytes(200 * 1024);
      writeFileSync(join(inPod, 'out.bin'), back);
      await kubectlOk(['-n', NS, 'cp', `${pod}:${inPod}/out.bin`, join(local, 'down.bin')], {
        ...user,
        timeoutMs: 60_000,
      });
      assert.ok(readFileSync(join(local, 'down.bin')).equals(back), 'the same bytes came back');
    });

    test('apply --server-side owns fields; a conflicting manager is refused, --force-conflicts wins', async () => {
      const cm = (value: string) =>
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'ssa', namespace: NS },
          data: { key: value },
        });
      await kubectlOk(['apply', '--server-side', '--field-manager=alpha', '-f', '-'], {
        ...user,
        input: cm('one'),
      });
      const live = JSON.parse(
        await kubectlOk(
          ['-n', NS, 'get', 'configmap', 'ssa', '-o', 'json', '--show-managed-fields'],
          admin,
        ),
      ) as {
        data: Record<string, string>;
        metadata: { managedFields: { manager: string; operation: string }[] };
      };
      assert.equal(live.data.key, 'one');
      assert.ok(
        live.metadata.managedFields.some((f) => f.manager === 'alpha' && f.operation === 'Apply'),
        'the apply is recorded under its field manager',
      );
      const clash = await kubectl(['apply', '--server-side', '--field-manager=beta', '-f', '-'], {
        ...user,
        input: cm('two'),
      });
      assert.notEqual(clash.code, 0);
      assert.match(clash.stderr, /conflict/i);
      await kubectlOk(
        ['apply', '--server-side', '--field-manager=beta', '--force-conflicts', '-f', '-'],
        { ...user, input: cm('two') },
      );
      assert.equal(
        await kubectlOk(['-n', NS, 'get', 'configmap', 'ssa', '-o', 'jsonpath={.data.key}'], admin),
        'two',
      );
    });

    test('diff shows the change against the live object without making it', async () => {
      const file = join(work, 'diff.json');
      const obj = (value: string) =>
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'ConfigMap',
          metadata: { name: 'differ', namespace: NS },
          data: { key: value },
        });
      writeFileSync(file, obj('before'));
      await kubectlOk(['apply', '-f', file], user);
      const same = await kubectl(['diff', '-f', file], user);
      assert.equal(same.code, 0, `no difference: ${same.stdout}${same.stderr}`);
      writeFileSync(file, obj('after'));
      const d = await kubectl(['diff', '-f', file], user);
      assert.equal(d.code, 1, `exit 1 means "differences found": ${d.stderr}`);
      assert.match(d.stdout, /^-\s+key: before$/m);
      assert.match(d.stdout, /^\+\s+key: after$/m);
      assert.equal(
        await kubectlOk(
          ['-n', NS, 'get', 'configmap', 'differ', '-o', 'jsonpath={.data.key}'],
          admin,
        ),
        'before',
        'diff is a dry run: the live object is unchanged',
      );
    });

    test('patch: strategic, merge and JSON patches all land', async () => {
      await kubectlOk(['-n', NS, 'create', 'configmap', 'patched', '--from-literal=a=1'], user);
      await kubectlOk(
        ['-n', NS, 'patch', 'configmap', 'patched', '-p', '{"data":{"b":"2"}}'],
        user,
      );
      await kubectlOk(
        ['-n', NS, 'patch', 'configmap', 'patched', '--type=merge', '-p', '{"data":{"a":null}}'],
        user,
      );
      await kubectlOk(
        [
          ...['-n', NS, 'patch', 'configmap', 'patched', '--type=json'],
          ...['-p', '[{"op":"add","path":"/data/c","value":"3"}]'],
        ],
        user,
      );
      const data = JSON.parse(
        await kubectlOk(['-n', NS, 'get', 'configmap', 'patched', '-o', 'jsonpath={.data}'], admin),
      ) as Record<string, string>;
      assert.deepEqual(data, { b: '2', c: '3' });
    });
  },
);
