/**
 * The agent's JIT account manager against a real kube-apiserver, where the
 * races are: a grant revocation pushed while a request is preparing the same
 * user's account, and an account deleted behind the agent's back. A request
 * must then either get a working token or a clear KgError, never an internal
 * error (an rbac e2e run once saw 500s here for eight seconds).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { kubeConfigFor } from '../../agent/kube-client.js';
import { JitManager } from '../../agent/jit/jit-manager.js';
import { createLogger } from '../../common/log.js';
import { isKgError } from '../../common/errors.js';
import { identityKey } from '../../common/identity-key.js';
import type { TunnelGrant } from '../../common/tunnel-protocol.js';

const NS = 'kubegate-system';
const ROLE = 'view@0001';
const grants: TunnelGrant[] = [{ role: ROLE, namespaces: [] }];

let cluster: TestCluster;
let core: k8s.CoreV1Api;
let jit: JitManager;

describe('JIT accounts under races (real apiserver)', { timeout: 180_000 }, () => {
  before(async () => {
    cluster = await startCluster();
    const tokenFile = join(cluster.dir, 'agent-token');
    writeFileSync(tokenFile, cluster.token);
    const kc = kubeConfigFor({ server: cluster.server, caFile: cluster.caFile, tokenFile });
    core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    jit = new JitManager({
      core,
      rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
      namespace: NS,
      idleMs: 600_000,
      tokenSeconds: 600,
      log: createLogger({ name: 'jit-test', level: 'silent' }),
    });
    jit.setRoles({ [ROLE]: [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }] });
  });
  after(async () => {
    await cluster?.stop();
  });

  test('a revocation racing a request never surfaces as an internal error', async () => {
    const raw: string[] = [];
    let ok = 0;
    for (let i = 0; i < 25; i++) {
      const user = `racer-${i % 5}`;
      const results = await Promise.allSettled([
        jit.credentialFor(user, [], grants),
        // The proxy pushes an empty grant list when a binding ends.
        new Promise((r) => setTimeout(r, i % 3)).then(() =>
          jit.applyUpdate({ user, groups: [], grants: [] }),
        ),
        jit.credentialFor(user, [], grants),
      ]);
      for (const r of [results[0], results[2]]) {
        if (r.status === 'fulfilled') {
          assert.match(r.value.token, /^ey/, 'a token, not an empty credential');
          ok++;
        } else if (!isKgError(r.reason)) raw.push(String(r.reason));
      }
    }
    assert.deepEqual(raw, [], 'every failure is a KgError with a status and a message');
    assert.ok(ok > 0, `some requests got a token (${ok} of 50)`);
  });

  test('an account deleted behind the agent is rebuilt by the next request that needs a token', async () => {
    const user = 'vanishing';
    const first = await jit.credentialFor(user, [], grants);
    assert.match(first.token, /^ey/);
    const account = first.username.split(':').pop()!;
    await core.deleteNamespacedServiceAccount({ name: account, namespace: NS });
    // Make the next request need a fresh token, as it would when the cached one ages out.
    (jit as unknown as { users: Map<string, { tokenRefreshAt: number }> }).users.get(
      identityKey('user', user),
    )!.tokenRefreshAt = 0;
    const again = await jit.credentialFor(user, [], grants);
    assert.match(again.token, /^ey/);
    const sa = await core.readNamespacedServiceAccount({ name: account, namespace: NS });
    assert.equal(sa.metadata?.name, account, 'the account exists again');
  });

  test('an account in use is never idle, however rarely last use is written', async () => {
    const idleMs = 2_000;
    const kc = kubeConfigFor({
      server: cluster.server,
      caFile: cluster.caFile,
      tokenFile: join(cluster.dir, 'agent-token'),
    });
    const busy = new JitManager({
      core,
      rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
      namespace: NS,
      idleMs,
      tokenSeconds: 600,
      log: createLogger({ name: 'jit-test', level: 'silent' }),
    });
    busy.setRoles({ [ROLE]: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] });
    const user = 'steady';
    const { username } = await busy.credentialFor(user, [], grants);
    const account = username.split(':').pop()!;
    // Used every 300 ms for three idle periods, with the idle sweep running all along.
    const until = Date.now() + 3 * idleMs;
    while (Date.now() < until) {
      await busy.credentialFor(user, [], grants);
      await busy.cleanup();
      const sa = await core.readNamespacedServiceAccount({ name: account, namespace: NS }).then(
        () => true,
        () => false,
      );
      assert.ok(sa, 'the account of a user making requests is never swept as idle');
      await new Promise((r) => setTimeout(r, 300));
    }
    // Then left alone past the idle time: swept.
    await new Promise((r) => setTimeout(r, idleMs + 500));
    await busy.cleanup();
    const gone = await core.readNamespacedServiceAccount({ name: account, namespace: NS }).then(
      () => false,
      () => true,
    );
    assert.ok(gone, 'an idle account is deleted');
  });
});
