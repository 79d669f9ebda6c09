/**
 * The agent's control channel (issue #17 item 3) and kubegate's response
 * header namespace (item 8), the pure parts: which tunnel streams the agent
 * takes as control messages, which user paths the proxy's route stage
 * refuses, and which upstream response headers the agent drops.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { classifyStream, controlTable } from '../../agent/tunnel/control.js';
import { droppedResponseHeader } from '../../agent/forward/forward.js';
import { isReservedKubePath, refuseReservedPath } from '../../proxy/route/kube-path.js';
import { routeKubeRequest } from '../../proxy/route/kube-path.js';
import { KgError } from '../../common/errors.js';
import {
  grantsPath,
  hdrControl,
  hdrIdentity,
  helloPath,
  isKubegateHeader,
  jitAccountsPath,
} from '../../common/tunnel-protocol.js';

const marked = { [hdrControl]: '1' };

test('control routes: marked, no identity, right method → control', () => {
  for (const [path, route] of controlTable) {
    assert.deepEqual(classifyStream({ ':path': path, ':method': route.method, ...marked }), {
      kind: 'control',
      path,
      route,
    });
  }
});

test('a user request to a control path (no marker) is refused, never forwarded', () => {
  for (const path of [
    jitAccountsPath,
    grantsPath,
    helloPath,
    '/.kubegate/v1/jit-accounts?x=1',
    '/.KUBEGATE/v1/grants',
    '/%2Ekubegate/v1/grants',
    '/%2ekubegate/v1/grants',
    '//.kubegate/v1/grants',
    '/.kubegate',
    '/.kubegate/',
  ]) {
    const c = classifyStream({ ':path': path, ':method': 'POST', [hdrIdentity]: 'x' });
    assert.equal(c.kind, 'refuse', path);
    assert.equal(c.kind === 'refuse' && c.status, 404, path);
  }
});

test('a marked stream carrying a user identity is refused (403)', () => {
  const c = classifyStream({
    ':path': grantsPath,
    ':method': 'POST',
    ...marked,
    [hdrIdentity]: 'eyJ1c2VyIjoiYm9iIn0',
  });
  assert.equal(c.kind === 'refuse' && c.status, 403);
});

test('each control route takes one method: the wrong one is a 405', () => {
  assert.equal(controlTable.get(grantsPath)?.method, 'POST');
  assert.equal(controlTable.get(jitAccountsPath)?.method, 'GET');
  for (const [path, { method }] of controlTable) {
    for (const m of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH']) {
      if (m === method) continue;
      const c = classifyStream({ ':path': path, ':method': m, ...marked });
      assert.equal(c.kind === 'refuse' && c.status, 405, `${m} ${path}`);
    }
  }
});

test('unknown control paths, and a marker with another value, are refused', () => {
  const c = classifyStream({ ':path': '/.kubegate/v1/other', ':method': 'GET', ...marked });
  assert.equal(c.kind === 'refuse' && c.status, 404);
  const d = classifyStream({ ':path': helloPath, ':method': 'GET', [hdrControl]: 'yes' });
  assert.equal(d.kind, 'refuse');
});

test('property: an unmarked stream is a control message never', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        fc.string(),
        fc.constantFrom(...controlTable.keys()).map((p) => p + ''),
        fc.string().map((s) => `/.kubegate/${s}`),
      ),
      fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
      (path, method) => classifyStream({ ':path': path, ':method': method }).kind !== 'control',
    ),
  );
});

test('ordinary apiserver paths stay requests', () => {
  for (const path of ['/api/v1/pods', '/apis', '/.well-known/openid-configuration', '/version'])
    assert.deepEqual(classifyStream({ ':path': path, ':method': 'GET' }), { kind: 'request' });
});

test('route stage: reserved prefixes are a 404 Status in every spelling', () => {
  for (const target of [
    '/k8s/dev/.kubegate/v1/jit-accounts',
    '/k8s/dev/.kubegate/v1/grants',
    '/k8s/dev/.kubegate',
    '/k8s/dev/.kubegate/',
    '/k8s/dev/.KubeGate/v1/grants',
    '/k8s/dev/%2Ekubegate/v1/grants',
    '/k8s/dev/%2ekUbEgAtE/v1/grants?x=1',
    '/k8s/dev/.kg-cancel',
    '/k8s/dev/%2Ekg-cancel',
  ]) {
    const route = routeKubeRequest(target);
    assert.ok(isReservedKubePath(route.kubePath), target);
    assert.throws(
      () => refuseReservedPath(route.kubePath),
      (e: unknown) => e instanceof KgError && e.status === 404 && e.reason === 'NotFound',
      target,
    );
  }
  // The normalising spellings never even route (400 before this stage).
  for (const target of [
    '/k8s/dev//.kubegate/v1/grants',
    '/k8s/dev/./.kubegate/v1/grants',
    '/k8s/dev/api/../.kubegate/v1/grants',
    '/k8s/dev/%2F.kubegate/v1/grants',
    '/k8s/dev/api%2F..%2F.kubegate/v1/grants',
  ])
    assert.throws(() => routeKubeRequest(target), /not allowed/, target);
});

test('route stage: apiserver paths are not reserved', () => {
  for (const target of [
    '/k8s/dev/api/v1/namespaces',
    '/k8s/dev/.well-known/openid-configuration',
    '/k8s/dev/api/v1/namespaces/x/pods/y/proxy/.kubegate/v1/grants',
    '/k8s/dev/',
  ])
    assert.equal(isReservedKubePath(routeKubeRequest(target).kubePath), false, target);
});

test('upstream response headers: every kg- name is dropped, in any case', () => {
  for (const name of [
    'kg-impersonated-as',
    'KG-Impersonated-As',
    'kg-upgrade-status',
    'Kg-Upgrade',
    'kg-agent-error',
    'kg-',
  ]) {
    assert.ok(isKubegateHeader(name), name);
    assert.ok(droppedResponseHeader(name), name);
  }
  for (const name of ['content-type', 'audit-id', 'kgx', 'x-kg-foo', 'warning'])
    assert.equal(droppedResponseHeader(name), false, name);
  assert.ok(droppedResponseHeader('Transfer-Encoding'));
});

test('property: isKubegateHeader is exactly "starts with kg- ignoring ASCII case"', () => {
  fc.assert(fc.property(fc.string(), (s) => assert.equal(isKubegateHeader(s), /^kg-/i.test(s))));
  fc.assert(
    fc.property(fc.string(), (s) => isKubegateHeader(`kg-${s}`) && isKubegateHeader(`KG-${s}`)),
  );
});
