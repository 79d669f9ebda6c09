/**
 * Golden table for the Kubernetes authorization tuple. The first part rebuilds
 * the cases of kube-apiserver's own requestinfo_test.go (TestGetAPIRequestInfo,
 * TestGetNonAPIRequestInfo, TestSelectorParsing; facts carried over, table
 * written here):
 * https://github.com/kubernetes/kubernetes/blob/master/staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo_test.go
 * The second part is kubegate's own: exec/attach/portforward are `create`
 * whatever the method (KEP-4006), deletecollection, field-selector naming,
 * watch via the query, and the decoding corner cases.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KgError } from '../../common/errors.js';
import { requestInfo, type RequestInfo } from '../../proxy/authz/request-info.js';

function infoFor(method: string, url: string): RequestInfo {
  const q = url.indexOf('?');
  return q < 0
    ? requestInfo(method, url, '')
    : requestInfo(method, url.slice(0, q), url.slice(q + 1));
}

// --- Kubernetes: TestGetAPIRequestInfo success cases ------------------------

interface ResourceCase {
  method: string;
  url: string;
  verb: string;
  apiPrefix: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  parts: string[];
}

function rc(
  method: string,
  url: string,
  verb: string,
  apiPrefix: string,
  apiGroup: string,
  apiVersion: string,
  namespace: string,
  resource: string,
  subresource: string,
  name: string,
  parts: string[],
): ResourceCase {
  return {
    method,
    url,
    verb,
    apiPrefix,
    apiGroup,
    apiVersion,
    namespace,
    resource,
    subresource,
    name,
    parts,
  };
}

const k8sResourceCases: ResourceCase[] = [
  // resource paths
  rc('GET', '/api/v1/namespaces', 'list', 'api', '', 'v1', '', 'namespaces', '', '', [
    'namespaces',
  ]),
  rc(
    'GET',
    '/api/v1/namespaces/other',
    'get',
    'api',
    '',
    'v1',
    'other',
    'namespaces',
    '',
    'other',
    ['namespaces', 'other'],
  ),
  rc('GET', '/api/v1/namespaces/other/pods', 'list', 'api', '', 'v1', 'other', 'pods', '', '', [
    'pods',
  ]),
  rc(
    'GET',
    '/api/v1/namespaces/other/pods/foo',
    'get',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    'foo',
    ['pods', 'foo'],
  ),
  rc(
    'HEAD',
    '/api/v1/namespaces/other/pods/foo',
    'get',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    'foo',
    ['pods', 'foo'],
  ),
  rc('GET', '/api/v1/pods', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']),
  rc('HEAD', '/api/v1/pods', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']),
  rc(
    'GET',
    '/api/v1/namespaces/other/pods/foo',
    'get',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    'foo',
    ['pods', 'foo'],
  ),
  rc('GET', '/api/v1/namespaces/other/pods', 'list', 'api', '', 'v1', 'other', 'pods', '', '', [
    'pods',
  ]),
  rc(
    'PATCH',
    '/api/v1/namespaces/new-namespace',
    'patch',
    'api',
    '',
    'v1',
    'new-namespace',
    'namespaces',
    '',
    'new-namespace',
    ['namespaces', 'new-namespace'],
  ),
  // special verbs
  rc(
    'GET',
    '/api/v1/proxy/namespaces/other/pods/foo',
    'proxy',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    'foo',
    ['pods', 'foo'],
  ),
  rc(
    'GET',
    '/api/v1/proxy/namespaces/other/pods/foo/subpath/not/a/subresource',
    'proxy',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    'foo',
    ['pods', 'foo', 'subpath', 'not', 'a', 'subresource'],
  ),
  rc('GET', '/api/v1/watch/pods', 'watch', 'api', '', 'v1', '', 'pods', '', '', ['pods']),
  rc('GET', '/api/v1/pods?watch=true', 'watch', 'api', '', 'v1', '', 'pods', '', '', ['pods']),
  rc('GET', '/api/v1/pods?watch=false', 'list', 'api', '', 'v1', '', 'pods', '', '', ['pods']),
  rc(
    'GET',
    '/api/v1/watch/namespaces/other/pods',
    'watch',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    '',
    ['pods'],
  ),
  rc(
    'GET',
    '/api/v1/namespaces/other/pods?watch=1',
    'watch',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    '',
    ['pods'],
  ),
  rc(
    'GET',
    '/api/v1/namespaces/other/pods?watch=0',
    'list',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    '',
    ['pods'],
  ),
  // subresource identification
  rc(
    'GET',
    '/api/v1/namespaces/other/pods/foo/status',
    'get',
    'api',
    '',
    'v1',
    'other',
    'pods',
    'status',
    'foo',
    ['pods', 'foo', 'status'],
  ),
  rc(
    'GET',
    '/api/v1/namespaces/other/pods/foo/proxy/subpath',
    'get',
    'api',
    '',
    'v1',
    'other',
    'pods',
    'proxy',
    'foo',
    ['pods', 'foo', 'proxy', 'subpath'],
  ),
  rc(
    'PUT',
    '/api/v1/namespaces/other/finalize',
    'update',
    'api',
    '',
    'v1',
    'other',
    'namespaces',
    'finalize',
    'other',
    ['namespaces', 'other', 'finalize'],
  ),
  rc(
    'PUT',
    '/api/v1/namespaces/other/status',
    'update',
    'api',
    '',
    'v1',
    'other',
    'namespaces',
    'status',
    'other',
    ['namespaces', 'other', 'status'],
  ),
  // verb identification
  rc(
    'PATCH',
    '/api/v1/namespaces/other/pods/foo',
    'patch',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    'foo',
    ['pods', 'foo'],
  ),
  rc(
    'DELETE',
    '/api/v1/namespaces/other/pods/foo',
    'delete',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    'foo',
    ['pods', 'foo'],
  ),
  rc('POST', '/api/v1/namespaces/other/pods', 'create', 'api', '', 'v1', 'other', 'pods', '', '', [
    'pods',
  ]),
  // deletecollection verb identification
  rc('DELETE', '/api/v1/nodes', 'deletecollection', 'api', '', 'v1', '', 'nodes', '', '', [
    'nodes',
  ]),
  rc(
    'DELETE',
    '/api/v1/namespaces',
    'deletecollection',
    'api',
    '',
    'v1',
    '',
    'namespaces',
    '',
    '',
    ['namespaces'],
  ),
  rc(
    'DELETE',
    '/api/v1/namespaces/other/pods',
    'deletecollection',
    'api',
    '',
    'v1',
    'other',
    'pods',
    '',
    '',
    ['pods'],
  ),
  // Upstream lists apiPrefix "api" for the /apis cases but never asserts it; the real value is "apis".
  rc(
    'DELETE',
    '/apis/extensions/v1/namespaces/other/pods',
    'deletecollection',
    'apis',
    'extensions',
    'v1',
    'other',
    'pods',
    '',
    '',
    ['pods'],
  ),
  // api group identification
  rc(
    'POST',
    '/apis/extensions/v1/namespaces/other/pods',
    'create',
    'apis',
    'extensions',
    'v1',
    'other',
    'pods',
    '',
    '',
    ['pods'],
  ),
  // api version identification
  rc(
    'POST',
    '/apis/extensions/v1beta3/namespaces/other/pods',
    'create',
    'apis',
    'extensions',
    'v1beta3',
    'other',
    'pods',
    '',
    '',
    ['pods'],
  ),
];

for (const c of k8sResourceCases) {
  test(`k8s TestGetAPIRequestInfo: ${c.method} ${c.url}`, () => {
    const got = infoFor(c.method, c.url);
    assert.equal(got.isResourceRequest, true);
    const fields = [
      'verb',
      'apiPrefix',
      'apiGroup',
      'apiVersion',
      'namespace',
      'resource',
      'subresource',
      'name',
      'parts',
    ] as const;
    for (const f of fields) assert.deepEqual(got[f], c[f], `${f} of ${c.method} ${c.url}`);
  });
}

// --- Kubernetes: TestGetAPIRequestInfo error cases and TestGetNonAPIRequestInfo

const k8sNonResourceCases: [string, string][] = [
  ['no resource path', '/'],
  ['just apiversion', '/api/version/'],
  ['just prefix, group, version', '/apis/group/version/'],
  ['apiversion with no resource', '/api/version/'],
  ['bad prefix', '/badprefix/version/resource'],
  ['missing api group', '/apis/version/resource'],
];

for (const [name, url] of k8sNonResourceCases) {
  test(`k8s TestGetAPIRequestInfo error case: ${name}`, () => {
    const got = infoFor('GET', url);
    assert.equal(got.isResourceRequest, false);
    assert.equal(got.verb, 'get');
    assert.equal(got.path, url);
  });
}

const k8sIsResourceCases: [string, string, boolean][] = [
  ['simple groupless', '/api/version/resource', true],
  ['simple group', '/apis/group/version/resource/name/subresource', true],
  ['more steps', '/api/version/resource/name/subresource', true],
  ['group list', '/apis/batch/v1/job', true],
  ['group get', '/apis/batch/v1/job/foo', true],
  ['group subresource', '/apis/batch/v1/job/foo/scale', true],
  ['bad root', '/not-api/version/resource', false],
  ['group without enough steps', '/apis/extensions/v1beta1', false],
  ['group without enough steps 2', '/apis/extensions/v1beta1/', false],
  ['not enough steps', '/api/version', false],
  ['one step', '/api', false],
  ['zero step', '/', false],
  ['empty', '', false],
];

for (const [name, url, expected] of k8sIsResourceCases) {
  test(`k8s TestGetNonAPIRequestInfo: ${name}`, () => {
    assert.equal(infoFor('GET', url).isResourceRequest, expected);
  });
}

// --- Kubernetes: TestSelectorParsing (name and verb) ------------------------

const k8sSelectorCases: {
  name: string;
  method: string;
  url: string;
  verb: string;
  expectName: string;
}[] = [
  {
    name: 'no selector',
    method: 'GET',
    url: '/apis/group/version/resource',
    verb: 'list',
    expectName: '',
  },
  {
    name: 'metadata.name selector',
    method: 'GET',
    url: '/apis/group/version/resource?fieldSelector=metadata.name=name1',
    verb: 'list',
    expectName: 'name1',
  },
  {
    name: 'metadata.name selector with watch',
    method: 'GET',
    url: '/apis/group/version/resource?watch=true&fieldSelector=metadata.name=name1',
    verb: 'watch',
    expectName: 'name1',
  },
  {
    name: 'random selector',
    method: 'GET',
    url: '/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux',
    verb: 'list',
    expectName: '',
  },
  {
    name: 'invalid selector with metadata.name',
    method: 'GET',
    url: '/apis/group/version/resource?fieldSelector=metadata.name=name1,foo',
    verb: 'list',
    expectName: '',
  },
  {
    name: 'invalid selector with metadata.name with watch',
    method: 'GET',
    url: '/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=true',
    verb: 'watch',
    expectName: '',
  },
  {
    name: 'invalid selector with metadata.name with watch false',
    method: 'GET',
    url: '/apis/group/version/resource?fieldSelector=metadata.name=name1,foo&watch=false',
    verb: 'list',
    expectName: '',
  },
  {
    name: 'selector on deletecollection is honored',
    method: 'DELETE',
    url: '/apis/group/version/resource?fieldSelector=foo=bar&labelSelector=baz=qux',
    verb: 'deletecollection',
    expectName: '',
  },
  {
    name: 'selector on repeated param matches parsed param',
    method: 'GET',
    url: '/apis/group/version/resource?fieldSelector=metadata.name=foo&fieldSelector=metadata.name=bar&labelSelector=foo=bar&labelSelector=foo=baz',
    verb: 'list',
    expectName: 'foo',
  },
  {
    name: 'selector on other verb is ignored',
    method: 'GET',
    url: '/apis/group/version/resource/name?fieldSelector=foo=bar&labelSelector=foo=bar',
    verb: 'get',
    expectName: 'name',
  },
  {
    name: 'selector on deprecated root type watch is not parsed',
    method: 'GET',
    url: '/apis/group/version/watch/resource?fieldSelector=metadata.name=foo&labelSelector=foo=bar',
    verb: 'watch',
    expectName: '',
  },
  {
    name: 'selector on deprecated root item watch is not parsed',
    method: 'GET',
    url: '/apis/group/version/watch/resource/name?fieldSelector=metadata.name=foo&labelSelector=foo=bar',
    verb: 'watch',
    expectName: 'name',
  },
];

for (const c of k8sSelectorCases) {
  test(`k8s TestSelectorParsing: ${c.name}`, () => {
    const got = infoFor(c.method, c.url);
    assert.equal(got.verb, c.verb);
    assert.equal(got.name, c.expectName);
  });
}

/** How many golden cases come from the Kubernetes project's own tests. */
const kubernetesGoldenCases =
  k8sResourceCases.length +
  k8sNonResourceCases.length +
  k8sIsResourceCases.length +
  k8sSelectorCases.length;

