/**
 * endStaleGrants (proxy/open-requests.ts): what ends an open request, and
 * with which reason — a revoked token, a policy change that no longer allows
 * it, a disabled cluster, an expired token (by the timer), no policy known.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpenRequests, endStaleGrants, type OpenRequest } from '../../proxy/open-requests.js';
import type { PolicyState } from '../../proxy/authz/policy-store.js';
import type { EndReason } from '../../proxy/forward/end-status.js';
import type { RequestInfo } from '../../proxy/authz/request-info.js';
import { builtinRoles } from '../../proxy/authz/builtin-roles.js';
import type { Binding } from '../../proxy/authz/types.js';

const getPods: RequestInfo = {
  isResourceRequest: true,
  path: '/api/v1/namespaces/app/pods',
  verb: 'list',
  apiPrefix: 'api',
  apiGroup: '',
  apiVersion: 'v1',
  namespace: 'app',
  resource: 'pods',
  subresource: '',
  name: '',
  parts: [],
};

function state(bindings: Binding[], disabled = false): PolicyState {
  return {
    snapshot: { roles: new Map(builtinRoles.map((r) => [r.name, r])), bindings },
    clusters: new Map([['dev', { name: 'dev', labels: {}, disabled }]]),
    loadedAt: new Date(),
  };
}
const viewDev: Binding = {
  id: 'b1',
  subjects: [{ kind: 'User', name: 'ann' }],
  role: 'view',
  clusters: { names: ['dev'] },
  namespaces: [],
};

/** A policy store stand-in: the three calls endStaleGrants makes, driven by the test. */
function fakePolicy(initial: PolicyState | undefined) {
  let current = initial;
  const revoked: ((hash: string) => void)[] = [];
  const changed: ((s: PolicyState) => void)[] = [];
  return {
    store: {
      lastKnown: () => current,
      onTokenRevoked: (fn: (hash: string) => void) => void revoked.push(fn),
      onChange: (fn: (s: PolicyState) => void) => void changed.push(fn),
    },
    revoke: (hash: string) => revoked.forEach((fn) => fn(hash)),
    change: (s: PolicyState) => {
      current = s;
      changed.forEach((fn) => fn(s));
    },
  };
}

function openRequest(
  open: OpenRequests,
  user: string,
  hash: string,
  expiresAt = new Date(Date.now() + 3_600_000),
) {
  const ended: EndReason[] = [];
  const r: OpenRequest = {
    cluster: 'dev',
    identity: { tokenId: hash, tokenHash: hash, user, kind: 'user', groups: [], expiresAt },
    info: getPods,
    end: (reason) => ended.push(reason),
  };
  open.add(r);
  return ended;
}

/** The database as revocationReason sees it: no row, so "token revoked". */
const pool = { query: async () => ({ rows: [] }) } as never;

test('a revoked token ends its own requests, with the token-revoked reason, and no others', async () => {
  const open = new OpenRequests();
  const p = fakePolicy(state([viewDev]));
  const evicted: string[] = [];
  const stop = endStaleGrants({ open, policy: p.store, evictToken: (h) => evicted.push(h), pool });
  try {
    const mine = openRequest(open, 'ann', 'h1');
    const other = openRequest(open, 'ann', 'h2');
    p.revoke('h1');
    assert.deepEqual(evicted, ['h1']);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(mine.length, 1);
    assert.match(mine[0]!.message, /token revoked/);
    assert.equal(other.length, 0);
    assert.equal(open.size, 1);
  } finally {
    stop();
  }
});

test('a policy change ends what it no longer allows, and a disabled cluster ends everything on it', () => {
  const open = new OpenRequests();
  const p = fakePolicy(state([viewDev]));
  const stop = endStaleGrants({ open, policy: p.store, evictToken: () => undefined, pool });
  try {
    const ann = openRequest(open, 'ann', 'a');
    const bob = openRequest(open, 'bob', 'b'); // never allowed: ends on the first change
    p.change(state([viewDev]));
    assert.equal(ann.length, 0, 'still allowed');
    assert.equal(bob.length, 1);
    assert.match(bob[0]!.message, /access removed: kubegate no longer allows "bob" to list pods/);
    p.change(state([viewDev], true));
    assert.equal(ann.length, 1);
    assert.match(ann[0]!.message, /access removed/);
    assert.equal(open.size, 0);
  } finally {
    stop();
  }
});

test('a user deactivated in the policy before their token revocation arrives: the sweep says so', () => {
  const open = new OpenRequests();
  const p = fakePolicy(state([viewDev]));
  const stop = endStaleGrants({ open, policy: p.store, evictToken: () => undefined, pool });
  try {
    const ann = openRequest(open, 'ann', 'a');
    const deactivated = state([viewDev]);
    deactivated.snapshot.deactivatedUsers = new Set(['ann']);
    p.change(deactivated);
    assert.equal(ann.length, 1);
    assert.match(ann[0]!.message, /^user deactivated: .*user "ann" was deactivated/);
  } finally {
    stop();
  }
});

test('an expired token ends by the timer, with the token-expired reason; stop() ends the timer', async () => {
  const open = new OpenRequests();
  const p = fakePolicy(state([viewDev]));
  const stop = endStaleGrants({
    open,
    policy: p.store,
    evictToken: () => undefined,
    pool,
    everyMs: 10,
  });
  const soon = openRequest(open, 'ann', 'a', new Date(Date.now() + 30));
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(soon.length, 1);
  assert.match(soon[0]!.message, /token expired/);
  stop();
  const later = openRequest(open, 'ann', 'b', new Date(Date.now() + 30));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(later.length, 0, 'no sweep after stop()');
});

test('with no policy known, a sweep allows nothing', () => {
  const open = new OpenRequests();
  const p = fakePolicy(undefined);
  const stop = endStaleGrants({ open, policy: p.store, evictToken: () => undefined, pool });
  try {
    const ann = openRequest(open, 'ann', 'a');
    p.change(undefined as unknown as PolicyState); // a listener fired while nothing is known
    assert.equal(ann.length, 1);
  } finally {
    stop();
  }
});
