/**
 * The RBAC admin store against a real PostgreSQL: validation reports every
 * problem at once, optimistic concurrency, role deletion blocked by use,
 * one admin_changes row per change (and none for a refused one), keyset
 * pagination, cluster administration, the preview of effective bindings,
 * and the policy load reading one snapshot.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KgError, type ErrorCode } from '../../common/errors.js';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import type { Queryable } from '../../proxy/db/query.js';
import { loadPolicy } from '../../proxy/authz/policy-store.js';
import { migrate } from '../../proxy/db/migrate.js';
import { ClusterStore } from '../../proxy/clusters/cluster-store.js';
import { RbacStore, type BindingRecord } from '../../proxy/rbac/rbac-store.js';
import { formatSelector, parseSelectorText } from '../../common/kube-grammar.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';

let server: PgServer;
let pool: Pool;
let store: RbacStore;

before(async () => {
  server = await startPostgres();
  pool = createPool({ url: await createDatabase(server) });
  await migrate(pool);
  store = new RbacStore(pool);
});
after(async () => {
  await pool?.end();
  await server?.stop();
});
beforeEach(async () => {
  await pool.query('TRUNCATE bindings, roles, clusters, admin_changes CASCADE');
});

const actor = 'test:admin';
const podsRead = [{ apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] }];
const inAnHour = () => new Date(Date.now() + 3_600_000).toISOString();

/** Assert `p` rejects with a KgError of `code`; returns it for more checks. */
async function refused(p: Promise<unknown>, code: ErrorCode): Promise<KgError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof KgError, `expected KgError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it succeeded`);
}

function problemsOf(err: KgError): string[] {
  const p = err.details?.problems;
  assert.ok(Array.isArray(p), 'validation errors carry problems');
  return p as string[];
}

function assertHas(problems: string[], re: RegExp): void {
  assert.ok(
    problems.some((p) => re.test(p)),
    `no problem matches ${re}:\n  ${problems.join('\n  ')}`,
  );
}

async function changeRows(kind: string, name: string) {
  const { rows } = await pool.query<{
    actor: string;
    action: string;
    before: Record<string, unknown> | null;
    after: Record<string, unknown> | null;
  }>(
    'SELECT actor, action, before, after FROM admin_changes WHERE kind = $1 AND name = $2 ORDER BY id',
    [kind, name],
  );
  return rows;
}

const binding = (over: Record<string, unknown> = {}) => ({
  subjects: [{ kind: 'Group', name: 'dev' }],
  role: 'view',
  clusters: { names: ['c1'] },
  ...over,
});

