/**
 * Redaction for the audit log: Secret data in every shape it travels in,
 * its last-applied copy, TokenRequest/TokenReview tokens, token-shaped
 * strings and credential query parameters. The property tests put random
 * secret values into random bodies and require that no form of the value
 * (raw, JSON-escaped, base64) survives anywhere in the output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  REDACTED,
  lastApplied,
  maxBodyDepth,
  omittedKey,
  redactBody,
  redactUri,
  scrubString,
} from '../../proxy/audit/redact.js';
import { BodyCapture } from '../../proxy/audit/capture.js';
import { deeperThan } from '../../common/json-depth.js';
import { gzipSync } from 'node:zlib';

const secrets = { apiGroup: '', resource: 'secrets', subresource: '' };
const configmaps = { apiGroup: '', resource: 'configmaps', subresource: '' };
const nothing = { apiGroup: '', resource: '', subresource: '' };
const b64 = (s: string) => Buffer.from(s).toString('base64');

function forms(secret: string): string[] {
  return [
    secret,
    JSON.stringify(secret).slice(1, -1),
    b64(secret),
    Buffer.from(secret).toString('base64url'),
  ];
}

function assertAbsent(out: unknown, secret: string, what: string): void {
  const text = JSON.stringify(out);
  for (const f of forms(secret)) {
    assert.ok(!text.includes(f), `${what}: secret form ${JSON.stringify(f)} leaked in ${text}`);
  }
}

function secretObject(name: string, key: string, value: string, withCopy: boolean) {
  const obj: Record<string, unknown> = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'default' },
    type: 'Opaque',
    data: { [key]: b64(value) },
    stringData: { [`${key}-plain`]: value },
  };
  if (withCopy) {
    (obj.metadata as Record<string, unknown>).annotations = {
      [lastApplied]: JSON.stringify(obj),
      note: 'kept',
    };
  }
  return obj;
}

test('a Secret keeps its keys and loses its values, last-applied copy included', () => {
  const s = secretObject('db', 'password', 'hunter2-very-secret', true);
  const out = redactBody(s, secrets) as Record<string, Record<string, unknown>>;
  assert.deepEqual(out.data, { password: REDACTED });
  assert.deepEqual(out.stringData, { 'password-plain': REDACTED });
  assert.equal((out.metadata!.annotations as Record<string, string>)[lastApplied], REDACTED);
  assert.equal((out.metadata!.annotations as Record<string, string>).note, 'kept');
  assert.equal(out.metadata!.name, 'db');
  assertAbsent(out, 'hunter2-very-secret', 'secret');
  // The input is not changed.
  assert.equal((s.data as Record<string, string>).password, b64('hunter2-very-secret'));
});

test('a Secret is found by its kind even when the target does not say secrets', () => {
  const list = {
    kind: 'List',
    apiVersion: 'v1',
    items: [
      {
        kind: 'ConfigMap',
        apiVersion: 'v1',
        metadata: { name: 'c' },
        data: { greeting: 'hello world' },
      },
      secretObject('s', 'token', 'abcdefghijklmnop', true),
    ],
  };
  const out = redactBody(list, nothing);
  assertAbsent(out, 'abcdefghijklmnop', 'list');
  assert.match(JSON.stringify(out), /hello world/, 'non-secret data is kept');
});

test('patches to secrets: strategic merge, merge, JSON patch', () => {
  const smp = {
    data: { k: b64('patched-value-123') },
    metadata: { annotations: { [lastApplied]: '{"data":{"k":"cGF0Y2hlZC12YWx1ZS0xMjM="}}' } },
  };
  assertAbsent(redactBody(smp, secrets), 'patched-value-123', 'smp');
  const jp = [
    { op: 'replace', path: '/data/k', value: b64('json-patch-value-9') },
    { op: 'add', path: '/stringData', value: { x: 'json-patch-value-9' } },
    { op: 'remove', path: '/data/old' },
  ];
  const out = redactBody(jp, secrets) as { op: string; path: string; value?: unknown }[];
  assertAbsent(out, 'json-patch-value-9', 'json patch');
  assert.deepEqual(
    out.map((o) => o.path),
    ['/data/k', '/stringData', '/data/old'],
  );
});

test('TokenRequest and TokenReview tokens, by target and by kind', () => {
  const tr = {
    kind: 'TokenRequest',
    apiVersion: 'authentication.k8s.io/v1',
    spec: { audiences: ['https://kubernetes.default.svc'], expirationSeconds: 600 },
    status: { token: 'opaque-sa-token-value', expirationTimestamp: '2030-01-01T00:00:00Z' },
  };
  const target = { apiGroup: '', resource: 'serviceaccounts', subresource: 'token' };
  for (const t of [target, nothing]) {
    const out = redactBody(tr, t) as typeof tr;
    assert.equal(out.status.token, REDACTED);
    assert.equal(out.status.expirationTimestamp, '2030-01-01T00:00:00Z');
  }
  const bare = redactBody({ spec: tr.spec, status: tr.status }, target) as typeof tr;
  assert.equal(bare.status.token, REDACTED, 'by target, without kind');
  const review = { kind: 'TokenReview', spec: { token: 'reviewed-token-value-1' } };
  assertAbsent(redactBody(review, nothing), 'reviewed-token-value-1', 'review');
});

test('token-shaped strings are scrubbed anywhere', () => {
  const kg = 'kg_' + 'A'.repeat(43);
  const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
  const cm = {
    kind: 'ConfigMap',
    data: {
      a: `token=${kg}`,
      b: `Authorization: Bearer ${jwt}`,
      c: 'https://u:pa55word@example.com/x',
    },
  };
  const text = JSON.stringify(redactBody(cm, configmaps));
  assert.ok(!text.includes(kg) && !text.includes(jwt) && !text.includes('pa55word'), text);
  assert.equal(scrubString('plain text stays'), 'plain text stays');
});

test('URIs: credential query parameters and token shapes', () => {
  assert.equal(
    redactUri('/api/v1/pods?access_token=abc&limit=5&Token=x'),
    `/api/v1/pods?access_token=${REDACTED}&limit=5&Token=${REDACTED}`,
  );
  assert.equal(redactUri('/api/v1/pods?watch=true'), '/api/v1/pods?watch=true');
  const kg = 'kg_' + 'b'.repeat(43);
  assert.ok(!redactUri(`/api/v1/namespaces/${kg}/pods`).includes(kg));
});

test('captured bodies: gzip decoded, protobuf and oversize described, JSON redacted', () => {
  const secret = secretObject('x', 'k', 'gzipped-secret-value', true);
  const c = new BodyCapture();
  c.push(gzipSync(JSON.stringify(secret)));
  const r = c.result(secrets, 'application/json', 'gzip');
  assert.ok(r.body);
  assertAbsent(r.body, 'gzipped-secret-value', 'gzip');
  const p = new BodyCapture();
  p.push(Buffer.from('k8s\0binary'));
  assert.match(
    p.result(secrets, 'application/vnd.kubernetes.protobuf', undefined).note!,
    /protobuf/,
  );
  const big = new BodyCapture(10);
  big.push(Buffer.alloc(11));
  assert.match(big.result(secrets, 'application/json', undefined).note!, /11 bytes/);
  const y = new BodyCapture();
  y.push(Buffer.from('apiVersion: v1\nkind: Secret\nstringData: {k: yaml-secret}\n'));
  const yr = y.result(secrets, 'application/apply-patch+yaml', undefined);
  assert.equal(yr.body, undefined, 'a body we cannot parse is never stored');
  assert.ok(!JSON.stringify(yr).includes('yaml-secret'));
});

// --- properties -------------------------------------------------------------

const secretArb = fc.stringMatching(/^[A-Za-z0-9+/=_.:@!#%&*()~-]{12,48}$/);
const keyArb = fc.stringMatching(/^[a-z][a-z0-9.-]{0,10}$/);

/** Wrap a value at a random depth inside objects and arrays. */
function nest(value: unknown, path: (string | number)[]): unknown {
  return path.reduceRight<unknown>(
    (inner, step) =>
      typeof step === 'number' ? [...Array(step % 3).fill(null), inner] : { [step]: inner },
    value,
  );
}
const pathArb = fc.array(fc.oneof(keyArb, fc.nat(5)), { maxLength: 4 });

