/**
 * The test cluster runs things: kube-scheduler places a Deployment's Pods on fake kwok nodes,
 * kwok makes them Running, and the kubelet endpoints (exec, logs, attach, port-forward) carry
 * real bytes through the real apiserver: exec runs a local command, logs/attach read a local
 * CRI log file, port-forward reaches a port this test opens. The real kubectl talks to the
 * apiserver directly with the admin kubeconfig (kubegate is not involved here), over
 * WebSocket (kubectl's default) and over SPDY (the fallback kubectl still speaks).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { appendPodLog, startCluster, type TestCluster } from '../support/cluster.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { until } from '../support/http.js';

const NS = 'runs-things';
/** kubectl falls back to SPDY when told not to use WebSockets. */
const SPDY_EXEC = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
const SPDY_PORT_FORWARD = { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' };
/** How kubectl -v=6 shows which protocol an upgrade used. */
const TRANSPORTS = [
  {
    name: 'WebSocket',
    exec: {},
    portForward: {},
    execLog: /The subprotocol is v5\.channel\.k8s\.io/,
    portForwardLog: /negotiated protocol: portforward\.k8s\.io/,
  },
  {
    name: 'SPDY',
    exec: SPDY_EXEC,
    portForward: SPDY_PORT_FORWARD,
    execLog: /verb="POST" url="[^"]*\/exec\?[^"]*" status="101 Switching Protocols"/,
    portForwardLog: /verb="POST" url="[^"]*\/portforward" status="101 Switching Protocols"/,
  },
] as const;

interface PodJson {
  metadata: { name: string };
  spec: { nodeName?: string };
  status: { phase: string; conditions?: { type: string; status: string }[] };
}

