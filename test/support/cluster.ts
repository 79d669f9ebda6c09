// A real Kubernetes control plane for tests: runs test/cluster/bin/kg-testcluster
// (embedded etcd + kube-apiserver + kube-controller-manager, built by `make cluster`)
// with all state in a temp dir, and stops it again. With `nodes` it also runs
// kube-scheduler and kwok (test/cluster/bin/kg-kwok): Pods are scheduled onto fake
// nodes and become Running, and exec/attach/logs/port-forward reach local commands,
// a local log file and local ports through the real apiserver.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export interface TestCluster {
  /** https://127.0.0.1:PORT */
  server: string;
  /** Path of the cluster CA certificate (PEM). */
  caFile: string;
  /** The cluster CA certificate (PEM). */
  ca: string;
  /** Path of a kubeconfig for the admin user (token auth, group system:masters). */
  kubeconfig: string;
  /** Bearer token of the admin user (random per cluster). */
  token: string;
  /** Kubernetes version, e.g. v1.36.3. */
  version: string;
  /** Names of the fake kwok nodes (all Ready when startCluster resolves); [] without `nodes`. */
  nodes: string[];
  /**
   * With `nodes`: the file behind `kubectl logs` and `kubectl attach` of every pod that has no
   * kwok Logs/Attach object of its own. It is in CRI log format; append with appendPodLog().
   */
  podLogsFile?: string;
  /** Temp dir holding all state and the component logs; removed by stop(). */
  dir: string;
  /** The kg-testcluster process (etcd + kube-apiserver; the benchmarks read its CPU time). */
  pid: number;
  /** SIGTERM, wait for exit (SIGKILL after 10 s), remove dir. Idempotent. */
  stop(): Promise<void>;
}

interface ReadyLine {
  server: string;
  kubeconfig: string;
  caFile: string;
  token: string;
  version: string;
  nodes: string[];
  podLogsFile?: string;
}

export interface StartClusterOptions {
  /** Give up (and stop the cluster) after this long; default 120 s. */
  timeoutMs?: number;
  /**
   * Fake kwok nodes to create (0–100, default 0). Any > 0 also starts kube-scheduler and
   * kg-kwok; startup then waits until every node is Ready and schedulable.
   */
  nodes?: number;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const DEFAULT_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;
const STDERR_TAIL_LINES = 40;

/** The repo root: the first dir above this file with a package.json and test/cluster/. */
function repoRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'test', 'cluster'))) {
      return dir;
    }
    if (dirname(dir) === dir) {
      throw new Error(`cannot find the kubegate repo root above ${start}`);
    }
  }
}

/** Absolute path of test/cluster/bin/NAME (default kg-testcluster); throws if it has not been built. */
export function clusterBinary(name: 'kg-testcluster' | 'kg-kwok' = 'kg-testcluster'): string {
  const bin = join(repoRoot(), 'test', 'cluster', 'bin', name);
  if (!existsSync(bin)) {
    throw new Error(
      `test cluster binary ${bin} is missing: run \`make cluster\` first ` +
        '(it builds test/cluster with Go; the first build takes ~15 min, later ones are cached)',
    );
  }
  return bin;
}

/**
 * Starts a fresh cluster (etcd + kube-apiserver + kube-controller-manager) in a temp dir and
 * resolves once it is usable: /readyz answers 200 and the controllers have created the
 * `default` ServiceAccount (and, with `nodes`, every fake node is Ready).
 * Set KG_TESTCLUSTER_VERBOSE=1 to echo the fixture's stderr.
 */
/**
 * kg-testcluster picks its components' ports (etcd client and peer, the
 * apiserver, kwok) free below the ephemeral range, then binds them. Between
 * the pick and the bind another test process running beside this one (the
 * long tests run beside the main suite) may take the same port, or two of
 * its own picks may land on one port; it then exits "address already in
 * use" before it is ready. That lost race says nothing about what is being
 * tested, so the start is tried again with new ports, up to three times in
 * all; any other failure is thrown at once.
 */
export async function startCluster(opts: StartClusterOptions = {}): Promise<TestCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startClusterOnce(opts);
    } catch (err) {
      if (attempt >= 3 || !/address already in use/.test(String(err))) throw err;
      process.stderr.write(
        `# kg-testcluster lost a port race (attempt ${attempt}: address already in use); starting again\n`,
      );
    }
  }
}

