import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';

/**
 * A response on either protocol. Both have `writeHead(status, headers)`, but
 * @types/node 24 declares their overloads so that a call on the bare union
 * does not type-check; the intersection names the form both share.
 */
export type AnyResponse = (ServerResponse | Http2ServerResponse) & {
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
};