/** kubectl as a long-running process (logs -f, attach, port-forward). */
interface Streaming {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

function streamKubectl(args: string[], kubeconfig: string, env: NodeJS.ProcessEnv = {}): Streaming {
  const child = spawn(kubectlPath(), ['--kubeconfig', kubeconfig, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, KUBECONFIG: '', ...env },
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    async waitFor(re, timeoutMs = 30_000) {
      let m: RegExpExecArray | null = null;
      await until(
        async () => {
          if (child.exitCode !== null) {
            throw new Error(`kubectl ${args.join(' ')} exited ${child.exitCode}: ${err}`);
          }
          m = re.exec(out);
          return m !== null;
        },
        timeoutMs,
        `kubectl ${args.join(' ')} printing ${re} (stdout ${JSON.stringify(out)}, stderr ${JSON.stringify(err)})`,
      ).catch((e: unknown) => {
        // until() treats a throwing probe as "not yet"; report the exit instead of a timeout.
        if (child.exitCode !== null) {
          throw new Error(`kubectl ${args.join(' ')} exited ${child.exitCode}: ${err}`);
        }
        throw e;
      });
      return m!;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

const ECHO_PREFIX = Buffer.from('echo:');

/**
 * Sends `payload` over a fresh TCP connection to port and resolves with the reply once it is
 * as long as the echo server's ("echo:" + payload), or with what came before the connection
 * closed. Nothing here relies on half-close: kwok's port-forward does not pass it on.
 */
function roundTrip(port: number, payload: Buffer): Promise<Buffer> {
  const want = ECHO_PREFIX.length + payload.length;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write(payload));
    socket.setTimeout(20_000, () => socket.destroy(new Error('port-forward round trip timed out')));
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= want) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('the test cluster runs things (kube-scheduler + kwok)', { timeout: 600_000 }, () => {
  let cluster: TestCluster;
  let admin: { kubeconfig: string };
  let pods: PodJson[];
  let pod: string;
  let echo: Server;
  let echoPort: number;
  const echoed: Buffer[][] = [];

  before(async () => {
    cluster = await startCluster({ nodes: 2, timeoutMs: 180_000 });
    admin = { kubeconfig: cluster.kubeconfig };
    await kubectlOk(['create', 'namespace', NS], admin);
    // What port-forward reaches: a local server that answers "echo:" and then every byte it
    // gets, and records what each connection received.
    echo = createServer((socket) => {
      const got: Buffer[] = [];
      echoed.push(got);
      socket.write(ECHO_PREFIX);
      socket.on('data', (c: Buffer) => {
        got.push(c);
        socket.write(c);
      });
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as { port: number }).port;
  });
  after(async () => {
    echo?.close();
    await cluster?.stop();
  });

  test('startCluster reports Ready kwok nodes', async () => {
    assert.deepEqual(cluster.nodes, ['kwok-node-0', 'kwok-node-1']);
    assert.ok(cluster.podLogsFile, 'podLogsFile is reported with nodes');
    const out = await kubectlOk(['get', 'nodes', '-o', 'json'], admin);
    const nodes = (
      JSON.parse(out) as {
        items: {
          metadata: { name: string };
          status: {
            conditions: { type: string; status: string }[];
            addresses: { type: string; address: string }[];
            daemonEndpoints: { kubeletEndpoint: { Port: number } };
          };
        }[];
      }
    ).items;
    assert.deepEqual(nodes.map((n) => n.metadata.name).sort(), cluster.nodes);
    for (const n of nodes) {
      assert.equal(n.status.conditions.find((c) => c.type === 'Ready')?.status, 'True');
      assert.ok(
        n.status.addresses.some((a) => a.type === 'InternalIP' && a.address === '127.0.0.1'),
      );
      assert.ok(n.status.daemonEndpoints.kubeletEndpoint.Port > 0);
    }
  });

  test('a Deployment scaled to 3 gets 3 Running pods on kwok nodes', async () => {
    await kubectlOk(['-n', NS, 'create', 'deployment', 'demo-app', '--image=busybox'], admin);
    await kubectlOk(['-n', NS, 'scale', 'deployment/demo-app', '--replicas=3'], admin);
    await kubectlOk(['-n', NS, 'rollout', 'status', 'deployment/demo-app', '--timeout=120s'], {
      ...admin,
      timeoutMs: 150_000,
    });
    const out = await kubectlOk(
      ['-n', NS, 'get', 'pods', '-l', 'app=demo-app', '-o', 'json'],
      admin,
    );
    pods = (JSON.parse(out) as { items: PodJson[] }).items;
    assert.equal(pods.length, 3);
    for (const p of pods) {
      assert.equal(p.status.phase, 'Running', p.metadata.name);
      assert.ok(cluster.nodes.includes(p.spec.nodeName ?? ''), `${p.metadata.name} on a kwok node`);
      assert.equal(p.status.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
    }
    pod = pods[0]!.metadata.name;

    // kwok learns of PortForward objects through a watch; create the one the port-forward tests
    // use now, well before they run: kubectl port-forward gives up on a failed first stream.
    await kubectlOk(['apply', '-f', '-'], {
      ...admin,
      input: JSON.stringify({
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'PortForward',
        metadata: { name: pods[2]!.metadata.name, namespace: NS },
        spec: { forwards: [{ ports: [8080], target: { address: '127.0.0.1', port: echoPort } }] },
      }),
    });
  });

  for (const transport of TRANSPORTS) {
    test(`exec (${transport.name}) runs a local command: stdout, stderr, stdin and exit code`, async () => {
      const r = await kubectl(
        [
          ...['-v=6', '-n', NS, 'exec', pod, '--'],
          ...['sh', '-c', 'echo out-$((6 * 7)); echo err-out >&2; exit 3'],
        ],
        { ...admin, env: transport.exec },
      );
      assert.equal(r.code, 3, `exit code (stderr: ${r.stderr})`);
      assert.equal(r.stdout, 'out-42\n');
      assert.match(r.stderr, /^err-out$/m);
      assert.match(r.stderr, /command terminated with exit code 3/);
      assert.match(r.stderr, transport.execLog, `kubectl used ${transport.name}`);

      const ok = await kubectl(
        ['-n', NS, 'exec', '-i', pod, '--', 'sh', '-c', 'tr a-z A-Z; exit 0'],
        {
          ...admin,
          env: transport.exec,
          input: 'through the apiserver\n',
        },
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal(ok.stdout, 'THROUGH THE APISERVER\n');
    });

    test(`exec -it (${transport.name}) gets a terminal of the client's size`, async () => {
      // kubectl wants a terminal on its stdin for -t: script(1) gives it one, 45 rows × 123 cols.
      // script's own stdin stays open (a pipe nobody writes to) until it exits, like a user's
      // idle keyboard: at EOF on its stdin script types Ctrl-D into the terminal, and that
      // keystroke, racing kubectl's set-up, reached the remote terminal now and then and was
      // echoed there (`^@` in the output, about 1 run in 20).
      const inner = [
        'stty cols 123 rows 45;',
        `exec '${kubectlPath()}' --kubeconfig '${admin.kubeconfig}' -n ${NS} exec -it ${pod}`,
        // The size travels on its own channel and may land just after the command starts
        // (`stty size` then says 0 0, seen once in 10 runs): wait up to 5 s for it.
        `-- sh -c 'tty; for i in $(seq 50); do [ "$(stty size)" != "0 0" ] && break; sleep 0.1; done; stty size; exit 7'`,
      ].join(' ');
      const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
        const child = spawn('script', ['-qec', inner, '/dev/null'], {
          stdio: ['pipe', 'pipe', 'pipe'],
          env: { ...process.env, KUBECONFIG: '', ...transport.exec },
        });
        let out = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr.on('data', (b: Buffer) => (out += b.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.once('error', reject);
        child.once('close', (code) => {
          clearTimeout(timer);
          child.stdin.destroy();
          resolve({ code, out });
        });
      });
      assert.equal(r.code, 7, r.out);
      assert.match(r.out, /\/dev\/pts\/\d+\r?\n/, 'the command runs on a terminal');
      assert.match(r.out, /^45 123\r?$/m, 'of the size kubectl sent');
    });
  }

  test('logs reads the pod log file, -f follows it, and a Logs object gives a pod its own file', async () => {
    const file = cluster.podLogsFile!;
    await appendPodLog(file, ['first line', 'second line']);
    await appendPodLog(file, ['an error line'], 'stderr');
    const all = await kubectlOk(['-n', NS, 'logs', pod], admin);
    assert.equal(all, 'first line\nsecond line\nan error line\n');
    const tail = await kubectlOk(['-n', NS, 'logs', pod, '--tail=1'], admin);
    assert.equal(tail, 'an error line\n');

    const follow = streamKubectl(['-n', NS, 'logs', '-f', pod], admin.kubeconfig);
    try {
      await follow.waitFor(/an error line\n/);
      await appendPodLog(file, ['written while following']);
      await follow.waitFor(/written while following\n/);
    } finally {
      await follow.stop();
    }

    // A kwok Logs object named like the pod points only that pod at another file.
    const own = join(cluster.dir, 'own-pod.log');
    writeFileSync(own, '');
    await appendPodLog(own, ['only for this pod']);
    await kubectlOk(['apply', '-f', '-'], {
      ...admin,
      input: JSON.stringify({
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'Logs',
        metadata: { name: pod, namespace: NS },
        spec: { logs: [{ logsFile: own }] },
      }),
    });
    await until(
      async () => (await kubectl(['-n', NS, 'logs', pod], admin)).stdout === 'only for this pod\n',
      20_000,
      'kubectl logs reading the Logs object file',
    );
    const other = await kubectlOk(['-n', NS, 'logs', pods[1]!.metadata.name, '--tail=1'], admin);
    assert.equal(other, 'written while following\n');
  });

  test('attach streams what is appended to the log file', async () => {
    const attach = streamKubectl(['-n', NS, 'attach', pods[1]!.metadata.name], admin.kubeconfig);
    try {
      // attach shows only lines written after it connected: keep writing until one arrives.
      let n = 0;
      await until(
        async () => {
          await appendPodLog(cluster.podLogsFile!, [`attached ${n++}`]);
          return /attached \d+\n/.test(attach.stdout());
        },
        30_000,
        `kubectl attach output (stderr ${JSON.stringify(attach.stderr())})`,
      );
    } finally {
      await attach.stop();
    }
  });

  for (const transport of TRANSPORTS) {
    test(`port-forward (${transport.name}) carries bytes both ways to a local port`, async () => {
      const target = pods[2]!.metadata.name;
      const pf = streamKubectl(
        ['-v=6', '-n', NS, 'port-forward', `pod/${target}`, ':8080'],
        admin.kubeconfig,
        transport.portForward,
      );
      try {
        const m = await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/);
        const local = Number(m[1]);
        await until(
          async () => transport.portForwardLog.test(pf.stderr()),
          5_000,
          `kubectl port-forward using ${transport.name} (stderr ${JSON.stringify(pf.stderr())})`,
        );
        const small = Buffer.from(`hello over ${transport.name}`);
        const reply = await roundTrip(local, small);
        assert.equal(reply.toString(), `echo:hello over ${transport.name}`);
        assert.ok(
          echoed.some((got) => Buffer.concat(got).equals(small)),
          'the local server received the bytes',
        );

        const big = randomBytes(512 * 1024);
        const bigReply = await roundTrip(local, big);
        assert.equal(bigReply.length, ECHO_PREFIX.length + big.length);
        assert.ok(bigReply.subarray(ECHO_PREFIX.length).equals(big), '512 KiB came back intact');
      } finally {
        await pf.stop();
      }
    });
  }

  test('deleting the namespace finishes: kwok lets the pods go', async () => {
    await kubectlOk(['delete', 'namespace', NS, '--wait=true', '--timeout=120s'], {
      ...admin,
      timeoutMs: 150_000,
    });
    const r = await kubectl(['get', 'namespace', NS], admin);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /NotFound|not found/);
    const left = await kubectlOk(['get', 'pods', '-A', '-o', 'name'], admin);
    assert.doesNotMatch(left, /demo-app/);
  });
});
