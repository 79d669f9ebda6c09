/**
 * The data the agent Helm chart shares with the bootstrap YAML, as the JSON
 * file the chart reads (helm/kubegate-agent/files/bootstrap-shared.json). It
 * is generated from proxy/clusters/bootstrap-yaml.ts by `make docs`, so a
 * rule added there reaches the chart without a second copy to forget; a test
 * fails while the file is stale.
 */
import { agentAdmissionPolicy, agentLabels, agentRbacRules } from '../clusters/bootstrap-yaml.js';

/** Where the chart reads it, relative to the repository root. */
export const agentChartDataPath = 'helm/kubegate-agent/files/bootstrap-shared.json';

/** The file's content (before Prettier, which `make docs` runs over it). */
export function agentChartData(): string {
  const doc = {
    $comment:
      'Generated from proxy/clusters/bootstrap-yaml.ts by `make docs` (kubegate agent-chart-data); do not edit.',
    labels: agentLabels,
    rbacRules: agentRbacRules,
    /** Rendered in forwardMode jit only (ValidatingAdmissionPolicy and its binding). */
    admissionPolicy: agentAdmissionPolicy(),
  };
  return JSON.stringify(doc, null, 2) + '\n';
}
