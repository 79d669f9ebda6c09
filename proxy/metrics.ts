/**
 * The proxy's Prometheus metrics (prom-client), in one place: names are `kubegate_<subsystem>_<name>_<unit>`, labels carry bounded
 * values only — cluster, verb, code and small fixed enums — never a user, a
 * group, a path or a token. docs/metrics.md describes each one.
 *
 * Two kinds of inputs:
 * - events the request path reports (`observeRequest`, `observeDecision`, …),
 *   cheap calls with no allocation beyond prom-client's label lookup;
 * - state read at scrape time from the objects that own it (`setSources`:
 *   tunnel registry, DB pool, audit queue), so nothing has to be kept in sync.
 *
 * Served from `registry` on an internal port by common's `startMetricsServer`
 * (KUBEGATE_METRICS_LISTEN),
 * never on the public front.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Pool } from './db/pool.js';
import type { RequestContext } from './context.js';
import type { TunnelRegistry } from './tunnel/registry.js';
import {
  boundedLabel,
  codeLabel,
  holdGauge,
  ProcessMetrics,
  upstreamBuckets,
} from '../common/metrics-server.js';
import { objectVerbs } from '../common/kube-grammar.js';
import { ApprovalMetrics } from './approvals/metrics.js';
import { RunbookMetrics } from './runbooks/metrics.js';
import { DataplaneMetrics } from './forward/dataplane-metrics.js';

/** Kube verbs and the lowercase methods of non-resource requests; anything else is `other`. */
const knownVerbs = new Set<string>([...objectVerbs, 'proxy', 'post', 'put', 'head', 'options']);

/** A request that failed before its verb was known (bad path, no token). */
export const unknownVerb = 'unknown';
/** Requests for a cluster kubegate does not know (or beyond the cardinality cap). */
export const otherCluster = '_other';

export type StreamKind = 'request' | 'watch' | 'upgrade';
export type DecisionLabel = 'allow' | 'deny' | 'unavailable';
export type AuditOutcome = 'written' | 'spooled' | 'replayed' | 'refused';
export type EnrollResult = 'enrolled' | 'renewed' | 'refused';

/** What the scrape reads from the objects that own the state. Every source is optional. */
export interface ProxyMetricSources {
  tunnels?: TunnelRegistry;
  pool?: Pool;
  /** Pool size limit, for the saturation ratio (default: the pool's own `max` option). */
  poolMax?: number;
  /** Seconds since the policy snapshot was last confirmed current with the database. */
  policyAgeSeconds?: () => number | undefined;
  /** Events waiting in the in-memory audit queue. */
  auditQueueEvents?: () => number;
  /** Bytes in the local audit spool, and its limit (new requests are refused at the limit). */
  auditSpoolBytes?: () => number;
  auditSpoolLimitBytes?: () => number;
  /** Is this cluster registered? Unknown names are counted as `_other` (no label explosion). */
  isKnownCluster?: (name: string) => boolean;
  /**
   * The enabled clusters, so a cluster with no tunnel on this replica reports
   * 0 rather than nothing: `sum by (cluster) (kubegate_tunnel_connected) == 0`
   * then finds a cluster offline on every replica at once.
   */
  knownClusters?: () => Iterable<string>;
}

/** Latency buckets (seconds): kubegate's own overhead is sub-millisecond to a few ms. */
const proxyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Most distinct cluster label values tracked; beyond it, `_other` (a fleet is bounded). */
const maxClusters = 2000;

export class ProxyMetrics extends ProcessMetrics<ProxyMetricSources> {
  private readonly clustersSeen = new Set<string>();
  /** Just-in-time approvals (proxy/approvals/metrics.ts), on the same registry. */
  readonly approvals = new ApprovalMetrics(this.registry, (name) => this.cluster(name));
  /** Runbook runs (proxy/runbooks/metrics.ts). */
  readonly runbooks = new RunbookMetrics(this.registry);
  /** Request-body bounds, tunnel probes and failovers (proxy/forward/dataplane-metrics.ts). */
  readonly dataplane = new DataplaneMetrics(this.registry);
  /** Per-request timestamps, keyed by the request's context (gone with it). */
  private readonly timings = new WeakMap<
    RequestContext,
    { start: number; sent?: number; headers?: number; closeStream?: () => void }
  >();

