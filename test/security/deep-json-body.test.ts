/**
 * Attack (issue 17, item 2): one request ends a replica. With an audit rule
 * at RequestResponse (as in docs/audit.md), a 40 KB JSON body nested 20,000
 * deep (`[[[[…]]]]`) sent by an ordinary user to a create RBAC allows once
 * ended the proxy process: redaction recursed over the body inside a
 * response listener, overflowed the stack, and nothing caught it.
 *
 * Real stack: the proxy keeps running and answering, and the request still
 * has its audit event, the body replaced by a marker saying why.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as https from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { freePort } from '../support/ports.js';

let stack: Stack;
let ca: string;
let token: string;
let metricsPort = 0;
let dir = '';

const depth = 20_000;
const marker = { 'kubegate.dev/omitted': 'body nested deeper than 100 levels' };

function post(
  path: string,
  body: string,
): Promise<{ status: number; auditId: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${stack.publicUrl}${path}`,
      {
        method: 'POST',
        ca,
        agent: false,
        timeout: 30_000,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            auditId: String(res.headers['audit-id'] ?? ''),
            body: text,
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

function alive(): void {
  const c = stack.proxy.child;
  assert.equal(c.exitCode, null, `proxy exited: ${stack.proxy.output().slice(-3000)}`);
  assert.equal(c.signalCode, null, `proxy killed: ${stack.proxy.output().slice(-3000)}`);
}

async function event(auditId: string) {
  let rows: { event: Record<string, unknown> }[] = [];
  await until(
    async () =>
      (rows = await stack.sql<{ event: Record<string, unknown> }>(
        `SELECT event FROM audit_events WHERE audit_id = $1 AND stage = 'ResponseComplete'`,
        [auditId],
      )).length === 1,
    15_000,
    `audit event ${auditId}`,
  );
  return rows[0]!.event;
}

describe('a deeply nested JSON body does not end a replica', { timeout: 300_000 }, () => {
  before(async () => {
    metricsPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'kg-deep-'));
    const policyFile = join(dir, 'audit-policy.yaml');
    // The example rule of docs/audit.md, widened to core resources: bodies are kept.
    writeFileSync(
      policyFile,
      'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n' +
        '  - level: RequestResponse\n    verbs: [create, update, patch, delete]\n' +
        '  - level: Metadata\n',
    );
    stack = await startStack({
      proxyEnv: {
        KUBEGATE_AUDIT_POLICY_FILE: policyFile,
        KUBEGATE_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await grant(stack, {
      users: ['mallory'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: ['default'],
    });
    token = /token: (kg_\S+)/.exec(readFileSync(await stack.kubeconfig('mallory'), 'utf8'))![1]!;
  });
  after(async () => {
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const bodies: [string, string][] = [
    ['arrays', '['.repeat(depth) + ']'.repeat(depth)],
    ['objects', '{"a":'.repeat(depth - 1) + '{}' + '}'.repeat(depth - 1)],
    [
      'inside a ConfigMap',
      `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"deep"},"data":${'['.repeat(depth)}${']'.repeat(depth)}}`,
    ],
  ];
  for (const [name, body] of bodies) {
    for (const resource of ['configmaps', 'secrets']) {
      test(`${name}, ${Math.round(body.length / 1024)} KB, ${depth} deep, to create ${resource}`, async () => {
        const r = await post(`/k8s/dev/api/v1/namespaces/default/${resource}`, body);
        // The apiserver refuses it (it is not a ConfigMap); what matters is who survives.
        assert.ok(r.status >= 400 && r.status < 500, `${r.status} ${r.body}`);
        assert.match(r.auditId, /^[0-9a-f-]{36}$/);
        // Give a dying process the moment it needs, then check it and ask it something.
        await new Promise((res) => setTimeout(res, 500));
        alive();
        const next = await httpGet(
          `${stack.publicUrl}/k8s/dev/api/v1/namespaces/default/configmaps`,
          {
            ca,
            token,
          },
        );
        assert.equal(next.status, 200, next.body);
        const e = await event(r.auditId);
        assert.equal(e.level, 'RequestResponse');
        assert.deepEqual(e.requestObject, marker, JSON.stringify(e).slice(0, 2000));
        assert.equal((e.user as { username: string }).username, 'mallory');
        alive();
      });
    }
  }

  test('the omitted bodies are counted, and nothing was logged as a crash', async () => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const line = text
      .split('\n')
      .find((l) => l.startsWith('kubegate_audit_capture_failures_total{reason="too_deep"}'));
    assert.ok(
      line && Number(line.split(' ').at(-1)) >= bodies.length * 2,
      line ?? text.slice(0, 500),
    );
    assert.doesNotMatch(stack.proxy.output(), /Maximum call stack size exceeded|uncaught/i);
    alive();
  });
});
