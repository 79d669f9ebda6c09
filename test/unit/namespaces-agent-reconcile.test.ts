/**
 * The namespaces message end to end over HTTP/2, with the apiserver faked:
 * the proxy's sendNamespaces, the agent's control table and the reconciler's
 * scheduling. Refused entries never reach the apiserver; one failing or hung
 * namespace never fails the others; at most four are worked on at once; the
 * answer comes within the deadline; an oversized body is refused unread; and
 * the proxy rejects a reply that is not one well-formed result per entry.
 * (What the reconciler does to a real apiserver: test/integration/namespaces-agent.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import {
  classifyStream,
  dispatchControl,
  type ControlContext,
} from '../../agent/tunnel/control.js';
import { NamespaceReconciler } from '../../agent/namespaces/reconcile.js';
import { namespacesBody } from '../../agent/namespaces/body.js';
import type { KubeCall, KubeRequest } from '../../agent/namespaces/kube-json.js';
import { sendNamespaces } from '../../proxy/namespaces/agent-call.js';
import { createLogger } from '../../common/log.js';
import { namespacesPath, type NamespacesRequest } from '../../common/tunnel-protocol.js';

const log = createLogger({ name: 'ns-test', level: 'silent' });

/** An empty cluster: namespaces missing, creates succeed, lists empty. `hook` may delay or fail. */
function fakeKube(hook?: (r: KubeRequest) => Promise<void> | void): {
  kube: KubeCall;
  calls: KubeRequest[];
  maxInFlight: () => number;
} {
  const calls: KubeRequest[] = [];
  let inFlight = 0;
  let max = 0;
  const kube: KubeCall = async (r) => {
    calls.push(r);
    inFlight++;
    max = Math.max(max, inFlight);
    try {
      await hook?.(r);
      if (r.method === 'GET' && /\/namespaces\/[^/]+$/.test(r.path))
        return { status: 404, body: { kind: 'Status', message: 'not found' } };
      if (r.method === 'GET') return { status: 200, body: { items: [] } };
      if (r.method === 'POST') return { status: 201, body: r.body };
      return { status: 200, body: r.body };
    } finally {
      inFlight--;
    }
  };
  return { kube, calls, maxInFlight: () => max };
}

const entry = (name: string) => ({
  name,
  labels: {},
  annotations: {},
  objects: [
    {
      apiVersion: 'v1' as const,
      kind: 'ResourceQuota' as const,
      metadata: { name: 'kubegate-quota' },
      spec: { hard: { pods: '1' } },
    },
  ],
});

async function withAgent(
  ctx: ControlContext,
  fn: (tunnel: { session: http2.ClientHttp2Session }) => Promise<void>,
): Promise<void> {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const c = classifyStream(headers);
    assert.equal(c.kind, 'control');
    if (c.kind === 'control') dispatchControl(stream, headers, c, ctx, log);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    await fn({ session });
  } finally {
    session.destroy();
    await new Promise((r) => server.close(r));
  }
}

const ctxWith = (namespaces?: NamespaceReconciler): ControlContext => ({
  hello: () => undefined,
  goaway: () => undefined,
  jit: undefined,
  namespaces,
});

test('over the tunnel: one result per entry in order; refused ones never reach the apiserver', async () => {
  const fake = fakeKube();
  const r = new NamespaceReconciler({ kube: fake.kube, agentNamespace: 'agent-home', log });
  await withAgent(ctxWith(r), async (tunnel) => {
    const req = {
      namespaces: [
        entry('team-a'),
        entry('kube-system'),
        entry('agent-home'),
        { ...entry('team-b'), objects: [{ ...entry('x').objects[0]!, kind: 'Secret' }] },
        entry('team-c'),
      ],
    } as NamespacesRequest;
    const reply = await sendNamespaces(tunnel, req, 5000);
    assert.deepEqual(
      reply.results.map((x) => [x.name, x.state, x.namespaceChange]),
      [
        ['team-a', 'ready', 'created'],
        ['kube-system', 'error', 'unchanged'],
        ['agent-home', 'error', 'unchanged'],
        ['team-b', 'error', 'unchanged'],
        ['team-c', 'ready', 'created'],
      ],
    );
    assert.deepEqual(reply.results[0]!.changes, [
      { kind: 'ResourceQuota', name: 'kubegate-quota', change: 'created' },
    ]);
    assert.match(reply.results[2]!.error!, /namespace "agent-home" is reserved/);
    const touched = new Set(
      fake.calls.map(
        (c) =>
          /\/namespaces\/([^/?]+)/.exec(c.path)?.[1] ??
          (c.body as { metadata: { name: string } }).metadata.name,
      ),
    );
    assert.ok(touched.has('team-a') && touched.has('team-c'));
    for (const name of ['kube-system', 'agent-home', 'team-b'])
      assert.ok(!touched.has(name), `${name} never reached the apiserver`);
    // Creates say who wrote them and ask the apiserver to refuse unknown fields.
    const create = fake.calls.find((c) => c.method === 'POST')!;
    assert.match(create.path, /fieldManager=kubegate&fieldValidation=Strict/);
  });
});

