/**
 * For every goal not met, one line saying what limits it, from what this
 * run measured: CPU per request (P2), the CPU profiles, and the row's own
 * figures. The mechanism named is where the measurement points.
 */
import type { CpuPerRequest } from './rows/p2-throughput.js';
import type { Profiles } from './rows/profile-run.js';
import type { ProfileSummary } from './profile.js';
import type { Row } from './table.js';

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;

function areas(s: ProfileSummary | undefined, n = 4): string {
  if (!s) return 'no profile this run';
  return s.areas
    .slice(0, n)
    .map(([k, v]) => `${k} ${pct(v)}`)
    .join(', ');
}

function topFn(s: ProfileSummary | undefined): string {
  const f = s?.functions[0];
  return f ? `${f[0]} (${pct(f[1])})` : 'n/a';
}

export function limitsFor(rows: Row[], cpu?: CpuPerRequest, prof?: Profiles): string[] {
  const out: string[] = [];
  const cpuLine = cpu
    ? `CPU per 1 KiB GET: proxy ${cpu.kubegate.proxy.toFixed(0)} µs + agent ${cpu.kubegate.agent.toFixed(0)} µs against ${cpu.nginx.hops.toFixed(0)} µs for both nginx hops`
    : 'CPU per request not measured this run';
  for (const r of rows) {
    // An agent that ends itself is a failure of the goal behind every row, not a bench error.
    if (r.verdict !== 'not met' && !(r.id === 'P4-teardown' && r.verdict === 'error')) continue;
    switch (r.id.replace(/-.*$/, '')) {
      case 'P1':
        out.push(
          `${r.id}: each request crosses two Node processes and two TLS hops; ${cpuLine}. Proxy time by area: ${areas(prof?.get.proxy)}; agent: ${areas(prof?.get.agent)}.`,
        );
        break;
      case 'P2':
        out.push(
          `${r.id}: CPU-bound on 2 cores shared by proxy, agent, upstream and h2load — ${cpuLine}. Proxy by area: ${areas(prof?.get.proxy)} (top: ${topFn(prof?.get.proxy)}); agent: ${areas(prof?.get.agent)} (top: ${topFn(prof?.get.agent)}).`,
        );
        break;
      case 'P3':
        out.push(
          r.id === 'P3'
            ? `${r.id}: per byte, the body is decrypted and re-encrypted twice and copied through undici → h2 stream → h2 stream in JS chunks; profile of 200 MiB LISTs: proxy ${areas(prof?.list.proxy)}; agent ${areas(prof?.list.agent)}.`
            : r.id === 'P3-ttfb'
              ? `${r.id}: ${r.result}; ${r.absolute}. The first byte of a LIST takes the path of a whole small GET (P1), through two Node processes, so it pays the same per-request cost: ${cpuLine}.`
              : `${r.id}: ${r.result}; ${r.absolute}. One round: the peak includes what is in flight between the upstream's socket and the client (the agent's 256 KiB upstream window, the tunnel's 512 KiB stream window, stream buffers), and GC timing moves it from run to run.`,
        );
        break;
      case 'P4':
        out.push(
          r.id === 'P4-teardown'
            ? `${r.id}: ${r.result}. Reproduce with KG_BENCH_ROWS=P4 KG_BENCH_KEEP=1 make bench (process logs kept); the agent must always keep a dial or a reconnect timer pending.`
            : r.id === 'P4-mem'
              ? `${r.id}: ${r.absolute}. Each watch is an HTTP/2 stream on the front, on the tunnel and (since the agent's watch pool speaks HTTP/2, 100 streams per connection) on the agent's connection to the apiserver; what remains per watch is stream and request state in both Node processes.`
              : `${r.id}: ${r.result}; every event is parsed by no one but copied through two Node event loops; at 5,000 events/s over many streams the per-chunk cost (h2 frame + TLS record per event, no coalescing) adds queueing.`,
        );
        break;
      case 'P5':
        out.push(
          `${r.id}: ${r.result}. What a stalled stream absorbs is the tunnel's per-stream window (tunnelStreamWindow, 512 KiB, common/tunnel-protocol.ts) plus the agent's HTTP/2 stream window towards the apiserver (upstreamH2StreamWindow, 256 KiB, agent/forward/forward.ts); direct HTTP/2 stops at the client's 64 KiB window. Smaller tunnel windows would trade large-LIST throughput (P3).`,
        );
        break;
      case 'P6':
        out.push(
          `${r.id}: ${r.result}; ${r.limit ?? r.absolute}.` +
            (r.id === 'P6-cpu'
              ? ` Profile of exec sessions: proxy ${areas(prof?.exec?.proxy)} (top: ${topFn(prof?.exec?.proxy)}); agent ${areas(prof?.exec?.agent)} (top: ${topFn(prof?.exec?.agent)}).`
              : ''),
        );
        break;
      case 'P8':
        out.push(
          `${r.id}: ${r.result}; ${r.absolute}. Audit on adds one PostgreSQL row per request (seven indexes), batched, and the database shares this machine's 2 cores with the proxy, the agent, the upstream and the load generator, so its CPU comes straight out of throughput; ${cpuLine} with audit on.`,
        );
        break;
      case 'P10':
        out.push(
          `${r.id}: ${r.result}; ${r.absolute}. A front relaying to a peer may first pick the killed replica, which stays registered until its heartbeat is older than KUBEGATE_REPLICA_STALE_AFTER (5 s); a failed connect marks it suspect and the next holder is tried, so the wait is one connect attempt, not the expiry.`,
        );
        break;
      default:
        out.push(`${r.id}: ${r.result}; ${r.absolute}.`);
    }
  }
  return out;
}
