/**
 * The dev stack's agent restarts as a Deployment's would: when it exits, the
 * kubelet starts it again with exponential back-off (here 1 s, doubling to at
 * most 30 s, back to 1 s once it has run for a minute), and it reconnects with
 * its stored certificate. Each restart says so on one log line.
 */
import type { Stack } from '../support/stack.js';
import type { Proc } from '../support/proc.js';

export interface SuperviseOptions {
  say: (m: string) => void;
  /** Each (re)started agent process, e.g. to stream its log. */
  onStart?: (p: Proc) => void;
  baseMs?: number;
  capMs?: number;
  /** Running this long resets the back-off. */
  steadyMs?: number;
}

export interface Supervisor {
  /** How many times the agent was restarted. */
  restarts(): number;
  /** Stop supervising (before the stack stops its agents). */
  stop(): void;
}

export function superviseAgent(stack: Stack, cluster: string, opts: SuperviseOptions): Supervisor {
  const base = opts.baseMs ?? 1000;
  const cap = opts.capMs ?? 30_000;
  const steady = opts.steadyMs ?? 60_000;
  let delay = base;
  let restarts = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const again = (why: string) => {
    if (stopped) return;
    restarts++;
    opts.say(
      `agent for cluster "${cluster}" ${why}; restarting it in ${delay / 1000} s (restart ${restarts}; back-off doubles up to ${cap / 1000} s)`,
    );
    timer = setTimeout(() => void start(), delay);
    delay = Math.min(delay * 2, cap);
  };
  const watch = (p: Proc, startedAt: number) => {
    opts.say(`agent for cluster "${cluster}" is running (pid ${p.child.pid})`);
    opts.onStart?.(p);
    p.child.once('exit', (code, signal) => {
      if (Date.now() - startedAt >= steady) delay = base;
      again(`exited (${signal ?? `code ${code}`})`);
    });
  };
  const start = async () => {
    if (stopped) return;
    const t = Date.now();
    try {
      watch(await stack.startAgent(cluster), t);
    } catch (err) {
      // Exited before its tunnel came up, or never brought it up: stop it and try again later.
      await stack.agents.get(cluster)?.stop();
      again(`did not connect (${(err as Error).message.split('\n')[0]})`);
    }
  };

  const first = stack.agents.get(cluster);
  if (first) watch(first, Date.now());
  else void start();
  return {
    restarts: () => restarts,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
