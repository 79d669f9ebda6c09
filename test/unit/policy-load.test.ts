/**
 * loadPolicy reads the whole policy as one snapshot on one connection: its
 * queries go one at a time (a pg connection runs one query at a time; firing
 * them together is deprecated in pg 8 and refused in pg 9) inside a
 * REPEATABLE READ, READ ONLY transaction. The snapshot itself is checked
 * against PostgreSQL in test/integration/rbac-store.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadPolicy } from '../../proxy/authz/policy-store.js';
import type { Queryable } from '../../proxy/db/query.js';

function rowsFor(text: string): object[] {
  if (/FROM clusters/.test(text)) return [{ name: 'c1', labels: { env: 'prod' }, disabled: false }];
  if (/FROM roles/.test(text))
    return [
      { name: 'pod-reader', rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] },
    ];
  if (/FROM bindings/.test(text))
    return [
      {
        id: 'b1',
        subjects: [{ kind: 'Group', name: 'dev' }],
        role: 'pod-reader',
        cluster_names: ['c1'],
        cluster_selector: null,
        namespaces: [],
        expires_at: null,
        reason: 'on call',
      },
    ];
  if (/FROM users/.test(text)) return [{ username: 'gone' }];
  return [];
}

test('the policy is read one query at a time, inside one read-only snapshot', async () => {
  const sent: string[] = [];
  let inFlight = 0;
  let most = 0;
  const db = {
    query: async (text: string) => {
      sent.push(text);
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return { rows: rowsFor(text) };
    },
  } as unknown as Queryable;

  const state = await loadPolicy(db);

  assert.equal(most, 1, 'never more than one query in flight on the connection');
  assert.equal(sent[0], 'BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
  assert.equal(sent[sent.length - 1], 'COMMIT');
  assert.equal(sent.length, 6, 'BEGIN, four reads, COMMIT');
  assert.deepEqual([...state.clusters.keys()], ['c1']);
  assert.ok(state.snapshot.roles.has('pod-reader'));
  assert.ok(state.snapshot.roles.has('view'), 'built-in roles are always there');
  assert.deepEqual(state.snapshot.bindings[0]?.clusters, { names: ['c1'] });
  assert.ok(state.snapshot.deactivatedUsers?.has('gone'));
});

test('a failed read rolls the snapshot back and reports the error as it came', async () => {
  const sent: string[] = [];
  const lost = new Error('Connection terminated unexpectedly');
  const db = {
    query: async (text: string) => {
      sent.push(text);
      if (/FROM roles/.test(text)) throw lost;
      return { rows: rowsFor(text) };
    },
  } as unknown as Queryable;
  await assert.rejects(loadPolicy(db), (err) => err === lost);
  assert.equal(sent[sent.length - 1], 'ROLLBACK');
});
