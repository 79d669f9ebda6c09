/**
 * Attack: flood kubegate with requests carrying made-up tokens, first from
 * one address, then from a hundred. Unauthenticated traffic must not be able
 * to exhaust PostgreSQL and, through fail-closed, take kubegate down for
 * everyone: one address gets 429 after a small burst (its failures are
 * budgeted), unknown hashes are remembered, and token lookups hold at most
 * a fixed, small pool of their own. A legitimate user keeps working.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startStack, type Stack } from '../support/stack.js';
import { grant } from '../support/grants.js';
import { credsOf, rawRequest, type Creds } from '../support/creds.js';

let stack: Stack;
let user: Creds;

const madeUp = () => `kg_${randomBytes(32).toString('base64url')}`;

/** Run `n` requests, `width` at a time; returns status counts. */
async function flood(
  n: number,
  width: number,
  source: (i: number) => string,
): Promise<Map<number, number>> {
  const codes = new Map<number, number>();
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const r = await rawRequest(stack.publicUrl, user.ca, {
        path: '/k8s/dev/api/v1/namespaces',
        token: madeUp(),
        localAddress: source(i),
      }).catch(() => ({ status: 0, body: '' }));
      codes.set(r.status, (codes.get(r.status) ?? 0) + 1);
      if (r.status !== 0) {
        const s = JSON.parse(r.body) as { kind: string };
        assert.equal(s.kind, 'Status');
      }
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return codes;
}

async function authnConnections(): Promise<number> {
  const rows = await stack.sql<{ n: string }>(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE 'kubegate-authn%'",
  );
  return Number(rows[0]!.n);
}

/** The legitimate user's requests (from its own address) during a flood. */
async function legit(
  until: Promise<unknown>,
): Promise<{ ok: number; other: number; maxMs: number }> {
  let ok = 0;
  let other = 0;
  let maxMs = 0;
  let done = false;
  void until.then(() => (done = true));
  while (!done) {
    const t0 = Date.now();
    const r = await rawRequest(stack.publicUrl, user.ca, {
      path: '/k8s/dev/api/v1/namespaces/default',
      token: user.token,
      localAddress: '127.0.0.250',
    }).catch(() => ({ status: 0 }));
    maxMs = Math.max(maxMs, Date.now() - t0);
    if (r.status === 200) ok++;
    else other++;
    await new Promise((res) => setTimeout(res, 50));
  }
  return { ok, other, maxMs };
}

describe('unauthenticated floods cost the database a bounded share', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    await grant(stack, { groups: ['ops'], role: 'view', clusters: ['dev'] });
    user = credsOf(await stack.kubeconfig('uma', ['ops']));
  });
  after(() => stack?.stop());

  test('one address: a burst reaches the database, then 429 with Retry-After; the user is unaffected', async () => {
    let maxConns = 0;
    const sampler = setInterval(
      () => void authnConnections().then((n) => (maxConns = Math.max(maxConns, n))),
      100,
    );
    const started = Date.now();
    const attack = flood(2000, 40, () => '127.0.0.9');
    const seen = await legit(attack);
    const codes = await attack;
    const seconds = (Date.now() - started) / 1000;
    clearInterval(sampler);
    console.log(
      `# one address, 2000 made-up tokens: ${JSON.stringify(Object.fromEntries(codes))}; authn connections ≤ ${maxConns}; legit user ${seen.ok} ok, ${seen.other} not, slowest ${seen.maxMs} ms`,
    );
    // Lookups are bounded by the budget: a burst of 60, then 10 a second. A
    // lookup ends in a 401, or in a clear 503 when the database did not answer
    // within the lookup deadline (seen once with the machine at load 11: 1 of
    // 2000); both spent the budget.
    const lookups = (codes.get(401) ?? 0) + (codes.get(503) ?? 0);
    const bound = 60 + Math.ceil(10 * seconds) + 1;
    assert.ok(lookups <= bound, `${lookups} lookups > ${bound} in ${seconds} s`);
    assert.ok((codes.get(429) ?? 0) >= 1000, 'most are refused before any lookup');
    assert.equal(lookups + (codes.get(429) ?? 0), 2000, 'only 401, 429 and a clear 503');
    assert.ok(maxConns <= 4, `${maxConns} lookup connections`);
    assert.equal(seen.other, 0, 'the legitimate user was never refused');
    // The address is still out of budget (it refills at 10 a second: a quick
    // burst meets a 429 at once).
    const quick = await Promise.all(
      Array.from({ length: 20 }, () =>
        rawRequest(stack.publicUrl, user.ca, {
          path: '/k8s/dev/api/v1/namespaces',
          token: madeUp(),
          localAddress: '127.0.0.9',
        }),
      ),
    );
    const limited = quick.find((r) => r.status === 429);
    assert.ok(limited, `no 429 in ${quick.map((r) => r.status).join(',')}`);
    assert.ok(Number(limited.headers['retry-after']) >= 1);
  });

  test('a hundred addresses: lookups hold at most their own small pool; the user keeps working', async () => {
    let maxConns = 0;
    const sampler = setInterval(
      () => void authnConnections().then((n) => (maxConns = Math.max(maxConns, n))),
      100,
    );
    const attack = flood(3000, 60, (i) => `127.0.1.${1 + (i % 100)}`);
    const seen = await legit(attack);
    const codes = await attack;
    clearInterval(sampler);
    console.log(
      `# 100 addresses, 3000 made-up tokens: ${JSON.stringify(Object.fromEntries(codes))}; authn connections ≤ ${maxConns}; legit user ${seen.ok} ok, ${seen.other} not, slowest ${seen.maxMs} ms`,
    );
    assert.ok(maxConns <= 4, `${maxConns} lookup connections`);
    assert.ok(![...codes.keys()].some((c) => c >= 500 && c !== 503), 'no 5xx but a clear 503');
    assert.equal(seen.other, 0, 'the legitimate user was never refused');
    assert.equal(stack.proxy.child.exitCode, null);
  });
});
