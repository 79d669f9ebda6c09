/**
 * The pure part of closing tunnels on revocation (proxy/tunnel/revocation.ts,
 * registry.ts): which tunnels each signal closes. The real thing, on two
 * replicas with real agents: test/security/revoked-agent.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClientHttp2Session } from 'node:http2';
import { createLogger } from '../../common/log.js';
import { TunnelRegistry, type Tunnel } from '../../proxy/tunnel/registry.js';
import { closeTunnelsOnRevocation } from '../../proxy/tunnel/revocation.js';
import { certKey } from '../../proxy/clusters/cluster-store.js';
import type { PolicyState } from '../../proxy/authz/policy-store.js';

const log = createLogger({ name: 't', level: 'silent' });

function tunnel(cluster: string, serial: string): Tunnel & { destroyed: () => boolean } {
  let destroyed = false;
  const session = {
    get destroyed() {
      return destroyed;
    },
    closed: false,
    destroy: () => (destroyed = true),
  } as unknown as ClientHttp2Session;
  return {
    id: `${cluster}-${serial}`,
    cluster,
    agentId: 'a',
    agentVersion: 'v',
    certSerial: serial,
    connectedAt: new Date(),
    session,
    active: 0,
    destroyed: () => destroyed,
  };
}

function world(allowed: string[] = []) {
  const registry = new TunnelRegistry();
  let revoked: (c: string) => void = () => undefined;
  let changed: (s: PolicyState) => void = () => undefined;
  const asked: string[][] = [];
  closeTunnelsOnRevocation({
    policy: { onAgentRevoked: (fn) => (revoked = fn), onChange: (fn) => (changed = fn) },
    registry,
    clusters: {
      tunnelCertsAllowed: (certs) => {
        asked.push(certs.map((c) => certKey(c.cluster, c.serial)));
        return Promise.resolve(new Set(allowed));
      },
    },
    log,
  });
  const state = (clusters: [string, boolean][]): PolicyState =>
    ({
      snapshot: {} as PolicyState['snapshot'],
      clusters: new Map(clusters.map(([name, disabled]) => [name, { name, labels: {}, disabled }])),
      loadedAt: new Date(),
    }) as PolicyState;
  return {
    registry,
    revoked: (c: string) => revoked(c),
    changed: (s: PolicyState) => changed(s),
    state,
    asked,
  };
}

test('a revoked agent: every tunnel of that cluster closes, no other', () => {
  const w = world();
  const a1 = tunnel('a', '1');
  const a2 = tunnel('a', '2');
  const b1 = tunnel('b', '1');
  for (const t of [a1, a2, b1]) w.registry.add(t);
  const before = performance.now();
  w.revoked('a');
  assert.equal(a1.destroyed(), true);
  assert.equal(a2.destroyed(), true);
  assert.equal(b1.destroyed(), false);
  // A tunnel of `a` still being accepted when this ran notices it (listener.ts).
  assert.equal(w.registry.closedSince('a', before), true);
  assert.equal(w.registry.closedSince('b', before), false);
  assert.equal(w.registry.closedSince('a', performance.now() + 1), false);
});

test('a disabled or deleted cluster closes its tunnels; an enabled one keeps them', async () => {
  const w = world([certKey('keep', '1')]);
  const keep = tunnel('keep', '1');
  const off = tunnel('off', '1');
  const gone = tunnel('gone', '1');
  for (const t of [keep, off, gone]) w.registry.add(t);
  w.changed(
    w.state([
      ['keep', false],
      ['off', true],
    ]),
  );
  assert.equal(keep.destroyed(), false);
  assert.equal(off.destroyed(), true);
  assert.equal(gone.destroyed(), true);
  await new Promise((r) => setTimeout(r, 10));
});

test('after a policy reload every open tunnel certificate is checked again; refused ones close', async () => {
  const w = world([certKey('a', 'ok')]);
  const ok = tunnel('a', 'ok');
  const bad = tunnel('a', 'revoked-while-disconnected');
  w.registry.add(ok);
  w.registry.add(bad);
  w.changed(w.state([['a', false]]));
  await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(w.asked, [[certKey('a', 'ok'), certKey('a', 'revoked-while-disconnected')]]);
  assert.equal(ok.destroyed(), false);
  assert.equal(bad.destroyed(), true);
});