test('one failing namespace never fails the others', async () => {
  const fake = fakeKube((req) => {
    if (req.path.includes('/namespaces/broken')) throw new Error('connection reset');
  });
  const r = new NamespaceReconciler({ kube: fake.kube, agentNamespace: 'agent-home', log });
  const reply = await r.reconcile(
    namespacesBody({ namespaces: [entry('a1'), entry('broken'), entry('a2')] }),
  );
  assert.deepEqual(
    reply.results.map((x) => x.state),
    ['ready', 'error', 'ready'],
  );
  assert.match(reply.results[1]!.error!, /namespace "broken" could not be reconciled: .*reset/);
});

test('at most four namespaces at once; a hung one is answered at the deadline', async () => {
  let release!: () => void;
  const hung = new Promise<void>((res) => (release = res));
  const fake = fakeKube(async (req) => {
    if (req.path.includes('/namespaces/hung')) await hung;
    else await new Promise((res) => setTimeout(res, 5));
  });
  const r = new NamespaceReconciler({
    kube: fake.kube,
    agentNamespace: 'agent-home',
    log,
    deadlineMs: 400,
  });
  const names = ['hung', ...Array.from({ length: 20 }, (_, i) => `ns-${i}`)];
  const t0 = Date.now();
  const reply = await r.reconcile(namespacesBody({ namespaces: names.map(entry) }));
  const took = Date.now() - t0;
  release();
  assert.ok(took < 1000, `answered within the deadline (${took} ms)`);
  assert.ok(fake.maxInFlight() <= 4, `at most 4 apiserver calls at once (${fake.maxInFlight()})`);
  assert.equal(reply.results.length, names.length);
  assert.equal(reply.results[0]!.state, 'error');
  assert.match(reply.results[0]!.error!, /was not finished within 0.4 s/);
  assert.ok(
    reply.results.slice(1).every((x) => x.state === 'ready'),
    'the others are reconciled meanwhile',
  );
});

test('a namespace not reached before the deadline is an error saying so', async () => {
  const fake = fakeKube(() => new Promise((res) => setTimeout(res, 60)));
  const r = new NamespaceReconciler({
    kube: fake.kube,
    agentNamespace: 'agent-home',
    log,
    deadlineMs: 200,
    concurrency: 1,
  });
  const reply = await r.reconcile(
    namespacesBody({ namespaces: ['n1', 'n2', 'n3', 'n4'].map(entry) }),
  );
  assert.equal(reply.results.length, 4);
  assert.match(reply.results[0]!.error ?? '', /not finished within 0.2 s/);
  assert.match(
    reply.results[3]!.error ?? '',
    /not reached within 0.2 s; it is reconciled on the next pass/,
  );
});

test('over the tunnel: a malformed body is a 400, an oversized one a 413, no reconciler a 500', async () => {
  const fake = fakeKube();
  const r = new NamespaceReconciler({ kube: fake.kube, agentNamespace: 'agent-home', log });
  await withAgent(ctxWith(r), async (tunnel) => {
    await assert.rejects(
      sendNamespaces(tunnel, { namespaces: 'all' } as unknown as NamespacesRequest, 5000),
      /agent answered 400 .*namespaces must be a list/,
    );
    const huge = {
      namespaces: [{ ...entry('team-a'), annotations: { x: 'a'.repeat(17 * 1024 * 1024) } }],
    };
    await assert.rejects(sendNamespaces(tunnel, huge, 10_000), /agent answered 413/);
    assert.equal(fake.calls.length, 0, 'nothing reached the apiserver');
  });
  await withAgent(ctxWith(undefined), async (tunnel) => {
    await assert.rejects(
      sendNamespaces(tunnel, { namespaces: [entry('team-a')] }, 5000),
      /agent answered 500 .*does not manage namespaces/,
    );
  });
});

test('the proxy rejects a reply that is not one well-formed result per entry, in order', async () => {
  const replies: unknown[] = [
    { results: [] },
    { results: [{ name: 'b', state: 'ready', namespaceChange: 'created', changes: [] }] },
    { results: [{ name: 'a', state: 'fine', namespaceChange: 'created', changes: [] }] },
    { results: [{ name: 'a', state: 'ready', namespaceChange: 'created', changes: [{}] }] },
    {
      results: [
        {
          name: 'a',
          state: 'ready',
          namespaceChange: 'created',
          changes: [{ kind: 'ResourceQuota', name: 'q', change: 'exploded' }],
        },
      ],
    },
    'not an object',
  ];
  let i = 0;
  const server = http2.createServer();
  server.on('stream', (stream) => {
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/json' });
      stream.end(JSON.stringify(replies[i++]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    for (let k = 0; k < replies.length; k++)
      await assert.rejects(
        sendNamespaces({ session }, { namespaces: [entry('a')] }, 5000),
        /does not hold one result per namespace/,
        JSON.stringify(replies[k]),
      );
  } finally {
    session.destroy();
    await new Promise((r) => server.close(r));
  }
  assert.equal(namespacesPath, '/.kubegate/v1/namespaces');
});
