/**
 * Connection upgrades through kubegate against the real apiserver: only
 * websocket/SPDY upgrades on exec/attach/portforward/proxy are carried; a
 * refused upgrade is answered whole and the connection closed
 * (CVE-2018-1002105 replay); an unauthorized exec is a 403 before any
 * upgrade happens.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';

let stack: Stack;
let token: string;
let viewerToken: string;
let ca: string;
let port: number;

/** Send raw bytes over TLS to the proxy; collect everything until the server closes (or timeout). */
function raw(payload: string, waitMs = 4000): Promise<{ text: string; closedByServer: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['http/1.1'] });
    let text = '';
    let closedByServer = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedByServer });
    }, waitMs);
    socket.on('data', (b: Buffer) => (text += b.toString('latin1')));
    socket.on('end', () => {
      closedByServer = true;
      clearTimeout(timer);
      resolve({ text, closedByServer });
    });
    socket.on('error', reject);
    socket.on('secureConnect', () => socket.write(payload));
  });
}

const upgradeRequest = (path: string, tok: string, upgrade = 'websocket') =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nConnection: Upgrade\r\nUpgrade: ${upgrade}\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n`;

describe('connection upgrades', { timeout: 300_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    await kubectlOk(['run', 'pending', '--image=busybox', '-n', 'default'], {
      kubeconfig: stack.cluster.kubeconfig,
    });
    await grant(stack, {
      users: ['olga'],
      role: 'admin',
      clusters: ['dev'],
      namespaces: ['default'],
    });
    await grant(stack, { users: ['vic'], role: 'view', clusters: ['dev'] });
    const cfg = await stack.kubeconfig('olga');
    token = /token: (kg_\S+)/.exec(readFileSync(cfg, 'utf8'))![1]!;
    viewerToken = /token: (kg_\S+)/.exec(readFileSync(await stack.kubeconfig('vic'), 'utf8'))![1]!;
    ca = Buffer.from(
      /certificate-authority-data: (\S+)/.exec(readFileSync(cfg, 'utf8'))![1]!,
      'base64',
    ).toString();
    port = Number(new URL(stack.publicUrl).port);
  });
  after(async () => {
    await stack?.stop();
  });

  test('CVE-2018-1002105 replay: after a refused upgrade, further bytes on the socket never run', async () => {
    const exec = '/k8s/dev/api/v1/namespaces/default/pods/pending/exec?command=true&stdout=true';
    // The smuggled second request would delete a ConfigMap if anything parsed and forwarded it.
    await kubectlOk(['create', 'configmap', 'canary', '-n', 'default'], {
      kubeconfig: stack.cluster.kubeconfig,
    });
    const smuggled = `DELETE /k8s/dev/api/v1/namespaces/default/configmaps/canary HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`;
    const r = await raw(upgradeRequest(exec, token) + smuggled);
    const responses = r.text.match(/^HTTP\/1\.1 \d{3}/gm) ?? [];
    assert.equal(responses.length, 1, `exactly one response, got:\n${r.text}`);
    assert.match(r.text, /^HTTP\/1\.1 400 /);
    assert.match(r.text, /does not have a host assigned/);
    assert.ok(r.closedByServer, 'the proxy closes the connection after a refused upgrade');
    await kubectlOk(['get', 'configmap', 'canary', '-n', 'default'], {
      kubeconfig: stack.cluster.kubeconfig,
    });
  });

  test('only websocket and SPDY/3.1, only on streaming subresources', async () => {
    const h2c = await raw(
      upgradeRequest(
        '/k8s/dev/api/v1/namespaces/default/pods/pending/exec?command=true',
        token,
        'h2c',
      ),
    );
    assert.match(h2c.text, /^HTTP\/1\.1 400 /);
    assert.match(h2c.text, /only websocket and SPDY\/3.1/);
    const list = await raw(upgradeRequest('/k8s/dev/api/v1/namespaces/default/configmaps', token));
    assert.match(list.text, /^HTTP\/1\.1 400 /);
    assert.match(list.text, /only accepted for pods\/exec/);
    const spdy = await raw(
      upgradeRequest(
        '/k8s/dev/api/v1/namespaces/default/pods/pending/portforward?ports=80',
        token,
        'SPDY/3.1',
      ),
    );
    assert.match(
      spdy.text,
      /^HTTP\/1\.1 400 /,
      'carried to the apiserver, which refuses: the pod has no node',
    );
    assert.match(spdy.text, /host assigned|no node|not have a host/);
  });

  test('an exec the user may not do is a 403 before any upgrade, from kubectl too', async () => {
    const r = await raw(
      upgradeRequest(
        '/k8s/dev/api/v1/namespaces/default/pods/pending/exec?command=true',
        viewerToken,
      ),
    );
    assert.match(r.text, /^HTTP\/1\.1 403 /);
    assert.match(r.text, /cannot create resource \\"pods\/exec\\"/);
    const k = await kubectl(['exec', 'pending', '--', 'true'], {
      kubeconfig: await stack.kubeconfig('vic'),
      timeoutMs: 30_000,
    });
    assert.notEqual(k.code, 0);
    assert.match(k.stderr, /forbidden/i);
  });

  test('kubectl exec reaches the apiserver through the tunnel (its refusal comes back intact)', async () => {
    const cfg = await stack.kubeconfig('olga');
    for (const env of [{}, { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' }]) {
      const k = await kubectl(['exec', 'pending', '--', 'true'], {
        kubeconfig: cfg,
        timeoutMs: 30_000,
        env,
      });
      assert.notEqual(k.code, 0);
      assert.match(
        k.stderr,
        /does not have a host assigned/,
        `${JSON.stringify(env)}: ${k.stderr}`,
      );
    }
  });
});
