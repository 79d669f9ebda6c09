/**
 * controlRequest (proxy/tunnel/control-request.ts): the proxy's control
 * requests to an agent carry the control marker, read the whole answer, and
 * never wait past their deadline on an agent that stopped answering.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { controlRequest } from '../../proxy/tunnel/control-request.js';
import { hdrControl, hdrControlValue } from '../../common/tunnel-protocol.js';

async function withAgent(
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
  fn: (session: http2.ClientHttp2Session) => Promise<void>,
): Promise<void> {
  const server = http2.createServer();
  server.on('stream', onStream);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    await fn(session);
  } finally {
    session.destroy();
    await new Promise((r) => server.close(r));
  }
}

test('sends the control marker and the body, and reads the whole answer', async () => {
  await withAgent(
    (stream, headers) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(
          JSON.stringify({ marker: headers[hdrControl], got: Buffer.concat(chunks).toString() }),
        );
      });
    },
    async (session) => {
      const a = await controlRequest(
        session,
        { ':method': 'POST', ':path': '/.kg-test' },
        { body: '{"x":1}', timeoutMs: 5000, what: 'POST /.kg-test' },
      );
      assert.equal(a.status, 200);
      assert.deepEqual(JSON.parse(a.body.toString()), { marker: hdrControlValue, got: '{"x":1}' });
    },
  );
});

test('an agent that never answers: rejected at the deadline, naming what was asked', async () => {
  await withAgent(
    () => undefined, // holds the stream open, never responds
    async (session) => {
      const t0 = Date.now();
      await assert.rejects(
        controlRequest(
          session,
          { ':method': 'GET', ':path': '/.kg-hello' },
          {
            timeoutMs: 200,
            what: 'hello',
          },
        ),
        /agent did not answer hello within 0.2 s/,
      );
      const waited = Date.now() - t0;
      assert.ok(waited >= 190, `rejected after ${waited} ms, before its deadline`);
    },
  );
});
