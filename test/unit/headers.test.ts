/**
 * Impersonation smuggling (docs/security.md; Rancher CVE-2021-36776,
 * CVE-2021-31999): no client identity header ever leaves the proxy, whatever
 * its case, repetition or Connection-header trickery.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { forwardRequestHeaders, isHopByHopResponseHeader } from '../../proxy/forward/headers.js';

const identityHeader =
  /^(authorization|impersonate-.*|x-remote-.*|cookie|proxy-authorization|kg-.*)$/i;

const cases: { name: string; raw: string[]; expected: Record<string, string | string[]> }[] = [
  {
    name: 'plain kubectl GET keeps what the apiserver needs',
    raw: [
      'Accept',
      'application/json',
      'User-Agent',
      'kubectl/v1.34',
      'Authorization',
      'Bearer kg_x',
    ],
    expected: { accept: 'application/json', 'user-agent': 'kubectl/v1.34' },
  },
  {
    name: 'Impersonate-* in any case is dropped',
    raw: [
      'Impersonate-User',
      'admin',
      'IMPERSONATE-GROUP',
      'system:masters',
      'impersonate-uid',
      '0',
      'Impersonate-Extra-scopes',
      'x',
      'Accept',
      '*/*',
    ],
    expected: { accept: '*/*' },
  },
  {
    name: 'X-Remote-* (front-proxy auth) is dropped',
    raw: ['X-Remote-User', 'admin', 'x-remote-group', 'system:masters'],
    expected: {},
  },
  {
    name: 'a header named in Connection is dropped even if allowed',
    raw: ['Connection', 'keep-alive, Accept', 'Accept', 'x', 'Content-Type', 'application/json'],
    expected: { 'content-type': 'application/json' },
  },
  {
    name: 'repeated allowed headers keep every value',
    raw: ['Accept', 'a', 'accept', 'b'],
    expected: { accept: ['a', 'b'] },
  },
  {
    name: 'our own tunnel headers cannot be injected',
    raw: ['kg-identity', 'eyJ1c2VyIjoiYWRtaW4ifQ', 'KG-Audit-Id', 'x'],
    expected: {},
  },
  {
    name: 'hop-by-hop and host are dropped',
    raw: [
      'Host',
      'evil',
      'Transfer-Encoding',
      'chunked',
      'Upgrade',
      'h2c',
      'TE',
      'trailers',
      'Keep-Alive',
      '5',
    ],
    expected: {},
  },
];

for (const c of cases) {
  test(`forwardRequestHeaders: ${c.name}`, () => {
    assert.deepEqual(forwardRequestHeaders(c.raw), c.expected);
  });
}

const nameArb = fc.oneof(
  fc.constantFrom(
    'Authorization',
    'Impersonate-User',
    'Impersonate-Group',
    'Impersonate-Uid',
    'Impersonate-Extra-foo',
    'X-Remote-User',
    'Cookie',
    'kg-identity',
    'Accept',
    'Content-Type',
    'User-Agent',
    'Connection',
    'Host',
  ),
  fc.string({ minLength: 1, maxLength: 20 }).filter((s) => /^[A-Za-z0-9-]+$/.test(s)),
);
const caseShuffle = (s: string) =>
  fc
    .array(fc.boolean(), { minLength: s.length, maxLength: s.length })
    .map((flips) =>
      [...s].map((ch, i) => (flips[i] ? ch.toUpperCase() : ch.toLowerCase())).join(''),
    );

test('property: no identity header survives, in any case, order or repetition', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(nameArb.chain(caseShuffle), fc.string({ maxLength: 30 })), {
        maxLength: 25,
      }),
      (pairs) => {
        const out = forwardRequestHeaders(pairs.flat());
        for (const name of Object.keys(out)) {
          assert.ok(!identityHeader.test(name), `leaked ${name}`);
          assert.equal(name, name.toLowerCase());
        }
      },
    ),
    { numRuns: 2000 },
  );
});

test('property: anything named in Connection never survives', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('accept', 'content-type', 'user-agent', 'if-none-match'), {
        minLength: 1,
        maxLength: 4,
      }),
      (named) => {
        const raw = ['Connection', named.join(', '), ...named.flatMap((n) => [n, 'v'])];
        const out = forwardRequestHeaders(raw);
        for (const n of named) assert.equal(out[n], undefined);
      },
    ),
  );
});

test('response hop-by-hop and tunnel headers are not relayed', () => {
  for (const h of [
    'connection',
    'transfer-encoding',
    'keep-alive',
    ':status',
    'kg-agent-error',
    'upgrade',
  ])
    assert.ok(isHopByHopResponseHeader(h), h);
  for (const h of ['content-type', 'audit-id', 'cache-control'])
    assert.ok(!isHopByHopResponseHeader(h), h);
});
