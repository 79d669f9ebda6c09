/**
 * Approvals in the web console, in a real browser (Debian's chromium driven
 * by playwright-core) against the whole stack with the real dev IdP, a real
 * apiserver behind the agent and the real kubectl:
 *
 * - an admin writes an access policy, a gate policy and a webhook in the
 *   console (the webhook's secret shown once);
 * - a developer asks for `edit` in "My access requests" (a request beyond
 *   the policy's limit is refused with the reason), an approver approves it
 *   in the Approvals inbox, and the developer's kubectl works;
 * - a two-approver policy shows its progress in the inbox;
 * - a gated Ingress change shows its diff in the inbox, and once approved
 *   the identical kubectl apply runs;
 * - cluster health is fleet-wide: a second replica, holding no tunnel,
 *   reports the same health as the one that does.
 *
 * Screenshots go to test-results/console/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { downloadBy, goTo, signIn, unnamedControls } from '../support/console.js';
import { grant } from '../support/grants.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { httpGet, until } from '../support/http.js';
import { launchChromium, screenshot, type ChromiumSession } from '../support/chromium.js';

let stack: Stack;
let idp: Idp;
let publicUrl: string;
let ca: string;
let admin: ChromiumSession;
let dev: ChromiumSession;
/** The developer's fleet kubeconfig, downloaded in the console. */
let devKubeconfig: string;
const direct = () => ({ kubeconfig: stack.cluster.kubeconfig });

function ingress(host: string): string {
  const file = `${stack.dir}/web-${host}.yaml`;
  writeFileSync(
    file,
    `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: shop}\nspec:\n  rules:\n  - host: ${host}\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend: {service: {name: web, port: {number: 80}}}\n`,
  );
  return file;
}

/** A bearer token for someone the IdP does not know (a second approver, a fleet-wide reader). */
async function tokenOf(user: string, groups: string[]): Promise<string> {
  const file = await stack.kubeconfig(user, groups, '1h');
  return /token: (kg_[A-Za-z0-9_-]+)/.exec(readFileSync(file, 'utf8'))![1]!;
}

