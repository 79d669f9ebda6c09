/**
 * The per-request recorder: the events it writes are valid audit.k8s.io/v1
 * Events (checked field by field, strictly for `toKubeEvent`), exactly one
 * ResponseComplete per request whatever order the response signals arrive
 * in, ResponseStarted for long-running requests only, the right decision and
 * reason for allowed, denied and rejected requests, exec's command and
 * container, bodies kept only at the policy's level, and strict mode's
 * record before the request is acted on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import fc from 'fast-check';
import { KgError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { newContext, type RequestContext } from '../../proxy/context.js';
import { routeKubeRequest } from '../../proxy/route/kube-path.js';
import { requestInfo } from '../../proxy/authz/request-info.js';
import { AuditRecorder, isLongRunning, type RecorderSink } from '../../proxy/audit/recorder.js';
import {
  extensionFields,
  microTime,
  timeOf,
  kubeEventFields,
  toKubeEvent,
  type AuditEvent,
} from '../../proxy/audit/event.js';
import { kubeEventProblems } from '../../proxy/audit/event-shape.js';
import { validatePolicy, type AuditPolicy } from '../../proxy/audit/policy.js';

const log = createLogger({ name: 'test', level: 'silent' });

class FakeRes extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  headers: Record<string, unknown> = {};
  getHeader(name: string): unknown {
    return this.headers[name];
  }
}

function ctxFor(
  method: string,
  target: string,
  opts: { user?: boolean; allowed?: boolean } = {},
): RequestContext {
  const ctx = newContext(method, target, '10.1.2.3', 'kubectl/v1.34.0', log);
  try {
    ctx.route = routeKubeRequest(target);
    ctx.info = requestInfo(method, ctx.route.kubePath, ctx.route.rawQuery);
  } catch {
    // a malformed path: the route stage would have refused it
  }
  if (opts.user !== false) {
    ctx.identity = {
      tokenId: 't1',
      tokenHash: 'h',
      user: 'alice',
      kind: 'user',
      groups: ['dev', 'sre'],
      expiresAt: new Date(Date.now() + 3_600_000),
    };
  }
  if (opts.allowed !== undefined) {
    ctx.decision = opts.allowed
      ? {
          allowed: true,
          reason: 'allowed by binding "b1" (role "view")',
          bindingId: 'b1',
          role: 'view',
        }
      : { allowed: false, reason: 'no binding allows it' };
  }
  return ctx;
}

function sink(policy?: AuditPolicy, intents?: AuditEvent[]) {
  const events: AuditEvent[] = [];
  const s: RecorderSink = {
    replica: 'replica-1',
    policy: () => policy ?? { rules: [{ level: 'Metadata' }] },
    emit: (e) => events.push(structuredClone(e)),
    ...(intents
      ? {
          intent: async (e: AuditEvent) => {
            intents.push(e);
          },
        }
      : {}),
  };
  return { s, events };
}

function assertValid(e: AuditEvent): void {
  assert.deepEqual(kubeEventProblems(e, true), [], JSON.stringify(e));
  assert.deepEqual(kubeEventProblems(toKubeEvent(e)), [], 'strict audit.k8s.io/v1 form');
  for (const k of Object.keys(e))
    assert.ok(
      (kubeEventFields as readonly string[]).includes(k) ||
        (extensionFields as readonly string[]).includes(k),
      k,
    );
}

test('an allowed get: one ResponseComplete with the audit.k8s.io/v1 fields', async () => {
  const ctx = ctxFor('GET', '/k8s/prod/api/v1/namespaces/team-a/pods/web', { allowed: true });
  const { s, events } = sink();
  const res = new FakeRes();
  const r = new AuditRecorder(ctx, s).watch(res);
  await r.admitted();
  r.responseStarted(
    200,
    {
      'content-type': 'application/json',
      'kg-impersonated-as': 'system:serviceaccount:kubegate-system:kg-alice',
    },
    'kg-impersonated-as',
  );
  r.responseChunk(Buffer.alloc(120));
  res.headersSent = true;
  res.emit('finish');
  res.emit('close');
  assert.equal(events.length, 1);
  const e = events[0]!;
  assertValid(e);
  assert.equal(e.stage, 'ResponseComplete');
  assert.equal(e.auditID, ctx.auditId);
  assert.equal(e.verb, 'get');
  assert.equal(e.requestURI, '/api/v1/namespaces/team-a/pods/web');
  assert.deepEqual(e.user, {
    username: 'alice',
    groups: ['dev', 'sre'],
    extra: { 'kubegate.dev/kind': ['user'] },
  });
  assert.deepEqual(e.impersonatedUser, {
    username: 'system:serviceaccount:kubegate-system:kg-alice',
  });
  assert.deepEqual(e.objectRef, {
    resource: 'pods',
    namespace: 'team-a',
    name: 'web',
    apiGroup: '',
    apiVersion: 'v1',
  });
  assert.deepEqual(e.responseStatus, { metadata: {}, code: 200, status: 'Success' });
  assert.deepEqual(e.sourceIPs, ['10.1.2.3']);
  assert.equal(e.cluster, 'prod');
  assert.equal(e.replica, 'replica-1');
  assert.equal(e.decision, 'allow');
  assert.equal(e.annotations!['authorization.k8s.io/decision'], 'allow');
  assert.equal(e.annotations!['kubegate.dev/role'], 'view');
  assert.equal(e.bytesOut, 120);
  assert.equal(e.level, 'Metadata');
  assert.equal(e.requestObject, undefined);
});

test('without kg-impersonated-as, the impersonated user is the user', async () => {
  const ctx = ctxFor('GET', '/k8s/prod/api/v1/pods', { allowed: true });
  const { s, events } = sink();
  const r = new AuditRecorder(ctx, s);
  await r.admitted();
  r.responseStarted(200, {}, 'kg-impersonated-as');
  r.complete(200);
  assert.deepEqual(events[0]!.impersonatedUser, { username: 'alice', groups: ['dev', 'sre'] });
  assert.equal(events[0]!.verb, 'list');
});

test('refusals: 403 deny, 401 deny without a user, 400 error on a malformed path, 413, 503', () => {
  const cases = [
    {
      target: '/k8s/prod/api/v1/secrets',
      ctx: { allowed: false },
      err: new KgError('KG_ERR_FORBIDDEN', 'User "alice" cannot list secrets'),
      decision: 'deny',
      user: 'alice',
    },
    {
      target: '/k8s/prod/api/v1/pods',
      ctx: { user: false },
      err: new KgError('KG_ERR_UNAUTHENTICATED', 'Unauthorized'),
      decision: 'deny',
      user: '',
    },
    {
      target: '/k8s/prod/api/v1/../secrets',
      ctx: { user: false },
      err: new KgError('KG_ERR_BAD_PATH', 'dot segment'),
      decision: 'error',
      user: '',
    },
    {
      target: '/k8s/prod/api/v1/namespaces/a/configmaps',
      ctx: { allowed: true },
      err: new KgError('KG_ERR_BODY_TOO_LARGE', 'too large'),
      decision: 'allow',
      user: 'alice',
    },
    {
      target: '/k8s/prod/api/v1/pods',
      ctx: { user: false },
      err: new KgError('KG_ERR_UNAVAILABLE', 'database down'),
      decision: 'error',
      user: '',
    },
  ] as const;
  for (const c of cases) {
    const ctx = ctxFor('GET', c.target, c.ctx);
    const { s, events } = sink();
    const res = new FakeRes();
    const r = new AuditRecorder(ctx, s).watch(res);
    r.fail(c.err);
    res.statusCode = c.err.status;
    res.headersSent = true;
    res.headers['content-length'] = 99;
    res.emit('finish');
    assert.equal(events.length, 1, c.target);
    const e = events[0]!;
    assertValid(e);
    assert.equal(e.decision, c.decision, c.target);
    assert.equal(e.user.username, c.user);
    assert.equal(e.responseStatus!.code, c.err.status);
    assert.equal(e.responseStatus!.status, 'Failure');
    assert.equal(e.responseStatus!.reason, c.err.reason);
    assert.equal(e.annotations!['kubegate.dev/error-code'], c.err.code);
    assert.equal(e.bytesOut, 99);
    assert.equal(e.impersonatedUser, undefined, 'never forwarded');
    if (!ctx.route)
      assert.equal(e.requestURI, c.target, 'a path refused before routing is kept as sent');
  }
});

test('long-running requests get ResponseStarted, others do not', async () => {
  const cases: [string, string, boolean][] = [
    ['GET', '/k8s/c/api/v1/namespaces/a/pods?watch=true', true],
    ['GET', '/k8s/c/api/v1/watch/namespaces/a/pods', true],
    ['POST', '/k8s/c/api/v1/namespaces/a/pods/web/exec?command=sh&container=app', true],
    ['GET', '/k8s/c/api/v1/namespaces/a/pods/web/portforward?ports=80', true],
    ['GET', '/k8s/c/api/v1/namespaces/a/pods/web/log?follow=true', true],
    ['GET', '/k8s/c/api/v1/namespaces/a/pods/web/log', false],
    ['GET', '/k8s/c/api/v1/namespaces/a/pods', false],
    ['DELETE', '/k8s/c/api/v1/namespaces/a/pods/web', false],
  ];
  for (const [method, target, long] of cases) {
    const ctx = ctxFor(method, target, { allowed: true });
    assert.equal(isLongRunning(ctx.info, ctx.route!.rawQuery), long, target);
    const { s, events } = sink();
    const r = new AuditRecorder(ctx, s);
    await r.admitted();
    r.responseStarted(200, {}, 'kg-impersonated-as');
    r.complete(200);
    assert.deepEqual(
      events.map((e) => e.stage),
      long ? ['ResponseStarted', 'ResponseComplete'] : ['ResponseComplete'],
      target,
    );
    for (const e of events) {
      assertValid(e);
      assert.equal(e.auditID, ctx.auditId);
      assert.equal(e.requestReceivedTimestamp, events[0]!.requestReceivedTimestamp);
    }
  }
  const omit = validatePolicy({ rules: [{ level: 'Metadata', omitStages: ['ResponseStarted'] }] });
  const ctx = ctxFor('GET', '/k8s/c/api/v1/pods?watch=1', { allowed: true });
  const { s, events } = sink(omit);
  const r = new AuditRecorder(ctx, s);
  await r.admitted();
  r.responseStarted(200, {}, 'kg-impersonated-as');
  r.complete(200);
  assert.deepEqual(
    events.map((e) => e.stage),
    ['ResponseComplete'],
  );
});

test('exec records the command and container; the verb is create', async () => {
  const ctx = ctxFor(
    'GET',
    '/k8s/c/api/v1/namespaces/a/pods/web/exec?command=cat&command=%2Fetc%2Fhostname&container=app&stdout=true',
    { allowed: true },
  );
  const { s, events } = sink();
  const r = new AuditRecorder(ctx, s);
  r.complete(101);
  const e = events[0]!;
  assertValid(e);
  assert.equal(e.verb, 'create');
  assert.equal(e.objectRef!.subresource, 'exec');
  assert.equal(e.annotations!['kubegate.dev/command'], '["cat","/etc/hostname"]');
  assert.equal(e.annotations!['kubegate.dev/container'], 'app');
});

test('bodies: kept at Request / RequestResponse, redacted, never for watches', async () => {
  const policy = validatePolicy({
    rules: [
      { level: 'RequestResponse', resources: [{ group: '', resources: ['secrets', 'pods'] }] },
      { level: 'Request', resources: [{ group: '', resources: ['configmaps'] }] },
    ],
  });
  const secretBody = JSON.stringify({
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: { name: 's' },
    stringData: { pw: 'p4ssw0rd-do-not-log' },
  });
  const ctx = ctxFor('POST', '/k8s/c/api/v1/namespaces/a/secrets', { allowed: true });
  const { s, events } = sink(policy);
  const r = new AuditRecorder(ctx, s, { 'content-type': 'application/json' });
  await r.admitted();
  assert.ok(r.wantsRequestBody);
  r.requestChunk(Buffer.from(secretBody));
  r.responseStarted(201, { 'content-type': 'application/json' }, 'kg-impersonated-as');
  r.responseChunk(Buffer.from(secretBody.replace('stringData', 'data')));
  r.complete(201);
  const e = events[0]!;
  assertValid(e);
  assert.equal(e.level, 'RequestResponse');
  assert.deepEqual((e.requestObject as { stringData: unknown }).stringData, { pw: '[redacted]' });
  assert.deepEqual((e.responseObject as { data: unknown }).data, { pw: '[redacted]' });
  assert.ok(!JSON.stringify(events).includes('p4ssw0rd-do-not-log'));

  const cm = ctxFor('PUT', '/k8s/c/api/v1/namespaces/a/configmaps/x', { allowed: true });
  const two = sink(policy);
  const r2 = new AuditRecorder(cm, two.s, { 'content-type': 'application/json' });
  await r2.admitted();
  r2.requestChunk(Buffer.from('{"kind":"ConfigMap","data":{"a":"b"}}'));
  r2.responseStarted(200, { 'content-type': 'application/json' }, 'kg-impersonated-as');
  r2.responseChunk(Buffer.from('{"kind":"ConfigMap"}'));
  r2.complete(200);
  assert.deepEqual(two.events[0]!.requestObject, { kind: 'ConfigMap', data: { a: 'b' } });
  assert.equal(two.events[0]!.responseObject, undefined, 'Request level keeps no response');

  const w = ctxFor('GET', '/k8s/c/api/v1/pods?watch=true', { allowed: true });
  const three = sink(policy);
  const r3 = new AuditRecorder(w, three.s);
  await r3.admitted();
  r3.responseStarted(200, { 'content-type': 'application/json' }, 'kg-impersonated-as');
  r3.responseChunk(Buffer.from('{"type":"ADDED","object":{}}\n'));
  r3.complete(200);
  assert.equal(three.events.at(-1)!.responseObject, undefined);
  assert.equal(three.events.at(-1)!.bytesOut, 29);
});

test('strict mode: the RequestReceived record is written before admitted() resolves', async () => {
  const intents: AuditEvent[] = [];
  const ctx = ctxFor('DELETE', '/k8s/c/api/v1/namespaces/a/pods/web', { allowed: true });
  const { s } = sink(undefined, intents);
  const r = new AuditRecorder(ctx, s);
  await r.admitted();
  assert.equal(intents.length, 1);
  assertValid(intents[0]!);
  assert.equal(intents[0]!.stage, 'RequestReceived');
  assert.equal(intents[0]!.auditID, ctx.auditId);
  assert.equal(intents[0]!.responseStatus, undefined);
});

test('a client that leaves before any answer: 499, noted', () => {
  const ctx = ctxFor('GET', '/k8s/c/api/v1/pods', { allowed: true });
  const { s, events } = sink();
  const res = new FakeRes();
  new AuditRecorder(ctx, s).watch(res);
  res.emit('close');
  assert.equal(events[0]!.responseStatus!.code, 499);
  assert.match(events[0]!.annotations!['kubegate.dev/client-closed']!, /closed/);
});

test('property: exactly one ResponseComplete, whatever order finish, close and complete arrive in', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('finish', 'close', 'complete', 'fail', 'started'), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.boolean(),
      (steps, long) => {
        const ctx = ctxFor('GET', long ? '/k8s/c/api/v1/pods?watch=1' : '/k8s/c/api/v1/pods', {
          allowed: true,
        });
        const { s, events } = sink();
        const res = new FakeRes();
        const r = new AuditRecorder(ctx, s).watch(res);
        for (const step of steps) {
          if (step === 'finish' || step === 'close') res.emit(step);
          else if (step === 'complete') r.complete(200);
          else if (step === 'fail') r.fail(new KgError('KG_ERR_UPSTREAM', 'x'));
          else r.responseStarted(200, {}, 'kg-impersonated-as');
        }
        res.emit('close');
        const complete = events.filter((e) => e.stage === 'ResponseComplete');
        assert.equal(complete.length, 1);
        assert.equal(events.at(-1)!.stage, 'ResponseComplete', 'nothing after ResponseComplete');
        assert.ok(
          events.filter((e) => e.stage === 'ResponseStarted').length <=
            (long ? steps.filter((x) => x === 'started').length : 0),
        );
      },
    ),
  );
});

test('a 20,000-deep body: the event is recorded with a marker, nothing throws', async () => {
  const policy = validatePolicy({ rules: [{ level: 'RequestResponse' }] });
  const ctx = ctxFor('POST', '/k8s/c/api/v1/namespaces/a/configmaps', { allowed: true });
  const { s, events } = sink(policy);
  const res = new FakeRes();
  const r = new AuditRecorder(ctx, s, { 'content-type': 'application/json' }).watch(res);
  await r.admitted();
  const deep = '['.repeat(20_000) + ']'.repeat(20_000);
  r.requestChunk(Buffer.from(deep));
  r.responseStarted(400, { 'content-type': 'application/json' }, 'kg-impersonated-as');
  r.responseChunk(Buffer.from(deep));
  res.headersSent = true;
  res.statusCode = 400;
  res.emit('finish');
  assert.equal(events.length, 1);
  const marker = { 'kubegate.dev/omitted': 'body nested deeper than 100 levels' };
  assert.deepEqual(events[0]!.requestObject, marker);
  assert.deepEqual(events[0]!.responseObject, marker);
  assertValid(events[0]!);
});

test('a throw while building or emitting the event never leaves the listener', async () => {
  const policy = validatePolicy({ rules: [{ level: 'Request' }] });
  const ctx = ctxFor('POST', '/k8s/c/api/v1/namespaces/a/configmaps', { allowed: true });
  const events: AuditEvent[] = [];
  let emits = 0;
  const s: RecorderSink = {
    replica: 'r',
    policy: () => policy,
    emit: (e) => {
      // The first emit fails: the recorder must swallow it (it runs in a listener).
      if (emits++ === 0) throw new RangeError('Maximum call stack size exceeded');
      events.push(e);
    },
  };
  const res = new FakeRes();
  const r = new AuditRecorder(ctx, s, { 'content-type': 'application/json' }).watch(res);
  await r.admitted();
  r.requestChunk(Buffer.from('{"kind":"ConfigMap"}'));
  // Building with bodies fails: the event is still recorded, bodies replaced by a marker.
  (r as unknown as { attachBodies: () => void }).attachBodies = () => {
    throw new RangeError('Maximum call stack size exceeded');
  };
  res.headersSent = true;
  assert.doesNotThrow(() => res.emit('finish'));
  assert.equal(emits, 2);
  assert.equal(events.length, 1, 'the request still has its one event');
  assert.equal(events[0]!.auditID, ctx.auditId);
  assert.equal(events[0]!.stage, 'ResponseComplete');
  assert.equal(events[0]!.responseStatus!.code, 200);
  assert.ok(events[0]!.annotations!['kubegate.dev/audit-error']);
  assert.doesNotThrow(() => res.emit('close'));
  assert.equal(events.length, 1, 'complete() runs once');

  const ctx2 = ctxFor('POST', '/k8s/c/api/v1/namespaces/a/configmaps', { allowed: true });
  const two = sink(policy);
  const res2 = new FakeRes();
  const r2 = new AuditRecorder(ctx2, two.s, { 'content-type': 'application/json' }).watch(res2);
  await r2.admitted();
  r2.requestChunk(Buffer.from('{"kind":"ConfigMap"}'));
  (r2 as unknown as { attachBodies: () => void }).attachBodies = () => {
    throw new RangeError('Maximum call stack size exceeded');
  };
  res2.headersSent = true;
  assert.doesNotThrow(() => res2.emit('finish'));
  assert.equal(two.events.length, 1);
  const e = two.events[0]!;
  assert.deepEqual(e.requestObject, { 'kubegate.dev/omitted': 'the body could not be captured' });
  assert.equal(e.annotations!['kubegate.dev/audit-error'], 'the bodies could not be captured');
  assert.equal(e.responseStatus!.code, 200);
});

test('microTime: metav1.MicroTime with six fraction digits, for any millisecond', () => {
  assert.equal(microTime(0), '1970-01-01T00:00:00.000000Z');
  assert.equal(microTime(Date.UTC(2026, 11, 7, 8, 5, 9, 42)), '2026-12-07T08:05:09.042000Z');
  assert.equal(microTime(Date.UTC(9999, 11, 31, 23, 59, 59, 999)), '9999-12-31T23:59:59.999000Z');
  assert.equal(timeOf(microTime(1_765_000_000_123)), 1_765_000_000_123);
});
