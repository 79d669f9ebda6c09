/** docs/benchmarks.md: the latest table, the machine, the limits, the profiles. */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import type { Machine } from './machine.js';
import { renderMarkdown, type Row } from './table.js';
import { mergeReport } from './report-merge.js';

export interface Report {
  rows: Row[];
  machine: Machine;
  limits: string[];
  profiles?: string;
  elapsedS: number;
}

export function renderReport(r: Report): string {
  const m = r.machine;
  return `# Benchmarks

Written by \`make bench\` (bench/run.ts) on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC
in ${Math.round(r.elapsedS)} s. Method and goals P1–P11: docs/benchmarks.md. Every figure is kubegate measured side by side in the same run
against the same upstream reached directly and through nginx configured as two TLS hops, in
interleaved rounds after a warm-up; results are medians over rounds with the range (min–max).

- **kubegate**: a proxy replica and an agent process, bearer-token authentication and central
  authorization on, the agent reaching the upstream over TLS exactly as it reaches an apiserver.
- **nginx 2-hop**: hop 1 TLS + HTTP/2 front → mutual TLS → hop 2 → TLS → upstream; one worker
  per hop, buffering off, keep-alive pools.
- **remotedialer** (rows P2-rd, P3-rd and their -h2 twins): Rancher's reverse-tunnel library
  (v0.5.0, built from its Go module by bench/peers/remotedialer/build.sh), in two shapes, each a
  server and a client process, both reaching the upstream over TLS from the server end of the
  tunnel. *Its example* server and client as shipped: no TLS on its front or tunnel (HTTP/1.1,
  ws://), no authentication, no audit; GET only, Go's default of two idle upstream connections
  (so under 32 callers most requests open a new upstream TLS connection, counted in the row),
  three log lines per request. *With TLS*: our main on the same library
  (bench/peers/remotedialer/tls): TLS + HTTP/2 front, wss tunnel with a shared token, an
  upstream pool sized to the callers; still no caller authentication and no audit. The example
  speaks HTTP/1.1 only, so P2-rd and P3-rd drive every target over HTTP/1.1; P2-rd-h2 and
  P3-rd-h2 compare the TLS shape over TLS + HTTP/2 as P2 and P3 do.
- **workers** (rows P2-workers, P2-workers-proxy): the same replica and agent with
  KUBEGATE_WORKERS=2 (ADR 0031) beside the one-process ones; CPU is read for each whole process
  tree. On this 2-core machine the load generator, the upstream and PostgreSQL already use what
  a second worker would, so the rows give req/s per core of kubegate CPU and a 4-core projection.
- **X-baseline** (with \`KG_BENCH_AB=baseline KG_BENCH_BASELINE=<checkout>\`): a proxy and agent
  built from an earlier commit run as "before" beside this build's, same upstream, interleaved
  rounds, CPU per request of both: a change to the data path measured in one sitting.
- **upstreams**: the *bench upstream* is a minimal Node server answering like kube-apiserver
  (fixed 1 KiB ConfigMap, streamed lists, watches with time-stamped events); the *real test
  cluster* is kube-apiserver + etcd from test/cluster.

## Machine

| | |
|---|---|
| CPU | ${m.cpu} |
| cores | ${m.cores} |
| memory | ${m.memoryGiB} GiB |
| Node.js | ${m.node} |
| kernel | ${m.kernel} |
| nginx | ${m.nginx} |
| h2load | ${m.h2load} |
| load average (1 min) at start / end | ${m.loadAtStart.toFixed(2)} / ${(loadavg()[0] ?? 0).toFixed(2)} (other work on this shared machine; kubegate's two processes share the cores with it) |

## Results

${renderMarkdown(r.rows)}

## Goals not met: what limits them

${r.limits.length ? r.limits.map((l) => `- ${l}`).join('\n') : 'Every measured goal is met.'}
${
  r.profiles
    ? `
## CPU profiles

\`node --cpu-prof\` on a proxy replica and its agent, each under the P2, P3 and P6 workloads
(separate processes, so the profiler never slows a measured row). Self time, share of busy samples.

\`\`\`text
${r.profiles}
\`\`\`
`
    : ''
}`;
}

/** Write the report; a partial run (`ran`: the KG_BENCH_ROWS ids) merges into the existing one. */
export function writeReport(file: string, r: Report, ran?: string[]): void {
  const text = renderReport(r);
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  writeFileSync(file, ran ? mergeReport(file, text, ran, when) : text);
}
