/**
 * Metrics of runbook runs (docs/metrics.md), on the proxy's registry. One
 * count per cluster of a run when it ends, by runbook and outcome; the
 * runbook label is bounded by the catalogue and what admins store.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** From seconds (a scale) to an hour (a Job that waits). */
const durationBuckets = [0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600];

export class RunbookMetrics {
  private readonly runs: Counter<'runbook' | 'outcome'>;
  private readonly duration: Histogram<'runbook' | 'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.runs = new Counter({
      name: 'kubegate_runbook_runs_total',
      help: 'Runbook runs ended on one cluster, by runbook and outcome (succeeded, failed, unknown, offline, cancelled), as ended by this replica.',
      labelNames: ['runbook', 'outcome'] as const,
      registers,
    });
    this.duration = new Histogram({
      name: 'kubegate_runbook_run_seconds',
      help: 'How long a runbook run took on one cluster, from its first step to its end, by runbook and outcome.',
      labelNames: ['runbook', 'outcome'] as const,
      buckets: durationBuckets,
      registers,
    });
  }

  /** A run ended on one cluster; `seconds` is absent when it never started there. */
  ended(runbook: string, outcome: string, seconds?: number): void {
    this.runs.inc({ runbook, outcome });
    if (seconds !== undefined) this.duration.observe({ runbook, outcome }, Math.max(0, seconds));
  }
}
