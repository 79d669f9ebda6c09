/**
 * The internal `/metrics` endpoint and the label helpers both programs'
 * metrics.ts share. Plain HTTP on an internal address (KUBEGATE_METRICS_LISTEN):
 * metrics carry no secrets and only bounded labels, and Prometheus scrapes
 * them from inside the cluster; the public front never serves them.
 */
import * as http from 'node:http';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/** Serve `GET /metrics` from `registry` on host:port (port 0: any free port). */
export async function startMetricsServer(
  host: string,
  port: number,
  registry: Registry,
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