  private readonly requests = new Counter({
    name: 'kubegate_http_requests_total',
    help: 'Kubernetes API requests through the proxy, by cluster, kube verb and HTTP status.',
    labelNames: ['cluster', 'verb', 'code'] as const,
    registers: [this.registry],
  });
  private readonly proxyTime = new Histogram({
    name: 'kubegate_http_proxy_duration_seconds',
    help: 'Time spent in kubegate itself (route, authenticate, authorize, pick a tunnel) before the request left for the cluster, or until kubegate answered it.',
    labelNames: ['cluster', 'verb'] as const,
    buckets: proxyBuckets,
    registers: [this.registry],
  });
  private readonly upstreamTime = new Histogram({
    name: 'kubegate_http_upstream_duration_seconds',
    help: 'Time from sending the request over the tunnel to the response headers (agent + apiserver); watches count until their headers.',
    labelNames: ['cluster', 'verb'] as const,
    buckets: upstreamBuckets,
    registers: [this.registry],
  });
  private readonly openStreams = new Gauge({
    name: 'kubegate_http_open_streams',
    help: 'Requests in flight on this replica, by cluster and kind (request, watch, upgrade).',
    labelNames: ['cluster', 'kind'] as const,
    registers: [this.registry],
  });
  private readonly decisions = new Counter({
    name: 'kubegate_authz_decisions_total',
    help: 'Central authorization decisions: allow, deny, or unavailable (policy not confirmed current: fail closed).',
    labelNames: ['cluster', 'decision'] as const,
    registers: [this.registry],
  });
  private readonly tokenCache = new Counter({
    name: 'kubegate_authn_token_cache_lookups_total',
    help: 'Bearer token lookups: from the in-memory cache (hit), the database (miss), memory while the database cannot answer (stale), the unknown-token memory (negative), or refused for the source address (rate_limited).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly peerForwards = new Counter({
    name: 'kubegate_peer_forwards_total',
    help: 'Requests forwarded to a peer replica that holds the cluster tunnel, by cluster and HTTP status.',
    labelNames: ['cluster', 'code'] as const,
    registers: [this.registry],
  });
  private readonly enrollments = new Counter({
    name: 'kubegate_tunnel_enrollments_total',
    help: 'Agent certificate requests: enrolled (bootstrap token), renewed, refused.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly auditEvents = new Counter({
    name: 'kubegate_audit_events_total',
    help: 'Audit events by outcome: written to PostgreSQL, spooled to disk, replayed from the spool, refused (spool full).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly auditCaptureFailures = new Counter({
    name: 'kubegate_audit_capture_failures_total',
    help: 'Audit capture that could not keep part of an event: too_deep (a body nested past the limit, replaced by a marker), body (redacting a body threw), event (building or emitting the event threw). The event is still recorded, without the part that failed.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  private readonly recordingsSwept = new Counter({
    name: 'kubegate_recordings_swept_total',
    help: 'Recordings the sweep dealt with: expired (deleted past KUBEGATE_RECORDING_RETENTION, with their chunks or objects) or abandoned (left open by a replica that stopped, marked incomplete).',
    labelNames: ['what'] as const,
    registers: [this.registry],
  });

  // Self-service namespaces: the fleet's count, read from PostgreSQL by the reconciler (so
  // every replica says the same), and the drift this replica put back.
  private readonly namespaces = new Gauge({
    name: 'kubegate_namespaces_managed',
    help: 'Self-service namespaces by profile and status (awaiting-approval, provisioning, ready, retiring), fleet-wide.',
    labelNames: ['profile', 'status'] as const,
    registers: [this.registry],
    // The same fleet-wide count in every worker of a replica (common/workers.ts): not summed.
    aggregator: 'first',
  });

