/**
 * Noticing a silently dead tunnel (issue #17, item 5), with real HTTP/2
 * sessions in one process: the "agent" is an HTTP/2 server behind a relay
 * that can freeze (it stops passing bytes, as a SIGSTOPped agent or a
 * partitioned network would, without closing the connection).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import { TunnelRegistry, type Tunnel } from '../../proxy/tunnel/registry.js';
import { TunnelDeadError, TunnelHealth } from '../../proxy/tunnel/health.js';

interface Rig {
  tunnel: Tunnel;
  freeze(): void;
  close(): Promise<void>;
}

/** An HTTP/2 server answering `/slow` after `slowMs`, reached through a freezable relay. */
async function rig(agentId: string, slowMs = 0): Promise<Rig> {
  const server = http2.createServer((req, res) => {
    setTimeout(() => res.end('ok'), req.url === '/slow' ? slowMs : 0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  let frozen = false;
  const held: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const relay = net.createServer((client) => {
    const up = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    sockets.add(client).add(up);
    client.on('data', (b) => (frozen ? held.push(b) : up.write(b)));
    up.on('data', (b) => (frozen ? held.push(b) : client.write(b)));
    client.on('error', () => undefined);
    up.on('error', () => undefined);
    client.on('close', () => up.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(relay.address() as net.AddressInfo).port}`);
  session.on('error', () => undefined);
  await new Promise((r) => session.once('connect', r));
  const tunnel: Tunnel = {
    id: `t-${agentId}-${Math.random()}`,
    cluster: 'dev',
    agentId,
    agentVersion: 'test',
    certSerial: '1',
    connectedAt: new Date(),
    session,
    active: 0,
  };
  return {
    tunnel,
    freeze: () => (frozen = true),
    close: async () => {
      session.destroy();
      for (const s of sockets) s.destroy();
      relay.close();
      server.close();
      await new Promise((r) => setImmediate(r));
    },
  };
}

function get(t: Tunnel, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = t.session.request({ ':path': path });
    let body = '';
    s.on('data', (c: Buffer) => (body += c.toString()));
    s.on('end', () => resolve(body));
    s.on('error', reject);
  });
}

test('a frozen tunnel is retired within the probe timeout; its waiting stream fails with the reason', async () => {
  const registry = new TunnelRegistry();
  const a = await rig('agent-1');
  registry.add(a.tunnel);
  const health = new TunnelHealth(registry, { probeAfterMs: 100, timeoutMs: 300 });
  assert.equal(await health.probe(a.tunnel), true, 'alive while not frozen');
  await new Promise((r) => setTimeout(r, 300)); // past the freshness of that answer
  a.freeze();
  const waiting = get(a.tunnel, '/');
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(await health.suspect(a.tunnel), false);
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `noticed after ${Math.round(ms)} ms`);
  assert.equal(registry.pick('dev'), undefined, 'retired from the registry');
  assert.ok(health.isDead(a.tunnel));
  await assert.rejects(waiting, (err: Error) => err instanceof TunnelDeadError);
  await a.close();
});

test('a live tunnel whose answer is slow is never retired (a slow LIST, a quiet watch)', async () => {
  const registry = new TunnelRegistry();
  const a = await rig('agent-1', 1500);
  registry.add(a.tunnel);
  const health = new TunnelHealth(registry, { probeAfterMs: 100, timeoutMs: 300 });
  const slow = get(a.tunnel, '/slow');
  const probing = setInterval(() => void health.suspect(a.tunnel), 100);
  assert.equal(await slow, 'ok');
  clearInterval(probing);
  assert.equal(health.isDead(a.tunnel), false);
  assert.equal(registry.pick('dev'), a.tunnel);
  await a.close();
});

test("suspecting one tunnel probes the same agent's others, not another agent's", async () => {
  const registry = new TunnelRegistry();
  const a1 = await rig('agent-1');
  const a2 = await rig('agent-1');
  const b = await rig('agent-2');
  for (const r of [a1, a2, b]) registry.add(r.tunnel);
  const health = new TunnelHealth(registry, { probeAfterMs: 100, timeoutMs: 300 });
  a1.freeze();
  a2.freeze();
  assert.equal(await health.suspect(a1.tunnel), false);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(health.isDead(a2.tunnel), 'the sibling was probed with it');
  assert.equal(health.isDead(b.tunnel), false);
  assert.equal(registry.pick('dev'), b.tunnel);
  for (const r of [a1, a2, b]) await r.close();
});
