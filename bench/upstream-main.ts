/**
 * Child-process entry of the bench upstream (forked by bench/upstream-proc.ts):
 * a process of its own, so its CPU shows apart from the load generators'.
 * Commands arrive over IPC: `{ id, op, ... }`; every command is answered
 * with `{ id, result }`.
 */
import { readFileSync } from 'node:fs';
import { BenchUpstream } from './upstream.js';

export type UpstreamCommand =
  | { op: 'emit'; group: string; rate: number; ms: number; pad?: number }
  | { op: 'flood'; group: string }
  | { op: 'floodStop'; group: string }
  | { op: 'counts' }
  | { op: 'traffic' }
  | { op: 'closeWatches'; group: string };

const up = new BenchUpstream(
  readFileSync(process.env.KG_BENCH_CERT!, 'utf8'),
  readFileSync(process.env.KG_BENCH_KEY!, 'utf8'),
);

async function run(cmd: UpstreamCommand): Promise<unknown> {
  switch (cmd.op) {
    case 'emit':
      return up.emit(cmd.group, cmd.rate, cmd.ms, cmd.pad);
    case 'flood':
      up.flood(cmd.group);
      return true;
    case 'floodStop':
      return up.floodStop(cmd.group);
    case 'counts':
      return up.counts();
    case 'traffic':
      return { connections: up.connections, requests: up.requests };
    case 'closeWatches':
      up.closeWatches(cmd.group);
      return true;
  }
}

process.on('message', (m: { id: number } & UpstreamCommand) => {
  void run(m).then((result) => process.send?.({ id: m.id, result }));
});
process.on('disconnect', () => process.exit(0));

void up.listen().then((port) => process.send?.({ ready: port }));
