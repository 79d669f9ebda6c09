/**
 * Attack (issue 17, item 12): recovering Secret values from approval diffs.
 * The diff shown to approvers (and to the requester) once carried
 * `(redacted, sha256 <12 hex>)` for each Secret value: an unsalted hash, so
 * anyone who may read the approval could try a dictionary of likely values
 * offline and recover them. Now the diff says only whether each value
 * changes.
 *
 * Real stack: a gate policy on Secrets in prod, a user's `kubectl patch` of a
 * Secret held for approval, the diff read by an approver through the
 * approvals REST API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';

const NS = 'shop';
let stack: Stack;
let ca: string;
let dev: string;
let leadToken: string;
let admin: { kubeconfig: string };

const b64 = (v: string) => Buffer.from(v).toString('base64');

/** Strings a dictionary attack could match: the value and hashes of it, in the forms a diff could show. */
function derived(v: string): string[] {
  const out = [v, b64(v)];
  for (const x of [v, b64(v), `${v}\n`]) {
    for (const alg of ['sha256', 'sha1', 'md5', 'sha512']) {
      const d = createHash(alg).update(x).digest();
      out.push(d.toString('hex').slice(0, 6), d.toString('base64').slice(0, 6));
    }
  }
  return out;
}

async function diffOf(id: string): Promise<string> {
  const r = await httpGet(`${stack.publicUrl}/api/v1/approvals/${id}`, {
    ca,
    token: leadToken,
    timeoutMs: 30_000,
  });
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { diff: string }).diff;
}

/** The user's patch of one Secret value: held, and the id of its approval. */
async function heldPatch(name: string, values: Record<string, string>): Promise<string> {
  const r = await kubectl(
    ['-n', NS, 'patch', 'secret', name, '-p', JSON.stringify({ stringData: values })],
    { kubeconfig: dev },
  );
  assert.notEqual(r.code, 0, r.stdout);
  const id = /Approval ([0-9a-f-]{36}) is pending/.exec(r.stderr)?.[1];
  assert.ok(id, r.stderr);
  return id;
}

describe('Secret values cannot be recovered from approval diffs', { timeout: 300_000 }, () => {
  before(async () => {
    stack = await startStack({
      clusters: [{ name: 'prod', labels: { env: 'prod' } }],
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    admin = { kubeconfig: stack.cluster.kubeconfig };
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await kubectlOk(['create', 'namespace', NS], admin);
    for (const [name, pw] of [
      ['alpha', 'hunter2'],
      ['beta', 'correct-horse'],
    ])
      await kubectlOk(
        [
          '-n',
          NS,
          'create',
          'secret',
          'generic',
          name,
          `--from-literal=password=${pw}`,
          '--from-literal=user=admin',
        ],
        admin,
      );
    await grant(stack, { users: ['dev'], role: 'edit', clusters: ['prod'], namespaces: [NS] });
    dev = await stack.kubeconfig('dev');
    leadToken = /token: (kg_\S+)/.exec(
      readFileSync(await stack.kubeconfig('lead', ['platform-leads']), 'utf8'),
    )![1]!;
    const policy = join(stack.dir, 'gate.yaml');
    writeFileSync(
      policy,
      'name: prod-secrets\nkind: gate\napprovers: {groups: [platform-leads]}\n' +
        'clusters: {selector: {matchLabels: {env: prod}}}\nresources: [secrets]\nwindow: 10m\n',
    );
    await stack.admin(['approval', 'policy', 'apply', '--file', policy]);
    await until(
      async () =>
        /approval required/.test(
          (await kubectl(['-n', NS, 'delete', 'secret', 'nothing-here'], { kubeconfig: dev }))
            .stderr,
        ),
      30_000,
      'gate active',
    );
  });
  after(async () => {
    await stack?.stop();
  });

  test('the diff says which values change, and nothing computed from any value', async () => {
    const a = await diffOf(await heldPatch('alpha', { password: 'hunter3' }));
    const b = await diffOf(await heldPatch('beta', { password: 'battery-staple' }));
    // The dictionary attack: no value, and no hash of one, in any form.
    for (const v of ['hunter2', 'hunter3', 'correct-horse', 'battery-staple', 'admin'])
      for (const f of derived(v))
        for (const d of [a, b])
          assert.ok(!d.includes(f), `${JSON.stringify(f)} (from ${v}) in:\n${d}`);
    for (const d of [a, b]) {
      assert.match(d, /^-\s+password: \(hidden\)$/m, d);
      assert.match(d, /^\+\s+password: \(hidden, changed\)$/m, d);
      assert.match(d, /^ \s+user: \(hidden\)$/m, 'an unchanged value is an unchanged line');
      assert.doesNotMatch(d, /sha256|redacted/);
    }
    // Two different Secrets with different values, changed alike: the very same text.
    assert.equal(a.replaceAll('alpha', 'NAME'), b.replaceAll('beta', 'NAME'));
    // Nothing was changed on the cluster by asking.
    const live = await kubectlOk(
      ['-n', NS, 'get', 'secret', 'alpha', '-o', 'jsonpath={.data.password}'],
      admin,
    );
    assert.equal(live, b64('hunter2'));
  });

  test('a value set to what it already is shows as unchanged', async () => {
    const same = await diffOf(await heldPatch('alpha', { password: 'hunter2', user: 'root' }));
    assert.match(same, /^ \s+password: \(hidden\)$/m, same);
    assert.match(same, /^\+\s+user: \(hidden, changed\)$/m, same);
  });
});
