/**
 * Metrics of self-service namespaces (docs/metrics.md), on the proxy's
 * registry: how many namespaces each profile has in each state (read from
 * PostgreSQL by the reconciler, so every replica says the same), and the
 * corrections the reconcile made to objects someone changed on a cluster.
 * Profile names are bounded by what admins store.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

export class NamespaceMetrics {
  private readonly count: Gauge<'profile' | 'status'>;
  private readonly corrections: Counter<'profile' | 'kind'>;

  constructor(registry: Registry) {
    this.count = new Gauge({
      name: 'kubegate_namespaces_managed',
      help: 'Self-service namespaces by profile and status (awaiting-approval, provisioning, ready, retiring), fleet-wide.',
      labelNames: ['profile', 'status'] as const,
      registers: [registry],
    });
    this.corrections = new Counter({
      name: 'kubegate_namespace_drift_corrections_total',
      help: 'Objects of managed namespaces found changed or deleted on a cluster and put back as the profile says, by profile and kind, corrected by this replica.',
      labelNames: ['profile', 'kind'] as const,
      registers: [registry],
    });
  }

  /** The fleet's namespaces now, by profile and status (replaces the last reading). */
  counted(rows: readonly { profile: string; status: string; n: number }[]): void {
    this.count.reset();
    for (const r of rows) this.count.set({ profile: r.profile, status: r.status }, r.n);
  }

  corrected(profile: string, kind: string, n = 1): void {
    this.corrections.inc({ profile, kind }, n);
  }
}
