/**
 * One control request from the proxy to an agent over its tunnel session
 * (hello, grants, roles, JIT users): the control marker is added, the answer
 * is read whole, and a deadline bounds the wait.
 */
import * as http2 from 'node:http2';
import { hdrControl, hdrControlValue } from '../../common/tunnel-protocol.js';

export interface ControlAnswer {
  status: number;
  body: Buffer;
}

export interface ControlRequestOptions {
  /** A body to send (the stream ends after it); none ends the stream with the headers. */
  body?: string;
  timeoutMs: number;
  /** What is asked, for the timeout's message: "hello", "POST /.kg-grants". */
  what: string;
}

/**
 * Send `headers` (plus the control marker) and read the whole answer. Past
 * the deadline the stream is cancelled and the promise rejects, so a caller
 * never waits on an agent that stopped answering.
 */
export function controlRequest(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  opts: ControlRequestOptions,
): Promise<ControlAnswer> {
  return new Promise((resolve, reject) => {
    const req = session.request(
      { ...headers, [hdrControl]: hdrControlValue },
      { endStream: opts.body === undefined },
    );
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`agent did not answer ${opts.what} within ${opts.timeoutMs / 1000} s`));
    }, opts.timeoutMs);
    let status = 0;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (status = Number(h[':status'])));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve({ status, body: Buffer.concat(chunks) });
    });
    if (opts.body !== undefined) req.end(opts.body);
  });
}
