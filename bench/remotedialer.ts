/**
 * A peer users actually run: Rancher's reverse-tunnel library, remotedialer,
 * as its own example server and client programs (the module pinned in
 * bench/peers/remotedialer/go.mod, built by its build.sh). The client dials
 * out to the server and holds one WebSocket tunnel; the server answers
 * `GET /client/<id>/<scheme>/<host><path>` by dialing <host> through the
 * tunnel and fetching <path> with Go's HTTP client, so the bench upstream is
 * reached over TLS, its certificate checked against the bench CA
 * (SSL_CERT_FILE), from the server end of the tunnel.
 *
 * What the example lacks next to kubegate, by its own code: its front and
 * its tunnel are plain text (HTTP/1.1 and ws://), nobody is authenticated
 * (any X-Tunnel-ID may connect, any caller may use any tunnel), nothing is
 * audited, only GET is forwarded and request headers are dropped. It logs
 * three lines per request; they go to a file here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../test/support/repo.js';
import { freePort } from '../test/support/ports.js';
import { sleep, type PeerTarget } from './context.js';

const peerDir = () => join(repoRoot(), 'bench', 'peers', 'remotedialer');
const tunnelId = 'bench';

export interface Remotedialer {
  /** The bench upstream reached through the example's front and tunnel. */
  target: PeerTarget;
  /** Server and client: the peer's processes, for CPU accounting. */
  pids(): number[];
  stop(): Promise<void>;
}

/** Build the example programs when missing or older than the module (cached by build.sh). */
export function buildRemotedialer(log: (m: string) => void): void {
  const r = spawnSync('bash', [join(peerDir(), 'build.sh')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  for (const line of `${r.stdout}${r.stderr}`.trim().split('\n')) if (line) log(`  ${line}`);
  if (r.status !== 0) throw new Error(`bench/peers/remotedialer/build.sh failed (${r.status})`);
}

function waitPort(port: number, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve()));
      s.once('error', () => {
        s.destroy();
        if (Date.now() - t0 > timeoutMs) reject(new Error(`nothing listens on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function start(bin: string, args: string[], logFile: string, caFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    return spawn(join(peerDir(), 'bin', bin), args, {
      // Go's TLS client reads its roots from SSL_CERT_FILE: the bench CA signed the upstream.
      env: { ...process.env, SSL_CERT_FILE: caFile },
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
}

export async function startRemotedialer(
  dir: string,
  upstreamPort: number,
  caFile: string,
): Promise<Remotedialer> {
  for (const b of ['rd-server', 'rd-client'])
    if (!existsSync(join(peerDir(), 'bin', b)))
      throw new Error(`bench/peers/remotedialer/bin/${b} is missing`);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
  };
  try {
    children.push(
      start('rd-server', ['-listen', `127.0.0.1:${port}`], join(dir, 'rd-server.log'), caFile),
    );
    await waitPort(port, 10_000);
    children.push(
      start(
        'rd-client',
        ['-connect', `ws://127.0.0.1:${port}/connect`, '-id', tunnelId, '-debug=false'],
        join(dir, 'rd-client.log'),
        caFile,
      ),
    );
    const target: PeerTarget = {
      name: 'remotedialer',
      base: `http://127.0.0.1:${port}`,
      prefix: `/client/${tunnelId}/https/127.0.0.1:${upstreamPort}`,
      headers: {},
      ca: '',
    };
    await waitTunnel(
      `${target.base}${target.prefix}/api/v1/namespaces/default/configmaps/bench-1k`,
    );
    return { target, pids: () => children.map((c) => c.pid!), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The server answers 500 until the client's tunnel is up; then the upstream's 200. */
async function waitTunnel(url: string): Promise<void> {
  let last = '';
  for (let i = 0; i < 200; i++) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      if (r.status === 200) return;
      last = String(r.status);
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`remotedialer: ${url} did not answer 200 within 20 s (last: ${last})`);
}
