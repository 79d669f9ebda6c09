/**
 * Route + raw path validation (docs/security.md "Path confusion"). A table of
 * accepted and rejected targets, including the shapes of Envoy
 * CVE-2019-9901 and Traefik CVE-2025-32431, then properties: accepted targets
 * reassemble to the input byte for byte, and whatever is accepted decodes to
 * segments that no normaliser would change — what we authorise is what the
 * apiserver routes on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { posix } from 'node:path';
import fc from 'fast-check';
import { KgError } from '../../common/errors.js';
import {
  decodePath,
  decodeSegments,
  routeKubeRequest,
  type KubeRoute,
} from '../../proxy/route/kube-path.js';

interface Case {
  name: string;
  input: string;
  expected?: KubeRoute;
  error?: RegExp;
}

const ok = (cluster: string, kubePath: string, rawQuery = ''): KubeRoute => ({
  cluster,
  kubePath,
  rawQuery,
});

const cases: Case[] = [
  // accepted
  {
    name: 'list with query',
    input: '/k8s/dev/api/v1/namespaces?limit=500',
    expected: ok('dev', '/api/v1/namespaces', 'limit=500'),
  },
  { name: 'bare cluster', input: '/k8s/dev', expected: ok('dev', '/') },
  { name: 'bare cluster with slash', input: '/k8s/dev/', expected: ok('dev', '/') },
  {
    name: 'bare cluster with query',
    input: '/k8s/dev?timeout=32s',
    expected: ok('dev', '/', 'timeout=32s'),
  },
  { name: 'cluster slash with query', input: '/k8s/dev/?x', expected: ok('dev', '/', 'x') },
  { name: 'empty query', input: '/k8s/dev/api?', expected: ok('dev', '/api', '') },
  {
    name: 'grouped resource',
    input: '/k8s/eu-1/apis/apps/v1/namespaces/web/deployments/api',
    expected: ok('eu-1', '/apis/apps/v1/namespaces/web/deployments/api'),
  },
  {
    name: 'exec query forwarded as-is',
    input:
      '/k8s/dev/api/v1/namespaces/default/pods/web/exec?command=sh&command=-c&command=echo%20hi&stdin=true',
    expected: ok(
      'dev',
      '/api/v1/namespaces/default/pods/web/exec',
      'command=sh&command=-c&command=echo%20hi&stdin=true',
    ),
  },
  {
    name: 'proxy subresource with trailing slash',
    input: '/k8s/dev/api/v1/namespaces/x/services/web:80/proxy/',
    expected: ok('dev', '/api/v1/namespaces/x/services/web:80/proxy/'),
  },
  {
    name: 'dots inside a name',
    input: '/k8s/dev/api/v1/namespaces/x/configmaps/a.b..c',
    expected: ok('dev', '/api/v1/namespaces/x/configmaps/a.b..c'),
  },
  {
    name: 'three dots is a name, not a dot segment',
    input: '/k8s/dev/api/v1/namespaces/x/configmaps/...',
    expected: ok('dev', '/api/v1/namespaces/x/configmaps/...'),
  },
  {
    name: 'encoded space in a name',
    input: '/k8s/dev/api/v1/namespaces/x/configmaps/a%20b',
    expected: ok('dev', '/api/v1/namespaces/x/configmaps/a%20b'),
  },
  {
    name: 'encoded dot inside a name is not normalised',
    input: '/k8s/dev/apis/x/v1/things/a%2Eb',
    expected: ok('dev', '/apis/x/v1/things/a%2Eb'),
  },
  { name: 'percent-encoded UTF-8', input: '/k8s/dev/x/%C3%A9', expected: ok('dev', '/x/%C3%A9') },
  { name: 'one-letter cluster', input: '/k8s/a/api', expected: ok('a', '/api') },
  {
    name: '63-char cluster',
    input: `/k8s/${'a'.repeat(63)}/api`,
    expected: ok('a'.repeat(63), '/api'),
  },
  {
    name: '%25 allowed in the query',
    input: '/k8s/dev/api/v1/pods?labelSelector=a%3Db%25',
    expected: ok('dev', '/api/v1/pods', 'labelSelector=a%3Db%25'),
  },
  {
    name: 'query keeps its own ? and /',
    input: '/k8s/dev/api?a=/b?c',
    expected: ok('dev', '/api', 'a=/b?c'),
  },

  // dot segments (Envoy CVE-2019-9901, Traefik CVE-2025-32431)
  {
    name: 'raw .. climbing to another object',
    input: '/k8s/dev/api/v1/namespaces/default/pods/../../kube-system/secrets',
    error: /dot segments/,
  },
  {
    name: 'encoded %2e%2e',
    input: '/k8s/dev/api/v1/namespaces/default/%2e%2e/kube-system/secrets',
    error: /dot segments/,
  },
  {
    name: 'mixed-case %2E%2e climbing out of the cluster',
    input: '/k8s/dev/%2E%2e/prod/api/v1/secrets',
    error: /dot segments/,
  },
  { name: 'half-encoded .%2e', input: '/k8s/dev/api/.%2e/x', error: /dot segments/ },
  { name: 'raw .', input: '/k8s/dev/api/./v1', error: /dot segments/ },
  { name: 'encoded %2e', input: '/k8s/dev/api/%2e/v1', error: /dot segments/ },
  { name: 'trailing ..', input: '/k8s/dev/api/..', error: /dot segments/ },
  { name: 'dot as cluster', input: '/k8s/../prod/api', error: /dot segments/ },
  { name: 'encoded dot as cluster', input: '/k8s/%2e%2e/prod/api', error: /dot segments/ },

  // encoded separators, double encoding, NUL, parameters
  {
    name: 'encoded slash %2f',
    input: '/k8s/dev/api/v1/namespaces/kube-system%2fsecrets',
    error: /encoded '\/'/,
  },
  { name: 'encoded slash %2F', input: '/k8s/dev/api/v1/namespaces/a%2Fb', error: /encoded '\/'/ },
  {
    name: '..%2f traversal',
    input: '/k8s/dev/api/v1/namespaces/default/pods/..%2f..%2fsecrets',
    error: /encoded '\/'/,
  },
  {
    name: 'encoded backslash %5c',
    input: '/k8s/dev/api/v1/namespaces/a%5cb',
    error: /encoded '\\'/,
  },
  { name: 'encoded backslash %5C', input: '/k8s/dev/api/%5C..', error: /encoded '\\'/ },
  { name: 'raw backslash', input: '/k8s/dev/api\\v1', error: /backslash/ },
  { name: 'raw backslash traversal', input: '/k8s/dev\\..\\prod/api', error: /backslash/ },
  { name: 'semicolon parameter', input: '/k8s/dev/api/v1/pods;a=b', error: /';'/ },
  { name: 'semicolon in cluster', input: '/k8s/dev;prod/api', error: /';'/ },
  { name: 'encoded semicolon', input: '/k8s/dev/api/v1/pods%3bx', error: /encoded ';'/ },
  {
    name: 'double encoding %252e%252e',
    input: '/k8s/dev/api/v1/%252e%252e/secrets',
    error: /double encoding/,
  },
  {
    name: 'double encoding %25 anywhere',
    input: '/k8s/dev/api/v1/configmaps/a%25b',
    error: /double encoding/,
  },
  {
    name: 'double-encoded slash %252f',
    input: '/k8s/dev/api/v1/namespaces/a%252fb',
    error: /double encoding/,
  },
  { name: 'encoded NUL', input: '/k8s/dev/api%00', error: /NUL/ },
  {
    name: 'encoded newline',
    input: '/k8s/dev/api/v1/configmaps/a%0ab',
    error: /control character/,
  },
  { name: 'encoded DEL', input: '/k8s/dev/api/v1/configmaps/a%7f', error: /control character/ },
  { name: 'invalid UTF-8 %ff', input: '/k8s/dev/api/v1/configmaps/%ff', error: /UTF-8/ },
  { name: 'overlong UTF-8 for / (%c0%af)', input: '/k8s/dev/api/%c0%af', error: /UTF-8/ },

  // malformed escapes
  { name: 'bad hex %zz', input: '/k8s/dev/api%zz', error: /malformed percent-encoding/ },
  { name: 'truncated %4', input: '/k8s/dev/api%4', error: /malformed percent-encoding/ },
  { name: 'lone % at end', input: '/k8s/dev/api%', error: /malformed percent-encoding/ },
  {
    name: 'truncated before a slash',
    input: '/k8s/dev/a%2/b',
    error: /malformed percent-encoding/,
  },

  // raw bytes
  { name: 'raw NUL', input: '/k8s/dev/api\u0000', error: /raw byte 0x00/ },
  { name: 'raw DEL', input: '/k8s/dev/api\u007f', error: /raw byte 0x7f/ },
  { name: 'raw escape', input: '/k8s/dev/api\u001b[0m', error: /raw byte 0x1b/ },
  { name: 'raw newline', input: '/k8s/dev/api\nHost: x', error: /raw byte 0x0a/ },
  { name: 'raw tab', input: '/k8s/dev/api\t', error: /raw byte 0x09/ },
  { name: 'raw non-ASCII', input: '/k8s/dev/caf\u00e9', error: /raw byte/ },
  { name: 'raw space', input: '/k8s/dev/a b', error: /raw space/ },
  {
    name: 'raw < must be encoded',
    input: '/k8s/dev/api/v1/configmaps/<x>',
    error: /must be percent-encoded/,
  },
  {
    name: 'raw quote must be encoded',
    input: '/k8s/dev/api/"x"',
    error: /must be percent-encoded/,
  },

  // fragments
  { name: 'fragment in path', input: '/k8s/dev/api#frag', error: /'#'/ },
  { name: 'fragment after query', input: '/k8s/dev/api?x=1#f', error: /'#'/ },

  // empty segments
  { name: 'empty segment after cluster', input: '/k8s/dev//api', error: /empty segments/ },
  { name: 'empty segment in the middle', input: '/k8s/dev/api//v1', error: /empty segments/ },
  { name: 'double trailing slash', input: '/k8s/dev/api/v1//', error: /empty segments/ },
  { name: 'cluster followed by //', input: '/k8s/dev//', error: /empty segments/ },

  // prefix and cluster name
  { name: 'empty cluster', input: '/k8s//api', error: /must name a cluster/ },
  { name: 'just /k8s/', input: '/k8s/', error: /must name a cluster/ },
  { name: 'just /k8s', input: '/k8s', error: /must name a cluster/ },
  { name: 'root', input: '/', error: /must start with \/k8s\// },
  { name: 'empty target', input: '', error: /must start with \/k8s\// },
  { name: 'not under /k8s', input: '/api/v1/pods', error: /must start with \/k8s\// },
  { name: 'prefix without separator', input: '/k8sdev/api', error: /must start with \/k8s\// },
  {
    name: 'absolute-form target',
    input: 'http://evil.example/k8s/dev/api',
    error: /must start with \/k8s\//,
  },
  { name: 'asterisk-form target', input: '*', error: /must start with \/k8s\// },
  { name: 'upper-case prefix', input: '/K8S/dev/api', error: /must start with \/k8s\// },
  { name: 'encoded slash after k8s', input: '/k8s%2fdev/api', error: /must start with \/k8s\// },
  { name: 'upper-case cluster', input: '/k8s/DEV/api', error: /cluster name "DEV" is not valid/ },
  { name: 'cluster starts with -', input: '/k8s/-dev/api', error: /DNS-1123/ },
  { name: 'cluster ends with -', input: '/k8s/dev-/api', error: /DNS-1123/ },
  { name: 'underscore in cluster', input: '/k8s/de_v/api', error: /DNS-1123/ },
  { name: 'dotted cluster', input: '/k8s/dev.prod/api', error: /DNS-1123/ },
  { name: 'percent-encoded cluster', input: '/k8s/%64ev/api', error: /DNS-1123/ },
  { name: '64-char cluster', input: `/k8s/${'a'.repeat(64)}/api`, error: /DNS-1123/ },

  // query
  { name: 'encoded NUL in query', input: '/k8s/dev/api?x=%00', error: /query: an encoded NUL/ },
  { name: 'malformed escape in query', input: '/k8s/dev/api?x=%zz', error: /query: malformed/ },
  { name: 'truncated escape in query', input: '/k8s/dev/api?x=%4', error: /query: malformed/ },
  { name: 'raw control in query', input: '/k8s/dev/api?x=\u0001', error: /raw byte 0x01/ },
  { name: 'raw space in query', input: '/k8s/dev/api?a b', error: /raw space/ },
];

for (const c of cases) {
  test(`route: ${c.name}`, () => {
    if (c.error) {
      assert.throws(
        () => routeKubeRequest(c.input),
        (err: unknown) => {
          assert.ok(err instanceof KgError, 'a KgError');
          assert.equal(err.code, 'KG_ERR_BAD_PATH');
          assert.equal(err.status, 400);
          assert.match(err.message, c.error as RegExp);
          return true;
        },
      );
    } else {
      assert.deepEqual(routeKubeRequest(c.input), c.expected);
    }
  });
}

test('decodeSegments splits and decodes like the apiserver', () => {
  assert.deepEqual(decodeSegments('/'), []);
  assert.deepEqual(decodeSegments(''), []);
  assert.deepEqual(decodeSegments('/api/v1/pods'), ['api', 'v1', 'pods']);
  assert.deepEqual(decodeSegments('/api/v1/pods/'), ['api', 'v1', 'pods']);
  assert.deepEqual(decodeSegments('/x/a%20b/%C3%A9'), ['x', 'a b', 'é']);
  assert.equal(decodePath('/x/a%20b/'), '/x/a b/');
  assert.throws(
    () => decodeSegments('/x/%zz'),
    (e: unknown) => e instanceof KgError && e.code === 'KG_ERR_BAD_PATH',
  );
});

// ---------------------------------------------------------------------------
// properties

const tricky = [
  'a',
  'b',
  'z',
  '0',
  '-',
  '.',
  '/',
  '%',
  '2',
  '5',
  'e',
  'E',
  'f',
  'F',
  'c',
  'C',
  '?',
  '&',
  '=',
  ';',
  '\\',
  '#',
  ' ',
  ':',
  '@',
  '~',
  '\u0000',
  '\u007f',
  '\u00e9',
];
const trickyString = fc.string({ unit: fc.constantFrom(...tricky), maxLength: 40 });
const clusterish = fc.oneof(fc.constantFrom('dev', 'prod', 'eu-1', 'a'), trickyString);
const target = fc.oneof(
  fc.tuple(clusterish, trickyString).map(([c, rest]) => `/k8s/${c}${rest}`),
  fc.tuple(clusterish, trickyString).map(([c, rest]) => `/k8s/${c}/${rest}`),
  trickyString,
);

/** Either a route, or a KgError KG_ERR_BAD_PATH — never any other exception. */
function tryRoute(input: string): KubeRoute | undefined {
  try {
    return routeKubeRequest(input);
  } catch (err) {
    assert.ok(
      err instanceof KgError && err.code === 'KG_ERR_BAD_PATH',
      `unexpected error ${String(err)}`,
    );
    return undefined;
  }
}

