/**
 * widenTunnelWindow (common/tunnel-protocol.ts) runs in a session event
 * listener: a throw there ends the process (agent or proxy). Its peer can be
 * killed between the settings exchange and the listener, so the listener
 * must leave a destroyed session alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tunnelSessionWindow, widenTunnelWindow } from '../../common/tunnel-protocol.js';

test('the window is widened on a live session and a destroyed one is left alone', async () => {
  const server = http2.createServer();
  const sessions: http2.ServerHttp2Session[] = [];
  server.on('session', (s) => {
    widenTunnelWindow(s);
    sessions.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  client.on('error', () => undefined);
  try {
    await new Promise<void>((r) => client.once('remoteSettings', () => r()));
    const session = sessions[0]!;
    // Settings exchanged: the server's session now takes the wide window.
    await new Promise<void>((r) =>
      session.state.localWindowSize === tunnelSessionWindow
        ? r()
        : session.once('localSettings', () => setImmediate(r)),
    );
    assert.equal(session.state.localWindowSize, tunnelSessionWindow);
    // A settings acknowledgement seen after the session was destroyed.
    session.destroy();
    assert.doesNotThrow(() => session.emit('localSettings', {}));
  } finally {
    client.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