describe('roles', () => {
  test('list has the built-ins (read-only) and custom roles, by name', async () => {
    await store.createRole({ name: 'pod-reader', rules: podsRead }, actor);
    const { items } = await store.listRoles();
    const names = items.map((r) => r.name);
    assert.deepEqual(names, [...names].sort());
    for (const b of ['view', 'edit', 'admin', 'cluster-admin']) {
      assert.equal(items.find((r) => r.name === b)?.builtin, true, b);
    }
    const custom = items.find((r) => r.name === 'pod-reader');
    assert.equal(custom?.builtin, false);
    assert.equal(custom?.version, 1);
    assert.equal(custom?.createdBy, actor);
    assert.deepEqual(custom?.rules, podsRead);
  });

  test('role list pages through built-ins and custom roles alike', async () => {
    for (const n of ['a-role', 'f-role', 'z-role']) {
      await store.createRole({ name: n, rules: podsRead }, actor);
    }
    const seen: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const page = await store.listRoles({ limit: 2, continue: cont });
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((r) => r.name));
      cont = page.continue;
      pages++;
    } while (cont);
    assert.deepEqual(seen, [
      'a-role',
      'admin',
      'cluster-admin',
      'edit',
      'f-role',
      'view',
      'z-role',
    ]);
    assert.equal(pages, 4);
  });

  test('create reports every problem at once', async () => {
    const err = await refused(
      store.createRole(
        {
          name: 'Bad_Name',
          color: 'blue',
          rules: [{ verbs: [] }, { apiGroups: [''], resources: ['pods'], verbs: ['GET'] }],
        },
        actor,
      ),
      'KG_ERR_VALIDATION',
    );
    const problems = problemsOf(err);
    assertHas(problems, /^name: "Bad_Name" is not a valid role name/);
    assertHas(problems, /unknown field\(s\): color/);
    assertHas(problems, /^rules\[0\]\.verbs: must be non-empty/);
    assertHas(problems, /^rules\[1\]\.verbs\[0\]: "GET" must be lowercase/);
    assert.equal((await changeRows('role', 'Bad_Name')).length, 0);
  });

  test('a custom role may not take a built-in name, nor an existing one', async () => {
    const err = await refused(
      store.createRole({ name: 'view', rules: podsRead }, actor),
      'KG_ERR_VALIDATION',
    );
    assertHas(problemsOf(err), /"view" is a built-in role/);
    await store.createRole({ name: 'dup', rules: podsRead }, actor);
    await refused(store.createRole({ name: 'dup', rules: podsRead }, actor), 'KG_ERR_CONFLICT');
  });

  test('built-ins are read-only', async () => {
    await refused(
      store.updateRole('edit', { rules: podsRead }, { actor, version: 0 }),
      'KG_ERR_CONFLICT',
    );
    await refused(store.deleteRole('cluster-admin', { actor }), 'KG_ERR_CONFLICT');
    assert.equal((await store.getRole('edit'))?.builtin, true);
  });

  test('update needs the current version; a stale one is refused and changes nothing', async () => {
    await store.createRole({ name: 'r1', rules: podsRead }, actor);
    const v2 = await store.updateRole(
      'r1',
      { description: 'second', rules: podsRead },
      { actor, version: 1 },
    );
    assert.equal(v2.version, 2);
    assert.equal(v2.description, 'second');
    const err = await refused(
      store.updateRole(
        'r1',
        { description: 'lost update', rules: podsRead },
        { actor, version: 1 },
      ),
      'KG_ERR_PRECONDITION_FAILED',
    );
    assert.equal(err.details?.currentVersion, 2);
    assert.equal((await store.getRole('r1'))?.description, 'second');
    await refused(
      store.updateRole('nope', { rules: podsRead }, { actor, version: 1 }),
      'KG_ERR_NOT_FOUND',
    );
    // The precondition is decided before the body is looked at (RFC 9110 §13.2.1).
    await refused(
      store.updateRole('r1', { rules: 'x' }, { actor, version: 1 }),
      'KG_ERR_PRECONDITION_FAILED',
    );
    await refused(
      store.updateRole('r1', { rules: 'x' }, { actor, version: 2 }),
      'KG_ERR_VALIDATION',
    );
  });

  test('of two concurrent updates from the same version, exactly one wins', async () => {
    await store.createRole({ name: 'race', rules: podsRead }, actor);
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((d) =>
        store.updateRole('race', { description: d, rules: podsRead }, { actor, version: 1 }),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected')
        assert.equal((r.reason as KgError).code, 'KG_ERR_PRECONDITION_FAILED');
    }
    assert.equal((await store.getRole('race'))?.version, 2);
  });

  test('delete is refused while bindings use the role, naming them', async () => {
    await store.createRole({ name: 'in-use', rules: podsRead }, actor);
    const b1 = await store.createBinding(binding({ role: 'in-use' }), actor);
    const b2 = await store.createBinding(
      binding({ role: 'in-use', clusters: { names: ['c2'] } }),
      actor,
    );
    const err = await refused(store.deleteRole('in-use', { actor }), 'KG_ERR_CONFLICT');
    assert.match(err.message, new RegExp(b1.id));
    assert.match(err.message, new RegExp(b2.id));
    assert.deepEqual(err.details?.bindings, [b1.id, b2.id]);
    assert.ok(await store.getRole('in-use'), 'still there');
    await store.deleteBinding(b1.id, { actor });
    await store.deleteBinding(b2.id, { actor });
    await store.deleteRole('in-use', { actor, version: 1 });
    assert.equal(await store.getRole('in-use'), undefined);
  });

  test('every change writes one admin_changes row with before and after', async () => {
    await store.createRole({ name: 'logged', description: 'one', rules: podsRead }, actor);
    await store.updateRole(
      'logged',
      { description: 'two', rules: podsRead },
      { actor: 'test:other', version: 1 },
    );
    await refused(
      store.updateRole('logged', { rules: podsRead }, { actor, version: 1 }),
      'KG_ERR_PRECONDITION_FAILED',
    );
    await store.deleteRole('logged', { actor, version: 2 });
    const rows = await changeRows('role', 'logged');
    assert.deepEqual(
      rows.map((r) => [r.action, r.actor]),
      [
        ['create', actor],
        ['update', 'test:other'],
        ['delete', actor],
      ],
    );
    assert.equal(rows[0]!.before, null);
    assert.equal(rows[0]!.after?.description, 'one');
    assert.equal(rows[1]!.before?.description, 'one');
    assert.equal(rows[1]!.after?.description, 'two');
    assert.equal(rows[1]!.after?.version, 2);
    assert.equal(rows[2]!.before?.description, 'two');
    assert.equal(rows[2]!.after, null);
  });
});

