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

/**
 * Write one piece of a streamed answer; when the client's buffer is full,
 * wait until it drains or the client goes (the caller checks for that).
 */
export async function writeDrained(res: AnyResponse, piece: string | Buffer): Promise<void> {
  if ((res as NodeJS.WritableStream).write(piece)) return;
  await new Promise<void>((resolve) => {
    const go = () => {
      res.off('drain', go);
      res.off('close', go);
      resolve();
    };
    res.on('drain', go);
    res.on('close', go);
  });
}
