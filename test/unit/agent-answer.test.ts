/**
 * The agent answers tunnel streams from event listeners and callbacks, where
 * a throw ends the process. A stream can be closed before it is destroyed
 * (here: closed by us; on the wire, a clean close with unread data), and
 * respond() throws on it: replyStatus must leave such a stream alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { replyStatus } from '../../agent/forward/forward.js';

test('replyStatus leaves a closed, not yet destroyed stream alone', async () => {
  const server = http2.createServer();
  const seen = new Promise<{ closed: boolean; destroyed: boolean; threw: unknown }>((resolve) =>
    server.on('stream', (stream) => {
      stream.on('error', () => undefined);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      const state = { closed: stream.closed, destroyed: stream.destroyed };
      let threw: unknown;
      try {
        replyStatus(stream, 403, 'Forbidden', 'refused');
      } catch (err) {
        threw = err;
      }
      resolve({ ...state, threw });
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client.on('error', () => undefined);
  try {
    client.request({ ':path': '/' }).on('error', () => undefined);
    const r = await seen;
    assert.deepEqual(
      { closed: r.closed, destroyed: r.destroyed },
      { closed: true, destroyed: false },
    );
    assert.equal(r.threw, undefined);
  } finally {
    client.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
