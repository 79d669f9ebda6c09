/**
 * Connection upgrades (exec, attach, port-forward, proxy) through the tunnel.
 * The original method, path and upgrade headers travel on one tunnel stream;
 * the agent makes the HTTP/1.1 upgrade to the apiserver. Only a 101 is ever
 * piped onwards (CVE-2018-1002105): any other answer is returned whole and
 * the client connection closed, so no byte the client sends after a refused
 * upgrade can reach the apiserver. Only WebSocket and SPDY/3.1 upgrades on
 * exec/attach/portforward/proxy subresources are accepted at all.
 */
import * as http2 from 'node:http2';
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { KgError } from '../../common/errors.js';
import { hdrUpgrade, hdrUpgradeStatus } from '../../common/tunnel-protocol.js';
import type { RequestInfo } from '../authz/request-info.js';
import type { RequestContext } from '../context.js';
import type { TunnelHealth } from '../tunnel/health.js';
import type { Tunnel } from '../tunnel/registry.js';
import type { UpgradeTap } from '../recording/session.js';
import { isHopByHopResponseHeader, upstreamHeaders } from './headers.js';
import {
  endStatus,
  frameGraceMs,
  SpdyClientStreams,
  SpdyFrames,
  spdyEnd,
  webSocketEnd,
  WebSocketFrames,
  type EndReason,
  type FrameScanner,
} from './end-status.js';

const protocols = new Set(['websocket', 'spdy/3.1']);

/** The Upgrade value, if this is an upgrade kubegate carries; otherwise a 400. */
export function checkUpgrade(req: IncomingMessage, info: RequestInfo): string {
  const upgrade = String(req.headers.upgrade ?? '').trim();
  if (!protocols.has(upgrade.toLowerCase())) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `upgrade to "${upgrade}" is not supported; kubegate carries only websocket and SPDY/3.1 upgrades`,
    );
  }
  const streaming =
    info.resource === 'pods' && ['exec', 'attach', 'portforward'].includes(info.subresource);
  const proxy =
    ['pods', 'services', 'nodes'].includes(info.resource) && info.subresource === 'proxy';
  if (!info.isResourceRequest || info.apiGroup !== '' || !(streaming || proxy)) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'connection upgrades are only accepted for pods/exec, pods/attach, pods/portforward and the proxy subresources',
    );
  }
  return upgrade;
}

const maxRefusalBody = 1024 * 1024;

/**
 * Carry one upgrade. Resolves with the upstream status (101 when switched)
 * when the connection is over. Rejects (before
 * anything was written to the client) when the tunnel stream fails.
 */