// --- kubegate's own cases ---------------------------------------------------

interface OwnCase {
  name: string;
  method: string;
  url: string;
  want: Partial<RequestInfo>;
}

const own: OwnCase[] = [
  // KEP-4006: connecting to a container is `create`, whatever the method.
  {
    name: 'exec via WebSocket GET is create',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods/web/exec?command=sh&stdin=true&tty=true',
    want: { verb: 'create', resource: 'pods', subresource: 'exec', name: 'web', namespace: 'dev' },
  },
  {
    name: 'exec via SPDY POST is create',
    method: 'POST',
    url: '/api/v1/namespaces/dev/pods/web/exec?command=ls',
    want: { verb: 'create', subresource: 'exec' },
  },
  {
    name: 'attach via GET is create',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods/web/attach',
    want: { verb: 'create', subresource: 'attach' },
  },
  {
    name: 'portforward via GET is create',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods/web/portforward?ports=8080',
    want: { verb: 'create', subresource: 'portforward' },
  },
  {
    name: 'portforward via POST is create',
    method: 'POST',
    url: '/api/v1/namespaces/dev/pods/web/portforward',
    want: { verb: 'create', subresource: 'portforward' },
  },
  {
    name: 'exec via PUT is still create',
    method: 'PUT',
    url: '/api/v1/namespaces/dev/pods/web/exec',
    want: { verb: 'create' },
  },
  {
    name: 'exec via HEAD is still create',
    method: 'HEAD',
    url: '/api/v1/namespaces/dev/pods/web/exec',
    want: { verb: 'create' },
  },
  {
    name: 'pods/log stays get',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods/web/log?follow=true',
    want: { verb: 'get', subresource: 'log' },
  },
  {
    name: 'pods/proxy stays get',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods/web:8080/proxy/metrics',
    want: { verb: 'get', subresource: 'proxy', name: 'web:8080' },
  },
  {
    name: 'nodes/proxy stays get',
    method: 'GET',
    url: '/api/v1/nodes/n1/proxy/exec/dev/web/c',
    want: { verb: 'get', resource: 'nodes', subresource: 'proxy', name: 'n1', namespace: '' },
  },
  {
    name: 'exec of a non-core "pods" is not rewritten',
    method: 'GET',
    url: '/apis/example.com/v1/namespaces/dev/pods/web/exec',
    want: { verb: 'get', apiGroup: 'example.com' },
  },
  {
    name: 'services/proxy with trailing slash',
    method: 'GET',
    url: '/api/v1/namespaces/dev/services/web:80/proxy/',
    want: { verb: 'get', resource: 'services', subresource: 'proxy', name: 'web:80' },
  },
  // deletecollection
  {
    name: 'deletecollection in a namespace',
    method: 'DELETE',
    url: '/apis/apps/v1/namespaces/dev/deployments',
    want: { verb: 'deletecollection', apiGroup: 'apps', resource: 'deployments', namespace: 'dev' },
  },
  {
    name: 'deletecollection with metadata.name selector carries no name',
    method: 'DELETE',
    url: '/api/v1/namespaces/dev/pods?fieldSelector=metadata.name%3Dweb',
    want: { verb: 'deletecollection', name: '' },
  },
  {
    name: 'delete of one object',
    method: 'DELETE',
    url: '/apis/apps/v1/namespaces/dev/deployments/api',
    want: { verb: 'delete', name: 'api' },
  },
  // field selector naming
  {
    name: 'kubectl get pod web -w',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods?fieldSelector=metadata.name%3Dweb&resourceVersion=0&watch=true',
    want: { verb: 'watch', name: 'web', fieldSelectorName: 'web' },
  },
  {
    name: 'metadata.name== names too',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods?fieldSelector=metadata.name%3D%3Dweb',
    want: { verb: 'list', name: 'web' },
  },
  {
    name: 'metadata.name!= does not name',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods?fieldSelector=metadata.name!%3Dweb',
    want: { verb: 'list', name: '' },
  },
  {
    name: 'other terms alongside metadata.name',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1,metadata.name%3Dweb',
    want: { verb: 'list', name: 'web' },
  },
  {
    name: 'two metadata.name terms: first in byte order',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name%3Db,metadata.name%3Da',
    want: { name: 'a' },
  },
  {
    name: 'escaped comma in the value',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name%3Da%5C%2Cb',
    want: { name: 'a,b' },
  },
  {
    name: 'bad escape in the value',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name%3Da%5Cb',
    want: { verb: 'list', name: '' },
  },
  {
    name: 'name with a slash is not a name',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name%3Da/b',
    want: { name: '' },
  },
  {
    name: 'name .. is not a name',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name%3D..',
    want: { name: '' },
  },
  {
    name: 'name with % is not a name',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name%3Da%25b',
    want: { name: '' },
  },
  {
    name: 'empty name is not a name',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name%3D',
    want: { verb: 'list', name: '' },
  },
  {
    name: 'bad limit drops the name',
    method: 'GET',
    url: '/api/v1/pods?limit=abc&fieldSelector=metadata.name%3Dweb',
    want: { verb: 'list', name: '' },
  },
  {
    name: 'limit out of int64 drops the name',
    method: 'GET',
    url: '/api/v1/pods?limit=9223372036854775808&fieldSelector=metadata.name%3Dweb',
    want: { name: '' },
  },
  {
    name: 'valid limit keeps the name',
    method: 'GET',
    url: '/api/v1/pods?limit=500&fieldSelector=metadata.name%3Dweb',
    want: { name: 'web' },
  },
  {
    name: 'bad timeoutSeconds drops the name, watch still read',
    method: 'GET',
    url: '/api/v1/pods?timeoutSeconds=1.5&watch=1&fieldSelector=metadata.name%3Dweb',
    want: { verb: 'watch', name: '' },
  },
  {
    name: 'valid label selector keeps the name',
    method: 'GET',
    url: '/api/v1/pods?labelSelector=app%3Dweb,tier%20in%20(a,b),!legacy&fieldSelector=metadata.name%3Dweb',
    want: { name: 'web' },
  },
  {
    name: 'invalid label selector drops the name',
    method: 'GET',
    url: '/api/v1/pods?labelSelector=%3Dx&fieldSelector=metadata.name%3Dweb',
    want: { verb: 'list', name: '' },
  },
  {
    name: 'gt label selector is outside our subset: no name (fail closed)',
    method: 'GET',
    url: '/api/v1/pods?labelSelector=a%3E1&fieldSelector=metadata.name%3Dweb',
    want: { name: '' },
  },
  {
    name: 'a pair with ; is skipped like Go url.ParseQuery',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name%3Dweb;x',
    want: { verb: 'list', name: '' },
  },
  {
    name: 'encoded key names the parameter',
    method: 'GET',
    url: '/api/v1/pods?field%53elector=metadata.name%3Dweb',
    want: { name: 'web' },
  },
  {
    name: 'plus is a space',
    method: 'GET',
    url: '/api/v1/pods?fieldSelector=metadata.name+%3D+web',
    want: { name: '' },
  },
  // watch via the query
  {
    name: 'watch=yes is watch',
    method: 'GET',
    url: '/api/v1/pods?watch=yes',
    want: { verb: 'watch' },
  },
  {
    name: 'watch= (empty) is watch',
    method: 'GET',
    url: '/api/v1/pods?watch=',
    want: { verb: 'watch' },
  },
  {
    name: 'bare watch is watch',
    method: 'GET',
    url: '/api/v1/pods?watch',
    want: { verb: 'watch' },
  },
  {
    name: 'watch=FALSE is list',
    method: 'GET',
    url: '/api/v1/pods?watch=FALSE',
    want: { verb: 'list' },
  },
  {
    name: 'first watch value wins',
    method: 'GET',
    url: '/api/v1/pods?watch=false&watch=true',
    want: { verb: 'list' },
  },
  {
    name: 'watch on a named object stays get',
    method: 'GET',
    url: '/api/v1/namespaces/dev/pods/web?watch=true',
    want: { verb: 'get', name: 'web' },
  },
  {
    name: 'legacy /watch/ prefix on a named object',
    method: 'GET',
    url: '/api/v1/watch/namespaces/dev/pods/web',
    want: { verb: 'watch', name: 'web' },
  },
  // namespaces and decoding
  {
    name: 'get a namespace sets the namespace attribute',
    method: 'GET',
    url: '/api/v1/namespaces/dev',
    want: { verb: 'get', resource: 'namespaces', name: 'dev', namespace: 'dev' },
  },
  {
    name: 'namespace subresource status',
    method: 'GET',
    url: '/api/v1/namespaces/dev/status',
    want: { resource: 'namespaces', subresource: 'status', name: 'dev' },
  },
  {
    name: 'percent-decoded name',
    method: 'GET',
    url: '/api/v1/namespaces/dev/configmaps/a%20b',
    want: { name: 'a b', path: '/api/v1/namespaces/dev/configmaps/a b' },
  },
  {
    name: 'create of a cluster-scoped object',
    method: 'POST',
    url: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
    want: { verb: 'create', apiGroup: 'rbac.authorization.k8s.io', namespace: '' },
  },
  {
    name: 'unknown method on a resource is verb ""',
    method: 'OPTIONS',
    url: '/api/v1/pods',
    want: { verb: '', isResourceRequest: true },
  },
  // non-resource
  {
    name: 'non-resource GET /metrics',
    method: 'GET',
    url: '/metrics',
    want: { isResourceRequest: false, verb: 'get', path: '/metrics', parts: [] },
  },
  {
    name: 'non-resource POST keeps the method',
    method: 'POST',
    url: '/apis',
    want: { isResourceRequest: false, verb: 'post' },
  },
  {
    name: 'discovery of a group',
    method: 'GET',
    url: '/apis/apps/v1',
    want: { isResourceRequest: false, verb: 'get', path: '/apis/apps/v1' },
  },
  {
    name: 'non-resource keeps the trailing slash in path',
    method: 'GET',
    url: '/version/',
    want: { isResourceRequest: false, path: '/version/' },
  },
];

