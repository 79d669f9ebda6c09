/**
 * Metrics of runbook runs (docs/metrics.md), on the proxy's registry: one
 * histogram, observed once per cluster of a run when it ends, by runbook and
 * outcome — its `_count` is the number of runs. The runbook label is bounded
 * by the catalogue and what admins store.
 */
import { Histogram, type Registry } from 'prom-client';

/** From seconds (a scale) to an hour (a Job that waits). */
const durationBuckets = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600];

export class RunbookMetrics {
  private readonly runs: Histogram<'runbook' | 'outcome'>;

  constructor(registry: Registry) {
    this.runs = new Histogram({
      name: 'kubegate_runbook_run_seconds',
      help: 'Runbook runs ended on one cluster, by runbook and outcome (succeeded, failed, unknown, offline, cancelled), as ended by this replica: how long each took from its first step (0 when it never started there).',
      labelNames: ['runbook', 'outcome'] as const,
      buckets: durationBuckets,
      registers: [registry],
    });
  }

  /** A run ended on one cluster; `seconds` is absent when it never started there. */
  ended(runbook: string, outcome: string, seconds = 0): void {
    this.runs.observe({ runbook, outcome }, Math.max(0, seconds));
  }
}
