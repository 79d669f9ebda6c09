/**
 * The agent's Prometheus metrics (prom-client), in one place: `kubegate_<subsystem>_<name>_<unit>`, bounded labels only (method,
 * code, small fixed enums) — never a user, a group, a path or a token; the
 * agent serves one cluster, so there is no cluster label (the scrape target
 * says which cluster it is). docs/metrics.md describes each one.
 *
 * Served from `registry` on an internal port by common's `startMetricsServer`
 * (KUBEGATE_METRICS_LISTEN).
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import {
  boundedLabel,
  codeLabel,
  holdGauge,
  ProcessMetrics,
  upstreamBuckets,
} from '../common/metrics-server.js';
import { managedObjectKinds } from '../common/tunnel-protocol.js';

const knownMethods = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const managedKinds = new Set(Object.keys(managedObjectKinds));

export type TunnelEvent = 'up' | 'down' | 'failed';

/** The just-in-time manager's running totals (agent/jit JitStats), read at scrape time. */
export interface JitCounts {
  accounts: number;
  created: number;
  deleted: number;
  tokenRequests: number;
  reconcileErrors: number;
}

/** What the scrape reads from the objects that own the state. Every source is optional. */
export interface AgentMetricSources {
  /** The tunnel clients; `connected` says whether each is up. */
  tunnels?: readonly { connected: boolean }[];
  /** When the agent's client certificate expires. */
  certificateNotAfter?: () => Date | undefined;
  /** The just-in-time manager's counts (absent in impersonation mode). */
  jit?: () => JitCounts;
}

export class AgentMetrics extends ProcessMetrics<AgentMetricSources> {
  private readonly requests = new Counter({
    name: 'kubegate_agent_requests_total',
    help: 'Requests the agent forwarded to the apiserver, by HTTP method and status.',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });
  private readonly upstreamTime = new Histogram({
    name: 'kubegate_agent_upstream_duration_seconds',
    help: 'Time from the agent sending a request to the apiserver until its response headers.',
    labelNames: ['method'] as const,
    buckets: upstreamBuckets,
    registers: [this.registry],
  });
  private readonly openStreams = new Gauge({
    name: 'kubegate_agent_open_streams',
    help: 'Tunnel streams the agent is carrying now (requests, watches, upgrades).',
    registers: [this.registry],
  });
  private readonly tunnelEvents = new Counter({
    name: 'kubegate_agent_tunnel_events_total',
    help: 'Tunnel lifecycle: up (connected), down (lost), failed (a connection attempt failed).',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  private readonly namespaceCorrections = new Counter({
    name: 'kubegate_agent_namespace_corrections_total',
    help: 'Objects of a managed namespace the agent found not as desired and set right (created, replaced or deleted), by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  constructor() {
    super();
    this.registerProcessMetrics('agent');
    this.scrapeGauge(
      'kubegate_agent_tunnels_connected',
      'Tunnels to the proxy that are up now (KUBEGATE_TUNNELS wanted).',
      (s) => s.tunnels?.filter((x) => x.connected).length,
    );
    this.scrapeGauge(
      'kubegate_agent_tunnels_wanted',
      'Tunnels the agent tries to keep open (KUBEGATE_TUNNELS).',
      (s) => s.tunnels?.length,
    );
    this.scrapeGauge(
      'kubegate_agent_certificate_expiry_timestamp_seconds',
      'When the agent client certificate expires (Unix seconds); it renews at two thirds of its life.',
      (s) => {
        const at = s.certificateNotAfter?.();
        return at ? at.getTime() / 1000 : undefined;
      },
    );
    this.scrapeGauge(
      'kubegate_jit_service_accounts',
      'Just-in-time ServiceAccounts the agent manages now (one per recently active user).',
      (s) => s.jit?.()?.accounts,
    );
    // Scrape-time collectors read the live objects through this (inside
    // collect(), `this` is the counter).
    const src = () => this.sources;
    // Running totals kept by the JIT manager itself, exported as counters.
    const totals: [string, string, keyof JitCounts][] = [
      [
        'kubegate_jit_service_accounts_created_total',
        'Just-in-time ServiceAccounts created.',
        'created',
      ],
      [
        'kubegate_jit_service_accounts_deleted_total',
        'Just-in-time ServiceAccounts deleted (idle clean-up or revoked grants).',
        'deleted',
      ],
      [
        'kubegate_jit_token_requests_total',
        'TokenRequest calls for just-in-time ServiceAccounts.',
        'tokenRequests',
      ],
      [
        'kubegate_jit_reconcile_errors_total',
        "Failed reconciles of a user's ServiceAccount and bindings.",
        'reconcileErrors',
      ],
    ];
    for (const [name, help, field] of totals) {
      new Counter({
        name,
        help,
        registers: [this.registry],
        collect() {
          const j = src().jit?.();
          if (!j) return;
          this.reset();
          this.inc(j[field]);
        },
      });
    }
  }

  /** One request answered by the apiserver (time to its response headers), or failed. */
  observeUpstream(method: string | undefined, code: number, seconds: number): void {
    const m = boundedLabel(method?.toUpperCase(), knownMethods, 'unknown');
    this.requests.inc({ method: m, code: codeLabel(code) });
    this.upstreamTime.observe({ method: m }, seconds);
  }

  /** A stream now in flight; call the returned function exactly once when it ends. */
  openStream(): () => void {
    return holdGauge(this.openStreams);
  }

  /** An object of an existing managed namespace set right; `kind` is one of the three the agent manages. */
  observeNamespaceCorrection(kind: string): void {
    this.namespaceCorrections.inc({ kind: boundedLabel(kind, managedKinds, 'other') });
  }

  observeTunnel(event: TunnelEvent): void {
    this.tunnelEvents.inc({ event });
  }
}

/** The process's metrics. Tests that need isolation construct their own AgentMetrics. */
export const agentMetrics = new AgentMetrics();
