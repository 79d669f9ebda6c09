/**
 * Attacks on the session recordings API (issue #21), against a real stack:
 *
 * - another person's recording: neither listed, read nor downloaded by
 *   anyone outside the admin and recording viewer groups — their own
 *   sessions included, and whatever filter they ask for;
 * - path tricks on recording ids: encoded slashes and dots, NUL, SQL,
 *   upper-case and over-long ids — 400 or 404, never a recording, never a 500;
 * - hostile queries: huge, repeated and unknown parameters, forged continue
 *   tokens, LIKE wildcards taken literally;
 * - a failed download is not audited as one; a real one is;
 * - the player's fetch (purpose=playback) is audited as `play` under the
 *   caller; a bad, repeated or refused purpose is a clean 400 or 403 and no
 *   event; `/api/v1/me` says who may watch exactly as the API decides.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { httpGet } from '../support/http.js';
import { rawRequest } from '../support/creds.js';
import { grant } from '../support/grants.js';

let stack: Stack;
let ca: string;
const tokens: Record<string, string> = {};
let aliceRec = '';
let bobRec = '';

const tokenOf = (kubeconfig: string) =>
  /token: (kg_\S+)/.exec(readFileSync(kubeconfig, 'utf8'))![1]!;

async function get(who: string, path: string) {
  const r = await httpGet(`${stack.publicUrl}${path}`, {
    ca,
    token: tokens[who]!,
    timeoutMs: 30_000,
  });
  return r;
}

async function insertRecording(
  user: string,
  command: string[],
  namespace = 'team',
): Promise<string> {
  const [row] = await stack.sql<{ id: string }>(
    `INSERT INTO recordings (audit_id, kind, cluster, namespace, pod, command, user_name, user_kind,
       mode, stdin_recorded, status, started_at, ended_at)
     VALUES (gen_random_uuid()::text, 'exec', 'dev', $3, 'web-0', $2, $1, 'user',
       'best-effort', false, 'complete', now(), now()) RETURNING id`,
    [user, command, namespace],
  );
  await stack.sql(
    `INSERT INTO recording_chunks (recording_id, seq, data) VALUES ($1, 0, $2), ($1, 1, $3)`,
    [
      row!.id,
      Buffer.from('{"version":2,"width":80,"height":24}\n'),
      Buffer.from(`[0.1, "o", "secret output of ${user}\\n"]\n`),
    ],
  );
  return row!.id;
}

describe('session recordings API under attack', { timeout: 300_000 }, () => {
  before(async () => {
    stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    tokens.admin = tokenOf(await stack.kubeconfig('root', ['kubegate-admins']));
    tokens.auditor = tokenOf(await stack.kubeconfig('audrey', ['kubegate-auditors']));
    tokens.alice = tokenOf(await stack.kubeconfig('alice', ['developers']));
    tokens.bob = tokenOf(await stack.kubeconfig('bob', ['developers', 'auditors']));
    aliceRec = await insertRecording('alice', ['psql', '-c', 'select 1']);
    bobRec = await insertRecording('bob', ['ls']);
  });
  after(async () => {
    await stack?.stop();
  });

  test("another user's recording, or one's own: 403 everywhere outside the viewer groups, no listing", async () => {
    // bob is in a group called "auditors", which is not the configured viewer group.
    for (const who of ['alice', 'bob']) {
      for (const path of [
        '/api/v1/recordings',
        `/api/v1/recordings?user=${who}`,
        `/api/v1/recordings?user=alice&user=bob`,
        `/api/v1/recordings/${aliceRec}`,
        `/api/v1/recordings/${bobRec}`,
        `/api/v1/recordings/${aliceRec}/cast`,
        `/api/v1/recordings/${bobRec}/cast`,
        '/api/v1/recording-policies',
      ]) {
        const r = await get(who, path);
        assert.equal(r.status, 403, `${who} ${path}: ${r.body}`);
        // The refusal says nothing but that; `instance` repeats the caller's own path.
        const problem = JSON.parse(r.body) as Record<string, unknown>;
        delete problem.instance;
        const text = JSON.stringify(problem);
        assert.doesNotMatch(text, /secret output|psql|web-0/, `${who} ${path}: nothing disclosed`);
        assert.doesNotMatch(text, new RegExp(`${aliceRec}|${bobRec}`));
      }
    }
    const list = await get('auditor', '/api/v1/recordings?namespace=team');
    assert.equal(list.status, 200);
    const ids = (JSON.parse(list.body) as { items: { id: string }[] }).items.map((i) => i.id);
    assert.deepEqual(new Set(ids), new Set([aliceRec, bobRec]));
    const cast = await get('auditor', `/api/v1/recordings/${aliceRec}/cast`);
    assert.equal(cast.status, 200);
    assert.match(cast.body, /secret output of alice/);
    // The auditor may read recordings, not change policies.
    const pol = await httpGet(`${stack.publicUrl}/api/v1/recording-policies`, {
      ca,
      token: tokens.auditor!,
      method: 'POST',
      body: JSON.stringify({ name: 'off-for-me', mode: 'off' }),
    });
    assert.equal(pol.status, 403, pol.body);
  });

  test('path tricks on recording ids: 400 or 404, never a recording, never a 500', async () => {
    const origin = stack.publicUrl;
    const caBuf = Buffer.from(ca);
    const paths = [
      `/api/v1/recordings/${aliceRec}%2Fcast`,
      `/api/v1/recordings/${aliceRec}/%2e%2e/${bobRec}/cast`,
      `/api/v1/recordings/${aliceRec}/../${bobRec}/cast`,
      `/api/v1/recordings/..%2F..%2Faudit`,
      `/api/v1/recordings/%2e%2e`,
      `/api/v1/recordings/${aliceRec}%00`,
      `/api/v1/recordings/${aliceRec.toUpperCase()}`,
      `/api/v1/recordings/${aliceRec}x`,
      `/api/v1/recordings/'%20OR%20'1'='1`,
      `/api/v1/recordings/${'a'.repeat(5000)}/cast`,
      `/api/v1/recordings//cast`,
      `/api/v1/recordings/${aliceRec}/cast/`,
      `/api/v1/recordings/${aliceRec}/cast;.json`,
      `/api/v1/recordings/${aliceRec}//cast`,
    ];
    for (const path of paths) {
      const r = await rawRequest(origin, caBuf, { path, token: tokens.auditor! });
      assert.ok(
        [400, 404, 414, 431].includes(r.status),
        `${path}: ${r.status} ${r.body.slice(0, 200)}`,
      );
      assert.doesNotMatch(r.body, /secret output/, path);
    }
    // None of these was audited as a download.
    const downloads = await stack.sql<{ name: string }>(
      `SELECT name FROM audit_events WHERE resource = 'recordings' AND verb = 'download'`,
    );
    assert.deepEqual(
      downloads.map((d) => d.name),
      [aliceRec],
      'only the real download',
    );
  });

  test('hostile queries: bounded, literal, refused cleanly', async () => {
    const cases: [string, RegExp][] = [
      [`/api/v1/recordings?command=${'x'.repeat(10_000)}`, /longer than 512/],
      [`/api/v1/recordings?user=alice&user=bob`, /more than once/],
      [`/api/v1/recordings?limit=1000000000`, /limit must be/],
      [`/api/v1/recordings?limit=-1`, /limit must be/],
      [`/api/v1/recordings?continue=${'A'.repeat(600)}`, /continue token/],
      [`/api/v1/recordings?continue=eyJ0IjoieCIsImkiOiJ5In0`, /continue token/],
      [`/api/v1/recordings?from=yesterday`, /RFC 3339/],
      [`/api/v1/recordings?to=99999999999d`, /RFC 3339/],
      [`/api/v1/recordings?${'p'.repeat(100)}=1`, /unknown query parameter/],
      [`/api/v1/recordings/${aliceRec}?download=1`, /unknown query parameter/],
    ];
    for (const [path, why] of cases) {
      const r = await get('auditor', path);
      assert.equal(r.status, 400, `${path.slice(0, 80)}: ${r.status} ${r.body.slice(0, 200)}`);
      assert.match(r.body, why, path.slice(0, 80));
      assert.ok(r.body.length < 2048, 'the refusal does not echo the whole input');
    }
    // LIKE wildcards are literal: "%" and "_" match no command here.
    for (const w of ['%25', '_', '%5C']) {
      const r = await get('auditor', `/api/v1/recordings?command=${w}`);
      assert.equal(r.status, 200);
      assert.deepEqual((JSON.parse(r.body) as { items: unknown[] }).items, [], w);
    }
    const psql = await get(
      'auditor',
      `/api/v1/recordings?command=${encodeURIComponent('-c select')}`,
    );
    assert.deepEqual(
      (JSON.parse(psql.body) as { items: { id: string }[] }).items.map((i) => i.id),
      [aliceRec],
    );
    // A header block too large to read is refused before any handler.
    const huge = await rawRequest(stack.publicUrl, Buffer.from(ca), {
      path: `/api/v1/recordings?user=${'u'.repeat(200_000)}`,
      token: tokens.auditor!,
    }).catch((err: Error) => ({ status: 0, body: err.message, headers: {} }));
    assert.ok([0, 400, 414, 431].includes(huge.status), `huge URL: ${huge.status}`);
  });
  test('playback is audited as play under the caller; a bad purpose is refused, unaudited', async () => {
    const audited = async () =>
      (
        await stack.sql<{ verb: string; username: string; name: string }>(
          `SELECT verb, username, name FROM audit_events
            WHERE resource = 'recordings' AND verb IN ('play', 'download') ORDER BY verb, name`,
        )
      ).map((e) => `${e.verb} ${e.username} ${e.name}`);
    const before = await audited();
    for (const [q, why] of [
      ['purpose=evil', /purpose must be "download" or "playback"/],
      ['purpose=PLAYBACK', /purpose must be/],
      ['purpose=', /purpose must be/],
      ['purpose=playback&purpose=download', /more than once/],
      [`purpose=${'p'.repeat(5000)}`, /purpose must be/],
    ] as const) {
      const r = await get('auditor', `/api/v1/recordings/${aliceRec}/cast?${q}`);
      assert.equal(r.status, 400, `${q.slice(0, 60)}: ${r.body.slice(0, 200)}`);
      assert.match((JSON.parse(r.body) as { detail: string }).detail, why);
      assert.ok(r.body.length < 1024, 'the refusal does not echo the input');
      assert.doesNotMatch(r.body, /secret output/);
    }
    const refused = await get('alice', `/api/v1/recordings/${aliceRec}/cast?purpose=playback`);
    assert.equal(refused.status, 403);
    assert.deepEqual(await audited(), before, 'no event for a refused or malformed request');
    const played = await get('auditor', `/api/v1/recordings/${bobRec}/cast?purpose=playback`);
    assert.equal(played.status, 200);
    assert.match(played.body, /secret output of bob/);
    let after = await audited();
    for (let i = 0; i < 50 && after.length === before.length; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await audited();
    }
    assert.deepEqual(
      after.filter((e) => !before.includes(e)),
      [`play audrey ${bobRec}`],
    );
    // Who may watch, as /api/v1/me tells the console: the same answer the API gives.
    for (const [who, may] of [
      ['admin', true],
      ['auditor', true],
      ['alice', false],
      ['bob', false],
    ] as const) {
      const me = await get(who, '/api/v1/me');
      assert.equal(me.status, 200);
      assert.equal((JSON.parse(me.body) as { recordingViewer: boolean }).recordingViewer, may, who);
    }
  });

  test('watching as a permission in the central RBAC: get and list on kubegate.dev recordings where the sessions ran, nothing beyond', async () => {
    const elsewhere = await insertRecording('alice', ['cat', '/etc/hostname'], 'payments');
    const made = await httpGet(`${stack.publicUrl}/api/v1/roles`, {
      ca,
      token: tokens.admin!,
      method: 'POST',
      body: JSON.stringify({
        name: 'recording-watcher',
        description: 'may watch session recordings',
        rules: [{ apiGroups: ['kubegate.dev'], resources: ['recordings'], verbs: ['get', 'list'] }],
      }),
    });
    assert.equal(made.status, 201, made.body);
    tokens.carol = tokenOf(await stack.kubeconfig('carol', ['team-leads']));
    tokens.dave = tokenOf(await stack.kubeconfig('dave', ['ops']));
    await grant(stack, {
      groups: ['team-leads'],
      role: 'recording-watcher',
      clusters: ['dev'],
      namespaces: ['team'],
    });
    // dave may watch on a namespace with no recordings; his other grant (edit) gives no sight of any.
    await grant(stack, {
      groups: ['ops'],
      role: 'recording-watcher',
      clusters: ['dev'],
      namespaces: ['quiet'],
    });
    await grant(stack, { groups: ['ops'], role: 'edit', clusters: ['dev'] });
    const ids = async (who: string, q = '') => {
      const r = await get(who, `/api/v1/recordings${q}`);
      assert.equal(r.status, 200, `${who}: ${r.body}`);
      return (JSON.parse(r.body) as { items: { id: string }[] }).items.map((x) => x.id).sort();
    };
    // Bindings reach the proxies' policy within a second or so.
    for (let i = 0; i < 50 && (await get('carol', '/api/v1/recordings')).status !== 200; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await ids('carol'), [aliceRec, bobRec].sort(), 'the team namespace only');
    assert.deepEqual(await ids('carol', '?namespace=payments'), []);
    // One per page still finds both, skipping what carol may not see.
    const first = await get('carol', '/api/v1/recordings?limit=1');
    const p1 = JSON.parse(first.body) as { items: { id: string }[]; continue?: string };
    assert.equal(p1.items.length, 1);
    const second = await get('carol', `/api/v1/recordings?limit=1&continue=${p1.continue}`);
    const p2 = JSON.parse(second.body) as { items: { id: string }[] };
    assert.deepEqual([p1.items[0]!.id, p2.items[0]!.id].sort(), [aliceRec, bobRec].sort());
    for (const path of [`/api/v1/recordings/${aliceRec}`, `/api/v1/recordings/${aliceRec}/cast`]) {
      assert.equal((await get('carol', path)).status, 200, path);
      // Outside her grants: not found, as if it did not exist.
      const other = await get('carol', path.replace(aliceRec, elsewhere));
      assert.equal(other.status, 404, other.body);
      assert.doesNotMatch(other.body, /secret output|payments/);
      const daves = await get('dave', path);
      assert.equal(daves.status, 404, daves.body);
    }
    assert.deepEqual(await ids('dave'), []);
    for (const [who, may] of [
      ['carol', true],
      ['dave', true],
      ['alice', false],
    ] as const) {
      const me = await get(who, '/api/v1/me');
      assert.equal((JSON.parse(me.body) as { recordingViewer: boolean }).recordingViewer, may, who);
    }
  });
});
