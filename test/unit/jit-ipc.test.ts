/**
 * JIT accounts across agent workers (agent/jit/jit-ipc.ts): a worker's
 * JitOverIpc against the primary's serveJit over an in-memory channel, the
 * primary's manager a fake that counts what it was asked. A credential is
 * reused per subject and grant digest for cacheMs and then asked again (so
 * the primary sees the subject in use), concurrent first requests share one
 * question, refusals arrive as the same KgError, and a grant update or a
 * refused token drops what the worker kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Worker } from 'node:cluster';
import { KgError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { JitOverIpc, cacheMs, serveJit, type Channel } from '../../agent/jit/jit-ipc.js';
import type { JitManager } from '../../agent/jit/jit-manager.js';
import type { GrantUpdate, TunnelGrant } from '../../common/tunnel-protocol.js';

/** The primary's JitManager, faked: answers and counts. */
function fakeManager() {
  const asked: string[] = [];
  let n = 0;
  const m = {
    asked,
    refuse: false,
    async credentialFor(user: string, _g: string[], grants: TunnelGrant[]) {
      asked.push(`credentialFor ${user} ${grants.map((g) => g.role).join(',')}`);
      await new Promise((r) => setTimeout(r, 5));
      if (m.refuse)
        throw new KgError('KG_ERR_FORBIDDEN', `grants beyond the ceiling for ${user}`, {
          retryAfter: 7,
        });
      return { token: `token-${++n}`, username: `system:serviceaccount:kg:${user}` };
    },
    async applyUpdate(u: GrantUpdate) {
      asked.push(`applyUpdate ${u.user}`);
    },
    invalidate(kind: string, user: string) {
      asked.push(`invalidate ${kind} ${user}`);
    },
    setRoles() {
      asked.push('setRoles');
    },
    knownUsers: () => [{ user: 'ann', groups: [], kind: 'user' as const }],
    describe: async () => ({ mode: 'jit' as const, accounts: [] }),
  };
  return m;
}

/** A worker and its primary joined by two event emitters, as cluster IPC joins them (async). */
function joined(now: () => number) {
  const manager = fakeManager();
  const toWorker = new EventEmitter();
  const worker = Object.assign(new EventEmitter(), {
    isConnected: () => true,
    send: (m: unknown) => setImmediate(() => toWorker.emit('message', structuredClone(m))),
  });
  const channel: Channel = {
    send: (m) => setImmediate(() => worker.emit('message', structuredClone(m))),
    onMessage: (fn) => toWorker.on('message', fn),
  };
  serveJit(
    manager as unknown as JitManager,
    worker as unknown as Worker,
    createLogger({ name: 't', level: 'silent' }),
  );
  return { manager, jit: new JitOverIpc(channel, now) };
}

const view: TunnelGrant[] = [{ role: 'view', namespaces: [] }];
const edit: TunnelGrant[] = [{ role: 'edit', namespaces: ['a'] }];

test('a credential is kept per subject and grants for cacheMs, then asked for again', async () => {
  let t = 1000;
  const { manager, jit } = joined(() => t);
  const a = await jit.credentialFor('ann', [], view);
  assert.equal((await jit.credentialFor('ann', [], view)).token, a.token);
  assert.equal(manager.asked.length, 1);
  // Other grants: the primary reconciles first, so it is asked.
  const b = await jit.credentialFor('ann', [], edit);
  assert.notEqual(b.token, a.token);
  // Another subject, and a robot of the same name, are their own.
  await jit.credentialFor('bob', [], view);
  await jit.credentialFor('ann', [], view, 'robot');
  assert.equal(manager.asked.length, 4);
  t += cacheMs + 1;
  const again = await jit.credentialFor('ann', [], view);
  assert.notEqual(again.token, a.token);
  assert.equal(manager.asked.length, 5);
});

test('first requests at once share one question', async () => {
  const { manager, jit } = joined(() => 0);
  const all = await Promise.all(Array.from({ length: 8 }, () => jit.credentialFor('cy', [], view)));
  assert.equal(new Set(all.map((c) => c.token)).size, 1);
  assert.equal(manager.asked.length, 1);
});

test("a refusal arrives as the primary's KgError, and is not kept", async () => {
  const { manager, jit } = joined(() => 0);
  manager.refuse = true;
  await assert.rejects(jit.credentialFor('dee', [], view), (err: unknown) => {
    assert.ok(err instanceof KgError);
    assert.equal(err.code, 'KG_ERR_FORBIDDEN');
    assert.equal(err.status, 403);
    assert.equal(err.retryAfter, 7);
    assert.match(err.message, /beyond the ceiling for dee/);
    return true;
  });
  manager.refuse = false;
  assert.ok((await jit.credentialFor('dee', [], view)).token);
  assert.equal(manager.asked.length, 2);
});

test('a grant update and a refused token drop what the worker kept', async () => {
  const { manager, jit } = joined(() => 0);
  const first = await jit.credentialFor('eve', [], view);
  await jit.applyUpdate({ user: 'eve', groups: [], grants: edit });
  const second = await jit.credentialFor('eve', [], view);
  assert.notEqual(second.token, first.token);
  jit.invalidate('user', 'eve');
  const third = await jit.credentialFor('eve', [], view);
  assert.notEqual(third.token, second.token);
  assert.deepEqual(
    manager.asked.filter((a) => !a.startsWith('credentialFor')),
    ['applyUpdate eve', 'invalidate user eve'],
  );
});

test('roles, known users and the account report go to the primary', async () => {
  const { manager, jit } = joined(() => 0);
  jit.setRoles({});
  assert.deepEqual(await jit.knownUsers(), [{ user: 'ann', groups: [], kind: 'user' }]);
  assert.deepEqual(await jit.describe(), { mode: 'jit', accounts: [] });
  assert.ok(manager.asked.includes('setRoles'));
});
