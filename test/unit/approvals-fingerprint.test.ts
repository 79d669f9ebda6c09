/**
 * The identity of a gated request (body hash, fingerprint), the diff shown
 * to approvers, and webhook signatures.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import {
  bodySha256,
  canonicalJson,
  requestFingerprint,
  type GatedRequest,
} from '../../proxy/approvals/fingerprint.js';
import {
  changedValue,
  forDisplay,
  hiddenValue,
  lineDiff,
  objectDiff,
} from '../../proxy/approvals/diff.js';
import {
  hasObjectPreview,
  parseQueryAsGo,
  requestText,
} from '../../proxy/approvals/request-text.js';
import { requestInfo } from '../../proxy/authz/request-info.js';
import { sign, verify } from '../../proxy/approvals/signature.js';
import { backoffSeconds, slackPayload, type Notice } from '../../proxy/approvals/notify.js';

const base: GatedRequest = {
  user: 'dev',
  userKind: 'user',
  cluster: 'prod',
  method: 'PATCH',
  kubePath: '/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web',
  rawQuery: 'fieldManager=kubectl&fieldValidation=Strict',
  contentType: 'application/strategic-merge-patch+json',
  bodySha256: bodySha256(Buffer.from('{"spec":{"rules":[]}}')),
};

const sha = (b: string | Buffer) => createHash('sha256').update(b).digest('hex');

describe('body hash', () => {
  test('the sha256 of the bytes exactly as forwarded (sha256sum gives the same)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => {
        const buf = Buffer.from(b);
        return bodySha256(buf) === sha(buf);
      }),
    );
  });
  test('any change of bytes is a different hash, JSON re-serialisation included (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const a = Buffer.from(JSON.stringify(v));
        const b = Buffer.from(JSON.stringify(v, null, 2));
        return a.equals(b) || bodySha256(a) !== bodySha256(b);
      }),
    );
  });
  test('duplicate keys: two bodies JavaScript parses alike are still two requests', () => {
    // Go merges {"metadata":{…}} twice into one struct; JSON.parse keeps the last one.
    const plain = '{"metadata":{"name":"x"}}';
    const smuggled = '{"metadata":{"labels":{"evil":"1"}},"metadata":{"name":"x"}}';
    assert.deepEqual(JSON.parse(plain), JSON.parse(smuggled));
    assert.notEqual(bodySha256(Buffer.from(plain)), bodySha256(Buffer.from(smuggled)));
  });
  test('array order matters', () => {
    assert.notEqual(bodySha256(Buffer.from('[1,2]')), bodySha256(Buffer.from('[2,1]')));
  });
  test("canonicalJson (for kubegate's own records) sorts keys at every level", () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [3, { f: 1, e: 2 }], c: null } }),
      '{"a":{"c":null,"d":[3,{"e":2,"f":1}]},"b":1}',
    );
  });
});

describe('request fingerprint', () => {
  const fp = requestFingerprint(base);
  const differs: [string, Partial<GatedRequest>][] = [
    ['another user', { user: 'eve' }],
    ['a robot of the same name', { userKind: 'robot' }],
    ['another cluster', { cluster: 'prod-2' }],
    ['another method', { method: 'PUT' }],
    ['another object', { kubePath: base.kubePath + 'x' }],
    ['another query', { rawQuery: 'fieldManager=other' }],
    ['a dry run is another request', { rawQuery: base.rawQuery + '&dryRun=All' }],
    ['another patch type', { contentType: 'application/merge-patch+json' }],
    ['another content-type header', { contentType: base.contentType + '; charset=utf-8' }],
    ['another body', { bodySha256: bodySha256(Buffer.from('{"spec":{}}')) }],
    [
      'the same query in another order',
      { rawQuery: 'fieldValidation=Strict&fieldManager=kubectl' },
    ],
    [
      'the same query encoded otherwise',
      { rawQuery: 'fieldManager=kube%63tl&fieldValidation=Strict' },
    ],
  ];
  for (const [name, change] of differs)
    test(name, () => assert.notEqual(requestFingerprint({ ...base, ...change }), fp));
  test('the identical request has the same fingerprint', () => {
    assert.equal(requestFingerprint({ ...base }), fp);
    assert.equal(
      requestFingerprint({ ...base, bodySha256: bodySha256(Buffer.from('{"spec":{"rules":[]}}')) }),
      fp,
    );
  });

  // The apiserver gives repeated parameters meaning by their order.
  const exec = (q: string): GatedRequest => ({
    ...base,
    method: 'POST',
    kubePath: '/api/v1/namespaces/shop/pods/web-0/exec',
    rawQuery: q,
    contentType: '',
    bodySha256: bodySha256(Buffer.alloc(0)),
  });
  const argv = (...a: string[]) =>
    [...a.map((x) => `command=${encodeURIComponent(x)}`), 'stderr=true', 'stdout=true'].join('&');
  test('exec: the same argv reordered is another request', () => {
    const held = argv('sh', '-c', 'echo ok', 'touch /tmp/x');
    const swapped = argv('sh', '-c', 'touch /tmp/x', 'echo ok');
    assert.notEqual(requestFingerprint(exec(held)), requestFingerprint(exec(swapped)));
    assert.equal(requestFingerprint(exec(held)), requestFingerprint(exec(held)));
  });
  test('exec: a repeated argv element is another request', () => {
    assert.notEqual(
      requestFingerprint(exec(argv('echo', 'a'))),
      requestFingerprint(exec(argv('echo', 'a', 'a'))),
    );
  });
  const del = (q: string): GatedRequest => ({ ...base, method: 'DELETE', rawQuery: q });
  for (const [name, a, b] of [
    [
      'propagationPolicy',
      'propagationPolicy=Orphan&propagationPolicy=Foreground',
      'propagationPolicy=Foreground&propagationPolicy=Orphan',
    ],
    [
      'gracePeriodSeconds',
      'gracePeriodSeconds=30&gracePeriodSeconds=0',
      'gracePeriodSeconds=0&gracePeriodSeconds=30',
    ],
    ['dryRun', 'dryRun=All&dryRun=', 'dryRun=&dryRun=All'],
  ] as const) {
    test(`${name}: first wins at the apiserver, so reordered values are another request`, () => {
      assert.notEqual(requestFingerprint(del(a)), requestFingerprint(del(b)));
    });
    test(`${name}: a duplicated value is another request`, () => {
      const one = a.split('&')[0]!;
      assert.notEqual(requestFingerprint(del(one)), requestFingerprint(del(`${one}&${one}`)));
    });
  }
  test('any two different raw queries are two requests (property)', () => {
    const pair = fc.tuple(fc.constantFrom('command', 'dryRun', 'x'), fc.string({ maxLength: 4 }));
    fc.assert(
      fc.property(fc.array(pair, { maxLength: 5 }), fc.array(pair, { maxLength: 5 }), (p, q) => {
        const enc = (ps: [string, string][]) =>
          ps.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
        const [a, b] = [enc(p), enc(q)];
        return a === b || requestFingerprint(exec(a)) !== requestFingerprint(exec(b));
      }),
    );
  });
});

describe('what the approver reads for exec and other non-object requests', () => {
  const q =
    'command=sh&command=-c&command=echo+ok&command=touch%20%2Ftmp%2Fx&container=box&stdout=true';
  const info = requestInfo('POST', '/api/v1/namespaces/shop/pods/web-0/exec', q);
  test('no dry run and no read for exec, attach, port-forward or proxy', () => {
    assert.equal(hasObjectPreview(info), false);
    for (const p of ['attach', 'portforward', 'proxy', 'eviction', 'token'])
      assert.equal(
        hasObjectPreview(requestInfo('POST', `/api/v1/namespaces/shop/pods/web-0/${p}`, '')),
        false,
        p,
      );
    assert.equal(
      hasObjectPreview(requestInfo('PATCH', '/api/v1/namespaces/shop/pods/web-0', '')),
      true,
    );
    assert.equal(
      hasObjectPreview(requestInfo('PUT', '/apis/apps/v1/namespaces/shop/deployments/d/scale', '')),
      true,
    );
  });
  test('the argv one element per line, in order, decoded as the apiserver decodes it', () => {
    const t = requestText(info, 'POST', '/api/v1/namespaces/shop/pods/web-0/exec', q, 0);
    assert.match(
      t,
      /\[0\] "sh"\n {2}\[1\] "-c"\n {2}\[2\] "echo ok"\n {2}\[3\] "touch \/tmp\/x"\n/,
      t,
    );
    assert.match(t, /container: "box"/);
    assert.match(t, /create pods\/exec "web-0" in namespace shop/);
    const swapped = requestText(
      info,
      'POST',
      '/api/v1/namespaces/shop/pods/web-0/exec',
      'command=sh&command=-c&command=touch%20%2Ftmp%2Fx&command=echo+ok',
      0,
    );
    assert.match(swapped, /\[2\] "touch \/tmp\/x"\n {2}\[3\] "echo ok"/);
  });
  test('a pair Go would drop (a ";") is shown as ignored, not as an argument', () => {
    const r = parseQueryAsGo('command=ls&command=a;b&dryRun=All&&x');
    assert.deepEqual(r.pairs, [
      { name: 'command', value: 'ls' },
      { name: 'dryRun', value: 'All' },
      { name: 'x', value: '' },
    ]);
    assert.deepEqual(r.dropped, ['command=a;b']);
  });
});

describe('diff for approvers', () => {
  test('a unified line diff', () => {
    assert.equal(lineDiff('a\nb\nc\n', 'a\nx\nc\n'), '--- live\n+++ requested\n a\n-b\n+x\n c\n');
    assert.equal(lineDiff('', 'a\n'), '--- live\n+++ requested\n+a\n');
  });
  test('server-managed fields and kubectl last-applied are left out', () => {
    const live = {
      metadata: {
        name: 'web',
        resourceVersion: '7',
        uid: 'u',
        managedFields: [{}],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"secret":1}' },
      },
      spec: { host: 'a' },
      status: { x: 1 },
    };
    const d = objectDiff(live, { ...live, spec: { host: 'b' } }, 'ingresses');
    assert.match(d, /^- {2}host: a$/m);
    assert.match(d, /^\+ {2}host: b$/m);
    assert.doesNotMatch(d, /resourceVersion|managedFields|last-applied|status/);
  });
  test('an object nested too deep is not rendered (and does not throw)', () => {
    const deep = JSON.parse('['.repeat(20_000) + ']'.repeat(20_000)) as unknown;
    assert.match(objectDiff(undefined, { spec: deep }, 'widgets'), /nested deeper than 100 levels/);
  });
});

describe('Secret diffs carry nothing computed from a value (dictionary attack)', () => {
  const b64 = (v: string) => Buffer.from(v).toString('base64');
  const secret = (
    name: string,
    data: Record<string, string>,
    stringData?: Record<string, string>,
  ) => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name },
    type: 'Opaque',
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    ...(stringData ? { stringData } : {}),
  });
  /** Every form a value-derived string could take, for a value as stored (base64) and as text. */
  const derived = (v: string): string[] => {
    const out: string[] = [v, b64(v)];
    for (const x of [v, b64(v)]) {
      const h = sha(x);
      out.push(h.slice(0, 8), createHash('md5').update(x).digest('hex').slice(0, 8));
      out.push(createHash('sha1').update(x).digest('hex').slice(0, 8));
      out.push(Buffer.from(h, 'hex').toString('base64').slice(0, 8));
    }
    return out;
  };
  test('a changed value shows as changed, an unchanged one as unchanged, and nothing else', () => {
    const d = objectDiff(
      secret('db', { password: 'hunter2', user: 'admin' }),
      secret('db', { password: 'hunter3', user: 'admin' }),
      'secrets',
    );
    assert.match(d, new RegExp(`^- {2}password: ${escape(hiddenValue)}$`, 'm'), d);
    assert.match(d, new RegExp(`^\\+ {2}password: ${escape(changedValue)}$`, 'm'), d);
    assert.match(d, new RegExp(`^ {3}user: ${escape(hiddenValue)}$`, 'm'), d);
    for (const v of ['hunter2', 'hunter3', 'admin'])
      for (const f of derived(v))
        assert.ok(!d.includes(f), `${JSON.stringify(f)} (from ${v}) in\n${d}`);
    assert.doesNotMatch(d, /sha256|[0-9a-f]{8,}/);
  });
  test('two secrets with different values, changed alike, give the very same text', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        (a1, a2, b1, b2) => {
          fc.pre(a1 !== a2 && b1 !== b2);
          const da = objectDiff(
            secret('s', { k: a1 }),
            secret('s', { k: a2 }, { p: a1 }),
            'secrets',
          );
          const db = objectDiff(
            secret('s', { k: b1 }),
            secret('s', { k: b2 }, { p: b1 }),
            'secrets',
          );
          return da === db;
        },
      ),
    );
  });
  test('a new Secret (create) and a patch without kind show keys only', () => {
    const created = objectDiff(
      undefined,
      secret('n', { token: 'abc123' }, { pw: 'letmein' }),
      'secrets',
    );
    assert.match(created, /^\+ {2}token: \(hidden\)$/m);
    assert.match(created, /^\+ {2}pw: \(hidden\)$/m);
    for (const v of ['abc123', 'letmein'])
      for (const f of derived(v)) assert.ok(!created.includes(f));
    assert.deepEqual(forDisplay({ data: { a: 'x' } }, 'secrets'), { data: { a: hiddenValue } });
    assert.deepEqual(forDisplay({ data: 'not-a-map' }, 'secrets'), { data: hiddenValue });
    assert.deepEqual(forDisplay('x', 'secrets'), 'x');
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('webhook signatures', () => {
  const secret = 's3cret-s3cret-s3cret';
  const body = '{"type":"approval.requested"}';
  const now = 1_800_000_000_000;
  const ts = now / 1000;
  test('a signature verifies for its body and timestamp only', () => {
    const sig = sign(secret, ts, body);
    assert.match(sig, /^v1=[0-9a-f]{64}$/);
    assert.equal(verify(secret, String(ts), body, sig, 300, now), true);
    assert.equal(verify(secret, String(ts), body + ' ', sig, 300, now), false);
    assert.equal(verify('other-secret-value', String(ts), body, sig, 300, now), false);
    assert.equal(verify(secret, String(ts + 1), body, sig, 300, now), false);
  });
  test('old timestamps are refused (replays)', () => {
    const old = ts - 3600;
    assert.equal(verify(secret, String(old), body, sign(secret, old, body), 300, now), false);
  });
  test('back-off doubles up to five minutes', () => {
    assert.deepEqual([1, 2, 3, 4, 10, 20].map(backoffSeconds), [1, 2, 4, 8, 300, 300]);
  });
  test('the Slack payload has text and a section block', () => {
    const n: Notice = {
      event: 'approval.requested',
      id: 'i',
      kind: 'access',
      status: 'pending',
      requester: 'user:dev',
      summary: 'dev asks',
      reason: 'why',
      url: 'https://kg/api/v1/approvals/i',
      at: 'now',
    };
    const p = slackPayload(n) as {
      text: string;
      blocks: { type: string; text: { text: string } }[];
    };
    assert.match(p.text, /requested: dev asks/);
    assert.equal(p.blocks[0]!.type, 'section');
    assert.match(p.blocks[0]!.text.text, /<https:\/\/kg\/api\/v1\/approvals\/i\|approval i>/);
  });
});