describe('bindings', () => {
  test('create reports every problem at once', async () => {
    const err = await refused(
      store.createBinding(
        {
          subjects: [
            { kind: 'Team', name: 'x' },
            { kind: 'Group', name: 'system:masters' },
            { kind: 'User', name: ' ' },
          ],
          role: 'no-such-role',
          clusters: {
            names: ['Bad_Cluster'],
            selector: {
              matchLabels: { 'bad key!': 'v' },
              matchExpressions: [
                { key: 'env', operator: 'Equals', values: ['a'] },
                { key: 'tier', operator: 'In' },
                { key: 'zone', operator: 'Exists', values: ['x'] },
                { key: 'ok', operator: 'NotIn', values: ['not a value!'] },
              ],
            },
          },
          namespaces: ['dev', 'Not-A-Label', 'dev'],
          expiresAt: '2001-01-01T00:00:00Z',
          reason: 'r'.repeat(1001),
          ttl: '2h',
        },
        actor,
      ),
      'KG_ERR_VALIDATION',
    );
    const problems = problemsOf(err);
    const expected = [
      /unknown field\(s\): ttl/,
      /^subjects\[0\]\.kind: "Team" is not one of Group, User, Robot/,
      /^subjects\[1\]\.name: "system:masters" must not start with "system:"/,
      /^subjects\[2\]\.name: must be a non-empty string/,
      /^role: "no-such-role" does not exist/,
      /^clusters\.names\[0\]: "Bad_Cluster" is not a valid cluster name/,
      /^clusters\.selector\.matchLabels: "bad key!" is not a valid label key/,
      /^clusters\.selector\.matchExpressions\[0\]\.operator: "Equals" is not one of/,
      /^clusters\.selector\.matchExpressions\[1\]\.values: must be non-empty for operator In/,
      /^clusters\.selector\.matchExpressions\[2\]\.values: must be empty for operator Exists/,
      /^clusters\.selector\.matchExpressions\[3\]\.values\[0\]: "not a value!" is not a valid label value/,
      /^namespaces\[1\]: "Not-A-Label" is not a valid namespace name/,
      /^namespaces\[2\]: "dev" is listed twice/,
      /^expiresAt: 2001-01-01T00:00:00\.000Z is not in the future/,
      /^reason: must be at most 1000 characters/,
    ];
    for (const re of expected) assertHas(problems, re);
    assert.equal(problems.length, expected.length, problems.join('\n'));
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM admin_changes');
    assert.equal(rows[0].n, 0, 'a refused change is not logged');
  });

  test('at least one subject, and names and/or a selector are required', async () => {
    const err = await refused(
      store.createBinding({ subjects: [], role: 'view', clusters: {} }, actor),
      'KG_ERR_VALIDATION',
    );
    assertHas(problemsOf(err), /^subjects: must be a non-empty array/);
    assertHas(problemsOf(err), /^clusters: give names and\/or a selector/);
    const empty = await refused(
      store.createBinding(binding({ clusters: { names: [] } }), actor),
      'KG_ERR_VALIDATION',
    );
    assertHas(problemsOf(empty), /^clusters: give names and\/or a selector/);
    // An explicit empty selector is allowed and means every cluster.
    const all = await store.createBinding(binding({ clusters: { selector: {} } }), actor);
    assert.deepEqual(all.clusters, { selector: {} });
  });

  test('expiry: RFC 3339 in the future; an unchanged past expiry may stay on update', async () => {
    for (const bad of ['tomorrow', '2030-01-01', '2030-13-01T00:00:00Z', 12345]) {
      const err = await refused(
        store.createBinding(binding({ expiresAt: bad }), actor),
        'KG_ERR_VALIDATION',
      );
      assertHas(problemsOf(err), /^expiresAt: .* is not an RFC 3339 time/);
    }
    const soon = inAnHour();
    const b = await store.createBinding(binding({ expiresAt: soon }), actor);
    assert.equal(b.expiresAt?.toISOString(), new Date(soon).toISOString());
    // Time passes: the binding has expired.
    await pool.query("UPDATE bindings SET expires_at = now() - interval '1 day' WHERE id = $1", [
      b.id,
    ]);
    const expired = (await store.getBinding(b.id))!;
    const kept = await store.updateBinding(
      b.id,
      binding({ expiresAt: expired.expiresAt!.toISOString(), reason: 'audit note' }),
      { actor, version: expired.version },
    );
    assert.equal(kept.reason, 'audit note');
    const err = await refused(
      store.updateBinding(b.id, binding({ expiresAt: '2001-01-01T00:00:00Z' }), {
        actor,
        version: kept.version,
      }),
      'KG_ERR_VALIDATION',
    );
    assertHas(problemsOf(err), /is not in the future/);
  });

  test('the stored binding maps back to the authorizer shape plus metadata', async () => {
    const sel = parseSelectorText('env=prod,tier in (web, api),!legacy,zone');
    const b = await store.createBinding(
      {
        subjects: [
          { kind: 'Group', name: 'dev' },
          { kind: 'Robot', name: 'ci' },
        ],
        role: 'edit',
        clusters: { names: ['c1'], selector: sel },
        namespaces: ['team-a'],
        reason: 'ticket 42',
      },
      actor,
    );
    const got = await store.getBinding(b.id.toUpperCase());
    assert.deepEqual(got, b);
    assert.deepEqual(b.clusters, {
      names: ['c1'],
      selector: {
        matchLabels: { env: 'prod' },
        matchExpressions: [
          { key: 'tier', operator: 'In', values: ['web', 'api'] },
          { key: 'legacy', operator: 'DoesNotExist' },
          { key: 'zone', operator: 'Exists' },
        ],
      },
    });
    assert.equal(b.expiresAt, null);
    assert.equal(b.version, 1);
    assert.equal(b.createdBy, actor);
    assert.ok(b.createdAt instanceof Date);
    assert.equal(await store.getBinding('not-a-uuid'), undefined);
  });

  test('update and delete honour the version; changes are logged with before/after', async () => {
    const b = await store.createBinding(binding(), actor);
    const u = await store.updateBinding(b.id, binding({ role: 'edit' }), { actor, version: 1 });
    assert.equal(u.version, 2);
    assert.equal(u.role, 'edit');
    await refused(
      store.updateBinding(b.id, binding(), { actor, version: 1 }),
      'KG_ERR_PRECONDITION_FAILED',
    );
    await refused(
      store.updateBinding(b.id, binding({ id: '00000000-0000-0000-0000-000000000000' }), {
        actor,
        version: 2,
      }),
      'KG_ERR_VALIDATION',
    );
    await refused(store.deleteBinding(b.id, { actor, version: 1 }), 'KG_ERR_PRECONDITION_FAILED');
    await store.deleteBinding(b.id, { actor, version: 2 });
    await refused(store.deleteBinding(b.id, { actor }), 'KG_ERR_NOT_FOUND');
    const rows = await changeRows('binding', b.id);
    assert.deepEqual(
      rows.map((r) => r.action),
      ['create', 'update', 'delete'],
    );
    assert.equal(rows[1]!.before?.role, 'view');
    assert.equal(rows[1]!.after?.role, 'edit');
    assert.equal(rows[2]!.before?.role, 'edit');
    assert.equal(rows[2]!.after, null);
  });

  test('pagination returns every binding once, in creation order, with filters', async () => {
    const created: BindingRecord[] = [];
    for (let i = 0; i < 7; i++) {
      const group = i % 2 === 0 ? 'even' : 'odd';
      created.push(
        await store.createBinding(binding({ subjects: [{ kind: 'Group', name: group }] }), actor),
      );
    }
    const collect = async (filter: Parameters<RbacStore['listBindings']>[0]) => {
      const ids: string[] = [];
      let cont: string | undefined;
      let pages = 0;
      do {
        const page = await store.listBindings({ ...filter, limit: 3, continue: cont });
        assert.ok(page.items.length <= 3);
        ids.push(...page.items.map((b) => b.id));
        cont = page.continue;
        if (++pages > 10) assert.fail('pagination does not end');
      } while (cont);
      return { ids, pages };
    };
    const every = await collect({});
    assert.deepEqual(
      every.ids,
      created.map((b) => b.id),
    );
    assert.equal(every.pages, 3);
    const even = await collect({ subject: 'even' });
    assert.deepEqual(
      even.ids,
      created.filter((_, i) => i % 2 === 0).map((b) => b.id),
    );
    const odd = await collect({ subject: 'odd', subjectKind: 'Group' });
    assert.equal(odd.ids.length, 3);
    assert.deepEqual(await collect({ subject: 'odd', subjectKind: 'User' }), { ids: [], pages: 1 });
    await refused(store.listBindings({ continue: 'garbage!' }), 'KG_ERR_BAD_REQUEST');
    await refused(
      store.listBindings({ continue: Buffer.from('{"t":"x","i":"y"}').toString('base64url') }),
      'KG_ERR_BAD_REQUEST',
    );
  });

  test('the cluster filter finds bindings by name and by matching selector, across pages', async () => {
    await store.createCluster(
      { name: 'prod-eu', labels: { env: 'prod', zone: 'eu' } },
      actor,
      60_000,
    );
    const byName = await store.createBinding(binding({ clusters: { names: ['prod-eu'] } }), actor);
    await store.createBinding(binding({ clusters: { names: ['other'] } }), actor);
    const bySel = await store.createBinding(
      binding({ clusters: { selector: { matchLabels: { env: 'prod' } } } }),
      actor,
    );
    await store.createBinding(
      binding({ clusters: { selector: { matchLabels: { env: 'dev' } } } }),
      actor,
    );
    await store.createBinding(
      binding({
        clusters: {
          selector: { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['eu'] }] },
        },
      }),
      actor,
    );
    const all = await store.createBinding(binding({ clusters: { selector: {} } }), actor);
    const ids: string[] = [];
    let cont: string | undefined;
    do {
      const page = await store.listBindings({ cluster: 'prod-eu', limit: 1, continue: cont });
      ids.push(...page.items.map((b) => b.id));
      cont = page.continue;
    } while (cont);
    assert.deepEqual(ids, [byName.id, bySel.id, all.id]);
    // An unregistered cluster has no labels: only names can reach it.
    const { items } = await store.listBindings({ cluster: 'other' });
    assert.equal(items.length, 1);
    assert.deepEqual(items[0]!.clusters.names, ['other']);
  });

  test('role filter, and a binding naming a deleted custom role cannot be created', async () => {
    await store.createRole({ name: 'gone', rules: podsRead }, actor);
    await store.deleteRole('gone', { actor });
    const err = await refused(
      store.createBinding(binding({ role: 'gone' }), actor),
      'KG_ERR_VALIDATION',
    );
    assert.deepEqual(problemsOf(err).length, 1);
    const b = await store.createBinding(binding({ role: 'admin' }), actor);
    await store.createBinding(binding(), actor);
    const { items } = await store.listBindings({ role: 'admin' });
    assert.deepEqual(
      items.map((x) => x.id),
      [b.id],
    );
  });

  test('preview gives the bindings in effect for an identity on a cluster', async () => {
    await store.createCluster({ name: 'stage', labels: { env: 'stage' } }, actor, 60_000);
    const byGroup = await store.createBinding(
      binding({
        subjects: [{ kind: 'Group', name: 'dev' }],
        clusters: { selector: { matchLabels: { env: 'stage' } } },
      }),
      actor,
    );
    const byUser = await store.createBinding(
      binding({ subjects: [{ kind: 'User', name: 'alice' }], clusters: { names: ['stage'] } }),
      actor,
    );
    await store.createBinding(
      binding({ subjects: [{ kind: 'Robot', name: 'alice' }], clusters: { names: ['stage'] } }),
      actor,
    );
    await store.createBinding(
      binding({ subjects: [{ kind: 'Group', name: 'dev' }], clusters: { names: ['prod'] } }),
      actor,
    );
    const expiring = await store.createBinding(
      binding({
        subjects: [{ kind: 'User', name: 'alice' }],
        clusters: { names: ['stage'] },
        expiresAt: inAnHour(),
      }),
      actor,
    );
    const who = { user: 'alice', kind: 'user' as const, groups: ['dev'] };
    const now = await store.previewBindings(who, 'stage');
    assert.deepEqual(now.map((b) => b.id).sort(), [byGroup.id, byUser.id, expiring.id].sort());
    const later = await store.previewBindings(who, 'stage', new Date(Date.now() + 7_200_000));
    assert.deepEqual(later.map((b) => b.id).sort(), [byGroup.id, byUser.id].sort());
    await refused(store.previewBindings(who, 'nowhere'), 'KG_ERR_CLUSTER_NOT_FOUND');
  });
});

