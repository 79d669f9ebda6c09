/**
 * Metrics of the data path's defences (docs/metrics.md): request bodies held
 * in memory and refused, dead tunnels noticed by a probe, and requests failed
 * over to another tunnel. Registered on the proxy's registry by
 * `ProxyMetrics`; labels are small fixed sets only.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export type BodyRefusal = 'budget' | 'idle' | 'too_large';
export type FailoverResult = 'failed_over' | 'not_retried' | 'no_tunnel';

export class DataplaneMetrics {
  private heldSource: () => number = () => 0;
  private readonly bodyRefused: Counter<'reason'>;
  private readonly bodyStreamed: Counter<string>;
  private readonly probes: Counter<'result'>;
  private readonly failovers: Counter<'result'>;

  constructor(registry: Registry) {
    const registers = [registry];
    const held = () => this.heldSource();
    new Gauge({
      name: 'kubegate_request_body_held_bytes',
      help: 'Request-body bytes this replica holds in memory now (bodies of unknown length and gated bodies), bounded by KUBEGATE_BODY_BUFFER_PER_REPLICA.',
      registers,
      collect() {
        this.set(held());
      },
    });
    this.bodyRefused = new Counter({
      name: 'kubegate_request_body_refused_total',
      help: 'Requests refused because of their body: budget (the per-identity or per-replica buffer bound, 429), idle (no body bytes for KUBEGATE_BODY_IDLE_TIMEOUT, 408), too_large (413).',
      labelNames: ['reason'] as const,
      registers,
    });
    this.bodyStreamed = new Counter({
      name: 'kubegate_request_body_streamed_total',
      help: 'Bodies of unknown length streamed to the tunnel instead of held, because the buffer bound was reached.',
      registers,
    });
    this.probes = new Counter({
      name: 'kubegate_tunnel_probes_total',
      help: 'PINGs sent to a tunnel because a request waited for its response headers: alive (answered) or dead (unanswered: the tunnel was retired).',
      labelNames: ['result'] as const,
      registers,
    });
    this.failovers = new Counter({
      name: 'kubegate_tunnel_failovers_total',
      help: 'Requests in flight on a tunnel found dead: failed_over (sent again on another tunnel), not_retried (may have reached the cluster: answered with a Status), no_tunnel (no other tunnel: answered 503).',
      labelNames: ['result'] as const,
      registers,
    });
  }

  /** Where the held-bytes gauge reads from (the replica's BodyBudget). */
  setHeldSource(fn: () => number): void {
    this.heldSource = fn;
  }

  bodyRefusal(reason: BodyRefusal): void {
    this.bodyRefused.inc({ reason });
  }

  streamedBody(): void {
    this.bodyStreamed.inc();
  }

  probe(alive: boolean): void {
    this.probes.inc({ result: alive ? 'alive' : 'dead' });
  }

  failover(result: FailoverResult): void {
    this.failovers.inc({ result });
  }
}