test('property: no form of a Secret value survives, whatever shape carries it', () => {
  fc.assert(
    fc.property(
      secretArb,
      keyArb,
      fc.boolean(),
      fc.constantFrom('object', 'list', 'watch', 'smp', 'jsonpatch', 'merge-stringdata'),
      pathArb,
      (secret, key, withCopy, shape, path) => {
        const obj = secretObject('n', key, secret, withCopy);
        let body: unknown;
        switch (shape) {
          case 'object':
            body = obj;
            break;
          case 'list':
            body = { kind: 'SecretList', apiVersion: 'v1', items: [obj, obj] };
            break;
          case 'watch':
            body = { type: 'MODIFIED', object: obj };
            break;
          case 'smp':
            body = {
              data: { [key]: b64(secret) },
              metadata: { annotations: { [lastApplied]: JSON.stringify(obj) } },
            };
            break;
          case 'jsonpatch':
            body = [{ op: 'replace', path: `/data/${key}`, value: b64(secret) }];
            break;
          default:
            body = { stringData: { [key]: secret } };
        }
        // Sent to the secrets resource: redacted whatever the shape.
        assertAbsent(redactBody(body, secrets), secret, `${shape} to secrets`);
        // Anywhere else, a whole Secret (with its kind) is still found at any depth.
        if (shape === 'object' || shape === 'list' || shape === 'watch') {
          assertAbsent(redactBody(nest(body, path), nothing), secret, `${shape} nested`);
        }
      },
    ),
    { numRuns: 400 },
  );
});

