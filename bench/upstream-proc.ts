/**
 * The parent's handle on the bench upstream process: fork it, wait for its
 * port, send it commands and await the answers.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { UpstreamCommand } from './upstream-main.js';

export interface UpstreamProc {
  port: number;
  pid: number;
  url: string;
  call<T = unknown>(cmd: UpstreamCommand): Promise<T>;
  stop(): Promise<void>;
}

export async function startUpstream(certFile: string, keyFile: string): Promise<UpstreamProc> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./upstream-main.js', import.meta.url)), {
    env: { ...process.env, KG_BENCH_CERT: certFile, KG_BENCH_KEY: keyFile, NODE_OPTIONS: '' },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, (v: unknown) => void>();
  let nextId = 1;
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`bench upstream exited with ${code}`)));
    child.on('message', (m: { ready?: number; id?: number; result?: unknown }) => {
      if (m.ready) resolve(m.ready);
      else if (m.id !== undefined) {
        pending.get(m.id)?.(m.result);
        pending.delete(m.id);
      }
    });
  });
  return {
    port,
    pid: child.pid!,
    url: `https://127.0.0.1:${port}`,
    call<T>(cmd: UpstreamCommand) {
      const id = nextId++;
      return new Promise<T>((resolve) => {
        pending.set(id, resolve as (v: unknown) => void);
        child.send({ id, ...cmd });
      });
    },
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
