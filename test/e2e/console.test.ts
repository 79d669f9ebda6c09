/**
 * The web console in a real browser (Debian's chromium, driven by
 * playwright-core) against the whole stack: the real dev IdP
 * (oidc-provider), the proxy, an agent with its tunnel, a real
 * kube-apiserver and the real kubectl. What a person does in the console
 * must change what kubectl can do: a kubeconfig downloaded from the page
 * works, a binding saved in the page opens access within a second, a token
 * revoked in the page ends it. Screenshots of every page go to
 * test-results/console/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { downloadBy, goTo, signIn } from '../support/console.js';
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
/** The developer's kubeconfig, downloaded in the console, and its token. */
let devKubeconfig: string;
let devToken: string;

describe('the web console in a real browser', { timeout: 900_000 }, () => {
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
    await grant(stack, { groups: ['kubegate-admins'], role: 'cluster-admin', selector: {} });
    // Developers start with read access in `default` only.
    await grant(stack, {
      groups: ['developers'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['default'],
    });
    admin = await launchChromium(publicUrl);
    dev = await launchChromium(publicUrl);
  });
  after(async () => {
    await admin?.close();
    await dev?.close();
    await stack?.stop();
    await idp?.close();
  });

  test('sign in through the dev IdP, download the fleet kubeconfig, and kubectl works with it', async () => {
    await signIn(admin.page, publicUrl, 'admin@example.com');
    const row = admin.page.getByRole('row', { name: /dev/ });
    await row.getByText('online').waitFor();
    await row.getByText('cluster-admin').waitFor();
    await screenshot(admin.page, '01-my-clusters-admin');

    const fleet = await downloadBy(admin, () =>
      admin.page.getByRole('button', { name: 'Download fleet kubeconfig' }).click(),
    );
    assert.match(fleet.name, /^kubegate-admin_example\.com\.kubeconfig$/);
    const kc = parse(fleet.text) as { clusters: { cluster: { server: string } }[] };
    assert.deepEqual(
      kc.clusters.map((c) => c.cluster.server),
      [`${publicUrl}/k8s/dev`],
    );
    assert.match(
      await kubectlOk(['get', 'ns', '-o', 'name'], { kubeconfig: fleet.path }),
      /namespace\/kube-system/,
    );
    await admin.page.getByRole('status').getByText(`Saved ${fleet.name}`).waitFor();

    const one = await downloadBy(admin, () =>
      admin.page.getByRole('button', { name: 'Download kubeconfig for dev' }).click(),
    );
    assert.equal(one.name, 'kubegate-admin_example.com-dev.kubeconfig');
    assert.equal(
      (await kubectlOk(['config', 'get-contexts', '-o', 'name'], { kubeconfig: one.path })).trim(),
      'dev',
    );
  });

  test('a binding created in the console changes the user’s kubectl access within a second', async () => {
    await signIn(dev.page, publicUrl, 'dev@example.com');
    await dev.page.getByRole('row', { name: /dev/ }).getByText('in default').waitFor();
    await screenshot(dev.page, '02-my-clusters-developer');
    const file = await downloadBy(dev, () =>
      dev.page.getByRole('button', { name: 'Download fleet kubeconfig' }).click(),
    );
    devKubeconfig = file.path;
    const token = (parse(file.text) as { users: { user: { token: string } }[] }).users[0]!.user
      .token;
    devToken = token;
    const denied = await kubectl(['get', 'pods', '-n', 'kube-system'], {
      kubeconfig: devKubeconfig,
    });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Forbidden/);

    // The admin writes the binding in the form; the preview says what it reaches before saving.
    const page = admin.page;
    await goTo(page, 'Bindings');
    await page.getByLabel('Subject kind', { exact: true }).selectOption('Group');
    await page.getByLabel('Subject name', { exact: true }).fill('developers');
    await page.getByLabel('Role', { exact: true }).selectOption('view');
    await page.getByLabel('Cluster names', { exact: true }).fill('dev');
    await page.getByLabel('Namespaces', { exact: true }).fill('kube-system');
    await page.getByLabel('Reason', { exact: true }).fill('on-call read access');
    const reach = page.getByTestId('reach');
    await reach.getByText('Reaches 1 cluster').waitFor();
    assert.match((await reach.textContent()) ?? '', /dev.*In namespaces: kube-system/s);
    await screenshot(page, '03-admin-bindings-preview');
    const url = `${publicUrl}/k8s/dev/api/v1/namespaces/kube-system/pods`;
    assert.equal((await httpGet(url, { token, ca })).status, 403);

    await page.getByRole('button', { name: 'Save binding' }).click();
    await page.getByText('Binding saved').waitFor();
    const ms = await until(
      async () => (await httpGet(url, { token, ca })).status === 200,
      1000,
      'the new binding allows the developer',
    );
    process.stderr.write(`# binding saved in the console → allowed after ${ms} ms\n`);
    await kubectlOk(['get', 'pods', '-n', 'kube-system'], { kubeconfig: devKubeconfig });
    await page.getByRole('cell', { name: 'on-call read access' }).waitFor();
    await screenshot(page, '04-admin-bindings-list');
  });

  test('editing a binding in the console (selector expressions, If-Match) changes access at once', async () => {
    const page = admin.page;
    const url = `${publicUrl}/k8s/dev/api/v1/namespaces/kube-public/configmaps`;
    assert.equal((await httpGet(url, { token: devToken, ca })).status, 403);
    const edit = async () => {
      await page
        .getByRole('row', { name: /on-call read access/ })
        .getByRole('button', { name: 'Edit binding of view for developers' })
        .click();
      // The form is filled from a fresh read; its heading changes last.
      await page.getByRole('heading', { name: 'Edit binding of view for developers' }).waitFor();
    };
    const fill = async () => {
      await page.getByLabel('Cluster names', { exact: true }).fill('');
      await page.getByLabel('Label selector: label key 1').fill('env');
      await page.getByLabel('Label selector: operator 1').selectOption('In');
      await page.getByLabel('Label selector: values 1').fill('dev, staging');
      await page.getByLabel('Namespaces', { exact: true }).fill('kube-system, kube-public');
    };
    await edit();
    // The form holds the binding as saved.
    assert.equal(await page.getByLabel('Cluster names', { exact: true }).inputValue(), 'dev');
    assert.equal(await page.getByLabel('Namespaces', { exact: true }).inputValue(), 'kube-system');
    await fill();
    const reach = page.getByTestId('reach');
    await reach.getByText('In namespaces: kube-system, kube-public').waitFor();
    assert.match((await reach.textContent()) ?? '', /Reaches 1 cluster: dev/);
    await screenshot(page, '04b-admin-bindings-edit');

    // Someone else changes it meanwhile: saving is refused, nothing is overwritten.
    await stack.sql(
      `UPDATE bindings SET version = version + 1 WHERE reason = 'on-call read access'`,
    );
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page
      .getByRole('alert')
      .getByText(/Someone changed this binding since you opened it/)
      .waitFor();
    const [kept] = await stack.sql<{ namespaces: string[] }>(
      `SELECT namespaces FROM bindings WHERE reason = 'on-call read access'`,
    );
    assert.deepEqual(kept!.namespaces, ['kube-system']);

    await page.getByRole('button', { name: 'Cancel editing' }).click();
    await page.getByRole('heading', { name: 'New binding' }).waitFor();
    await edit();
    await fill();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Binding changed').waitFor();
    const ms = await until(
      async () => (await httpGet(url, { token: devToken, ca })).status === 200,
      1000,
      'the edited binding allows kube-public',
    );
    process.stderr.write(`# binding edited in the console → allowed after ${ms} ms\n`);
    const row = page.getByRole('row', { name: /on-call read access/ });
    assert.match((await row.textContent()) ?? '', /selector: env in \(dev,staging\)/);
    assert.doesNotMatch((await row.textContent()) ?? '', /names:/);
    const [saved] = await stack.sql<{ cluster_names: string[]; cluster_selector: unknown }>(
      `SELECT cluster_names, cluster_selector FROM bindings WHERE reason = 'on-call read access'`,
    );
    assert.deepEqual(saved!.cluster_names, []);
    assert.deepEqual(saved!.cluster_selector, {
      matchExpressions: [{ key: 'env', operator: 'In', values: ['dev', 'staging'] }],
    });
    await screenshot(page, '04c-admin-bindings-edited');
  });

  test('a token revoked in the console makes kubectl Unauthorized', async () => {
    const page = dev.page;
    await goTo(page, 'My tokens');
    const rows = page.getByRole('button', { name: /^Revoke token / });
    assert.equal(await rows.count(), 1, 'the developer holds the one token of their download');
    // kubectl has used it: the page says when.
    const lastUsed = page.getByRole('row').filter({ has: rows.first() }).getByRole('cell').nth(2);
    assert.match((await lastUsed.textContent()) ?? '', /ago|just now/);
    await screenshot(page, '05-my-tokens');
    page.once('dialog', (d) => void d.accept());
    await rows.first().click();
    await page.getByText(/revoked: kubeconfigs holding it stop working now/).waitFor();
    const r = await kubectl(['get', 'pods', '-n', 'default'], {
      kubeconfig: devKubeconfig,
      timeoutMs: 30_000,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Unauthorized/);
    await page.getByText('You have no active tokens').waitFor();
  });

  test('audit search finds the events, for the admin and for the user themselves', async () => {
    const page = admin.page;
    await goTo(page, 'Audit log');
    await page.getByLabel('User', { exact: true }).fill('dev@example.com');
    await page.getByLabel('Namespace', { exact: true }).fill('kube-system');
    await page.getByLabel('Decision', { exact: true }).selectOption('deny');
    await page.getByRole('button', { name: 'Search' }).click();
    const table = page.getByRole('table', { name: 'Audit events' });
    await table
      .getByRole('cell', { name: /pods in kube-system/ })
      .first()
      .waitFor();
    assert.ok((await table.getByRole('cell', { name: 'dev@example.com' }).count()) >= 1);
    assert.equal(await table.getByText('allow', { exact: true }).count(), 0, 'only denials match');
    await screenshot(page, '06-admin-audit');
    const exported = await downloadBy(admin, () =>
      page.getByRole('link', { name: 'Export NDJSON' }).click(),
    );
    const events = exported.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { user: { username: string }; decision: string });
    assert.ok(events.length >= 1);
    assert.ok(events.every((e) => e.user.username === 'dev@example.com' && e.decision === 'deny'));

    // The binding the admin saved in the console is an audited admin action.
    await page.getByLabel('User', { exact: true }).fill('admin@example.com');
    await page.getByLabel('Namespace', { exact: true }).fill('');
    await page.getByLabel('Decision', { exact: true }).selectOption('');
    await page.getByLabel('Source', { exact: true }).selectOption('admin');
    await page.getByRole('button', { name: 'Search' }).click();
    // …and so is its edit, newest first.
    const changes = table.getByRole('row').filter({ hasText: /bindings\.kubegate\.dev/ });
    await changes.first().waitFor();
    assert.match((await changes.first().textContent()) ?? '', /update/);
    assert.match((await changes.nth(1).textContent()) ?? '', /create/);
    await screenshot(page, '06b-admin-audit-admin-actions');

    // The developer's own activity: their requests, and nobody else's.
    await dev.page.goto(`${publicUrl}/console/audit`);
    await dev.page.getByRole('heading', { level: 1, name: 'My activity' }).waitFor();
    const mine = dev.page.getByRole('table', { name: 'Audit events' });
    await mine
      .getByRole('cell', { name: /pods in kube-system/ })
      .first()
      .waitFor();
    assert.equal(await mine.getByText('admin@example.com').count(), 0);
    await screenshot(dev.page, '07-my-activity');
  });

  test('the admin pages: register a cluster, roles with validation, robots, users', async () => {
    const page = admin.page;
    await goTo(page, 'Clusters');
    await page.getByLabel('Name', { exact: true }).fill('staging');
    await page.getByLabel('Labels', { exact: true }).fill('env=staging, region=eu');
    await page.getByRole('button', { name: 'Register' }).click();
    await page.getByRole('heading', { name: 'Attach cluster "staging"' }).waitFor();
    const yaml = (await page.getByLabel('Bootstrap YAML', { exact: true }).textContent()) ?? '';
    assert.match(yaml, /kind: Deployment/);
    assert.match(yaml, /kgb_/);
    const helm = (await page.getByLabel('Helm command', { exact: true }).textContent()) ?? '';
    assert.match(
      helm,
      /^helm install kubegate-agent .* --set cluster=staging .*--set bootstrap\.token=kgb_/,
    );
    const saved = await downloadBy(admin, () =>
      page.getByRole('button', { name: 'Download YAML' }).click(),
    );
    assert.equal(saved.text, yaml);
    await page
      .getByRole('row', { name: /staging/ })
      .getByText('offline')
      .waitFor();
    await page.getByRole('row', { name: /dev/ }).getByText('online').waitFor();
    await screenshot(page, '08-admin-clusters');

    // Labels in a form: remove one, add one; the merge patch removes what is gone.
    await page.getByRole('button', { name: 'Edit labels of staging' }).click();
    await page.getByRole('heading', { name: 'Labels of staging' }).waitFor();
    assert.equal(await page.getByLabel('Label key 2', { exact: true }).inputValue(), 'region');
    await page.getByRole('button', { name: 'Remove label 2' }).click();
    await page.getByRole('button', { name: 'Add label' }).click();
    await page.getByLabel('Label key 3', { exact: true }).fill('tier');
    await page.getByLabel('Label value 3', { exact: true }).fill('web');
    await screenshot(page, '08b-admin-cluster-labels');
    await page.getByRole('button', { name: 'Save labels' }).click();
    await page.getByText('Labels of staging saved.').waitFor();
    const staging = page.getByRole('row', { name: /staging/ });
    await staging.getByText('tier=web').waitFor();
    assert.equal(await staging.getByText('region=eu').count(), 0);
    const [labels] = await stack.sql<{ labels: unknown }>(
      `SELECT labels FROM clusters WHERE name = 'staging'`,
    );
    assert.deepEqual(labels!.labels, { env: 'staging', tier: 'web' });

    await goTo(page, 'Roles');
    await page
      .getByRole('cell', { name: /cluster-admin/ })
      .first()
      .waitFor();
    await page.getByLabel('Name', { exact: true }).fill('pod-reader');
    await page.getByLabel('Resources', { exact: true }).fill('pods');
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByRole('alert').getByText('give at least one verb').waitFor();
    await page.getByLabel('API groups', { exact: true }).fill('""');
    await page.getByLabel('Verbs', { exact: true }).fill('Get, list');
    await page.getByRole('button', { name: 'Create role' }).click();
    await page
      .getByRole('alert')
      .getByText(/"Get" must be lowercase/)
      .first()
      .waitFor(); // the server's validation
    await screenshot(page, '09-admin-roles-validation');
    await page.getByLabel('Verbs', { exact: true }).fill('get, list, watch');
    await page.getByRole('button', { name: 'Create role' }).click();
    await page.getByText('Role pod-reader created.').waitFor();
    await page
      .getByRole('cell', { name: /pod-reader/ })
      .first()
      .waitFor();

    await goTo(page, 'Robots');
    await page.getByLabel('Name', { exact: true }).fill('ci');
    await page.getByLabel('Groups', { exact: true }).fill('deployers');
    await page.getByRole('button', { name: 'Create robot' }).click();
    const shown = (await page.getByLabel('Token of robot ci', { exact: true }).textContent()) ?? '';
    assert.match(shown, /^kg_/);
    await screenshot(page, '10-admin-robots');

    await goTo(page, 'Users');
    await page
      .getByRole('cell', { name: /dev@example\.com/ })
      .first()
      .waitFor();
    await page
      .getByRole('cell', { name: /admin@example\.com/ })
      .first()
      .waitFor();
    assert.equal(
      await page.getByRole('button', { name: 'Deactivate admin@example.com' }).count(),
      0,
      'no one is offered to deactivate themselves',
    );
    await screenshot(page, '11-admin-users');
  });
});
