/**
 * Child processes for tests (proxy, agent, CLI): real processes, their
 * output kept for failure messages, always stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from './repo.js';

export interface Proc {
  child: ChildProcess;
  output: () => string;
  /** Resolves with the first output line matching `re`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /**
   * How the process ended, when it ended by itself (not by stop()): kubegate's
   * processes must not die under a test unless the test ends them.
   */
  unexpectedExit(): string | undefined;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export function kubegateBin(): string {
  return join(repoRoot(), 'bin', 'kubegate.js');
}

/** Start `kubegate <args>` as a real process. */
export function startKubegate(
  args: string[],
  env: NodeJS.ProcessEnv,
  name = args[0] ?? 'kubegate',
): Proc {
  // KG_KUBEGATE_BIN: another build's bin/kubegate.js (the benchmark's baseline, bench/rows/experiment.ts).
  const child = spawn(process.execPath, [env.KG_KUBEGATE_BIN || kubegateBin(), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  let out = '';
  const waiters: { re: RegExp; resolve: (line: string) => void }[] = [];
  const onData = (b: Buffer) => {
    const text = b.toString('utf8');
    out += text;
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
    for (const line of text.split('\n')) {
      for (const w of [...waiters]) {
        if (w.re.test(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let stopping = false;
  let unexpected: string | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      if (!stopping)
        unexpected = `${name} (pid ${child.pid}) exited by itself with ${signal ?? `code ${code}`}; its last output:\n${out.slice(-3000)}`;
      resolve(code);
    }),
  );
  return {
    child,
    output: () => out,
    waitFor(re, timeoutMs = 30_000) {
      for (const line of out.split('\n')) if (re.test(line)) return Promise.resolve(line);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () =>
            reject(
              new Error(
                `${name}: no line matching ${re} within ${timeoutMs} ms; output:\n${out.slice(-4000)}`,
              ),
            ),
          timeoutMs,
        );
        const w = { re, resolve: (l: string) => (clearTimeout(timer), resolve(l)) };
        waiters.push(w);
        void exited.then((code) => {
          if (waiters.includes(w)) {
            clearTimeout(timer);
            reject(
              new Error(
                `${name} exited with ${code} before printing ${re}; output:\n${out.slice(-4000)}`,
              ),
            );
          }
        });
      });
    },
    unexpectedExit: () => unexpected,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      stopping = true;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Run `kubegate <args>` to completion. */
export async function runKubegate(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    // KG_KUBEGATE_BIN: another build's bin/kubegate.js (the benchmark's baseline, bench/rows/experiment.ts).
    const child = spawn(process.execPath, [env.KG_KUBEGATE_BIN || kubegateBin(), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** True while a process with this pid exists (signal 0 probes without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
