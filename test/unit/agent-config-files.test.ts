/**
 * The agent's configuration files and control message bodies are checked
 * field by field (issue #19 item 5): the JIT ceiling file, read at start,
 * and the bodies of the control messages that carry roles and grants.
 * Malformed or hostile content is refused with a message naming the file (or
 * message) and the field; it is never cast and used.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as http2 from 'node:http2';
import { once } from 'node:events';
import { KgError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import {
  goawayPath,
  grantsPath,
  hdrControl,
  hdrControlValue,
  helloDeclinedStatus,
  helloPath,
  jitAccountsPath,
  jitUsersPath,
  namespacesPath,
  rolesPath,
  type GrantUpdate,
  type TunnelRoles,
} from '../../common/tunnel-protocol.js';
import { loadCeiling } from '../../agent/jit/ceiling.js';
import { readCaFile, readConfigFile } from '../../agent/config.js';
import { parseRules } from '../../agent/jit/rules.js';
import {
  classifyStream,
  controlTable,
  dispatchControl,
  type ControlContext,
} from '../../agent/tunnel/control.js';
import type { JitManager } from '../../agent/jit/jit-manager.js';

const dir = mkdtempSync(join(tmpdir(), 'kg-ceiling-'));
let n = 0;
function file(text: string): string {
  const f = join(dir, `ceiling-${n++}.json`);
  writeFileSync(f, text);
  return f;
}

function refused(f: string, field: RegExp) {
  assert.throws(
    () => loadCeiling(f),
    (e: unknown) =>
      e instanceof KgError &&
      e.code === 'KG_ERR_CONFIG' &&
      e.message.includes(f) &&
      e.message.includes('KUBEGATE_JIT_CEILING_FILE') &&
      field.test(e.message),
    `${f}: ${field}`,
  );
}

test('ceiling file: a valid list of rules loads, keeping only PolicyRule fields', () => {
  const f = file(
    JSON.stringify([
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'], extra: { x: 1 } },
      { nonResourceURLs: ['/healthz'], verbs: ['get'] },
      { apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['a'], verbs: ['*'] },
    ]),
  );
  assert.deepEqual(loadCeiling(f), [
    { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
    { nonResourceURLs: ['/healthz'], verbs: ['get'] },
    { apiGroups: ['apps'], resources: ['deployments'], resourceNames: ['a'], verbs: ['*'] },
  ]);
  assert.deepEqual(loadCeiling(file('[]')), []);
});

test('ceiling file: missing, not JSON, or the wrong shape is refused naming the file and the field', () => {
  refused(join(dir, 'absent.json'), /cannot be read/);
  refused(file(''), /is not JSON/);
  refused(file('{"verbs":["get"]'), /is not JSON/);
  refused(file('{"verbs":["get"]}'), /must be a JSON list of rules/);
  refused(file('null'), /must be a JSON list of rules/);
  refused(file('"*"'), /must be a JSON list of rules/);
  refused(file('[null]'), /\[0\] must be an object/);
  refused(file('[["get"]]'), /\[0\] must be an object/);
  refused(file('[{"resources":["pods"]}]'), /\[0\]\.verbs must be a list of strings/);
  refused(file('[{"verbs":"*"}]'), /\[0\]\.verbs must be a list of strings/);
  refused(file('[{"verbs":["get"]},{"verbs":["get",7]}]'), /\[1\]\.verbs \[1\] must be a string/);
  refused(file('[{"verbs":["get"],"apiGroups":""}]'), /\[0\]\.apiGroups must be a list/);
  refused(file('[{"verbs":["get"],"resources":[{"a":1}]}]'), /\[0\]\.resources \[0\]/);
  refused(file('[{"verbs":["get"],"resourceNames":{}}]'), /\[0\]\.resourceNames/);
  refused(file('[{"verbs":["get"],"nonResourceURLs":[null]}]'), /\[0\]\.nonResourceURLs/);
});

test('ceiling file: hostile content (deep nesting, huge lists, prototype keys) is refused or harmless', () => {
  const deep = '['.repeat(50_000) + ']'.repeat(50_000);
  refused(file(deep), /\[0\] must be an object|is not JSON/);
  refused(file(`[{"verbs":${'['.repeat(10_000)}${']'.repeat(10_000)}}]`), /\[0\]\.verbs/);
  // __proto__ in JSON is an own key after JSON.parse; it is dropped, never merged.
  const proto = loadCeiling(file('[{"verbs":["get"],"__proto__":{"polluted":true}}]'));
  assert.deepEqual(proto, [{ verbs: ['get'] }]);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  const many = loadCeiling(
    file(JSON.stringify(Array.from({ length: 5000 }, () => ({ verbs: ['get'] })))),
  );
  assert.equal(many.length, 5000);
});

test('parseRules names the first bad field and never throws', () => {
  for (const v of [
    undefined,
    1,
    'x',
    {},
    [1],
    [{}],
    [{ verbs: [1] }],
    [{ verbs: [], apiGroups: 1 }],
  ])
    assert.equal(typeof parseRules(v).problem, 'string', JSON.stringify(v));
  assert.deepEqual(parseRules([{ verbs: [] }]), { rules: [{ verbs: [] }] });
});

test('CA files must hold a PEM certificate; unreadable files name the variable and the file', () => {
  const pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
  assert.equal(readCaFile('proxyCaFile', file(pem)), pem);
  for (const [text, why] of [
    ['', /holds no PEM certificate/],
    ['{"not":"a cert"}', /holds no PEM certificate/],
    ['-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n', /holds no PEM certificate/],
  ] as const) {
    const f = file(text);
    assert.throws(
      () => readCaFile('proxyCaFile', f),
      (e: unknown) =>
        e instanceof KgError &&
        e.code === 'KG_ERR_CONFIG' &&
        e.message.includes('KUBEGATE_PROXY_CA_FILE') &&
        e.message.includes(f) &&
        why.test(e.message),
    );
  }
  const absent = join(dir, 'no-such-token');
  assert.throws(
    () => readConfigFile('bootstrapTokenFile', absent),
    (e: unknown) =>
      e instanceof KgError &&
      e.message.includes('KUBEGATE_BOOTSTRAP_TOKEN_FILE') &&
      e.message.includes(absent) &&
      /cannot be read/.test(e.message),
  );
});

// --- control messages: the table's body checks, through the dispatcher on a real HTTP/2 stream ---

interface Seen {
  roles: TunnelRoles[];
  updates: GrantUpdate[];
}

function fakeJit(seen: Seen): JitManager {
  return {
    setRoles: (r: TunnelRoles) => void seen.roles.push(r),
    applyUpdate: (u: GrantUpdate) => {
      seen.updates.push(u);
      return Promise.resolve();
    },
    knownUsers: () => [{ user: 'ann', groups: [], kind: 'user' as const }],
    describe: () => Promise.resolve({ mode: 'jit', accounts: [] }),
  } as unknown as JitManager;
}

async function withAgent(
  ctx: ControlContext,
  fn: (
    send: (
      method: string,
      path: string,
      body?: string,
    ) => Promise<{ status: number; body: string }>,
  ) => Promise<void>,
): Promise<void> {
  const log = createLogger({ name: 'test', level: 'silent' });
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const c = classifyStream(headers);
    assert.equal(c.kind, 'control');
    if (c.kind === 'control') dispatchControl(stream, headers, c, ctx, log);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const client = http2.connect(`http://127.0.0.1:${port}`);
  const send = (method: string, path: string, body?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = client.request(
        { ':method': method, ':path': path, [hdrControl]: hdrControlValue },
        { endStream: body === undefined },
      );
      let status = 0;
      const chunks: Buffer[] = [];
      req.on('response', (h) => (status = Number(h[':status'])));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('utf8') }));
      req.on('error', reject);
      if (body !== undefined) req.end(body);
    });
  try {
    await fn(send);
  } finally {
    client.close();
    server.close();
  }
}

test('control table: roles and grants bodies are checked; a bad one is a 400 naming the field and reaches no handler', async () => {
  const seen: Seen = { roles: [], updates: [] };
  const ctx: ControlContext = {
    hello: () => undefined,
    goaway: () => undefined,
    jit: fakeJit(seen),
  };
  await withAgent(ctx, async (send) => {
    const good = await send('POST', rolesPath, JSON.stringify({ 'view@1': [{ verbs: ['get'] }] }));
    assert.equal(good.status, 200);
    assert.deepEqual(JSON.parse(good.body), { ok: true });
    assert.deepEqual(seen.roles, [{ 'view@1': [{ verbs: ['get'] }] }]);
    // A role named __proto__ stays an own key; nothing's prototype changes.
    const proto = await send('POST', rolesPath, '{"__proto__":[{"verbs":["get"]}]}');
    assert.equal(proto.status, 200);
    const last = seen.roles.pop()!;
    assert.equal(Object.getPrototypeOf(last), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(last, '__proto__')?.value, [
      { verbs: ['get'] },
    ]);

    const update = {
      user: 'ann',
      groups: ['g'],
      kind: 'robot',
      grants: [{ role: 'view@1', namespaces: ['a'] }],
    };
    const applied = await send('POST', grantsPath, JSON.stringify([update]));
    assert.equal(applied.status, 200);
    assert.deepEqual(JSON.parse(applied.body), { ok: true, applied: 1 });
    assert.deepEqual(seen.updates, [update]);

    for (const [path, body, field] of [
      [rolesPath, 'not json', /not JSON/],
      [rolesPath, '[]', /roles must be an object/],
      [rolesPath, '{"view@1":{"verbs":["get"]}}', /roles\["view@1"\] must be a JSON list/],
      [rolesPath, '{"view@1":[{"verbs":"get"}]}', /roles\["view@1"\] \[0\]\.verbs/],
      [grantsPath, '{}', /grant updates must be a list/],
      [grantsPath, '[{"groups":[],"grants":[]}]', /\[0\]\.user must be a string/],
      [grantsPath, '[{"user":"a","groups":"g","grants":[]}]', /\[0\]\.groups/],
      [grantsPath, '[{"user":"a","groups":[],"kind":"admin","grants":[]}]', /\[0\]\.kind/],
      [grantsPath, '[{"user":"a","groups":[]}]', /\[0\]\.grants must be a list/],
      [grantsPath, '[{"user":"a","groups":[],"grants":[{"role":1}]}]', /\[0\]\.grants\[0\]\.role/],
      [
        grantsPath,
        '[{"user":"a","groups":[],"grants":[{"role":"r","namespaces":[1]}]}]',
        /\[0\]\.grants\[0\]\.namespaces/,
      ],
      [grantsPath, '['.repeat(30_000) + ']'.repeat(30_000), /\[0\] must be an object/],
    ] as const) {
      const r = await send('POST', path, body);
      assert.equal(r.status, 400, `${path} ${body.slice(0, 60)}`);
      const status = JSON.parse(r.body) as { reason: string; message: string };
      assert.equal(status.reason, 'BadRequest');
      assert.match(status.message, field);
    }
    assert.equal(seen.roles.length, 1, 'no bad roles body reached the JIT manager');
    assert.equal(seen.updates.length, 1, 'no bad grants body reached the JIT manager');
  });
});

test('control table: every route answers through the one dispatcher (impersonation mode)', async () => {
  let goaways = 0;
  let declined = true;
  const ctx: ControlContext = {
    hello: () => (declined ? undefined : { cluster: 'c', agentVersion: 'v', agentId: 'id' }),
    goaway: () => void goaways++,
    jit: undefined,
  };
  assert.deepEqual(
    [...controlTable.keys()].sort(),
    [
      goawayPath,
      grantsPath,
      helloPath,
      jitAccountsPath,
      jitUsersPath,
      namespacesPath,
      rolesPath,
    ].sort(),
  );
  await withAgent(ctx, async (send) => {
    assert.equal((await send('GET', helloPath)).status, helloDeclinedStatus);
    declined = false;
    const hello = await send('GET', helloPath);
    assert.equal(hello.status, 200);
    assert.deepEqual(JSON.parse(hello.body), { cluster: 'c', agentVersion: 'v', agentId: 'id' });
    assert.equal((await send('POST', goawayPath)).status, 200);
    assert.equal(goaways, 1);
    assert.deepEqual(JSON.parse((await send('GET', jitUsersPath)).body), []);
    assert.deepEqual(JSON.parse((await send('GET', jitAccountsPath)).body), {
      mode: 'impersonate',
      accounts: [],
    });
    assert.deepEqual(JSON.parse((await send('POST', rolesPath, '{}')).body), { ok: true });
    assert.deepEqual(JSON.parse((await send('POST', grantsPath, '[]')).body), { ok: true });
    // An agent without a namespace keeper says so rather than pretending.
    const ns = await send('POST', namespacesPath, '{"namespaces":[]}');
    assert.equal(ns.status, 500, ns.body);
    assert.match(ns.body, /does not manage namespaces/);
  });
});