  private readonly namespaceCorrections = new Counter({
    name: 'kubegate_namespace_drift_corrections_total',
    help: 'Objects of managed namespaces found changed or deleted on a cluster and put back as the profile says, by profile and kind, corrected by this replica.',
    labelNames: ['profile', 'kind'] as const,
    registers: [this.registry],
  });

  constructor() {
    super();
    // Scrape-time collectors read the live objects through these (arrow
    // functions keep `this`; inside collect(), `this` is the gauge).
    const src = () => this.sources;
    const label = (name: string) => this.cluster(name);
    this.registerProcessMetrics('proxy');
    new Gauge({
      name: 'kubegate_tunnel_connected',
      help: 'Live agent tunnels held by this replica, by cluster (0 for a known cluster with none here).',
      labelNames: ['cluster'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const name of src().knownClusters?.() ?? []) this.set({ cluster: label(name) }, 0);
        for (const t of src().tunnels?.tunnels() ?? []) {
          if (!t.session.closed) this.inc({ cluster: label(t.cluster) });
        }
      },
    });
    new Gauge({
      name: 'kubegate_tunnel_active_streams',
      help: 'Streams open on this replica tunnels, by cluster (requests, watches and upgrades being carried).',
      labelNames: ['cluster'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const t of src().tunnels?.tunnels() ?? []) {
          this.inc({ cluster: label(t.cluster) }, t.active);
        }
      },
    });
    new Gauge({
      name: 'kubegate_db_pool_connections',
      help: 'PostgreSQL pool connections by state: total, idle, waiting (queued callers), max.',
      labelNames: ['state'] as const,
      registers: [this.registry],
      collect() {
        const p = src().pool;
        if (!p) return;
        this.set({ state: 'total' }, p.totalCount);
        this.set({ state: 'idle' }, p.idleCount);
        this.set({ state: 'waiting' }, p.waitingCount);
        const max = src().poolMax ?? p.options?.max;
        if (max !== undefined) this.set({ state: 'max' }, max);
      },
    });
    this.scrapeGauge(
      'kubegate_authz_policy_age_seconds',
      'Seconds since the policy snapshot was last confirmed current; past KUBEGATE_POLICY_STALE_AFTER the replica fails closed.',
      (s) => s.policyAgeSeconds?.(),
      'max',
    );
    this.scrapeGauge(
      'kubegate_audit_queue_events',
      'Audit events waiting in memory to be written.',
      (s) => s.auditQueueEvents?.(),
    );
    this.scrapeGauge(
      'kubegate_audit_spool_bytes',
      'Bytes of audit events in the local spool (PostgreSQL was unreachable).',
      (s) => s.auditSpoolBytes?.(),
    );
    this.scrapeGauge(
      'kubegate_audit_spool_limit_bytes',
      'Spool size at which new requests are refused (503) rather than lose audit events.',
      (s) => s.auditSpoolLimitBytes?.(),
    );
  }

  /**
   * The cluster label: registered names as they are, anything else `_other`,
   * so a client inventing cluster names in URLs cannot grow the series count.
   */
  cluster(name: string | undefined): string {
    if (!name) return otherCluster;
    if (this.clustersSeen.has(name)) return name;
    const known = this.sources.isKnownCluster?.(name) ?? false;
    if (!known || this.clustersSeen.size >= maxClusters) return otherCluster;
    this.clustersSeen.add(name);
    return name;
  }

  /**
   * One finished Kubernetes API request. `proxySeconds` is kubegate's own
   * time; `upstreamSeconds` only when it was forwarded (time to headers).
   */
  observeRequest(
    cluster: string | undefined,
    verb: string | undefined,
    code: number,
    proxySeconds: number,
    upstreamSeconds?: number,
  ): void {
    const c = this.cluster(cluster);
    const v = boundedLabel(verb, knownVerbs, unknownVerb);
    this.requests.inc({ cluster: c, verb: v, code: codeLabel(code) });
    this.proxyTime.observe({ cluster: c, verb: v }, proxySeconds);
    if (upstreamSeconds !== undefined)
      this.upstreamTime.observe({ cluster: c, verb: v }, upstreamSeconds);
  }

  /**
   * The request path's three calls, so the hot path stays one line each:
   * `beginRequest` when the request arrives, `markSent` just before it goes
   * over the tunnel (it is then also an open stream until it ends),
   * `markHeaders` when the response headers come back, and `endRequest` when
   * the response is closed. The decision label is read from the context the
   * stages filled in: allowed → allow; refused (or a 403 for a cluster that is
   * unknown or disabled) → deny; an authenticated 503 with no decision →
   * unavailable (the policy could not be confirmed: fail closed).
   */
  beginRequest(ctx: RequestContext): void {
    this.timings.set(ctx, { start: performance.now() });
  }

  markSent(ctx: RequestContext): void {
    const t = this.timings.get(ctx);
    if (!t || t.sent !== undefined) return;
    t.sent = performance.now();
    t.closeStream = this.openStream(
      ctx.route?.cluster,
      ctx.info?.verb === 'watch' ? 'watch' : 'request',
    );
  }

  markHeaders(ctx: RequestContext): void {
    const t = this.timings.get(ctx);
    if (t && t.sent !== undefined && t.headers === undefined) t.headers = performance.now();
  }

  endRequest(ctx: RequestContext, code: number): void {
    const t = this.timings.get(ctx);
    if (!t) return;
    this.timings.delete(ctx);
    t.closeStream?.();
    const now = performance.now();
    const proxyMs = (t.sent ?? now) - t.start;
    const upstreamMs =
      t.sent !== undefined && t.headers !== undefined ? t.headers - t.sent : undefined;
    const cluster = ctx.route?.cluster;
    this.observeRequest(
      cluster,
      ctx.info?.verb,
      code,
      proxyMs / 1000,
      upstreamMs === undefined ? undefined : upstreamMs / 1000,
    );
    if (ctx.decision?.allowed) this.observeDecision(cluster, 'allow');
    else if (ctx.decision || (ctx.identity && code === 403)) this.observeDecision(cluster, 'deny');
    else if (ctx.identity && code === 503) this.observeDecision(cluster, 'unavailable');
  }

  /** A request now in flight; call the returned function exactly once when it ends. */
  openStream(cluster: string | undefined, kind: StreamKind): () => void {
    return holdGauge(this.openStreams, { cluster: this.cluster(cluster), kind });
  }

  observeDecision(cluster: string | undefined, decision: DecisionLabel): void {
    this.decisions.inc({ cluster: this.cluster(cluster), decision });
  }

  observeTokenCache(hit: boolean | 'stale' | 'negative' | 'rate_limited'): void {
    this.tokenCache.inc({ result: hit === true ? 'hit' : hit === false ? 'miss' : hit });
  }

  observePeerForward(cluster: string | undefined, code: number): void {
    this.peerForwards.inc({ cluster: this.cluster(cluster), code: codeLabel(code) });
  }

  observeEnrollment(result: EnrollResult): void {
    this.enrollments.inc({ result });
  }

  observeAudit(outcome: AuditOutcome, events = 1): void {
    this.auditEvents.inc({ outcome }, events);
  }

  observeRecordingsSwept(what: 'expired' | 'abandoned', n: number): void {
    this.recordingsSwept.inc({ what }, n);
  }

  /** The fleet's self-service namespaces now, by profile and status (replaces the last reading). */
  observeNamespaces(rows: readonly { profile: string; status: string; n: number }[]): void {
    this.namespaces.reset();
    for (const r of rows) this.namespaces.set({ profile: r.profile, status: r.status }, r.n);
  }

  observeNamespaceCorrected(profile: string, kind: string): void {
    this.namespaceCorrections.inc({ profile, kind });
  }

  observeAuditCaptureFailure(reason: 'too_deep' | 'body' | 'event'): void {
    this.auditCaptureFailures.inc({ reason });
  }
}

/** The process's metrics. Tests that need isolation construct their own ProxyMetrics. */
export const proxyMetrics = new ProxyMetrics();
