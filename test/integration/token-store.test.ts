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
import { DbHealth } from '../../proxy/db/health.js';
import { SourceBudget } from '../../proxy/authn/source-budget.js';
import { mintToken } from '../../proxy/authn/token.js';
import { KgError } from '../../common/errors.js';
import pgLib from 'pg';

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

  test('a flood of made-up tokens from one address reaches the database at most `burst` times, then gets 429', async () => {
    const c = counting(pool);
    const budget = new SourceBudget({ burst: 20, perSecond: 1 });
    const store = new TokenStore(c.pool, { sourceBudget: budget });
    const { token } = await store.create({
      subject: 'dave',
      kind: 'user',
      groups: [],
      ttlMs: 60_000,
    });
    let refused = 0;
    let unknown = 0;
    for (let i = 0; i < 500; i++) {
      try {
        if ((await store.authenticate(mintToken(), '203.0.113.7')) === undefined) unknown++;
      } catch (e) {
        assert.ok(e instanceof KgError && e.code === 'KG_ERR_RATE_LIMITED' && e.status === 429);
        assert.ok((e.retryAfter ?? 0) >= 1);
        refused++;
      }
    }
    console.log(
      `# 500 made-up tokens from one address: ${c.lookups()} database lookups, ${unknown} unknown, ${refused} refused with 429`,
    );
    assert.ok(c.lookups() <= 21, `lookups ${c.lookups()}`);
    assert.equal(unknown + refused, 500);
    // A real token from another address is not affected.
    assert.equal((await store.authenticate(token, '198.51.100.1'))?.user, 'dave');
  });

  test('a burst for one uncached token from one address rides on one lookup and is not rate limited', async () => {
    const c = counting(pool);
    const store = new TokenStore(c.pool, {
      sourceBudget: new SourceBudget({ burst: 5, perSecond: 1 }),
    });
    const { token } = await store.create({
      subject: 'gina',
      kind: 'user',
      groups: [],
      ttlMs: 60_000,
    });
    // 1,300 watches opened at once by one client (client-go after a reconnect does this).
    const ids = await Promise.all(
      Array.from({ length: 1300 }, () => store.authenticate(token, '192.0.2.10')),
    );
    assert.ok(ids.every((id) => id?.user === 'gina'));
    assert.equal(c.lookups(), 1);
  });

  test('the same unknown token asked again is answered from memory (negative cache)', async () => {
    const c = counting(pool);
    const store = new TokenStore(c.pool, { negativeMs: 5000 });
    const made = mintToken();
    for (let i = 0; i < 100; i++) assert.equal(await store.authenticate(made), undefined);
    assert.equal(c.lookups(), 1);
    // A token created after its hash was remembered as unknown is not hidden by it.
    const { token } = await store.create({
      subject: 'erin',
      kind: 'user',
      groups: [],
      ttlMs: 60_000,
    });
    assert.equal((await store.authenticate(token))?.user, 'erin');
  });

  test('a frozen database: known tokens from memory within the bound, nobody waits past the deadline, service resumes on thaw', async () => {
    // A server of its own, frozen with SIGSTOP (a hang, not a refusal).
    const frozenPg = await startPostgres();
    const url = await createDatabase(frozenPg, 'kgfrz');
    const health = new DbHealth({ suspectAfterMs: 600 });
    const p = createPool({ url, health, statementTimeoutMs: 2000, connectTimeoutMs: 1000 });
    await migrate(p);
    // The heartbeat, as the policy store runs it.
    let hb: pgLib.Client | undefined;
    let beating = false;
    const beat = async () => {
      if (beating) return;
      beating = true;
      health.probeSent();
      try {
        if (!hb) {
          const c = new pgLib.Client({
            connectionString: url,
            connectionTimeoutMillis: 3000,
            query_timeout: 3000,
          });
          c.on('error', () => undefined);
          await c.connect();
          hb = c;
        }
        await hb.query('SELECT 1');
        health.answered();
      } catch {
        health.failed();
        void hb?.end().catch(() => undefined);
        hb = undefined;
      } finally {
        beating = false;
      }
    };
    const timer = setInterval(() => void beat(), 250);
    const store = new TokenStore(p, { cacheMs: 200, staleMs: 3000, health, lookupDeadlineMs: 800 });
    try {
      const { token } = await store.create({
        subject: 'frank',
        kind: 'user',
        groups: [],
        ttlMs: 60_000,
      });
      assert.equal((await store.authenticate(token))?.user, 'frank');
      frozenPg.freeze();
      const frozenAt = Date.now();
      const waits: number[] = [];
      const outcomes: string[] = [];
      while (Date.now() - frozenAt < 5000) {
        const t0 = Date.now();
        try {
          const id = await store.authenticate(token);
          outcomes.push(id ? 'ok' : 'unknown');
        } catch {
          outcomes.push('unavailable');
        }
        waits.push(Date.now() - t0);
        const unknownT0 = Date.now();
        await store.authenticate(mintToken()).catch(() => undefined);
        waits.push(Date.now() - unknownT0);
        await new Promise((r) => setTimeout(r, 100));
      }
      const max = Math.max(...waits);
      console.log(
        `# frozen 5 s: ${waits.length} lookups, max wait ${max} ms; known token: ${outcomes.filter((o) => o === 'ok').length} ok, ${outcomes.filter((o) => o === 'unavailable').length} unavailable`,
      );
      assert.ok(max <= 1000, `a lookup waited ${max} ms`);
      assert.ok(
        outcomes.slice(0, 5).every((o) => o === 'ok'),
        'within the staleness bound: from memory',
      );
      assert.equal(outcomes.at(-1), 'unavailable', 'past the bound: refused');
      assert.ok(!outcomes.includes('unknown'), 'never a wrong "unknown" for a known token');
      frozenPg.thaw();
      const thawAt = Date.now();
      let resumed: number | undefined;
      while (Date.now() - thawAt < 5000) {
        const id = await store.authenticate(token).catch(() => undefined);
        if (id?.user === 'frank') {
          resumed = Date.now() - thawAt;
          break;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
      console.log(`# thawed: lookups answered again after ${resumed} ms`);
      assert.ok(resumed !== undefined && resumed <= 1000, `resumed after ${resumed} ms`);
    } finally {
      frozenPg.thaw();
      clearInterval(timer);
      await hb?.end().catch(() => undefined);
      await p.end().catch(() => undefined);
      health.stop();
      await frozenPg.stop();
    }
  });
});