for (const c of own) {
  test(`kubegate: ${c.name}`, () => {
    const got = infoFor(c.method, c.url);
    for (const [k, v] of Object.entries(c.want)) {
      assert.deepEqual(got[k as keyof RequestInfo], v, `${k} of ${c.method} ${c.url}`);
    }
  });
}

test('a special verb with nothing after it is a 400, as the apiserver refuses it', () => {
  for (const url of ['/api/v1/watch', '/api/v1/proxy', '/apis/apps/v1/watch']) {
    assert.throws(
      () => infoFor('GET', url),
      (e: unknown) =>
        e instanceof KgError &&
        e.code === 'KG_ERR_BAD_PATH' &&
        /unable to determine kind/.test(e.message),
    );
  }
});

test('the golden table holds the Kubernetes cases', () => {
  assert.equal(kubernetesGoldenCases, 62);
});

// --- properties -------------------------------------------------------------

const word = fc.constantFrom(
  'api',
  'apis',
  'v1',
  'apps',
  'namespaces',
  'dev',
  'pods',
  'web',
  'exec',
  'attach',
  'portforward',
  'log',
  'status',
  'finalize',
  'watch',
  'proxy',
  'nodes',
  'x',
);
const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS');
const query = fc.constantFrom(
  '',
  'watch=true',
  'watch=0',
  'fieldSelector=metadata.name%3Dweb',
  'fieldSelector=metadata.name%3Dweb&watch=1',
);