export function forwardUpgrade(
  ctx: RequestContext,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  tunnel: Tunnel,
  upgrade: string,
  /** Called once the agent answers (audit: ResponseStarted, the JIT account). */
  onResponse?: (status: number, headers: http2.IncomingHttpHeaders) => void,
  /** Probes the tunnel while the upgrade waits for its answer (tunnel/health.ts). */
  health?: TunnelHealth,
  /**
   * Receives the function that ends this connection early (open-requests.ts):
   * unanswered, with a 401 Status; a switched WebSocket, with a Status on its
   * error channel and a close frame (end-status.ts); anything else is cut.
   */
  onEnd?: (end: (reason: EndReason) => void) => void,
  /**
   * Sees every byte of a switched session as it passes, both ways (the
   * session recording, proxy/recording/session.ts); it never changes or
   * holds them, and never throws.
   */
  tap?: UpgradeTap,
): Promise<number> {
  const route = ctx.route!;
  const headers = upstreamHeaders(req, ctx);
  headers[hdrUpgrade] = upgrade;
  // After a 101 this stream carries raw bytes; a declared length (SPDY's POST
  // says 0) would make HTTP/2 reset the stream at the first byte.
  delete headers['content-length'];

  return new Promise<number>((resolve, reject) => {
    let status = 0;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = tunnel.session.request(headers, { endStream: false });
    } catch (err) {
      reject(
        new KgError(
          'KG_ERR_CLUSTER_OFFLINE',
          `cluster "${route.cluster}" tunnel is closing; retry`,
          { cause: err },
        ),
      );
      return;
    }
    tunnel.active++;
    // Until the agent answers, a tunnel that stopped answering is noticed
    // within seconds; the stream then fails with the reason (below).
    const probe = health
      ? setInterval(() => void health.suspect(tunnel), health.probeAfterMs)
      : undefined;
    stream.once('response', () => clearInterval(probe));
    stream.once('close', () => clearInterval(probe));
    let answered = false;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      tunnel.active--;
      socket.destroy();
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
      resolve(status);
    };
    socket.on('close', finish);
    socket.on('error', finish);

    // Ended early (access revoked, proxy shutting down): a WebSocket or SPDY
    // session is ended between two frames from the cluster with a last word
    // saying why. For SPDY the client's half is followed too, to learn which
    // of its streams is the error stream.
    const websocket = upgrade.toLowerCase() === 'websocket';
    const frames: FrameScanner = websocket ? new WebSocketFrames() : new SpdyFrames();
    const spdyStreams = websocket ? undefined : new SpdyClientStreams();
    let subprotocol: string | undefined;
    let stopping: (() => void) | undefined;
    let stopped = false;
    onEnd?.((reason) => {
      if (finished || stopping) return;
      if (!answered && reason.refused) {
        finished = true;
        tunnel.active--;
        clearInterval(probe);
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        reject(new KgError('KG_ERR_UNAUTHENTICATED', reason.message));
        return;
      }
      if (!reason.refused || status !== 101) return void finish();
      const grace = setTimeout(finish, frameGraceMs);
      stopping = () => {
        clearTimeout(grace);
        stopped = true;
        socket.unpipe(stream);
        if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
        // The client answers the close frame and the socket ends; a client
        // that does not is cut after a while.
        setTimeout(finish, 2000).unref();
        const last = spdyStreams
          ? spdyEnd(spdyStreams.errorStreams(), subprotocol, endStatus(reason))
          : webSocketEnd(subprotocol, endStatus(reason));
        socket.end(last, finish);
      };
      if (frames.atBoundary()) stopping();
    });

    stream.on('response', (h) => {
      answered = true;
      status = h[hdrUpgradeStatus] === '101' ? 101 : Number(h[':status']);
      onResponse?.(status, h);
      const lines: string[] = [];
      for (const [name, value] of Object.entries(h)) {
        if (value === undefined || isHopByHopResponseHeader(name)) continue;
        for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
      }
      lines.push(`audit-id: ${ctx.auditId}`);
      if (h[hdrUpgradeStatus] === '101') {
        // A 1xx never carries Content-Length (RFC 9110 §8.6); what follows is raw bytes.
        const switched = lines.filter((l) => !l.startsWith('content-length:'));
        socket.write(
          `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${String(h[hdrUpgrade] ?? upgrade)}\r\n${switched.join('\r\n')}\r\n\r\n`,
        );
        subprotocol = [
          h[websocket ? 'sec-websocket-protocol' : 'x-stream-protocol-version'] ?? '',
        ].flat()[0];
        tap?.switched(upgrade, subprotocol);
        if (head.length) {
          spdyStreams?.feed(head);
          tap?.fromClient(head);
          stream.write(head);
        }
        if (spdyStreams) socket.on('data', (c: Buffer) => spdyStreams.feed(c));
        if (tap) socket.on('data', (c: Buffer) => tap.fromClient(c));
        socket.pipe(stream);
        // The cluster side is read while neither the client nor the recording
        // store is behind; each that is holds it until it has caught up.
        let holds = 0;
        const hold = () => {
          if (holds++ === 0) stream.pause();
        };
        const release = () => {
          if (--holds === 0) stream.resume();
        };
        // Cluster → client, following its WebSocket or SPDY frames (so an early end
        // can come between two of them); ends the socket when the stream ends.
        stream.on('data', (chunk: Buffer) => {
          if (stopped || finished) return;
          const n = frames.scan(chunk, stopping !== undefined);
          if (n < chunk.length) chunk = chunk.subarray(0, n);
          if (chunk.length) tap?.fromCluster(chunk);
          if (chunk.length && !socket.write(chunk)) {
            hold();
            socket.once('drain', release);
          }
          const store = tap?.behind?.();
          if (store) {
            hold();
            void store.then(release);
          }
          if (stopping && frames.atBoundary()) stopping();
        });
        stream.on('end', () => {
          if (!stopped) socket.end();
        });
        // A clean end of the tunnel stream: let what is still buffered for the
        // client drain before the socket goes (destroy would cut the tail of an
        // exec's output). A reset ends the client's connection at once.
        stream.on('close', () => {
          if (stopped) return; // the last word is on its way to the client
          if (stream.rstCode === http2.constants.NGHTTP2_NO_ERROR && !socket.destroyed) {
            if (socket.writableFinished) return finish();
            socket.once('finish', finish);
            socket.end();
          } else finish();
        });
        return;
      }
      // Refused upstream: return the answer whole, then close. Never pipe.
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= maxRefusalBody) chunks.push(c);
      });
      stream.on('end', () => {
        const body = Buffer.concat(chunks);
        socket.end(
          Buffer.concat([
            Buffer.from(
              `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${lines.filter((l) => !l.startsWith('content-length:')).join('\r\n')}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`,
            ),
            body,
          ]),
        );
        finish();
      });
    });
    // The stream ended before any answer: the client gets a 502 to retry.
    const failUnanswered = (what: string, cause?: Error): boolean => {
      if (answered || finished) return false;
      finished = true;
      tunnel.active--;
      reject(
        new KgError('KG_ERR_UPSTREAM', `cluster "${route.cluster}": ${what}; retry`, { cause }),
      );
      return true;
    };
    stream.on('error', (err) => {
      if (!failUnanswered(`the tunnel stream failed (${err.message})`, err)) finish();
    });
    stream.on('close', () => failUnanswered('the agent closed the stream'));
  });
}
