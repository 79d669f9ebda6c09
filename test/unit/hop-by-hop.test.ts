/**
 * One hop-by-hop list for the proxy and the agent. The agent's own copy
 * lacked Proxy-Authenticate, Proxy-Authorization, HTTP2-Settings and Host on
 * the response side: the proxy dropped the first two and Host again, but an
 * upstream HTTP2-Settings made the agent's HTTP/2 respond() throw. Both sides
 * now drop the same set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { hopByHopHeaders } from '../../common/hop-by-hop.js';
import { isHopByHopResponseHeader } from '../../proxy/forward/headers.js';
import { droppedResponseHeader } from '../../agent/forward/forward.js';

test('the hop-by-hop list', () => {
  assert.deepEqual([...hopByHopHeaders].sort(), [
    'connection',
    'host',
    'http2-settings',
    'keep-alive',
    'proxy-authenticate',
    'proxy-authorization',
    'proxy-connection',
    'te',
    'trailer',
    'transfer-encoding',
    'upgrade',
  ]);
});

test('the proxy and the agent drop every hop-by-hop response header, and the same ones', () => {
  for (const h of hopByHopHeaders) {
    assert.ok(isHopByHopResponseHeader(h), `proxy relays ${h}`);
    assert.ok(droppedResponseHeader(h), `agent relays ${h}`);
  }
  // Where the agent's copy fell short.
  for (const h of ['proxy-authenticate', 'proxy-authorization', 'http2-settings', 'host'])
    assert.ok(droppedResponseHeader(h), h);
  for (const h of ['content-type', 'audit-id', 'warning', 'www-authenticate', 'cache-control']) {
    assert.ok(!isHopByHopResponseHeader(h), h);
    assert.ok(!droppedResponseHeader(h), h);
  }
});

test('Node will not send connection-specific headers on an HTTP/2 stream (why the agent must drop them)', async () => {
  const refused = new Set<string>();
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const h = String(headers['x-try']);
    try {
      stream.respond({ ':status': 200, [h]: 'x' });
    } catch {
      refused.add(h);
      stream.respond({ ':status': 200 });
    }
    stream.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    for (const h of [...hopByHopHeaders, 'content-type', 'warning', 'www-authenticate']) {
      await new Promise<void>((resolve, reject) => {
        const req = client.request({ ':path': '/', 'x-try': h });
        req.on('end', resolve);
        req.on('error', reject);
        req.resume();
        req.end();
      });
    }
  } finally {
    client.close();
    await new Promise((resolve) => server.close(resolve));
  }
  // Whatever Node refuses is on our list; on Node 24 that is seven of the eleven.
  for (const h of refused) assert.ok(hopByHopHeaders.has(h), h);
  for (const h of ['connection', 'upgrade', 'http2-settings', 'transfer-encoding'])
    assert.ok(refused.has(h), `${h} was sent`);
});