test('property: pods exec/attach/portforward in the core group are always create', () => {
  fc.assert(
    fc.property(method, fc.array(word, { maxLength: 9 }), query, (m, segs, q) => {
      let info: RequestInfo;
      try {
        info = requestInfo(m, `/${segs.join('/')}`, q);
      } catch (e) {
        assert.ok(e instanceof KgError && e.code === 'KG_ERR_BAD_PATH');
        return;
      }
      if (
        info.isResourceRequest &&
        info.apiGroup === '' &&
        info.resource === 'pods' &&
        ['exec', 'attach', 'portforward'].includes(info.subresource)
      ) {
        assert.equal(info.verb, 'create');
      }
      // A `get` always names an object; list/watch never come from a write method.
      if (info.isResourceRequest && info.verb === 'get') assert.notEqual(info.name, '');
      if (info.verb === 'list' || info.verb === 'watch')
        assert.ok(m === 'GET' || m === 'HEAD' || segs.includes('watch'));
      if (info.verb === 'deletecollection') assert.equal(info.name, '');
      if (!info.isResourceRequest) assert.equal(info.verb, m.toLowerCase());
    }),
    { numRuns: 5000 },
  );
});

test('an upgrade on a proxy subresource is create, never get (nodes, pods, services)', () => {
  for (const path of [
    '/api/v1/nodes/n1/proxy/exec/ns/pod/c',
    '/api/v1/namespaces/ns/pods/p/proxy/x',
    '/api/v1/namespaces/ns/services/s:80/proxy/',
    '/api/v1/nodes/n1/proxy',
  ]) {
    assert.equal(requestInfo('GET', path, '', { upgrade: true }).verb, 'create', path);
    // The same GET without an upgrade stays `get`, as the apiserver reads it.
    assert.equal(requestInfo('GET', path, '').verb, 'get', path);
  }
  // Not a proxy subresource: an upgrade changes nothing there.
  assert.equal(
    requestInfo('GET', '/api/v1/namespaces/ns/pods/p/log', '', { upgrade: true }).verb,
    'get',
  );
});

test('property: an upgrade on any proxy subresource is never authorized as get', () => {
  fc.assert(
    fc.property(method, fc.array(word, { maxLength: 9 }), query, (m, segs, q) => {
      let info: RequestInfo;
      try {
        info = requestInfo(m, `/${segs.join('/')}`, q, { upgrade: true });
      } catch (e) {
        assert.ok(e instanceof KgError && e.code === 'KG_ERR_BAD_PATH');
        return;
      }
      if (info.isResourceRequest && info.subresource === 'proxy') assert.notEqual(info.verb, 'get');
    }),
    { numRuns: 3000 },
  );
});
