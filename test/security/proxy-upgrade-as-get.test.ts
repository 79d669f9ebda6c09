/**
 * Attack: reach a kubelet (or a pod, or a service) through a `*\/proxy`
 * subresource with a connection upgrade while holding only `get`. A custom
 * role with `resources: ["*"]`, `verbs: ["get"]` must not open a stream to
 * `nodes/proxy` (the kubelet's exec lives behind it): an upgrade on a proxy
 * subresource is authorized as `create`. The same role may still `get`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type Stack } from '../support/stack.js';
import { grant } from '../support/grants.js';
import { credsOf, rawRequest, type Creds } from '../support/creds.js';

let stack: Stack;
let reader: Creds;
let creator: Creds;

const upgradeHeaders = {
  connection: 'Upgrade',
  upgrade: 'SPDY/3.1',
  'x-stream-protocol-version': 'v4.channel.k8s.io',
};

describe('upgrades on proxy subresources need create', { timeout: 300_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    await stack.sql(`INSERT INTO roles (name, rules) VALUES ($1, $2)`, [
      'get-anything',
      JSON.stringify([{ apiGroups: ['*'], resources: ['*'], verbs: ['get'] }]),
    ]);
    await stack.sql(`INSERT INTO roles (name, rules) VALUES ($1, $2)`, [
      'proxy-create',
      JSON.stringify([
        {
          apiGroups: [''],
          resources: ['nodes/proxy', 'pods/proxy', 'services/proxy'],
          verbs: ['get', 'create'],
        },
      ]),
    ]);
    await grant(stack, { groups: ['readers'], role: 'get-anything', clusters: ['dev'] });
    await grant(stack, { groups: ['proxiers'], role: 'proxy-create', clusters: ['dev'] });
    reader = credsOf(await stack.kubeconfig('rita', ['readers']));
    creator = credsOf(await stack.kubeconfig('carl', ['proxiers']));
  });
  after(() => stack?.stop());

  for (const path of [
    '/k8s/dev/api/v1/nodes/node-1/proxy/exec/default/web/c?command=id',
    '/k8s/dev/api/v1/namespaces/default/pods/web/proxy/',
    '/k8s/dev/api/v1/namespaces/default/services/web:80/proxy/',
  ]) {
    test(`get on * does not upgrade ${path.split('?')[0]}`, async () => {
      const r = await rawRequest(stack.publicUrl, reader.ca, {
        path,
        token: reader.token,
        headers: upgradeHeaders,
      });
      assert.equal(r.status, 403, r.body);
      const status = JSON.parse(r.body) as { reason: string; message: string };
      assert.equal(status.reason, 'Forbidden');
      assert.match(
        status.message,
        /cannot create resource "(nodes|pods|services)\/proxy" .* on cluster "dev"/,
      );
    });
  }

  test('the same role still gets through a proxy subresource without an upgrade', async () => {
    const r = await rawRequest(stack.publicUrl, reader.ca, {
      path: '/k8s/dev/api/v1/nodes/node-1/proxy/healthz',
      token: reader.token,
    });
    // Past kubegate: whatever the cluster says (no such node here), never kubegate's 403.
    assert.ok(!(r.status === 403 && /on cluster "dev"/.test(r.body)), `${r.status} ${r.body}`);
  });

  test('a role with create on nodes/proxy passes kubegate with an upgrade', async () => {
    const r = await rawRequest(stack.publicUrl, creator.ca, {
      path: '/k8s/dev/api/v1/nodes/node-1/proxy/exec/default/web/c?command=id',
      token: creator.token,
      headers: upgradeHeaders,
    });
    assert.ok(!(r.status === 403 && /on cluster "dev"/.test(r.body)), `${r.status} ${r.body}`);
  });
});
