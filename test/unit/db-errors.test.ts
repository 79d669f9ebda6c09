/**
 * Which database failures are an outage (503, retry) and which are not: one
 * decision in proxy/db/errors.ts, pinned code by code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KgError } from '../../common/errors.js';
import { dbError, isDataError, isOutage, outageError } from '../../proxy/db/errors.js';
import { DatabaseUnresponsiveError } from '../../proxy/db/health.js';
import { toKgError } from '../../proxy/http/respond-error.js';

/** An error as pg or Node's socket layer raises it: a message and a `code`. */
function coded(code: string, message = `failed with ${code}`): Error {
  return Object.assign(new Error(message), { code });
}

test('connection exceptions, shutdowns, statement timeouts and socket failures are outages', () => {
  const outages: [string, string][] = [
    ['08000', 'connection_exception'],
    ['08001', 'sqlclient_unable_to_establish_sqlconnection'],
    ['08003', 'connection_does_not_exist'],
    ['08004', 'sqlserver_rejected_establishment_of_sqlconnection'],
    ['08006', 'connection_failure'],
    ['08P01', 'protocol_violation'],
    ['57P01', 'admin_shutdown'],
    ['57P02', 'crash_shutdown'],
    ['57P03', 'cannot_connect_now'],
    ['57014', 'query_canceled (statement timeout)'],
    ['ECONNREFUSED', 'connection refused'],
    ['ECONNRESET', 'connection reset'],
    ['ETIMEDOUT', 'connect timed out'],
    ['EPIPE', 'broken pipe'],
    ['ENOTFOUND', 'the database host name does not resolve'],
  ];
  for (const [code, what] of outages) {
    assert.equal(isOutage(coded(code)), true, `${code} (${what}) is an outage`);
  }
});

test("the driver's own timeouts and dropped connections (no code) are outages", () => {
  for (const message of [
    'Connection terminated unexpectedly',
    'Connection terminated due to connection timeout',
    'Query read timeout',
    'timeout exceeded when trying to connect',
  ]) {
    assert.equal(isOutage(new Error(message)), true, message);
  }
});

test("the pool's refusal while the database is suspect is an outage", () => {
  assert.equal(isOutage(new DatabaseUnresponsiveError()), true);
});

test('refused data, bad SQL and plain bugs are not outages', () => {
  const notOutages: [string, string][] = [
    ['23505', 'duplicate key value violates unique constraint "users_username_key"'],
    ['23503', 'insert or update violates foreign key constraint'],
    ['22P02', 'invalid input syntax for type uuid'],
    ['42601', 'syntax error at or near "SELEC"'],
    ['42P01', 'relation "nope" does not exist'],
    ['42501', 'permission denied for table users'],
    ['40001', 'could not serialize access due to concurrent update'],
  ];
  for (const [code, message] of notOutages) {
    assert.equal(isOutage(coded(code, message)), false, `${code} is not an outage`);
  }
  assert.equal(isOutage(new Error('boom')), false);
  assert.equal(
    isOutage(new TypeError("Cannot read properties of undefined (reading 'id')")),
    false,
  );
  for (const v of [undefined, null, 'Connection terminated', 42, {}]) {
    assert.equal(isOutage(v), false, `${String(v)} (not an Error, no code)`);
  }
});

test('data errors (SQLSTATE classes 22 and 23) are what retrying cannot fix', () => {
  for (const code of ['22P02', '22001', '23505', '23503', '23514'])
    assert.equal(isDataError(coded(code)), true, code);
  for (const code of ['08006', '57014', '42601', 'ECONNREFUSED', '2350', '23505x'])
    assert.equal(isDataError(coded(code)), false, code);
  assert.equal(isDataError(new Error('no code')), false);
  assert.equal(isDataError(undefined), false);
});

test('dbError: an outage becomes a 503 to retry, keeping its cause; anything else is left alone', () => {
  const refused = coded('ECONNREFUSED');
  const e = dbError(refused);
  assert.ok(e instanceof KgError);
  assert.equal(e.code, 'KG_ERR_UNAVAILABLE');
  assert.equal(e.status, 503);
  assert.equal(e.retryAfter, 2);
  assert.match(e.message, /database/);
  assert.equal(e.cause, refused);

  const unique = coded('23505');
  assert.equal(dbError(unique), unique, 'a constraint violation stays as it is');
  const bug = new Error('boom');
  assert.equal(dbError(bug), bug, 'a bug stays a bug');
  const ours = new KgError('KG_ERR_BODY_TIMEOUT', 'no body bytes before the timeout');
  assert.equal(dbError(ours), ours, 'our own errors pass through, whatever their message');
});

test("the error responder answers the pool's refusal with the same 503", () => {
  const refusal = new DatabaseUnresponsiveError();
  const e = toKgError(refusal);
  assert.equal(e.code, 'KG_ERR_UNAVAILABLE');
  assert.equal(e.status, 503);
  assert.equal(e.retryAfter, 2);
  assert.equal(e.message, outageError(refusal).message);
  assert.equal(toKgError(new Error('boom')).code, 'KG_ERR_INTERNAL');
});
