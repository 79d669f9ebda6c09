/**
 * What every row gets: the running stack, the upstream, nginx, the three
 * ways to reach the same upstream, and the time budget.
 */
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Proc } from '../test/support/proc.js';
import type { BenchStack } from './stack.js';
import type { UpstreamProc } from './upstream-proc.js';
import type { Nginx } from './nginx.js';
import type { Remotedialer } from './remotedialer.js';

export type TargetName = 'direct' | 'kubegate' | 'nginx';
/** Peers that speak HTTP/1.1 only, measured in their own rows (rows/peer-remotedialer.ts). */
export type PeerName = 'remotedialer' | 'remotedialer-tls';

/** One way to reach an upstream: base URL, path prefix and headers. */
export interface Target {
  name: TargetName | PeerName;
  base: string;
  prefix: string;
  headers: Record<string, string>;
  ca: string;
}

export type PeerTarget = Target & { name: PeerName };

export const url = (t: Target, path: string): string => `${t.base}${t.prefix}${path}`;

export interface BenchContext {
  dir: string;
  stack: BenchStack;
  upstream: UpstreamProc;
  nginx: Nginx;
  /** The bench upstream reached directly, through kubegate, through nginx. */
  targets: Record<TargetName, Target>;
  /** The agent of cluster `bench` on the main replica (restarted if a row ends it). */
  agent: Proc;
  agentEnv: NodeJS.ProcessEnv;
  benchToken: string;
  budget: Budget;
  log: (m: string) => void;
  /** Rancher's remotedialer, as its example and with TLS, started by the first row that needs them. */
  remotedialer?: { example: Remotedialer; tls: Remotedialer };
  /** The real test cluster, reached directly (admin token) and through kubegate. */
  real?: {
    direct: Target;
    kubegate: Target;
    /** Its agent and the kg-testcluster process (etcd + apiserver), for CPU accounting. */
    pids: { agent: number; cluster: number };
  };
}

/** The whole run's deadline; rows ask before they start and size themselves to it. */
export class Budget {
  private readonly end: number;

  constructor(totalMs: number) {
    this.end = Date.now() + totalMs;
  }

  leftMs(): number {
    return this.end - Date.now();
  }

  allows(ms: number): boolean {
    return this.leftMs() > ms;
  }
}

/** User + system CPU seconds a process has used so far (Linux /proc). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11], fields[12] are utime and stime (fields 14 and 15 of stat), in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rotate the order of targets round by round, so no target always goes first. */
export function rotate<T>(xs: readonly T[], round: number): T[] {
  const k = round % xs.length;
  return [...xs.slice(k), ...xs.slice(0, k)];
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export function waitPort(port: number, timeoutMs: number): Promise<void> {
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
