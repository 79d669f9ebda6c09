/**
 * The token cache against real PostgreSQL: a burst of requests for an
 * uncached token costs one database lookup, and a revocation that lands while
 * a lookup is in flight is never answered from that lookup.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { TokenStore } from '../../proxy/authn/token-store.js';
import { hashToken } from '../../proxy/authn/token.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';

let pg: PgServer;
let pool: Pool;

/** A pool that counts the token lookups it runs. */
function counting(p: Pool): { pool: Pool; lookups: () => number } {
  let n = 0;
  const wrapped = Object.create(p) as Pool;
  wrapped.query = ((text: unknown, ...rest: unknown[]) => {
    if (typeof text === 'string' && text.includes('SET last_used_at')) n++;
    return (p.query as (...a: unknown[]) => unknown)(text, ...rest);
  }) as Pool['query'];
  return { pool: wrapped, lookups: () => n };
}

describe('token store cache', { timeout: 120_000 }, () => {
  before(async () => {
    pg = await startPostgres();
    pool = createPool({ url: await createDatabase(pg, 'kgtok') });
    await migrate(pool);
  });
  after(async () => {
    await pool?.end();
    await pg?.stop();
  });

  test('a burst for an uncached token runs one lookup; all get the identity', async () => {
    const c = counting(pool);
    const store = new TokenStore(c.pool);
    const { token } = await store.create({
      subject: 'alice',
      kind: 'user',
      groups: ['dev'],
      ttlMs: 60_000,
    });
    const ids = await Promise.all(Array.from({ length: 50 }, () => store.authenticate(token)));
    assert.ok(ids.every((id) => id?.user === 'alice'));
    assert.equal(c.lookups(), 1);
  });

  test('an entry close to expiry is refreshed in the background, without making the request wait', async () => {
    const c = counting(pool);
    const store = new TokenStore(c.pool, 400);
    const { token } = await store.create({
      subject: 'bob',
      kind: 'user',
      groups: [],
      ttlMs: 60_000,
    });
    await store.authenticate(token);
    await new Promise((r) => setTimeout(r, 330)); // within the last quarter of the entry's life
    assert.equal((await store.authenticate(token))?.user, 'bob');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(c.lookups(), 2, 'one background refresh');
    // The refreshed entry is fresh again: no lookup for the next request.
    await store.authenticate(token);
    assert.equal(c.lookups(), 2);
  });

  test('a revocation during an in-flight lookup: later requests do not get the stale answer', async () => {
    const store = new TokenStore(pool);
    const { token, id } = await store.create({
      subject: 'carol',
      kind: 'user',
      groups: [],
      ttlMs: 60_000,
    });
    const early = store.authenticate(token); // in flight
    await pool.query('UPDATE api_tokens SET revoked_at = now() WHERE id = $1', [id]);
    store.evict(hashToken(token)); // what the NOTIFY listener does
    const late = await store.authenticate(token);
    assert.equal(late, undefined, 'a request after the revocation is refused');
    await early;
    assert.equal(await store.authenticate(token), undefined, 'and the early answer was not cached');
  });
});
