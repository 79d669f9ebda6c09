/**
 * Metrics of just-in-time approvals (docs/metrics.md). Registered on the
 * proxy's registry by `ProxyMetrics`, so one scrape has everything; every
 * label is a small fixed set (kind, state, decision, result) or the proxy's
 * bounded cluster label — never a user, an approval id or a webhook URL.
 *
 * Counters count what this replica did: sum them over replicas. Each state
 * change is made by exactly one replica (one UPDATE wins), so the sums are
 * exact.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { RequestKind } from './records.js';

export type ApprovalState =
  'pending' | 'approved' | 'denied' | 'withdrawn' | 'expired' | 'executed' | 'returned';
/**
 * What the gate did with a request a gate policy matched:
 * - `pending`: refused with the 403 naming its (new or open) approval;
 * - `allowed_once`: an approval was spent and the request forwarded;
 * - `returned`: the cluster refused that request (4xx), so the approval was given back;
 * - `refused`: the gate could not decide (body over the limit, database
 *   unavailable) and the request failed closed.
 */
export type GateDecision = 'pending' | 'allowed_once' | 'returned' | 'refused';
export type DeliveryResult = 'delivered' | 'failed' | 'given_up';

/** From minutes to a day: people answer approvals, not machines. */
const decisionBuckets = [10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400];

export class ApprovalMetrics {
  private readonly requests: Counter<'kind' | 'state'>;
  private readonly gate: Counter<'cluster' | 'decision'>;
  private readonly deliveries: Counter<'result'>;
  private readonly decisionTime: Histogram<'kind' | 'decision'>;

  constructor(
    registry: Registry,
    private readonly clusterLabel: (name: string | undefined) => string,
  ) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'kubegate_approval_requests_total',
      help: 'Approval requests entering each state (pending = created), by kind (access, action, run), as changed by this replica.',
      labelNames: ['kind', 'state'] as const,
      registers,
    });
    this.gate = new Counter({
      name: 'kubegate_approval_gate_decisions_total',
      help: 'Requests a gate policy matched: pending (403 naming the approval), allowed_once (approval spent), returned (the cluster refused it, approval given back), refused (failed closed).',
      labelNames: ['cluster', 'decision'] as const,
      registers,
    });
    this.deliveries = new Counter({
      name: 'kubegate_approval_webhook_deliveries_total',
      help: 'Webhook delivery attempts: delivered (2xx), failed (to be retried), given_up (last attempt failed).',
      labelNames: ['result'] as const,
      registers,
    });
    this.decisionTime = new Histogram({
      name: 'kubegate_approval_decision_seconds',
      help: 'From an approval request being created to its final decision (approved or denied).',
      labelNames: ['kind', 'decision'] as const,
      buckets: decisionBuckets,
      registers,
    });
  }

  state(kind: RequestKind, state: ApprovalState, n = 1): void {
    this.requests.inc({ kind, state }, n);
  }

  gateDecision(cluster: string | undefined, decision: GateDecision): void {
    this.gate.inc({ cluster: this.clusterLabel(cluster), decision });
  }

  delivery(result: DeliveryResult): void {
    this.deliveries.inc({ result });
  }

  decided(kind: RequestKind, decision: 'approved' | 'denied', seconds: number): void {
    this.decisionTime.observe({ kind, decision }, Math.max(0, seconds));
  }
}
