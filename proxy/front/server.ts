/**
 * The front server: TLS with HTTP/2 and HTTP/1.1 negotiated by ALPN. kubectl
 * (client-go) speaks HTTP/2; browsers and older tools HTTP/1.1. Node's
 * default request timeouts are kept for request *headers and bodies* only;
 * responses (watches, logs -f) have no idle cut-off.
 */
import * as http2 from 'node:http2';
import type { Duplex } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { respondError } from '../http/respond-error.js';
import type { AnyResponse } from '../http/response.js';
import type { AnyRequest } from '../forward/forward.js';
import { listen, logFailedHandshakes } from '../../common/listen.js';

export interface FrontDeps {
  host: string;
  port: number;
  certPem: string;
  keyPem: string;
  log: Logger;
  kube: (req: AnyRequest, res: AnyResponse) => void;
  /** Every `/api/` request: the REST API's one route table (proxy/http/routes.ts). */
  api?: (req: AnyRequest, res: AnyResponse) => void;
  /** The console's static files (`/console/assets/…`); returns false for other paths. */
  console?: (req: AnyRequest, res: AnyResponse) => boolean;
  /** Identity's browser pages (sign-in, `/`, console views); returns false for other paths. */
  identity?: (req: AnyRequest, res: AnyResponse) => boolean;
  upgrade: (req: AnyRequest, socket: Duplex, head: Buffer) => void;
  ready: () => boolean;
}

export interface Front {
  server: http2.Http2SecureServer;
  port: number;
  close(): Promise<void>;
}

function plain(res: AnyResponse, status: number, text: string): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
  });
  res.end(text + '\n');
}

/** How often an HTTP/2 client session is pinged, and how long its answer may take. */
const sessionPingMs = 30_000;
const sessionPingTimeoutMs = 10_000;

/**
 * Ping each HTTP/2 session now and then; one that does not answer is
 * destroyed. Besides dead peers this catches a session nghttp2 ended on its
 * own: a client resetting over 1,000 streams in a burst gets GOAWAY (the
 * rapid-reset defence), and Node then stops reading that socket, so its
 * close would never be seen and the session would be held for ever.
 */
function watchSession(session: http2.ServerHttp2Session): void {
  const timer = setInterval(() => {
    if (session.closed || session.destroyed) return;
    const deadline = setTimeout(() => session.destroy(), sessionPingTimeoutMs);
    deadline.unref();
    const sent = session.ping((err) => {
      clearTimeout(deadline);
      if (err && !session.destroyed) session.destroy();
    });
    if (!sent) clearTimeout(deadline);
  }, sessionPingMs);
  timer.unref();
  session.once('close', () => clearInterval(timer));
}

export async function startFront(deps: FrontDeps): Promise<Front> {
  const server = http2.createSecureServer(
    {
      cert: deps.certPem,
      key: deps.keyPem,
      allowHTTP1: true,
      minVersion: 'TLSv1.2',
      settings: {
        initialWindowSize: 4 * 1024 * 1024,
        maxConcurrentStreams: 1000,
        enablePush: false,
      },
      maxSessionMemory: 64,
    },
    (req, res) => {
      const url = req.url ?? '/';
      if (url.startsWith('/k8s/')) return deps.kube(req, res);
      if (url === '/healthz' || url === '/livez') return plain(res, 200, 'ok');
      if (url === '/readyz')
        return deps.ready() ? plain(res, 200, 'ok') : plain(res, 503, 'not ready');
      if (deps.console?.(req, res)) return;
      if (deps.identity?.(req, res)) return;
      if (url.startsWith('/api/') && deps.api) return deps.api(req, res);
      respondError(
        res,
        new KgError(
          'KG_ERR_NOT_FOUND',
          `no such endpoint; Kubernetes API requests go to /k8s/<cluster>/…`,
        ),
        url,
        deps.log,
      );
    },
  );
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    deps.upgrade(req, socket, head),
  );
  // Nagle on the front (Node's HTTP/1.1 fallback leaves it on) holds small
  // responses back for delayed ACKs: tens of ms per request
  // (docs/performance-log.md, "TCP_NODELAY on the proxy front").
  server.on('secureConnection', (socket: import('node:tls').TLSSocket) => socket.setNoDelay(true));
  server.on('session', watchSession);
  server.on('sessionError', (err) => deps.log.debug({ err: err.message }, 'h2 session error'));
  logFailedHandshakes(server, deps.log, 'front');

  const port = await listen(server, { port: deps.port, host: deps.host });
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