async function startClusterOnce(opts: StartClusterOptions): Promise<TestCluster> {
  const bin = clusterBinary();
  const nodes = opts.nodes ?? 0;
  if (!Number.isInteger(nodes) || nodes < 0 || nodes > 100) {
    throw new Error(`startCluster: nodes must be an integer 0–100, got ${nodes}`);
  }
  if (nodes > 0) clusterBinary('kg-kwok');
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const dir = await mkdtemp(join(tmpdir(), 'kg-testcluster-'));
  const args = ['up', '--dir', dir, '--die-with-parent'];
  if (nodes > 0) args.push('--nodes', String(nodes));
  const child = spawn(bin, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // Safety net: if this process exits without stop(), take the cluster down with it
  // (--die-with-parent covers a crash that skips 'exit' handlers).
  const onProcessExit = (): void => {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', onProcessExit);

  // Keep draining stderr for the cluster's whole life, or the child blocks on a full pipe.
  const stderrTail: string[] = [];
  const echo = Boolean(process.env['KG_TESTCLUSTER_VERBOSE']);
  createInterface({ input: child.stderr! }).on('line', (line) => {
    stderrTail.push(line);
    if (stderrTail.length > STDERR_TAIL_LINES) stderrTail.shift();
    if (echo) process.stderr.write(`[kg-testcluster] ${line}\n`);
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      child.ref();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
      process.off('exit', onProcessExit);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  let ready: ReadyLine;
  try {
    ready = await waitForReady(child, exited, timeoutMs, () => describeFailure(dir, stderrTail));
  } catch (err) {
    await stop();
    throw err;
  }
  unrefChild(child);

  return {
    server: ready.server,
    caFile: ready.caFile,
    ca: await readFile(ready.caFile, 'utf8'),
    kubeconfig: ready.kubeconfig,
    token: ready.token,
    version: ready.version,
    nodes: ready.nodes,
    ...(ready.podLogsFile === undefined ? {} : { podLogsFile: ready.podLogsFile }),
    dir,
    pid: child.pid!,
    stop,
  };
}

/**
 * Appends lines to a kwok log file (TestCluster.podLogsFile, or the file of a kwok Logs
 * object) in the CRI format that kwok reads: `<RFC 3339 time> <stream> F <text>`.
 */
export async function appendPodLog(
  file: string,
  lines: string[],
  stream: 'stdout' | 'stderr' = 'stdout',
): Promise<void> {
  const text = lines.map((line) => `${new Date().toISOString()} ${stream} F ${line}\n`).join('');
  await appendFile(file, text);
}

function waitForReady(
  child: ChildProcess,
  exited: Promise<Exit>,
  timeoutMs: number,
  details: () => string,
): Promise<ReadyLine> {
  return new Promise<ReadyLine>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => {
      settle(() =>
        reject(new Error(`kg-testcluster was not ready within ${timeoutMs} ms${details()}`)),
      );
    }, timeoutMs);

    child.once('error', (err) => {
      settle(() => reject(new Error(`cannot run kg-testcluster: ${err.message}`)));
    });
    void exited.then(({ code, signal }) => {
      // Let the last stderr lines arrive before describing the failure.
      setTimeout(() => {
        settle(() =>
          reject(
            new Error(
              `kg-testcluster exited (${signal ?? `code ${code}`}) before it was ready${details()}`,
            ),
          ),
        );
      }, 50);
    });
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('READY ')) return;
      let parsed: ReadyLine;
      try {
        parsed = parseReady(line.slice('READY '.length));
      } catch (err) {
        settle(() => reject(err instanceof Error ? err : new Error(String(err))));
        return;
      }
      settle(() => resolve(parsed));
    });
  });
}

function parseReady(json: string): ReadyLine {
  const value: unknown = JSON.parse(json);
  const fields = ['server', 'kubeconfig', 'caFile', 'token', 'version'] as const;
  if (typeof value !== 'object' || value === null) {
    throw new Error(`kg-testcluster printed a malformed READY line: ${json}`);
  }
  const record = value as Record<string, unknown>;
  const out: Partial<ReadyLine> = {};
  for (const field of fields) {
    const v = record[field];
    if (typeof v !== 'string' || v === '') {
      throw new Error(`kg-testcluster READY line lacks "${field}": ${json}`);
    }
    out[field] = v;
  }
  const nodes = record['nodes'];
  if (!Array.isArray(nodes) || !nodes.every((n): n is string => typeof n === 'string')) {
    throw new Error(`kg-testcluster READY line lacks "nodes": ${json}`);
  }
  out.nodes = nodes;
  const podLogsFile = record['podLogsFile'];
  if (typeof podLogsFile === 'string' && podLogsFile !== '') out.podLogsFile = podLogsFile;
  return out as ReadyLine;
}

/** The fixture's stderr tail plus, if present, the tails of the component logs in dir. */
function describeFailure(dir: string, stderrTail: string[]): string {
  let text =
    stderrTail.length === 0
      ? '\n(kg-testcluster printed nothing on stderr)'
      : `\n--- last ${stderrTail.length} lines of kg-testcluster stderr ---\n${stderrTail.join('\n')}`;
  for (const name of ['controller-manager.log', 'scheduler.log', 'kwok.log', 'apiserver.log']) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').slice(-20);
    if (lines.length === 1 && lines[0] === '') continue;
    text += `\n--- last ${lines.length} lines of ${path} ---\n${lines.join('\n')}`;
  }
  return text;
}

/** A running cluster must not keep the test process alive; stop() re-refs it. */
function unrefChild(child: ChildProcess): void {
  child.unref();
  for (const stream of [child.stdout, child.stderr]) {
    const socket = stream as unknown as { unref?: () => void } | null;
    socket?.unref?.();
  }
}