describe('clusters', () => {
  test('register mints a one-time bootstrap token that enrollment accepts once', async () => {
    const r = await store.createCluster(
      { name: 'eu-1', labels: { env: 'prod' }, description: 'EU' },
      actor,
      60_000,
    );
    assert.equal(r.cluster.name, 'eu-1');
    assert.deepEqual(r.cluster.labels, { env: 'prod' });
    assert.match(r.bootstrapToken, /^kgb_[A-Za-z0-9_-]{43}$/);
    const enroll = new ClusterStore(pool);
    assert.equal((await enroll.spendBootstrapToken('eu-1', r.bootstrapToken)).name, 'eu-1');
    await refused(enroll.spendBootstrapToken('eu-1', r.bootstrapToken), 'KG_ERR_TOKEN_SPENT');
    await refused(store.createCluster({ name: 'eu-1' }, actor, 60_000), 'KG_ERR_CONFLICT');
    const err = await refused(
      store.createCluster({ name: 'EU', labels: { 'a b': 'c' }, region: 'x' }, actor, 60_000),
      'KG_ERR_VALIDATION',
    );
    assert.equal(problemsOf(err).length, 3, problemsOf(err).join('\n'));
    const rows = await changeRows('cluster', 'eu-1');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.after?.name, 'eu-1');
    assert.ok(!JSON.stringify(rows[0]).includes(r.bootstrapToken), 'the token is never logged');
  });

  test('update is a merge patch with version; delete is refused while bindings name it', async () => {
    await store.createCluster({ name: 'c9', labels: { env: 'dev', team: 'a' } }, actor, 60_000);
    const u = await store.updateCluster(
      'c9',
      { labels: { env: 'prod', team: null, tier: 'web' }, disabled: true },
      { actor, version: 1 },
    );
    assert.deepEqual(u.labels, { env: 'prod', tier: 'web' });
    assert.equal(u.disabled, true);
    assert.equal(u.version, 2);
    await refused(
      store.updateCluster('c9', { description: 'x' }, { actor, version: 1 }),
      'KG_ERR_PRECONDITION_FAILED',
    );
    const bad = await refused(
      store.updateCluster(
        'c9',
        { labels: { 'bad key': 'v' }, disabled: 'yes', name: 'z' },
        { actor, version: 2 },
      ),
      'KG_ERR_VALIDATION',
    );
    assert.equal(problemsOf(bad).length, 3, problemsOf(bad).join('\n'));
    await refused(
      store.updateCluster('nope', {}, { actor, version: 1 }),
      'KG_ERR_CLUSTER_NOT_FOUND',
    );
    const b = await store.createBinding(binding({ clusters: { names: ['c9'] } }), actor);
    const err = await refused(store.deleteCluster('c9', { actor, version: 2 }), 'KG_ERR_CONFLICT');
    assert.match(err.message, new RegExp(b.id));
    await store.deleteBinding(b.id, { actor });
    await store.deleteCluster('c9', { actor, version: 2 });
    assert.equal(await store.getCluster('c9'), undefined);
    assert.deepEqual(
      (await changeRows('cluster', 'c9')).map((r) => r.action),
      ['create', 'update', 'delete'],
    );
  });

  test('cluster list pages by name', async () => {
    for (const n of ['b', 'a', 'c-1', 'c']) await store.createCluster({ name: n }, actor, 60_000);
    const first = await store.listClusters({ limit: 3 });
    assert.deepEqual(
      first.items.map((c) => c.name),
      ['a', 'b', 'c'],
    );
    const second = await store.listClusters({ limit: 3, continue: first.continue });
    assert.deepEqual(
      second.items.map((c) => c.name),
      ['c-1'],
    );
    assert.equal(second.continue, undefined);
  });
});