describe('approvals in the web console', { timeout: 900_000 }, () => {
  before(async () => {
    const sso = await startStackIdp();
    idp = sso.idp;
    publicUrl = sso.publicUrl;
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' } }],
      proxyEnv: sso.proxyEnv,
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await kubectlOk(['create', 'namespace', 'shop'], direct());
    await grant(stack, { groups: ['kubegate-admins'], role: 'cluster-admin', selector: {} });
    // Developers read `shop`; changing it takes an approved request.
    await grant(stack, {
      groups: ['developers'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['shop'],
    });
    admin = await launchChromium(publicUrl);
    dev = await launchChromium(publicUrl);
    await signIn(admin.page, publicUrl, 'admin@example.com');
    await signIn(dev.page, publicUrl, 'dev@example.com');
    const file = await downloadBy(dev, () =>
      dev.page.getByRole('button', { name: 'Download fleet kubeconfig' }).click(),
    );
    devKubeconfig = file.path;
    assert.ok((parse(file.text) as { users: unknown[] }).users.length === 1);
  });
  after(async () => {
    await admin?.close();
    await dev?.close();
    await stack?.stop();
    await idp?.close();
  });

  test('an admin writes approval policies and a webhook in the console', async () => {
    const page = admin.page;
    await goTo(page, 'Approval policies');
    await page.getByText('No approval policies').waitFor();
    // Access: admins approve `edit` on env=dev clusters for up to an hour.
    await page.getByLabel('Name', { exact: true }).fill('dev-edit');
    await page.getByLabel('Description', { exact: true }).fill('admins approve edit on dev');
    await page.getByLabel('Approver groups', { exact: true }).fill('kubegate-admins');
    await page.getByLabel('Policy clusters by label: label key 1').fill('env');
    await page.getByLabel('Policy clusters by label: values 1').fill('dev');
    await page.getByLabel('Roles', { exact: true }).fill('edit');
    await page.getByLabel('Longest grant', { exact: true }).fill('1h');
    await screenshot(page, '20-admin-approval-policy-form');
    await page.getByRole('button', { name: 'Create policy' }).click();
    await page.getByText('Policy dev-edit created').waitFor();

    // Two approvers for `admin` in shop: an admin and an SRE.
    await page.getByLabel('Name', { exact: true }).fill('dev-admin');
    await page.getByLabel('Approver groups', { exact: true }).fill('kubegate-admins, sre');
    await page.getByLabel('Approvals needed', { exact: true }).fill('2');
    await page.getByLabel('Policy clusters by label: label key 1').fill('env');
    await page.getByLabel('Policy clusters by label: operator 1').selectOption('In');
    await page.getByLabel('Policy clusters by label: values 1').fill('dev, staging');
    await page.getByLabel('Policy namespaces', { exact: true }).fill('shop');
    await page.getByLabel('Roles', { exact: true }).fill('admin');
    await page.getByRole('button', { name: 'Create policy' }).click();
    await page.getByText('Policy dev-admin created').waitFor();

    // Gate: Ingress changes on env=dev wait for an admin. A bad resource first: the server's problems.
    await page.getByLabel('Kind', { exact: true }).selectOption('gate');
    await page.getByLabel('Name', { exact: true }).fill('dev-ingress');
    await page.getByLabel('Approver groups', { exact: true }).fill('kubegate-admins');
    await page.getByLabel('Policy clusters by label: label key 1').fill('env');
    await page.getByLabel('Policy clusters by label: values 1').fill('dev');
    await page.getByLabel('Resources', { exact: true }).fill('Ingresses!');
    await page.getByLabel('Window', { exact: true }).fill('10m');
    await page.getByRole('button', { name: 'Create policy' }).click();
    await page
      .getByRole('alert')
      .getByText(/is not resource\[\.group\]\[\/subresource\]/)
      .waitFor();
    await page.getByLabel('Resources', { exact: true }).fill('ingresses.networking.k8s.io');
    await page.getByRole('button', { name: 'Create policy' }).click();
    await page.getByText('Policy dev-ingress created').waitFor();
    const table = page.getByRole('table', { name: 'Approval policies' });
    await table.getByRole('cell', { name: 'dev-ingress gate' }).waitFor();
    assert.match(
      (await table.getByRole('row', { name: /dev-admin/ }).textContent()) ?? '',
      /env in \(dev,staging\).*2 of kubegate-admins, sre/s,
    );
    await screenshot(page, '21-admin-approval-policies');
    assert.deepEqual(await unnamedControls(page), [], 'every control has a name');
    const stored = await stack.sql<{ name: string; spec: { clusters: unknown } }>(
      `SELECT name, spec FROM approval_policies WHERE name = 'dev-admin'`,
    );
    assert.deepEqual(stored[0]!.spec.clusters, {
      selector: { matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'staging'] }] },
    });

    // A webhook: its secret is shown once, then never again.
    await goTo(page, 'Approval webhooks');
    await page.getByLabel('URL', { exact: true }).fill('http://127.0.0.1:9/kubegate');
    await page.getByLabel('Format', { exact: true }).selectOption('slack');
    await page.getByRole('button', { name: 'Add webhook' }).click();
    const secret = (await page.getByLabel('Webhook signing secret').textContent()) ?? '';
    assert.ok(secret.length >= 32, secret);
    await page.getByRole('cell', { name: 'http://127.0.0.1:9/kubegate', exact: true }).waitFor();
    await screenshot(page, '22-admin-approval-webhooks');
    await goTo(page, 'Approval policies');
    await goTo(page, 'Approval webhooks');
    await page.getByRole('cell', { name: 'http://127.0.0.1:9/kubegate', exact: true }).waitFor();
    assert.equal(await page.getByText(secret).count(), 0, 'the secret is not shown again');
    // Nothing listens there: delete it so deliveries stop.
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Delete webhook http://127.0.0.1:9/kubegate' }).click();
    await page.getByText('No webhooks').waitFor();
  });

  let accessId = '';

  test('a developer asks in the console, an approver approves in the inbox, kubectl works', async () => {
    const create = () =>
      kubectl(['create', 'configmap', `cm-${Date.now()}`, '-n', 'shop'], {
        kubeconfig: devKubeconfig,
      });
    const denied = await create();
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /forbidden/i);

    const page = dev.page;
    await goTo(page, 'My access requests');
    const policies = page.getByRole('table', { name: 'Approval policies you can ask under' });
    await policies.getByRole('cell', { name: /dev-edit/ }).waitFor();
    await page.getByText('at most 8 h under any policy').waitFor();
    await page.getByLabel('Role', { exact: true }).fill('edit');
    await page.getByLabel('Clusters by label: label key 1').fill('env');
    await page.getByLabel('Clusters by label: values 1').fill('dev');
    await page.getByLabel('Namespaces', { exact: true }).fill('shop');
    await page.getByLabel('Reason', { exact: true }).fill('hotfix INC-7');
    // Longer than any policy allows: refused, and the page says why.
    await page.getByLabel('Duration', { exact: true }).fill('2h');
    await page.getByRole('button', { name: 'Send request' }).click();
    await page
      .getByRole('alert')
      .getByText(/no approval policy lets anyone approve role "edit" there for 120 min/)
      .waitFor();
    await screenshot(page, '23-my-requests-refused');
    await page.getByLabel('Duration', { exact: true }).fill('15m');
    await page.getByRole('button', { name: 'Send request' }).click();
    await page.getByText(/Request sent: role edit on clusters matching env=dev in shop/).waitFor();
    const row = page.getByRole('table', { name: 'My requests' }).getByRole('row').nth(1);
    await row.getByText('pending', { exact: true }).waitFor();
    assert.match((await row.textContent()) ?? '', /0 of 1 approval/);
    await screenshot(page, '24-my-requests-pending');
    assert.deepEqual(await unnamedControls(page), [], 'every control has a name');
    accessId = (
      await stack.sql<{ id: string }>(
        `SELECT id FROM approval_requests WHERE requester = 'dev@example.com' AND status = 'pending'`,
      )
    )[0]!.id;

    // The approver's inbox: the exact request, then Approve with a reason.
    await goTo(admin.page, 'Approvals');
    const card = admin.page.locator(`article[data-approval="${accessId}"]`);
    await card
      .getByRole('heading', { name: /Access: role edit on clusters matching env=dev/ })
      .waitFor();
    const text = (await card.textContent()) ?? '';
    assert.match(text, /Requested bydev@example\.com \(user\)/);
    assert.match(text, /Namespacesshop/);
    assert.match(text, /Duration15 min/);
    assert.match(text, /Reasonhotfix INC-7/);
    assert.match(text, /0 of 1 approval/);
    await screenshot(admin.page, '25-approvals-inbox-access');
    assert.deepEqual(await unnamedControls(admin.page), [], 'every control has a name');
    await card.getByLabel('Reason for your decision').fill('known incident');
    await card.getByRole('button', { name: 'Approve' }).click();
    await admin.page.getByText('Approved: the access works now').waitFor();
    const ms = await until(
      async () => (await create()).code === 0,
      30_000,
      'kubectl after approval',
    );
    process.stderr.write(
      `# approved in the console inbox → kubectl create allowed after ${ms} ms\n`,
    );

    await goTo(page, 'My clusters');
    await goTo(page, 'My access requests');
    const done = page.getByRole('table', { name: 'My requests' }).getByRole('row').nth(1);
    await done.getByText('approved', { exact: true }).first().waitFor();
    assert.match((await done.textContent()) ?? '', /admin@example\.com.*known incident/s);
    // The decision is audited with its reason and the binding it created.
    const events = await stack.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events WHERE verb = 'approve'
        AND event->'annotations'->>'kubegate.dev/approval-id' = $1`,
      [accessId],
    );
    assert.equal(events[0]!.n, 1);
  });

  test('the inbox shows two-approver progress; nothing is granted until the second', async () => {
    const devToken = /token: (kg_[A-Za-z0-9_-]+)/.exec(readFileSync(devKubeconfig, 'utf8'))![1]!;
    const asked = await httpGet(`${publicUrl}/api/v1/approvals`, {
      ca,
      token: devToken,
      method: 'POST',
      body: JSON.stringify({
        role: 'admin',
        clusters: { names: ['dev'] },
        namespaces: ['shop'],
        duration: '20m',
        reason: 'rotate certificates',
      }),
    });
    assert.equal(asked.status, 201, asked.body);
    const id = (JSON.parse(asked.body) as { id: string }).id;

    const page = admin.page;
    await goTo(page, 'My clusters');
    await goTo(page, 'Approvals');
    const card = page.locator(`article[data-approval="${id}"]`);
    await card.getByText('0 of 2 approvals').waitFor();
    await card.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Your approval is in; the policy needs another approver').waitFor();
    await card.getByText('1 of 2 approvals — waiting for 1 more').waitFor();
    assert.equal(
      (
        await stack.sql(`SELECT 1 FROM approval_requests WHERE id = $1 AND binding_id IS NULL`, [
          id,
        ])
      ).length,
      1,
    );
    await screenshot(page, '26-approvals-inbox-two-approvers');
    // The same approver again: refused, and the card says why.
    await card.getByRole('button', { name: 'Approve' }).click();
    await card
      .getByRole('alert')
      .getByText(/you already decided approval/)
      .waitFor();

    // The second approver (an SRE) decides through the API; the admin's table shows the outcome.
    const sre = await tokenOf('sre-lead', ['sre']);
    const second = await httpGet(`${publicUrl}/api/v1/approvals/${id}/approve`, {
      ca,
      token: sre,
      method: 'POST',
      body: JSON.stringify({ reason: 'ok' }),
    });
    assert.equal(second.status, 200, second.body);
    await goTo(page, 'My clusters');
    await goTo(page, 'Approvals');
    const all = page.getByRole('table', { name: 'Every approval request' });
    const row = all.getByRole('row', { name: /rotate certificates/ });
    await row.getByText('approved', { exact: true }).first().waitFor();
    assert.match((await row.textContent()) ?? '', /2 of 2 approvals/);
  });

  test('a gated Ingress change shows its diff in the inbox and runs once approved', async () => {
    await kubectlOk(['apply', '-f', ingress('a.example.com')], direct());
    // The gate is live on the proxy once a harmless gated request meets it.
    await until(
      async () =>
        /approval required/.test(
          (
            await kubectl(['delete', 'ingress', 'nothing-here', '-n', 'shop'], {
              kubeconfig: devKubeconfig,
            })
          ).stderr,
        ),
      30_000,
      'gate active',
    );
    const v2 = ingress('b.example.com');
    const first = await kubectl(['apply', '-f', v2], { kubeconfig: devKubeconfig });
    assert.notEqual(first.code, 0);
    const id = /Approval ([0-9a-f-]{36}) is pending/.exec(first.stderr)?.[1];
    assert.ok(id, first.stderr);

    const page = admin.page;
    await goTo(page, 'My clusters');
    await goTo(page, 'Approvals');
    const card = page.locator(`article[data-approval="${id}"]`);
    await card
      .getByRole('heading', {
        name: /Gated change: patch ingresses\.networking\.k8s\.io "web" in shop on dev/,
      })
      .waitFor();
    const diff = card.getByLabel('Diff of the change requested by dev@example.com');
    await diff.locator('.line.del', { hasText: 'host: a.example.com' }).waitFor();
    await diff.locator('.line.add', { hasText: 'host: b.example.com' }).waitFor();
    assert.equal(await diff.locator('.line.add').count(), 1, 'one line changes');
    assert.match(
      (await card.textContent()) ?? '',
      /RequestPATCH \S*\/namespaces\/shop\/ingresses\/web/,
    );
    await screenshot(page, '27-approvals-inbox-gated-diff');
    assert.deepEqual(await unnamedControls(page), [], 'every control has a name');
    // Denying needs a reason: the page asks before sending anything.
    await card.getByRole('button', { name: 'Deny' }).click();
    await card.getByRole('alert').getByText('Say why you deny it').waitFor();
    await card.getByLabel('Reason for your decision').fill('looks right');
    await card.getByRole('button', { name: 'Approve' }).click();
    await page.getByText('Approved: the identical request may now run once.').waitFor();

    await kubectlOk(['apply', '-f', v2], { kubeconfig: devKubeconfig });
    const host = await kubectlOk(
      ['get', 'ingress', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.rules[0].host}'],
      direct(),
    );
    assert.equal(host, 'b.example.com');
    // Once: the developer's own list shows it ran.
    await goTo(dev.page, 'My clusters');
    await goTo(dev.page, 'My access requests');
    await dev.page
      .getByRole('table', { name: 'My requests' })
      .getByRole('row', { name: /patch ingresses/ })
      .getByText('executed')
      .first()
      .waitFor();
    await screenshot(dev.page, '28-my-requests-executed');
  });

  test('cluster health is fleet-wide: a replica without the tunnel tells the same truth', async () => {
    const replica = await stack.startReplica();
    const token = await tokenOf('ops', ['kubegate-admins']);
    type Health = { online: boolean; agentVersion: string; replicas: { replica: string }[] };
    const healthAt = async (url: string) => {
      const r = await httpGet(`${url}/api/v1/console/clusters`, { ca, token });
      assert.equal(r.status, 200, r.body);
      return (JSON.parse(r.body) as { items: { name: string; health: Health }[] }).items.find(
        (c) => c.name === 'dev',
      )!.health;
    };
    const here = await healthAt(publicUrl);
    const there = await healthAt(replica.publicUrl);
    assert.equal(here.online, true);
    assert.deepEqual(there, here, 'both replicas report the registry’s view');
    const live = await stack.sql<{ id: string }>('SELECT id FROM replicas');
    const holding = await stack.sql<{ replica_id: string }>(
      `SELECT DISTINCT replica_id FROM replica_tunnels WHERE cluster = 'dev'`,
    );
    assert.equal(live.length, 2, 'two replicas in the registry');
    assert.deepEqual(
      here.replicas.map((r) => r.replica),
      holding.map((r) => r.replica_id),
      'one of them holds the tunnel; the other answers from the registry',
    );
    // The admin page reads the same block (GET /api/v1/clusters).
    await goTo(admin.page, 'Clusters');
    const row = admin.page.getByRole('row', { name: /dev/ });
    await row.getByText('online').waitFor();
    await row
      .getByText(/: \d+ tunnels?, since/)
      .first()
      .waitFor();
    await screenshot(admin.page, '29-admin-clusters-health');
  });
});
