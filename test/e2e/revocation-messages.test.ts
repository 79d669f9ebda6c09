/**
 * Revocation says so (issue #18, item 5): when a token is revoked, a user
 * deactivated or a binding removed, an open `kubectl get -w` and an open
 * `kubectl exec -it` end within a second and kubectl prints why, as it prints
 * the apiserver's own errors: the watch gets a last ERROR event carrying an
 * Unauthorized Status (JSON, and the apiserver's protobuf framing), exec gets
 * the Status on its error channel (WebSocket) and a normal close.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant, ungrant } from '../support/grants.js';

const NS = 'revoke';

interface Running {
  child: ChildProcess;
  out: () => string;
  /** When it exited (ms since epoch). */
  exited: Promise<number>;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Running {
  // stdin is a pipe left open: an idle keyboard (script(1) types Ctrl-D at EOF).
  const child = spawn(cmd, args, {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, KUBECONFIG: '', ...env },
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  // Timed at 'exit'; settled at 'close', once its output is all read.
  const exited = new Promise<number>((resolve) => {
    let at = 0;
    child.once('exit', () => {
      at = Date.now();
      child.stdin!.destroy();
    });
    child.once('close', () => resolve(at || Date.now()));
  });
  return { child, out: () => out, exited };
}

async function waitFor(r: Running, re: RegExp, what: string): Promise<void> {
  const t0 = Date.now();
  while (!re.test(r.out())) {
    if (r.child.exitCode !== null) throw new Error(`${what} exited early: ${r.out()}`);
    if (Date.now() - t0 > 30_000)
      throw new Error(`${what}: no ${re} in ${JSON.stringify(r.out())}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** Ms from t0 until it exited, or Infinity if still running after `ms`. */
async function endedWithin(r: Running, t0: number, ms: number): Promise<number> {
  const at = await Promise.race([
    r.exited,
    new Promise<number>((res) => setTimeout(() => res(Infinity), ms)),
  ]);
  if (at === Infinity) r.child.kill('SIGKILL');
  return at - t0;
}

let stack: Stack;
let pod: string;

/** A fresh user with edit rights in NS and a kubeconfig of their own. */
async function newUser(name: string): Promise<{ kubeconfig: string; binding: string }> {
  const binding = await grant(stack, {
    users: [name],
    role: 'admin',
    clusters: ['dev'],
    namespaces: [NS],
  });
  return { kubeconfig: await stack.kubeconfig(name), binding };
}

const revokeTokens = (user: string) =>
  stack.sql(`UPDATE api_tokens SET revoked_at = now() WHERE subject = $1`, [user]);

function watch(kubeconfig: string): Running {
  return run(kubectlPath(), ['--kubeconfig', kubeconfig, '-n', NS, 'get', 'configmaps', '-w']);
}

function execIt(kubeconfig: string, env: NodeJS.ProcessEnv): Running {
  const inner = `exec '${kubectlPath()}' -v=6 --kubeconfig '${kubeconfig}' -n ${NS} exec -it ${pod} -- sh -c 'echo up-\$((40+2)); sleep 60'`;
  return run('script', ['-qec', inner, '/dev/null'], env);
}

const noStreamError = (out: string) =>
  assert.doesNotMatch(out, /NO_ERROR|unable to decode|1006|abnormal closure/, out);

describe(
  'revocation says so: watches and exec sessions end with the reason',
  { timeout: 600_000 },
  () => {
    before(async () => {
      stack = await startStack({
        clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 1 }],
        log: (m) => process.stderr.write(`# ${m}\n`),
      });
      const admin = { kubeconfig: stack.cluster.kubeconfig };
      await kubectlOk(['create', 'namespace', NS], admin);
      await kubectlOk(['-n', NS, 'create', 'configmap', 'seen'], admin);
      await kubectlOk(['-n', NS, 'create', 'deployment', 'app', '--image=busybox'], admin);
      await kubectlOk(['-n', NS, 'rollout', 'status', 'deployment/app', '--timeout=120s'], {
        ...admin,
        timeoutMs: 150_000,
      });
      const pods = JSON.parse(await kubectlOk(['-n', NS, 'get', 'pods', '-o', 'json'], admin)) as {
        items: { metadata: { name: string } }[];
      };
      pod = pods.items[0]!.metadata.name;
    });
    after(async () => {
      await stack?.stop();
    });

    const watchCases = [
      {
        name: 'a revoked token',
        says: /token revoked/,
        end: async (user: string) => {
          await revokeTokens(user);
        },
      },
      {
        name: 'a deactivated user',
        says: /user deactivated: .*"wanda-deactivated"/,
        end: async (user: string) => {
          await stack.sql(
            `INSERT INTO users (issuer, subject, username) VALUES ('https://idp.test', $1, $1)`,
            [user],
          );
          await stack.admin(['user', 'deactivate', user]);
        },
      },
    ];
    for (const c of watchCases) {
      test(`get -w with ${c.name}: ends within a second, kubectl prints why`, async () => {
        const name = c.name === 'a deactivated user' ? 'wanda-deactivated' : 'wanda-revoked';
        const user = await newUser(name);
        const w = watch(user.kubeconfig);
        try {
          await waitFor(w, /seen/, 'kubectl get -w');
          const t0 = Date.now();
          await c.end(name);
          // The CLI (a process of its own) commits the change before it returns.
          const done = Date.now();
          const ms = await endedWithin(w, done, 5000);
          process.stderr.write(
            `# ${c.name}: get -w ended ${ms} ms after the change returned (${done - t0} ms to make it); printed ${JSON.stringify(w.out())}\n`,
          );
          assert.ok(ms <= 1000, `ended within a second (${ms} ms)`);
          assert.match(w.out(), c.says);
          // Open, the watch gets an ERROR event (kubectl prints its Status row:
          // "Failure  Unauthorized  …"); a change that lands while kubectl's
          // WATCH is still waiting for its answer gets a 401 answer instead,
          // which kubectl prints as "You must be logged in to the server (…)".
          // Both are Unauthorized, and both say why (c.says).
          assert.match(w.out(), /Unauthorized|You must be logged in to the server \(/);
          noStreamError(w.out());
        } finally {
          w.child.kill('SIGKILL');
        }
      });
    }

    test('get -w with its binding removed: ends within a second, kubectl prints why', async () => {
      const user = await newUser('wanda-unbound');
      const w = watch(user.kubeconfig);
      try {
        await waitFor(w, /seen/, 'kubectl get -w');
        const t0 = Date.now();
        await ungrant(stack, user.binding);
        const ms = await endedWithin(w, t0, 5000);
        process.stderr.write(
          `# binding removed: get -w ended after ${ms} ms; printed ${JSON.stringify(w.out())}\n`,
        );
        assert.ok(ms <= 1000, `ended within a second (${ms} ms)`);
        assert.match(
          w.out(),
          /access removed: .*"wanda-unbound" to watch configmaps on cluster "dev"/,
        );
        noStreamError(w.out());
      } finally {
        w.child.kill('SIGKILL');
      }
    });

    test('a protobuf watch ends with an ERROR event in the apiserver framing, then a clean end', async () => {
      const user = await newUser('pia-protobuf');
      const cfg = readFileSync(user.kubeconfig, 'utf8');
      const token = /token: (kg_\S+)/.exec(cfg)![1]!;
      const ca = Buffer.from(/certificate-authority-data: (\S+)/.exec(cfg)![1]!, 'base64');
      const u = new URL(stack.publicUrl);
      const got = await new Promise<{ frames: Buffer[]; clean: boolean; type: string }>(
        (resolve, reject) => {
          const req = https.request(
            {
              host: u.hostname,
              port: u.port,
              path: `/k8s/dev/api/v1/namespaces/${NS}/configmaps?watch=1`,
              ca,
              agent: false,
              headers: {
                authorization: `Bearer ${token}`,
                accept: 'application/vnd.kubernetes.protobuf;stream=watch',
              },
            },
            (res) => {
              let buf = Buffer.alloc(0);
              const frames: Buffer[] = [];
              let revoked = false;
              res.on('data', (c: Buffer) => {
                buf = Buffer.concat([buf, c]);
                while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
                  frames.push(buf.subarray(4, 4 + buf.readUInt32BE(0)));
                  buf = buf.subarray(4 + buf.readUInt32BE(0));
                }
                if (frames.length >= 1 && !revoked) {
                  revoked = true;
                  void revokeTokens('pia-protobuf');
                }
              });
              res.on('end', () =>
                resolve({
                  frames,
                  clean: buf.length === 0,
                  type: String(res.headers['content-type']),
                }),
              );
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end();
        },
      );
      assert.match(got.type, /^application\/vnd\.kubernetes\.protobuf;stream=watch/);
      assert.ok(got.clean, 'the stream ended on a frame boundary');
      const last = got.frames.at(-1)!;
      // metav1.WatchEvent {1: "ERROR", 2: RawExtension {1: "k8s\0" + Unknown{TypeMeta v1/Status, raw}}}
      assert.deepEqual([...last.subarray(0, 7)], [0x0a, 5, ...Buffer.from('ERROR')]);
      assert.ok(last.includes(Buffer.from([0x6b, 0x38, 0x73, 0x00])), 'the object is protobuf');
      assert.ok(last.includes(Buffer.from('Status')) && last.includes(Buffer.from('Unauthorized')));
      assert.ok(last.includes(Buffer.from('token revoked')));
      // The events before it are the apiserver's own (ADDED for the existing ConfigMap).
      assert.ok(got.frames.length >= 2 && got.frames[0]!.includes(Buffer.from('ADDED')));
    });

    for (const t of [
      { name: 'WebSocket', env: {}, log: /subprotocol is v5\.channel\.k8s\.io/ },
      {
        name: 'SPDY',
        env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' },
        log: /\/exec\?[^"]*" status="101 Switching Protocols"/,
      },
    ]) {
      test(`exec -it over ${t.name} with a revoked token: ends within a second, kubectl prints why`, async () => {
        const name = `eddie-${t.name.toLowerCase()}`;
        const user = await newUser(name);
        const e = execIt(user.kubeconfig, t.env);
        try {
          await waitFor(e, /^up-42\r?$/m, 'kubectl exec -it');
          const t0 = Date.now();
          await revokeTokens(name);
          const ms = await endedWithin(e, t0, 5000);
          const said = e.out().slice(e.out().indexOf('up-42\r'));
          process.stderr.write(
            `# exec -it (${t.name}) ended after ${ms} ms; printed ${JSON.stringify(said)}\n`,
          );
          assert.ok(ms <= 1000, `ended within a second (${ms} ms)`);
          assert.match(e.out(), t.log, `kubectl used ${t.name}`);
          assert.match(e.out(), /^error: token revoked: kubegate ended this request/m);
          noStreamError(e.out());
        } finally {
          e.child.kill('SIGKILL');
        }
      });
    }
  },
);
