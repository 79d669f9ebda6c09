/**
 * The rest of a body nobody will read (issue #17, items 7 and the request
 * fuzzing): an error answer often goes out before the client has sent its
 * whole body. Left unread, that body pins the client's flow-control window
 * and, on HTTP/2, the session's memory (Node refuses every new stream on a
 * session past maxSessionMemory, ENHANCE_YOUR_CALM); a client that never
 * ends its body would hold its stream for ever.
 */
import * as http2 from 'node:http2';
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { AnyResponse } from './response.js';

type AnyRequest = IncomingMessage | Http2ServerRequest;

const handled = new WeakSet<object>();

/** How long the rest of a refused request's body is read and dropped before the client is told to stop. */
export const refusedBodyGraceMs = 1000;

/**
 * After an answer to a request whose body is still arriving: what is left of
 * the body is read and dropped (so the client's flow-control window, and the
 * HTTP/2 session's memory, are freed — an unread body pins both), and a body
 * that has not ended `refusedBodyGraceMs` after the answer was written is
 * stopped: RST_STREAM(NO_ERROR) on HTTP/2 (RFC 9113 §8.1), the connection
 * closed on HTTP/1.1. On HTTP/2 the answer's end is the stream's own
 * 'finish': the compatibility layer emits the response's only once the
 * stream closes, which a client that never ends its body never lets happen.
 */
export function endClientBodyAfterAnswer(req: AnyRequest, res: AnyResponse): void {
  if (req.readableEnded || handled.has(req)) return;
  handled.add(req);
  req.removeAllListeners('data');
  req.resume();
  const stopLater = (stop: () => void) => {
    if (req.readableEnded) return;
    const timer = setTimeout(stop, refusedBodyGraceMs);
    timer.unref();
    req.once('end', () => clearTimeout(timer));
    req.once('close', () => clearTimeout(timer));
  };
  if ('stream' in req) {
    const stream = req.stream;
    const stop = () => {
      if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    };
    if (stream.writableFinished) stopLater(stop);
    else stream.once('finish', () => stopLater(stop));
  } else {
    res.once('finish', () =>
      stopLater(() => {
        if (!req.complete) req.socket.destroy();
      }),
    );
  }
}

/**
 * HTTP/1.1 only, before an error answer is written: when the client has not
 * finished sending its body, keep the connection open past the answer so the
 * rest is read and dropped (then the grace above cuts it off). Node would
 * otherwise close a `Connection: close` request's socket right after the
 * answer, with the client's bytes still arriving: the kernel answers those
 * with a reset, and the client loses the answer it had not read yet (a
 * "lingering close", as Go's and Apache's servers do it).
 */
export function lingerForRefusedBody(req: AnyRequest, res: AnyResponse): void {
  if (!('stream' in req) && !req.complete && !res.headersSent)
    (res as { shouldKeepAlive: boolean }).shouldKeepAlive = true;
}
