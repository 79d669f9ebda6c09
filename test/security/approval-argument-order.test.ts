/**
 * Attack (issue 17, item 1): approval bypass by argument order. A gate policy
 * holds `pods/exec` in prod. `kubectl exec POD -- sh -c 'echo ok' 'touch F'`
 * is held for approval (harmless: the second string is only `$0`), an
 * approver approves it — and then `kubectl exec POD -- sh -c 'touch F' 'echo
 * ok'`, a different command, must not run on that approval. The fingerprint
 * once sorted repeated query values, so the reordered argv matched.
 *
 * Real stack: proxy, agent, a real apiserver whose Pods run on kwok nodes
 * (kwok runs an exec as a local command, so `touch F` would create F on this
 * machine), PostgreSQL, the approvals REST API as an approver uses it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';

const NS = 'shop';
const spdy = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };

let stack: Stack;
let ca: string;
let dev: string;
let leadToken: string;
let admin: { kubeconfig: string };
let marker: string;

const pendingId = (stderr: string) => /Approval ([0-9a-f-]{36}) is pending/.exec(stderr)?.[1];

async function api(method: string, path: string, body?: unknown) {
  const r = await httpGet(`${stack.publicUrl}${path}`, {
    ca,
    token: leadToken,
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    timeoutMs: 30_000,
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: r.status, json: (r.body ? JSON.parse(r.body) : {}) as Record<string, any> };
}

function exec(argv: string[], env: NodeJS.ProcessEnv = spdy) {
  return kubectl(['-n', NS, 'exec', 'box', '--', ...argv], {
    kubeconfig: dev,
    env,
    timeoutMs: 60_000,
  });
}

describe('approval bypass by argument order (pods/exec)', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({
      clusters: [{ name: 'prod', labels: { env: 'prod' }, nodes: 1 }],
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    admin = { kubeconfig: stack.cluster.kubeconfig };
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await kubectlOk(['create', 'namespace', NS], admin);
    await grant(stack, { users: ['dana'], role: 'admin', clusters: ['prod'], namespaces: [NS] });
    dev = await stack.kubeconfig('dana');
    leadToken = /token: (kg_\S+)/.exec(
      readFileSync(await stack.kubeconfig('lead', ['platform-leads']), 'utf8'),
    )![1]!;
    await kubectlOk(['-n', NS, 'run', 'box', '--image=busybox'], admin);
    await kubectlOk(['-n', NS, 'wait', '--for=condition=Ready', 'pod/box', '--timeout=120s'], {
      ...admin,
      timeoutMs: 130_000,
    });
    // Not gated yet: exec reaches the pod (kwok runs it here).
    const warm = await exec(['echo', 'warm']);
    assert.equal(warm.code, 0, warm.stderr);
    const policy = join(stack.dir, 'gate.yaml');
    writeFileSync(
      policy,
      'name: prod-exec\nkind: gate\napprovers: {groups: [platform-leads]}\n' +
        'clusters: {selector: {matchLabels: {env: prod}}}\nresources: [pods/exec]\nverbs: [create]\nwindow: 10m\n',
    );
    await stack.admin(['approval', 'policy', 'apply', '--file', policy]);
    await until(
      async () => /approval required/.test((await exec(['true'])).stderr),
      30_000,
      'gate active',
    );
    marker = join(stack.dir, `touched-${randomBytes(4).toString('hex')}`);
  });
  after(async () => {
    await stack?.stop();
  });

  test('the approved argv runs once; the same strings in another order never spend it', async () => {
    const held = ['sh', '-c', 'echo ok', `touch ${marker}`];
    const swapped = ['sh', '-c', `touch ${marker}`, 'echo ok'];

    const first = await exec(held);
    assert.notEqual(first.code, 0);
    assert.match(first.stderr, /Forbidden/);
    assert.match(first.stderr, /approval required: create pods\/exec "box" in namespace shop/);
    const id = pendingId(first.stderr);
    assert.ok(id, first.stderr);

    // The approver reads the argv in the order it runs, one element per line.
    const seen = await api('GET', `/api/v1/approvals/${id}`);
    assert.equal(seen.status, 200, JSON.stringify(seen.json));
    const diff = seen.json.diff as string;
    assert.ok(
      diff.includes(
        `  [0] "sh"\n  [1] "-c"\n  [2] "echo ok"\n  [3] ${JSON.stringify(`touch ${marker}`)}\n`,
      ),
      diff,
    );
    assert.match(diff, /container: /);
    const ok = await api('POST', `/api/v1/approvals/${id}/approve`, { reason: 'echo is fine' });
    assert.equal(ok.json.status, 'approved', JSON.stringify(ok.json));

    // The attack: the same strings, reordered, so `touch` is the script. Held, not run.
    const attack = await exec(swapped);
    assert.notEqual(attack.code, 0, `the reordered command ran: ${attack.stdout}`);
    assert.match(attack.stderr, /Forbidden/);
    assert.match(attack.stderr, /approval required/);
    const attackId = pendingId(attack.stderr);
    assert.ok(attackId && attackId !== id, attack.stderr);
    assert.equal(existsSync(marker), false, 'touch never ran');
    const still = await api('GET', `/api/v1/approvals/${id}`);
    assert.equal(still.json.status, 'approved', 'the approval was not spent by the attack');
    const attackSeen = await api('GET', `/api/v1/approvals/${attackId}`);
    assert.ok(
      (attackSeen.json.diff as string).includes(
        `  [2] ${JSON.stringify(`touch ${marker}`)}\n  [3] "echo ok"\n`,
      ),
      attackSeen.json.diff as string,
    );

    // A duplicated element is another command too.
    const dup = await exec([...held, `touch ${marker}`]);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /approval required/);
    assert.notEqual(pendingId(dup.stderr), id);

    // The approved command, exactly: runs once.
    const run = await exec(held);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'ok');
    assert.equal(existsSync(marker), false, '`touch` was only $0');
    const done = await api('GET', `/api/v1/approvals/${id}`);
    assert.equal(done.json.status, 'executed');
    const again = await exec(held);
    assert.notEqual(again.code, 0, 'an approval runs once');
    assert.match(again.stderr, /approval required/);
    assert.equal(existsSync(marker), false);
  });

  test('the same with the default transport of kubectl (WebSocket, SPDY as its fallback)', async () => {
    const file = `${marker}-ws`;
    const held = ['sh', '-c', 'echo ws', `touch ${file}`];
    const swapped = ['sh', '-c', `touch ${file}`, 'echo ws'];
    const first = await exec(held, {});
    assert.match(first.stderr, /approval required/, first.stderr);
    const id = pendingId(first.stderr)!;
    assert.ok(id, first.stderr);
    const ok = await api('POST', `/api/v1/approvals/${id}/approve`, { reason: 'fine' });
    assert.equal(ok.json.status, 'approved', JSON.stringify(ok.json));
    const attack = await exec(swapped, {});
    assert.notEqual(attack.code, 0, `the reordered command ran: ${attack.stdout}`);
    assert.match(attack.stderr, /approval required/);
    assert.notEqual(pendingId(attack.stderr), id);
    assert.equal(existsSync(file), false, 'touch never ran');
    assert.equal((await api('GET', `/api/v1/approvals/${id}`)).json.status, 'approved');
    const run = await exec(held, {});
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'ws');
    assert.equal(existsSync(file), false);
  });
});
