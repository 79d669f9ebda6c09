/**
 * The demo-app scenario and the streaming verbs through kubegate, with real
 * kubectl and a cluster whose Pods run on kwok nodes: rollout, exec over
 * WebSocket and SPDY (output exact, exit codes, stdin), logs -f, and
 * port-forward bytes round-tripping over both transports.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { randomBytes } from 'node:crypto';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { appendPodLog } from '../support/cluster.js';

const NS = 'demo';
const SPDY = {
  KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false',
  KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false',
};
const transports = [
  {
    name: 'WebSocket',
    env: {},
    execLog: /subprotocol is v5\.channel\.k8s\.io/,
    portForwardLog: /negotiated protocol: portforward\.k8s\.io/,
  },
  {
    name: 'SPDY',
    env: SPDY,
    execLog: /\/exec\?[^"]*" status="101 Switching Protocols"/,
    portForwardLog: /\/portforward" status="101 Switching Protocols"/,
  },
];

/** Send payload to the local port; resolve with as many bytes as came back (the echo server). */
function echoRoundTrip(port: number, payload: Buffer): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let n = 0;
    s.setTimeout(30_000, () => s.destroy(new Error(`round trip timed out after ${n} bytes`)));
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= payload.length) s.destroy();
    });
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.write(payload);
  });
}

let stack: Stack;
let user: { kubeconfig: string };
let echo: Server;
let pods: string[] = [];

describe('streams through kubegate (exec, logs, port-forward)', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 1 }],
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, { users: ['dora'], role: 'admin', clusters: ['dev'], namespaces: [NS] });
    user = { kubeconfig: await stack.kubeconfig('dora') };
    echo = createServer((s) =>
      s.on('data', (c: Buffer) => s.write(c)).on('error', () => s.destroy()),
    );
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  });
  after(async () => {
    echo?.close();
    await stack?.stop();
  });

  test('demo-app: create, scale to 3, rollout status until Running on kwok nodes', async () => {
    await kubectlOk(['-n', NS, 'create', 'deployment', 'demo-app', '--image=busybox'], user);
    await kubectlOk(['-n', NS, 'scale', 'deployment/demo-app', '--replicas=3'], user);
    await kubectlOk(['-n', NS, 'rollout', 'status', 'deployment/demo-app', '--timeout=120s'], {
      ...user,
      timeoutMs: 130_000,
    });
    const list = JSON.parse(await kubectlOk(['-n', NS, 'get', 'pods', '-o', 'json'], user)) as {
      items: {
        metadata: { name: string };
        spec: { nodeName?: string };
        status: { phase: string };
      }[];
    };
    assert.equal(list.items.length, 3);
    for (const p of list.items) {
      assert.equal(p.status.phase, 'Running');
      assert.match(p.spec.nodeName ?? '', /^kwok-node-/);
    }
    pods = list.items.map((p) => p.metadata.name);
    await kubectlOk(['apply', '-f', '-'], {
      kubeconfig: stack.cluster.kubeconfig,
      input: JSON.stringify({
        apiVersion: 'kwok.x-k8s.io/v1alpha1',
        kind: 'PortForward',
        metadata: { name: pods[1], namespace: NS },
        spec: {
          forwards: [
            {
              ports: [8080],
              target: { address: '127.0.0.1', port: (echo.address() as { port: number }).port },
            },
          ],
        },
      }),
    });
  });

  for (const t of transports) {
    test(`exec over ${t.name}: exact output, exit code, stdin`, async () => {
      const r = await kubectl(
        ['-v=6', '-n', NS, 'exec', pods[0]!, '--', 'sh', '-c', 'echo out-$((6 * 7)); exit 3'],
        { ...user, env: t.env, timeoutMs: 30_000 },
      );
      assert.equal(r.code, 3, r.stderr);
      assert.equal(r.stdout, 'out-42\n');
      assert.match(r.stderr, t.execLog, `kubectl used ${t.name}`);
      const i = await kubectl(['-n', NS, 'exec', '-i', pods[0]!, '--', 'tr', 'a-z', 'A-Z'], {
        ...user,
        env: t.env,
        input: 'through kubegate',
        timeoutMs: 30_000,
      });
      assert.equal(i.stdout, 'THROUGH KUBEGATE');
    });

    // SPDY regression: kwok's 101 says `Content-Length: 0`; copied onto the tunnel
    // stream it declared an empty body and the first SPDY frame reset the stream.
    test(`port-forward over ${t.name}: bytes round-trip, twice on one session`, async () => {
      const pf = spawn(
        kubectlPath(),
        [
          '--kubeconfig',
          user.kubeconfig,
          '-v=6',
          '-n',
          NS,
          'port-forward',
          `pod/${pods[1]}`,
          ':8080',
        ],
        { env: { ...process.env, ...t.env }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let log = '';
      pf.stderr.on('data', (b: Buffer) => (log += b.toString()));
      try {
        const port = await new Promise<number>((resolve, reject) => {
          let out = '';
          const timer = setTimeout(() => reject(new Error(`no forwarding line: ${out}`)), 30_000);
          pf.stdout.on('data', (b: Buffer) => {
            out += b.toString();
            const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(out);
            if (m) {
              clearTimeout(timer);
              resolve(Number(m[1]));
            }
          });
        });
        // Connect once kubectl has its upgraded connection (it logs the 101 or the subprotocol).
        const t0 = Date.now();
        while (!/101 Switching Protocols|negotiated protocol/.test(log)) {
          if (Date.now() - t0 > 15_000) throw new Error(`port-forward never upgraded: ${log}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.match(log, t.portForwardLog, `kubectl used ${t.name}`);
        // Two connections, one after the other, on one kubectl session: the
        // session must outlive the first (the SPDY bug killed it there).
        for (const size of [256 * 1024, 1024]) {
          const payload = randomBytes(size);
          const got = await echoRoundTrip(port, payload);
          assert.equal(got.length, payload.length, `${size} bytes came back`);
          assert.ok(got.equals(payload), 'the same bytes came back');
        }
      } finally {
        pf.kill('SIGINT');
      }
    });
  }

  test('logs -f streams lines as they are written', async () => {
    const f = spawn(
      kubectlPath(),
      ['--kubeconfig', user.kubeconfig, '-n', NS, 'logs', '-f', pods[2]!],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    f.stdout.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await new Promise((r) => setTimeout(r, 1500));
      await appendPodLog(stack.cluster.podLogsFile!, ['written while following']);
      const t0 = Date.now();
      while (!out.includes('written while following')) {
        if (Date.now() - t0 > 15_000) throw new Error(`logs -f did not show the line: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      f.kill('SIGINT');
    }
  });
});
