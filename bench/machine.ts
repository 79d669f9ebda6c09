/** What the numbers were measured on, for docs/benchmarks.md. */
import { cpus, loadavg, release, totalmem } from 'node:os';
import { spawnSync } from 'node:child_process';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  nginx: string;
  h2load: string;
  /** 1-minute load average when the run started: other work on a shared machine. */
  loadAtStart: number;
}

/** First line a tool prints about its version (nginx prints it on stderr). */
function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] || 'not installed';
}

export function machine(): Machine {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    nginx: version('nginx', ['-v']),
    h2load: version('h2load', ['--version']),
    loadAtStart: loadavg()[0] ?? 0,
  };
}