describe('change log', () => {
  test('newest first, paged, filterable', async () => {
    await store.createRole({ name: 'x1', rules: podsRead }, actor);
    await store.createRole({ name: 'x2', rules: podsRead }, 'test:bob');
    await store.createCluster({ name: 'x3' }, actor, 60_000);
    const p1 = await store.listChanges({ limit: 2 });
    assert.deepEqual(
      p1.items.map((c) => c.name),
      ['x3', 'x2'],
    );
    const p2 = await store.listChanges({ limit: 2, continue: p1.continue });
    assert.deepEqual(
      p2.items.map((c) => c.name),
      ['x1'],
    );
    assert.equal(p2.continue, undefined);
    assert.deepEqual(
      (await store.listChanges({ kind: 'role' })).items.map((c) => c.name),
      ['x2', 'x1'],
    );
    assert.deepEqual(
      (await store.listChanges({ actor: 'test:bob' })).items.map((c) => c.name),
      ['x2'],
    );
  });
});

describe('policy load', () => {
  test('one snapshot: a change committed between its reads is not half-seen', async () => {
    await store.createCluster({ name: 'early' }, actor, 60_000);
    const client = await pool.connect();
    let interleaved = false;
    // After the first read, another connection commits a cluster, a role and
    // a binding naming both: the rest of the load must not see any of them.
    const db = {
      query: async (text: string, values?: unknown[]) => {
        const r = await client.query(text, values);
        if (!interleaved && /FROM clusters/.test(text)) {
          interleaved = true;
          await pool.query("INSERT INTO clusters (name) VALUES ('late')");
          await pool.query("INSERT INTO roles (name, rules) VALUES ('late-role', $1)", [
            JSON.stringify(podsRead),
          ]);
          await pool.query(
            "INSERT INTO bindings (subjects, role, cluster_names) VALUES ($1, 'late-role', '{late}')",
            [JSON.stringify([{ kind: 'Group', name: 'dev' }])],
          );
        }
        return r;
      },
    } as unknown as Queryable;
    try {
      const state = await loadPolicy(db);
      assert.ok(interleaved);
      assert.deepEqual([...state.clusters.keys()], ['early']);
      assert.equal(state.snapshot.roles.has('late-role'), false);
      assert.equal(state.snapshot.bindings.length, 0);
    } finally {
      client.release();
    }
    // On a pool (the CLI, the fleet kubeconfig): the same read, now seeing all three.
    const now = await loadPolicy(pool);
    assert.deepEqual([...now.clusters.keys()].sort(), ['early', 'late']);
    assert.ok(now.snapshot.roles.has('late-role'));
    assert.equal(now.snapshot.bindings.length, 1);
  });
});

