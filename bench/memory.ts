/**
 * Memory of processes under benchmark: RSS after a forced GC (through
 * gc-hook.ts, for Node processes we start), and peak RSS between two points
 * (Linux VmHWM, reset through /proc/<pid>/clear_refs).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Proc } from '../test/support/proc.js';

export const gcHookPath = fileURLToPath(new URL('./gc-hook.js', import.meta.url));

/** NODE_OPTIONS for a process whose memory the bench reads. */
export function probeNodeOptions(extra = ''): string {
  return `--import=${gcHookPath} ${extra}`.trim();
}

function statusField(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) * 1024;
}

export const rssOf = (pid: number): number => statusField(pid, 'VmRSS');

/** Start a peak-RSS window: the high-water mark drops to the current RSS. */
export function resetPeak(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

export const peakOf = (pid: number): number => statusField(pid, 'VmHWM');

const counts = new WeakMap<Proc, number>();

/** Force two full GCs in a probed process and return its RSS afterwards, in bytes. */
export async function rssAfterGc(p: Proc): Promise<number> {
  const n = (counts.get(p) ?? 0) + 1;
  counts.set(p, n);
  p.child.kill('SIGUSR2');
  const line = await p.waitFor(new RegExp(`kg-bench-gc n=${n} `), 30_000);
  return Number(/rss=(\d+)/.exec(line)![1]);
}

export const mb = (bytes: number): number => bytes / (1024 * 1024);
