/**
 * A peer users actually run: Rancher's reverse-tunnel library, remotedialer,
 * pinned in bench/peers/remotedialer/go.mod and built by its build.sh, in two
 * shapes. Both reach the bench upstream over TLS, its certificate checked
 * against the bench CA (SSL_CERT_FILE), from the server end of the tunnel.
 *
 * `example`: its own example server and client programs as they ship. The
 * client dials out and holds one WebSocket tunnel; the server answers
 * `GET /client/<id>/<scheme>/<host><path>` by dialing <host> through the
 * tunnel with Go's HTTP client. By their code they lack, next to kubegate:
 * TLS on the front and the tunnel (HTTP/1.1, ws://), any authentication
 * (any X-Tunnel-ID may connect, any caller may use any tunnel), audit; they
 * forward GET only, drop request headers, keep Go's default two idle
 * upstream connections, and log three lines per request (to a file here).
 *
 * `tls`: our main on the same library (tls/main.go): TLS on the front
 * (HTTP/2 and HTTP/1.1) and the tunnel (wss, a shared token), any method and
 * header forwarded, an upstream pool sized to the callers. Callers are still
 * not authenticated and nothing is audited.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { repoRoot } from '../test/support/repo.js';
import { freePort } from '../test/support/ports.js';
import { sleep, waitPort, type PeerTarget } from './context.js';

const peerDir = () => join(repoRoot(), 'bench', 'peers', 'remotedialer');
const tunnelId = 'bench';

export interface Remotedialer {
  /** The bench upstream reached through its front and tunnel. */
  target: PeerTarget;
  /** Server and client: the peer's processes, for CPU accounting. */
  pids(): number[];
  stop(): Promise<void>;
}

/** Build both shapes when missing or older than the module (cached by build.sh). */
export function buildRemotedialer(log: (m: string) => void): void {
  const r = spawnSync('bash', [join(peerDir(), 'build.sh')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
  for (const line of `${r.stdout}${r.stderr}`.trim().split('\n')) if (line) log(`  ${line}`);
  if (r.status !== 0) throw new Error(`bench/peers/remotedialer/build.sh failed (${r.status})`);
}

function start(bin: string, args: string[], logFile: string, env: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    return spawn(join(peerDir(), 'bin', bin), args, {
      env: { ...process.env, ...env },
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
}

export interface RemotedialerOptions {
  shape: 'example' | 'tls';
  upstreamPort: number;
  /** The bench CA: Go's TLS clients trust it through SSL_CERT_FILE. */
  caFile: string;
  /** The front's certificate and key (`tls` only). */
  cert?: { certFile: string; keyFile: string };
}

export async function startRemotedialer(
  dir: string,
  o: RemotedialerOptions,
): Promise<Remotedialer> {
  const bins = o.shape === 'tls' ? ['rd-tls'] : ['rd-server', 'rd-client'];
  for (const b of bins)
    if (!existsSync(join(peerDir(), 'bin', b)))
      throw new Error(`bench/peers/remotedialer/bin/${b} is missing`);
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const upstream = `127.0.0.1:${o.upstreamPort}`;
  const env = { SSL_CERT_FILE: o.caFile, RD_TOKEN: randomBytes(16).toString('hex') };
  const log = (name: string) => join(dir, `${o.shape}-${name}.log`);
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const c of [...children].reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
  };
  try {
    if (o.shape === 'example') {
      children.push(start('rd-server', ['-listen', `127.0.0.1:${port}`], log('server'), env));
      await waitPort(port, 10_000);
      const id = ['-id', tunnelId, '-debug=false'];
      const connectTo = ['-connect', `ws://127.0.0.1:${port}/connect`];
      children.push(start('rd-client', [...connectTo, ...id], log('client'), env));
    } else {
      if (!o.cert) throw new Error('remotedialer tls: no front certificate');
      const front = ['-listen', `127.0.0.1:${port}`, '-cert', o.cert.certFile];
      const rest = ['-key', o.cert.keyFile, '-id', tunnelId, '-upstream', `https://${upstream}`];
      children.push(start('rd-tls', ['server', ...front, ...rest], log('server'), env));
      await waitPort(port, 10_000);
      const connectTo = ['-connect', `wss://127.0.0.1:${port}/connect`];
      const only = ['-id', tunnelId, '-allow', upstream];
      children.push(start('rd-tls', ['client', ...connectTo, ...only], log('client'), env));
    }
    const target: PeerTarget =
      o.shape === 'example'
        ? {
            name: 'remotedialer',
            base: `http://127.0.0.1:${port}`,
            prefix: `/client/${tunnelId}/https/${upstream}`,
            headers: {},
            ca: '',
          }
        : {
            name: 'remotedialer-tls',
            base: `https://127.0.0.1:${port}`,
            prefix: `/client/${tunnelId}`,
            headers: {},
            ca: readFileSync(o.caFile, 'utf8'),
          };
    await waitTunnel(target, '/api/v1/namespaces/default/configmaps/bench-1k');
    return { target, pids: () => children.map((c) => c.pid!), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function status(t: PeerTarget, path: string): Promise<number> {
  const url = `${t.base}${t.prefix}${path}`;
  return new Promise((resolve, reject) => {
    const onRes = (res: IncomingMessage) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    };
    const req = t.base.startsWith('https:')
      ? httpsGet(url, { ca: t.ca, agent: false }, onRes)
      : httpGet(url, { agent: false }, onRes);
    req.once('error', reject);
  });
}

/** The server answers an error until the client's tunnel is up; then the upstream's 200. */
async function waitTunnel(t: PeerTarget, path: string): Promise<void> {
  let last = '';
  for (let i = 0; i < 200; i++) {
    const s = await status(t, path).catch((err: Error) => err.message);
    if (s === 200) return;
    last = String(s);
    await sleep(100);
  }
  throw new Error(
    `${t.name}: ${t.base}${t.prefix}${path} did not answer 200 within 20 s (last: ${last})`,
  );
}