describe('selector text (the CLI --selector syntax)', () => {
  const cases: { text: string; selector: Record<string, unknown>; formatted?: string }[] = [
    { text: 'env=prod', selector: { matchLabels: { env: 'prod' } } },
    { text: 'env==prod', selector: { matchLabels: { env: 'prod' } }, formatted: 'env=prod' },
    {
      text: 'env!=dev',
      selector: { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['dev'] }] },
      formatted: 'env notin (dev)',
    },
    {
      text: 'example.com/tier in (web, api),!legacy,zone',
      selector: {
        matchExpressions: [
          { key: 'example.com/tier', operator: 'In', values: ['web', 'api'] },
          { key: 'legacy', operator: 'DoesNotExist' },
          { key: 'zone', operator: 'Exists' },
        ],
      },
      formatted: 'example.com/tier in (web,api),!legacy,zone',
    },
    {
      text: 'a notin ()',
      selector: { matchExpressions: [{ key: 'a', operator: 'NotIn', values: [] }] },
      formatted: 'a notin ()',
    },
  ];
  for (const c of cases) {
    test(`parses and formats ${JSON.stringify(c.text)}`, () => {
      const sel = parseSelectorText(c.text);
      assert.deepEqual(sel, c.selector);
      assert.equal(formatSelector(sel), c.formatted ?? c.text);
      assert.deepEqual(parseSelectorText(formatSelector(sel)), sel);
    });
  }
  for (const bad of ['', 'a,,b', 'a in (b', 'a=b=c', 'a > 3', 'env=prod,env=dev']) {
    test(`refuses ${JSON.stringify(bad)}`, () => {
      assert.throws(
        () => parseSelectorText(bad),
        (err: unknown) => {
          assert.ok(err instanceof KgError);
          assert.equal(err.code, 'KG_ERR_BAD_REQUEST');
          return true;
        },
      );
    });
  }
});
