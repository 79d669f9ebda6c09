/**
 * What both programs' metrics.ts share: the internal `/metrics` endpoint,
 * the label helpers, and `ProcessMetrics` (the registry, the process and
 * build metrics, and gauges read at scrape time from the live objects).
 * Plain HTTP on an internal address (KUBEGATE_METRICS_LISTEN): metrics carry
 * no secrets and only bounded labels, and Prometheus scrapes them from inside
 * the cluster; the public front never serves them.
 */
import * as http from 'node:http';
import { Gauge, Registry, collectDefaultMetrics, type Aggregator } from 'prom-client';
import { version } from './version.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** What a scrape reads: a registry, or the primary's sum over its workers (common/workers.ts). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** Serve `GET /metrics` from `registry` on host:port (port 0: any free port). */
export async function startMetricsServer(
  host: string,
  port: number,
  registry: MetricsSource,
): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      () => {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('collect failed\n');
      },
    );
  });
  // A scrape is small and quick; a stuck scraper must not hold sockets forever.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `value` if it is one of `allowed`, else `fallback`: label values stay a closed set. */
export function boundedLabel(
  value: string | undefined,
  allowed: ReadonlySet<string>,
  fallback: string,
): string {
  if (value === undefined) return fallback;
  return allowed.has(value) ? value : 'other';
}

/** An HTTP status as a label: three digits, or `unknown`. */
export function codeLabel(code: number): string {
  return Number.isInteger(code) && code >= 100 && code <= 599 ? String(code) : 'unknown';
}

/** Upstream time to response headers (seconds): apiserver answers, from ms to a large LIST. */
export const upstreamBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * One more on `gauge` (with `labels`, if any) now, and one less when the
 * returned function is first called; later calls do nothing, so a stream
 * that ends twice is still counted once.
 */
export function holdGauge<L extends string>(
  gauge: Gauge<L>,
  labels?: Partial<Record<L, string>>,
): () => void {
  if (labels) gauge.inc(labels);
  else gauge.inc();
  let open = true;
  return () => {
    if (!open) return;
    open = false;
    if (labels) gauge.dec(labels);
    else gauge.dec();
  };
}

/**
 * The part of the proxy's and the agent's metrics that is the same: one
 * registry per instance (tests build their own), and `sources`, the live
 * objects the scrape reads, set by `setSources`.
 */
export class ProcessMetrics<S extends object> {
  readonly registry = new Registry();
  protected sources: Partial<S> = {};

  /** Tell the scrape where the live state is; later calls add to or replace earlier ones. */
  setSources(sources: S): void {
    this.sources = { ...this.sources, ...sources };
  }

  /**
   * Node's process metrics and `kubegate_build_info`. Called by the
   * subclass's constructor, after its own metrics, so the scrape lists them
   * in that order.
   */
  protected registerProcessMetrics(program: 'proxy' | 'agent'): void {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'kubegate_build_info',
      help: 'Always 1; the labels say which kubegate runs.',
      labelNames: ['program', 'version'] as const,
      registers: [this.registry],
      // Workers of one process tree (common/workers.ts) say it once, not once each.
      aggregator: 'first',
    }).set({ program, version }, 1);
  }

  /**
   * A gauge set at each scrape to what `read` finds in the sources; while it
   * finds nothing (undefined), the gauge keeps its last value. `aggregator`:
   * how the primary of several workers combines their values (default: sum).
   */
  protected scrapeGauge(
    name: string,
    help: string,
    read: (sources: Partial<S>) => number | undefined,
    aggregator: Aggregator = 'sum',
  ): void {
    const src = () => this.sources;
    new Gauge({
      name,
      help,
      aggregator,
      registers: [this.registry],
      collect() {
        const v = read(src());
        if (v !== undefined) this.set(v);
      },
    });
  }
}