test('property: an accepted target reassembles to exactly the input', () => {
  fc.assert(
    fc.property(target, (input) => {
      const r = tryRoute(input);
      if (!r) return;
      const q = input.includes('?') ? `?${r.rawQuery}` : '';
      const full = `/k8s/${r.cluster}${r.kubePath}${q}`;
      const bare = `/k8s/${r.cluster}${q}`;
      assert.ok(input === full || (r.kubePath === '/' && input === bare), `${input} vs ${full}`);
      assert.match(r.cluster, /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/);
      assert.ok(r.kubePath.startsWith('/'));
      assert.ok(!r.kubePath.includes('?') && !r.kubePath.includes('//'));
    }),
    { numRuns: 3000 },
  );
});

test('property: accepted paths decode to segments nothing would normalise (authorised = forwarded)', () => {
  const segAlphabet = ['.', '%', '2', 'e', 'E', 'f', 'F', '5', 'c', '/', '\\', ';', '\u0000', 'a'];
  const segments = fc.array(fc.string({ unit: fc.constantFrom(...segAlphabet), maxLength: 8 }), {
    maxLength: 6,
  });
  let accepted = 0;
  fc.assert(
    fc.property(segments, (segs) => {
      const r = tryRoute(`/k8s/dev/${segs.join('/')}`);
      if (!r) return;
      accepted++;
      const decoded = decodeSegments(r.kubePath);
      for (const s of decoded) {
        assert.ok(s !== '.' && s !== '..', `dot segment ${JSON.stringify(s)} from ${r.kubePath}`);
        assert.ok(
          !s.includes('/') && !s.includes('\\') && !s.includes('\u0000'),
          JSON.stringify(s),
        );
        assert.notEqual(s, '');
      }
      // What Go's apiserver splits from req.URL.Path is exactly our segments …
      const whole = decodePath(r.kubePath);
      assert.deepEqual(
        whole.split('/').filter((s) => s !== ''),
        decoded,
      );
      // … decoding per segment agrees with a standard decoder …
      assert.deepEqual(
        decoded,
        r.kubePath
          .split('/')
          .filter((s) => s !== '')
          .map(decodeURIComponent),
      );
      // … and no path normaliser anywhere downstream would change it.
      assert.equal(posix.normalize(whole), whole);
    }),
    { numRuns: 5000 },
  );
  assert.ok(accepted > 0, 'the generator must reach accepted paths too');
});

test('property: any string is either routed or a 400 KG_ERR_BAD_PATH', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), target), (input) => {
      tryRoute(input);
    }),
    { numRuns: 3000 },
  );
});

test('property: the cluster is always the first raw segment after /k8s/', () => {
  fc.assert(
    fc.property(fc.constantFrom('dev', 'prod', 'eu-1'), trickyString, (cluster, rest) => {
      const r = tryRoute(`/k8s/${cluster}/${rest}`);
      if (r) assert.equal(r.cluster, cluster);
    }),
    { numRuns: 2000 },
  );
});
