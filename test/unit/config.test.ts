import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, parseDuration, parseHostPort } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import { enrollAddressOf, loadProxyConfig } from '../../proxy/config.js';

test('durations', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('15m'), 900_000);
  assert.equal(parseDuration('8h'), 28_800_000);
  assert.equal(parseDuration('2d'), 172_800_000);
  assert.equal(parseDuration('1500'), 1500);
  assert.equal(parseDuration('soon'), undefined);
});

test('host:port', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443 });
  assert.deepEqual(parseHostPort('[::1]:8443'), { host: '::1', port: 8443 });
  assert.throws(() => parseHostPort('nope'), KgError);
});

test('every problem is reported at once, and the result is frozen', () => {
  try {
    loadProxyConfig({ KUBEGATE_TOKEN_TTL: 'forever', KUBEGATE_MAX_REQUEST_BODY: 'big' });
    assert.fail('should throw');
  } catch (err) {
    assert.ok(err instanceof KgError);
    assert.equal(err.code, 'KG_ERR_CONFIG');
    for (const want of [
      'DATABASE_URL',
      'KUBEGATE_MASTER_KEY',
      'KUBEGATE_PUBLIC_URL',
      'KUBEGATE_TUNNEL_ADDRESS',
      'KUBEGATE_TOKEN_TTL',
      'KUBEGATE_MAX_REQUEST_BODY',
    ]) {
      assert.match(err.message, new RegExp(want), `mentions ${want}`);
    }
  }
  const c = loadConfig({ a: { env: 'A', type: 'int', doc: 'a' } }, { a: 1 }, {});
  assert.ok(Object.isFrozen(c));
  assert.equal(c.a, 1);
});

test('environment beats defaults; secrets stay out of error messages', () => {
  const c = loadProxyConfig({
    DATABASE_URL: 'postgres://u:hunter2@db/kg',
    KUBEGATE_MASTER_KEY: 'k',
    KUBEGATE_PUBLIC_URL: 'https://kg.example.com',
    KUBEGATE_TUNNEL_ADDRESS: 'kg:8444',
    KUBEGATE_TOKEN_TTL: '2h',
  });
  assert.equal(c.tokenTtl, 7_200_000);
  assert.equal(c.listen, '127.0.0.1:8443');
  try {
    loadProxyConfig({
      DATABASE_URL: 'postgres://u:hunter2@db/kg',
      KUBEGATE_PUBLIC_URL: 'not a url',
    });
  } catch (err) {
    assert.ok(!(err as Error).message.includes('hunter2'));
  }
});

test('agents enroll at enrollAddress, else at the tunnel host on the enrollment port', () => {
  const base = { tunnelAddress: 'kg-tunnel.example.com:443', enrollListen: '0.0.0.0:8445' };
  assert.equal(enrollAddressOf(base), 'kg-tunnel.example.com:8445');
  assert.equal(
    enrollAddressOf({ ...base, enrollAddress: 'kg-enroll.example.com:443' }),
    'kg-enroll.example.com:443',
  );
  assert.equal(
    enrollAddressOf({ ...base, tunnelAddress: '[2001:db8::1]:8444' }),
    '[2001:db8::1]:8445',
  );
  const c = loadProxyConfig({
    DATABASE_URL: 'postgres://db/kg',
    KUBEGATE_MASTER_KEY: 'k',
    KUBEGATE_PUBLIC_URL: 'https://kg.example.com',
    KUBEGATE_TUNNEL_ADDRESS: 'kg:8444',
  });
  assert.equal(c.enrollListen, '127.0.0.1:8445');
  assert.notEqual(c.enrollListen, c.tunnelListen, 'never the tunnel port');
  assert.equal(enrollAddressOf(c), 'kg:8445');
});
