/**
 * Request bodies of unknown length (HTTP/1.1 chunked, HTTP/2 without content-length) are
 * counted as they arrive: one byte over the 3 MiB limit is a Kubernetes Status 413 from
 * kubegate, audited, and nothing of the request crosses the tunnel — the agent never even
 * sees its headers, so a user whose first request it is gets no just-in-time account on the
 * cluster. A body of unknown length within the limit still reaches the apiserver whole.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { until } from '../support/http.js';

const LIMIT = 3 * 1024 * 1024;
const NS = 'limits';

let stack: Stack;
let ca: string;
let origin: string;

interface Answer {
  status: number;
  auditId: string;
  body: string;
}

function tokenOf(kubeconfig: string): string {
  return /token: (kg_\S+)/.exec(readFileSync(kubeconfig, 'utf8'))![1]!;
}

/** A JSON ConfigMap of about `size` bytes (padding in one value). */
function configMap(name: string, size: number): Buffer {
  const shell = JSON.stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: NS },
    data: { pad: '' },
  });
  return Buffer.from(shell.replace('"pad":""', `"pad":"${'x'.repeat(size - shell.length)}"`));
}

/** Send `body` in 64 KiB pieces with no declared length, honouring back-pressure. */
function pump(w: NodeJS.WritableStream & { destroyed?: boolean }, body: Buffer): void {
  let at = 0;
  const more = () => {
    while (at < body.length && !w.destroyed) {
      const piece = body.subarray(at, at + 64 * 1024);
      at += piece.length;
      if (!w.write(piece)) return void w.once('drain', more);
    }
    w.end();
  };
  more();
}

function postChunkedH1(path: string, token: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const u = new URL(origin);
    const req = https.request(
      {
        host: u.hostname,
        port: u.port,
        path,
        method: 'POST',
        ca,
        agent: false,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'transfer-encoding': 'chunked',
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            auditId: String(res.headers['audit-id']),
            body: text,
          }),
        );
      },
    );
    req.on('error', reject);
    pump(req, body);
  });
}

function postH2(path: string, token: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(origin, { ca });
    session.on('error', reject);
    const req = session.request({
      ':method': 'POST',
      ':path': path,
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
    });
    req.on('response', (h) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        session.close();
        resolve({ status: Number(h[':status']), auditId: String(h['audit-id']), body: text });
      });
    });
    req.on('error', reject);
    pump(req, body);
  });
}

/** The kubegate-managed ServiceAccounts on the cluster (one per user that got through). */
async function jitAccounts(): Promise<string[]> {
  const out = await kubectlOk(
    [
      ...['get', 'serviceaccounts', '-n', 'kubegate-system'],
      ...['-l', 'app.kubernetes.io/managed-by=kubegate', '-o', 'name'],
    ],
    { kubeconfig: stack.cluster.kubeconfig },
  );
  return out.split('\n').filter(Boolean).sort();
}

async function auditComplete(auditId: string): Promise<Record<string, unknown>> {
  let row: { event: Record<string, unknown> } | undefined;
  await until(
    async () => {
      [row] = await stack.sql<{ event: Record<string, unknown> }>(
        `SELECT event FROM audit_events WHERE audit_id = $1::uuid AND stage = 'ResponseComplete'`,
        [auditId],
      );
      return row !== undefined;
    },
    20_000,
    `audit event ${auditId}`,
  );
  return row!.event;
}

describe('request bodies of unknown length: 413 before the tunnel', { timeout: 300_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, {
      groups: ['uploaders'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: [NS],
    });
    const cfg = await stack.kubeconfig('first-timer', ['uploaders']);
    ca = Buffer.from(
      /certificate-authority-data: (\S+)/.exec(readFileSync(cfg, 'utf8'))![1]!,
      'base64',
    ).toString();
    origin = stack.publicUrl;
  });
  after(async () => {
    await stack?.stop();
  });

  test('one byte over the limit, chunked (HTTP/1.1) and unsized (HTTP/2): 413 Status, audited, nothing crossed', async () => {
    const path = `/k8s/dev/api/v1/namespaces/${NS}/configmaps`;
    const before = await jitAccounts();
    for (const [name, post, user] of [
      ['http/1.1 chunked', postChunkedH1, 'chunky'],
      ['h2 unsized', postH2, 'streamer'],
    ] as const) {
      // Each user's very first request on the cluster: if any of it reached the agent, the
      // agent would make that user's just-in-time ServiceAccount.
      const token = tokenOf(await stack.kubeconfig(user, ['uploaders']));
      const r = await post(path, token, configMap('too-big', LIMIT + 1));
      assert.equal(r.status, 413, `${name}: ${r.body}`);
      const status = JSON.parse(r.body) as Record<string, unknown>;
      assert.equal(status.kind, 'Status');
      assert.equal(status.code, 413);
      assert.equal(status.reason, 'RequestEntityTooLarge');
      assert.match(String(status.message), /larger than the limit of 3145728 bytes/);

      const ev = await auditComplete(r.auditId);
      assert.equal((ev.user as { username: string }).username, user);
      assert.equal((ev.responseStatus as { code: number }).code, 413, name);
      assert.equal(ev.verb, 'create');
      assert.equal(ev.impersonatedUser, undefined, `${name}: it never ran on the cluster`);
    }
    assert.deepEqual(await jitAccounts(), before, 'no JIT account: the agent saw nothing');
    const left = await kubectlOk(['get', 'configmaps', '-n', NS, '-o', 'name'], {
      kubeconfig: stack.cluster.kubeconfig,
    });
    assert.doesNotMatch(left, /too-big/);
  });

  test('a body of unknown length within the limit reaches the apiserver whole', async () => {
    const token = tokenOf(await stack.kubeconfig('fits', ['uploaders']));
    const path = `/k8s/dev/api/v1/namespaces/${NS}/configmaps`;
    for (const [name, post] of [
      ['h1', postChunkedH1],
      ['h2', postH2],
    ] as const) {
      // ConfigMaps are capped at 1 MiB by the apiserver; 900 KiB is well within both limits.
      const body = configMap(`fits-${name}`, 900 * 1024);
      const r = await post(path, token, body);
      assert.equal(r.status, 201, `${name}: ${r.body.slice(0, 500)}`);
      const pad = await kubectlOk(
        ['get', 'configmap', `fits-${name}`, '-n', NS, '-o', 'jsonpath={.data.pad}'],
        { kubeconfig: stack.cluster.kubeconfig },
      );
      const sent = (JSON.parse(body.toString()) as { data: { pad: string } }).data.pad;
      assert.equal(pad.length, sent.length, `${name}: the whole body arrived`);
    }
  });
});