test('property: a Secret inside a last-applied copy of anything is redacted', () => {
  fc.assert(
    fc.property(secretArb, keyArb, pathArb, (secret, key, path) => {
      const inner = secretObject('n', key, secret, false);
      const outer = {
        kind: 'List',
        metadata: { annotations: { [lastApplied]: JSON.stringify(nest(inner, path)) } },
      };
      assertAbsent(redactBody(outer, configmaps), secret, 'last-applied');
    }),
    { numRuns: 300 },
  );
});

test('property: TokenRequest tokens and bearer-shaped strings never survive', () => {
  fc.assert(
    fc.property(
      fc.stringMatching(/^[A-Za-z0-9_-]{43}$/),
      fc.stringMatching(/^[A-Za-z0-9_-]{10,40}$/),
      pathArb,
      (tok, jwtPart, path) => {
        const kg = `kg_${tok}`;
        const jwt = `eyJ${jwtPart}.eyJ${jwtPart}.${jwtPart}`;
        const body = nest(
          { kind: 'TokenRequest', status: { token: jwt }, note: `use ${kg} or Bearer ${jwt}` },
          path,
        );
        const text = JSON.stringify(redactBody(body, nothing));
        assert.ok(!text.includes(kg) && !text.includes(jwt), text);
        assert.ok(!redactUri(`/x?token=${tok}`).includes(tok));
      },
    ),
    { numRuns: 300 },
  );
});

// A hostile body must never reach the call stack's limit (issue 17 item 2).
const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);

test('depth: a body 20,000 deep becomes a marker saying why, without throwing', () => {
  for (const text of [nested(20_000), nested(20_000, '{"a":', '}').replace(/\{"a":\}/, '{}')]) {
    const body = JSON.parse(text) as unknown;
    for (const target of [secrets, configmaps, nothing]) {
      const out = redactBody(body, target);
      assert.deepEqual(out, { [omittedKey]: `body nested deeper than ${maxBodyDepth} levels` });
    }
  }
});

test('depth: up to the limit the body is kept (and redacted), one past it is not', () => {
  const at = JSON.parse(nested(maxBodyDepth)) as unknown;
  assert.deepEqual(redactBody(at, configmaps), at);
  const past = JSON.parse(nested(maxBodyDepth + 1)) as unknown;
  assert.ok(omittedKey in (redactBody(past, configmaps) as object));
  // A Secret under a deep-but-allowed body is still redacted.
  let v: unknown = { kind: 'Secret', data: { pw: b64('deep-secret-value') } };
  for (let i = 0; i < maxBodyDepth - 3; i++) v = [v];
  assertAbsent(redactBody(v, nothing), 'deep-secret-value', 'deep secret');
});

test('depth: a deep last-applied copy is redacted whole, never walked', () => {
  const obj = {
    kind: 'ConfigMap',
    metadata: { annotations: { [lastApplied]: nested(50_000) } },
  };
  const out = redactBody(obj, configmaps) as { metadata: { annotations: Record<string, string> } };
  assert.equal(out.metadata.annotations[lastApplied], REDACTED);
});

test('width: 100,000 keys and 100,000 array elements are redacted without throwing', () => {
  const wide = Object.fromEntries(
    Array.from({ length: 100_000 }, (_, i) => [`k${i}`, `Bearer abcdefghijklmnop${i}`]),
  );
  const out = redactBody({ kind: 'ConfigMap', data: wide }, configmaps) as {
    data: Record<string, string>;
  };
  assert.equal(Object.keys(out.data).length, 100_000);
  assert.equal(out.data.k99999, REDACTED);
  const long = redactBody(
    Array.from({ length: 100_000 }, () => [1]),
    nothing,
  ) as unknown[];
  assert.equal(long.length, 100_000);
});

test('a captured 20,000-deep body is kept as the marker', () => {
  const c = new BodyCapture();
  c.push(Buffer.from(nested(20_000)));
  assert.deepEqual(c.result(configmaps, 'application/json', undefined), {
    body: { [omittedKey]: `body nested deeper than ${maxBodyDepth} levels` },
  });
});

test('deeperThan measures without recursion', () => {
  assert.equal(deeperThan(1, 0), false);
  assert.equal(deeperThan([], 0), true);
  assert.equal(deeperThan([], 1), false);
  assert.equal(deeperThan([[]], 1), true);
  assert.equal(deeperThan({ a: [{}] }, 3), false);
  assert.equal(deeperThan({ a: [{}] }, 2), true);
  assert.equal(deeperThan(JSON.parse(nested(1_000_000)), 10), true);
  assert.equal(deeperThan(JSON.parse(nested(1_000_000)), 2_000_000), false);
});
