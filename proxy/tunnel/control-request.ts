/**
 * One request from the proxy to an agent over its tunnel session whose
 * answer is read whole, under a deadline: control requests (hello, grants,
 * roles, JIT users) and the API calls of runbook runs.
 */
import * as http2 from 'node:http2';
import { hdrControl, hdrControlValue } from '../../common/tunnel-protocol.js';

export interface ControlAnswer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: Buffer;
  /** More than `maxBytes` arrived: `body` holds the first `maxBytes` only. */
  truncated: boolean;
}

export interface ControlRequestOptions {
  /** A body to send (the stream ends after it); none ends the stream with the headers. */
  body?: string | Buffer;
  timeoutMs: number;
  /** What is asked, for the timeout's message: "hello", "POST /.kg-grants". */
  what: string;
  /** The most of the answer kept (default: all of it). */
  maxBytes?: number;
}

/**
 * Send `headers` and read the whole answer. Past the deadline the stream is
 * cancelled and the promise rejects, so a caller never waits on an agent
 * that stopped answering.
 */
export function requestWhole(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  opts: ControlRequestOptions,
): Promise<ControlAnswer> {
  const max = opts.maxBytes ?? Infinity;
  return new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: opts.body === undefined });
    const timer = setTimeout(() => {
      req.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`agent did not answer ${opts.what} within ${opts.timeoutMs / 1000} s`));
    }, opts.timeoutMs);
    let answer: http2.IncomingHttpHeaders = {};
    let size = 0;
    let truncated = false;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (answer = h));
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) truncated = true;
      else chunks.push(c);
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('end', () => {
      clearTimeout(timer);
      resolve({
        status: Number(answer[':status'] ?? 0),
        headers: answer,
        body: Buffer.concat(chunks),
        truncated,
      });
    });
    if (opts.body !== undefined) req.end(opts.body);
  });
}

/** `requestWhole` with the control marker: a control message from the proxy itself. */
export function controlRequest(
  session: http2.ClientHttp2Session,
  headers: http2.OutgoingHttpHeaders,
  opts: ControlRequestOptions,
): Promise<ControlAnswer> {
  return requestWhole(session, { ...headers, [hdrControl]: hdrControlValue }, opts);
}
