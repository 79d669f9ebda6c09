/**
 * Approvals against a real PostgreSQL: expiry announced exactly once while
 * several "replicas" (separate pools) sweep at the same time, outbox
 * pruning by retention, paged lists (limit + continue) including an
 * approver's filtered queue, and giving back a spent approval.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KgError } from '../../common/errors.js';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { sweepOnce } from '../../proxy/approvals/housekeeping.js';
import { pruneDeliveries } from '../../proxy/approvals/notify.js';
import { createPolicy } from '../../proxy/approvals/policies.js';
import { ApprovalRequests } from '../../proxy/approvals/requests.js';
import type { Actor } from '../../proxy/approvals/records.js';
import { returnApproval, spendApproval } from '../../proxy/approvals/actions.js';
import { ProxyMetrics } from '../../proxy/metrics.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';

let server: PgServer;
let url: string;
let pool: Pool;

before(async () => {
  server = await startPostgres();
  url = await createDatabase(server);
  pool = createPool({ url });
  await migrate(pool);
});
after(async () => {
  await pool?.end();
  await server?.stop();
});
beforeEach(async () => {
  await pool.query(
    'TRUNCATE approval_requests, approval_policies, approval_webhooks, approval_deliveries, clusters CASCADE',
  );
});

const person = (name: string, groups: string[], admin = false): Actor => ({
  name,
  kind: 'user',
  groups,
  actor: `user:${name}`,
  admin,
});

/** A gated-action request row, as the gate would have opened it. */
async function action(
  fingerprint: string,
  status: string,
  opts: { pendingFor?: string; window?: string } = {},
): Promise<string> {
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO approval_requests (kind, status, requester, requester_kind, spec, fingerprint, cluster,
            pending_until, executable_until, decided_at)
     VALUES ('action', $1, 'dev', 'user', $2, $3, 'prod', now() + $4::interval,
             CASE WHEN $5::interval IS NULL THEN NULL ELSE now() + $5::interval END,
             CASE WHEN $1 = 'pending' THEN NULL ELSE now() END)
     RETURNING id`,
    [
      status,
      JSON.stringify({
        cluster: 'prod',
        verb: 'patch',
        resource: 'ingresses',
        subresource: '',
        name: 'web',
        namespace: 'shop',
        policies: ['prod-ingress'],
      }),
      fingerprint,
      opts.pendingFor ?? '1 hour',
      opts.window ?? null,
    ],
  );
  return rows[0]!.id;
}

async function webhook(): Promise<void> {
  await pool.query(
    `INSERT INTO approval_webhooks (url, format, secret_sealed) VALUES ('http://127.0.0.1:9/x', 'json', 'sealed')`,
  );
}

describe('expiry', () => {
  test('each due request is expired, audited and announced exactly once across replicas', async () => {
    await webhook();
    await webhook();
    const due: string[] = [];
    for (let i = 0; i < 30; i++)
      due.push(await action(`fp-due-${i}`, 'pending', { pendingFor: '-1 second' }));
    // An approved action whose window passed unused expires too; fresh ones do not.
    const unused = await action('fp-unused', 'approved', { window: '-1 second' });
    const fresh = await action('fp-fresh', 'pending');
    const ready = await action('fp-ready', 'approved', { window: '10 minutes' });

    const replicas = [pool, createPool({ url }), createPool({ url })];
    const requests = new ApprovalRequests(pool, 'https://kg.example.test');
    const noticeOf = requests.notice.bind(requests);
    let kicks = 0;
    try {
      const counts = await Promise.all(
        replicas.flatMap((p) => [0, 1, 2].map(() => sweepOnce(p, noticeOf, () => kicks++))),
      );
      // Anything a sweep left (it takes at most a batch) is taken by the next one.
      let total = counts.reduce((a, b) => a + b, 0);
      for (let n = 1; n > 0; total += n) n = await sweepOnce(pool, noticeOf, () => kicks++);
      assert.equal(total, 31, 'every due row was expired by exactly one sweep');
      assert.ok(kicks >= 1);
    } finally {
      await Promise.all(replicas.slice(1).map((p) => p.end()));
    }

    const status = async (id: string) =>
      (
        await pool.query<{ status: string }>('SELECT status FROM approval_requests WHERE id = $1', [
          id,
        ])
      ).rows[0]!.status;
    for (const id of [...due, unused]) assert.equal(await status(id), 'expired');
    assert.equal(await status(fresh), 'pending');
    assert.equal(await status(ready), 'approved');

    const events = await pool.query<{ id: string; n: number }>(
      `SELECT event->'annotations'->>'kubegate.dev/approval-id' AS id, count(*)::int AS n
         FROM audit_events WHERE verb = 'expire' GROUP BY 1`,
    );
    assert.equal(events.rows.length, 31);
    assert.ok(
      events.rows.every((r) => r.n === 1),
      JSON.stringify(events.rows),
    );
    const sent = await pool.query<{ id: string; n: number }>(
      `SELECT payload->'approval'->>'id' AS id, count(*)::int AS n FROM approval_deliveries
        WHERE event = 'approval.expired' GROUP BY 1`,
    );
    assert.equal(sent.rows.length, 31);
    assert.ok(
      sent.rows.every((r) => r.n === 2),
      'one delivery per webhook, once',
    );
    const one = await pool.query<{ payload: { approval: Record<string, string> } }>(
      `SELECT payload FROM approval_deliveries WHERE payload->'approval'->>'id' = $1 LIMIT 1`,
      [unused],
    );
    assert.equal(one.rows[0]!.payload.approval.status, 'expired');
    assert.equal(one.rows[0]!.payload.approval.actor, 'system:kubegate');
    assert.match(one.rows[0]!.payload.approval.reason, /not sent again within its window/);

    // A later sweep finds nothing more to announce.
    assert.equal(await sweepOnce(pool, noticeOf, () => undefined), 0);
  });

  test('a sweep limited to one gated request leaves the others', async () => {
    const a = await action('fp-a', 'pending', { pendingFor: '-1 second' });
    const b = await action('fp-b', 'pending', { pendingFor: '-1 second' });
    const requests = new ApprovalRequests(pool, 'https://kg.example.test');
    assert.equal(await requests.sweep('fp-a'), 1);
    const rows = await pool.query<{ id: string; status: string }>(
      'SELECT id, status FROM approval_requests ORDER BY status',
    );
    assert.deepEqual(
      rows.rows.map((r) => [r.id, r.status]),
      [
        [a, 'expired'],
        [b, 'pending'],
      ],
    );
  });
});

test('pruning deletes delivered and given-up outbox rows past their retention only', async () => {
  await webhook();
  const add = async (label: string, delivered: string | null, givenUp: string | null) =>
    pool.query(
      `INSERT INTO approval_deliveries (webhook_id, event, payload, delivered_at, given_up_at, created_at)
       SELECT id, $1, '{}'::jsonb, now() - $2::interval, now() - $3::interval, now() - interval '40 days'
         FROM approval_webhooks`,
      [label, delivered, givenUp],
    );
  await add('delivered-old', '8 days', null);
  await add('delivered-new', '1 day', null);
  await add('given-up-old', null, '31 days');
  await add('given-up-new', null, '8 days');
  await add('still-trying', null, null);
  assert.equal(await pruneDeliveries(pool, 7 * 86400, 30 * 86400), 2);
  const left = await pool.query<{ event: string }>(
    'SELECT event FROM approval_deliveries ORDER BY event',
  );
  assert.deepEqual(
    left.rows.map((r) => r.event),
    ['delivered-new', 'given-up-new', 'still-trying'],
  );
  // Approval requests are never pruned: they are audit records.
  await action('fp-old', 'executed');
  await pool.query(`UPDATE approval_requests SET created_at = now() - interval '400 days'`);
  await pruneDeliveries(pool, 0, 0);
  assert.equal((await pool.query('SELECT 1 FROM approval_requests')).rowCount, 1);
});

describe('paged lists', () => {
  test('limit + continue walk every request once, newest first', async () => {
    const requests = new ApprovalRequests(pool, 'https://kg.example.test');
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.unshift(await action(`fp-${i}`, 'pending'));
    const dev = person('dev', ['developers']);
    const seen: string[] = [];
    let cont: string | undefined;
    const sizes: number[] = [];
    do {
      const page = await requests.list(dev, {
        view: 'mine',
        limit: 3,
        ...(cont ? { continue: cont } : {}),
      });
      sizes.push(page.items.length);
      seen.push(...page.items.map((x) => x.id));
      cont = page.continue;
    } while (cont);
    assert.deepEqual(sizes, [3, 3, 1]);
    assert.deepEqual(seen, ids, 'newest first, none twice, none missed');
    // Exactly a page's worth: no continue on the last page.
    assert.equal((await requests.list(dev, { view: 'mine', limit: 7 })).continue, undefined);
    await assert.rejects(
      requests.list(dev, { view: 'mine', continue: 'bm90LWEtY3Vyc29y' }),
      (e: unknown) => e instanceof KgError && e.code === 'KG_ERR_BAD_REQUEST',
    );
  });

  test("an approver's queue is filtered by policy across pages", async () => {
    await pool.query(
      `INSERT INTO clusters (name, labels) VALUES ('prod', '{"env":"prod"}'), ('dev', '{"env":"dev"}')`,
    );
    await createPolicy(
      pool,
      {
        name: 'prod-edit',
        kind: 'access',
        approvers: { groups: ['platform-leads'] },
        roles: ['edit'],
        clusters: { selector: { matchLabels: { env: 'prod' } } },
        maxDuration: '1h',
      },
      'test',
    );
    await createPolicy(
      pool,
      {
        name: 'dev-edit',
        kind: 'access',
        approvers: { groups: ['dev-leads'] },
        roles: ['edit'],
        clusters: { names: ['dev'] },
        maxDuration: '1h',
      },
      'test',
    );
    const requests = new ApprovalRequests(pool, 'https://kg.example.test');
    const dev = person('dev', ['developers']);
    const prodIds: string[] = [];
    for (let i = 0; i < 10; i++) {
      const cluster = i % 3 === 0 ? 'prod' : 'dev';
      const v = await requests.createAccess(dev, {
        role: 'edit',
        clusters: { names: [cluster] },
        duration: '10m',
        reason: `r${i}`,
      });
      if (cluster === 'prod') prodIds.unshift(v.id);
    }
    const lead = person('lead', ['platform-leads']);
    const seen: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const page = await requests.list(lead, {
        view: 'approvable',
        limit: 2,
        ...(cont ? { continue: cont } : {}),
      });
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((x) => x.id));
      cont = page.continue;
      pages++;
    } while (cont);
    assert.deepEqual(seen, prodIds, 'only the prod requests, newest first');
    assert.equal(pages, 2);
    // The metrics registry knows the new series (the docs test lists them).
    const names = (await new ProxyMetrics().registry.getMetricsAsJSON()).map((m) => m.name);
    assert.ok(names.includes('kubegate_approval_requests_total'));
  });
});

test('a spent approval is given back once, only while nothing else is open for the request', async () => {
  const id = await action('fp-x', 'approved', { window: '10 minutes' });
  const audit = '11111111-2222-4333-8444-555555555555';
  assert.equal(await spendApproval(pool, 'fp-x', audit), id);
  assert.equal(await spendApproval(pool, 'fp-x', audit), undefined, 'spent once');
  assert.equal(
    await returnApproval(pool, id, '99999999-2222-4333-8444-555555555555'),
    false,
    'only by its own execution',
  );
  assert.equal(await returnApproval(pool, id, audit), true);
  assert.equal(await returnApproval(pool, id, audit), false, 'given back once');
  const other = '66666666-2222-4333-8444-555555555555';
  assert.equal(await spendApproval(pool, 'fp-x', other), id, 'usable again');
  // Meanwhile the identical request opened a new approval: this one stays spent.
  await action('fp-x', 'pending');
  assert.equal(await returnApproval(pool, id, other), false);
  const rows = await pool.query<{ status: string }>(
    'SELECT status FROM approval_requests WHERE id = $1',
    [id],
  );
  assert.equal(rows.rows[0]!.status, 'executed');
  const returned = await pool.query(
    `SELECT 1 FROM audit_events WHERE verb = 'return'
      AND event->'annotations'->>'kubegate.dev/approval-id' = $1`,
    [id],
  );
  assert.equal(returned.rowCount, 1);
});
