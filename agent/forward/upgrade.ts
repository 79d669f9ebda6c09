/**
 * The agent's half of a connection upgrade: an HTTP/1.1 upgrade request to
 * the apiserver with the user's credential. A 101 turns the tunnel stream
 * into a raw byte pipe both ways; any other answer is returned whole on the
 * stream and the upstream connection closed (CVE-2018-1002105). Redirects
 * are never followed.
 */
import * as http2 from 'node:http2';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from '../../common/log.js';
import { hopByHopHeaders } from '../../common/hop-by-hop.js';
import {
  hdrRanAs,
  hdrUpgrade,
  hdrUpgradeStatus,
  isKubegateHeader,
} from '../../common/tunnel-protocol.js';
import { canAnswer } from './can-answer.js';

/**
 * Framing headers of the 101 itself. kwok (like other kubelets) answers a SPDY
 * upgrade with `Content-Length: 0`; on the tunnel stream that would declare an
 * empty HTTP/2 body, and the first SPDY frame after it is then a protocol
 * error that resets the stream (RFC 9113 §8.1.1) — kubectl saw "lost
 * connection to pod". After a 101 the stream carries raw bytes of unknown length.
 */
const framing = new Set(['content-length']);

export interface UpgradeTarget {
  url: URL;
  caPem: string;
  log: Logger;
}

export function upgradeUpstream(
  target: UpgradeTarget,
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  outHeaders: Record<string, string | string[]>,
  ranAs: string,
): void {
  const upgrade = String(headers[hdrUpgrade]);
  const req = https.request({
    host: target.url.hostname,
    port: target.url.port || 443,
    path: String(headers[':path']),
    method: String(headers[':method']),
    ca: target.caPem,
    agent: false,
    // No body, ever: without a length Node would send a POST (SPDY) chunked and
    // its terminating chunk would land inside the upgraded byte stream.
    headers: { ...outHeaders, connection: 'Upgrade', upgrade, 'content-length': '0' },
  });
  let upstream: Socket | undefined;
  stream.on('close', () => {
    upstream?.destroy();
    req.destroy();
  });

  req.on('upgrade', (res, socket, head) => {
    upstream = socket;
    if (!canAnswer(stream)) {
      socket.destroy();
      return;
    }
    const out: http2.OutgoingHttpHeaders = { ':status': 200 };
    for (const [name, value] of Object.entries(res.headers)) {
      if (
        value !== undefined &&
        !hopByHopHeaders.has(name) &&
        !framing.has(name) &&
        !isKubegateHeader(name)
      )
        out[name] = value;
    }
    // Ours, after the upstream's (none of which is in our namespace any more).
    out[hdrUpgradeStatus] = '101';
    out[hdrUpgrade] = String(res.headers.upgrade ?? upgrade);
    out[hdrRanAs] = ranAs;
    stream.respond(out);
    if (head.length) stream.write(head);
    socket.pipe(stream);
    stream.pipe(socket);
    socket.on('error', () => stream.destroy());
    socket.on('close', () => stream.end());
  });

  req.on('response', (res) => {
    // Not switched: the whole answer goes back, and this connection is done.
    if (!canAnswer(stream)) {
      res.destroy();
      return;
    }
    // Never a kg- header from upstream: a forged kg-upgrade-status: 101 on this
    // refusal would make the proxy pipe a connection that did not switch.
    const out: http2.OutgoingHttpHeaders = { ':status': res.statusCode ?? 502 };
    for (const [name, value] of Object.entries(res.headers)) {
      if (value !== undefined && !hopByHopHeaders.has(name) && !isKubegateHeader(name))
        out[name] = value;
    }
    out[hdrRanAs] = ranAs;
    stream.respond(out);
    res.pipe(stream);
    res.on('end', () => req.destroy());
  });

  req.on('error', (err) => {
    target.log.warn({ err: err.message }, 'upgrade to the apiserver failed');
    if (!stream.headersSent && canAnswer(stream)) {
      stream.respond({ ':status': 502, 'content-type': 'application/json', 'kg-agent-error': '1' });
      stream.end(
        JSON.stringify({
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `kubegate agent could not reach the apiserver: ${err.message}`,
          reason: 'InternalError',
          code: 502,
        }),
      );
    } else stream.destroy();
  });
  req.end();
}
