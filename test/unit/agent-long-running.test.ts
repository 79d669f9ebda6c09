/**
 * Which agent requests take the HTTP/2 watch pool: only the ones that stay
 * open. A LIST or a GET that wrongly went there would still work, but a write
 * would wait behind every open watch on its connection (see agent/forward/forward.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLongRunning } from '../../agent/forward/forward.js';

test('watches and followed logs are long-running', () => {
  for (const p of [
    '/api/v1/namespaces/a/configmaps?watch=true',
    '/api/v1/pods?resourceVersion=5&watch=1',
    '/apis/apps/v1/deployments?watch=true&allowWatchBookmarks=true',
    '/api/v1/namespaces/a/pods/p/log?container=c&follow=true',
    '/api/v1/watch/namespaces/a/pods',
    '/apis/apps/v1/watch/deployments',
    '/api/v1/watch/namespaces/a/pods?resourceVersion=1',
  ])
    assert.equal(isLongRunning(p), true, p);
});

test('lists, gets and look-alikes are not', () => {
  for (const p of [
    '/api/v1/namespaces/a/configmaps',
    '/api/v1/namespaces/a/configmaps?watch=false',
    '/api/v1/namespaces/a/configmaps?limit=500&continue=abc',
    '/api/v1/namespaces/a/pods/p/log?follow=false',
    '/api/v1/namespaces/a/configmaps?labelSelector=watch%3Dtrue',
    '/api/v1/namespaces/a/configmaps?xwatch=true',
    '/api/v1/namespaces/watch/configmaps',
  ])
    assert.equal(isLongRunning(p), false, p);
});
