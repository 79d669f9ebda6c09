/**
 * Runbooks in the web console, in a real browser (Debian's chromium driven
 * by playwright-core) against the whole stack with the real dev IdP, a real
 * apiserver behind the agent and the real kubectl:
 *
 * - a developer with the `run` permission opens Runbooks, fills the form
 *   generated from scale-deployment's parameters, runs it, and watches the
 *   run reach `succeeded` with the step's diff; the deployment is scaled;
 * - a double click sends one request, with an Idempotency-Key, and makes
 *   one run;
 * - a 422 shows every problem the server lists, next to the form, and
 *   makes no run;
 * - the Runs page lists the run, and its filters work;
 * - "Dry run" in the form shows the diff and changes nothing;
 * - under a runbook approval policy the run waits: a platform lead sees the
 *   runbook, clusters, namespace, parameters, ticket, steps and the dry
 *   run's diff in the inbox and approves it there, and the requester's run
 *   page follows it to `succeeded` by itself (asking every second while it
 *   is open, then no more);
 * - a run waiting for approval is cancelled from its page.
 *
 * Screenshots go to test-results/console/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startStack, type Stack } from '../support/stack.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { goTo, signIn, unnamedControls } from '../support/console.js';
import { grant } from '../support/grants.js';
import { kubectlOk } from '../support/kubectl.js';
import { httpGet, until } from '../support/http.js';
import { launchChromium, screenshot, type ChromiumSession } from '../support/chromium.js';

let stack: Stack;
let idp: Idp;
let publicUrl: string;
let dev: ChromiumSession;
let lead: ChromiumSession;
let ca: string;
let adminToken: string;
const direct = () => ({ kubeconfig: stack.cluster.kubeconfig });

async function runCount(): Promise<number> {
  return (await stack.sql<{ n: number }>('SELECT count(*)::int AS n FROM runbook_runs'))[0]!.n;
}

async function replicas(): Promise<number> {
  const out = await kubectlOk(
    ['get', 'deployment', 'demo-app', '-n', 'platform-demo', '-o', 'jsonpath={.spec.replicas}'],
    direct(),
  );
  return Number(out.trim());
}

describe('runbooks in the web console', { timeout: 900_000 }, () => {
  before(async () => {
    const sso = await startStackIdp();
    idp = sso.idp;
    idp.addUser({ email: 'lead@example.com', name: 'Lead', groups: ['platform-leads'] });
    publicUrl = sso.publicUrl;
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' } }],
      proxyEnv: sso.proxyEnv,
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    await kubectlOk(['create', 'namespace', 'platform-demo'], direct());
    await kubectlOk(
      [
        'create',
        'deployment',
        'demo-app',
        '--image=registry.example/demo:1',
        '-n',
        'platform-demo',
      ],
      direct(),
    );
    // Developers read platform-demo and may ask for scale-deployment there.
    adminToken = /token: (kg_[A-Za-z0-9_-]+)/.exec(
      readFileSync(await stack.kubeconfig('root@example.com', ['kubegate-admins']), 'utf8'),
    )![1]!;
    const role = await httpGet(`${stack.publicUrl}/api/v1/roles`, {
      ca,
      token: adminToken,
      method: 'POST',
      body: JSON.stringify({
        name: 'runbook-runner',
        description: 'may ask for scale-deployment',
        rules: [
          {
            apiGroups: ['kubegate.dev'],
            resources: ['runbooks'],
            verbs: ['run'],
            resourceNames: ['scale-deployment'],
          },
        ],
      }),
    });
    assert.equal(role.status, 201, role.body);
    for (const r of ['view', 'runbook-runner'])
      await grant(stack, {
        groups: ['developers'],
        role: r,
        clusters: ['dev'],
        namespaces: ['platform-demo'],
      });
    dev = await launchChromium(publicUrl);
    lead = await launchChromium(publicUrl);
    await signIn(dev.page, publicUrl, 'dev@example.com');
    await signIn(lead.page, publicUrl, 'lead@example.com');
  });
  after(async () => {
    await dev?.close();
    await lead?.close();
    await stack?.stop();
    await idp?.close();
  });

  let runId = '';

  test('a developer runs scale-deployment from the form and watches it succeed with the diff', async () => {
    const page = dev.page;
    await goTo(page, 'Runbooks');
    const list = page.getByRole('table', { name: 'Runbooks' });
    const row = list.getByRole('row', { name: /scale-deployment/ });
    await row.getByText('Set the number of replicas of a Deployment').waitFor();
    await row.getByText('built-in').waitFor();
    await screenshot(page, '40-runbooks');
    await row.getByRole('link', { name: 'scale-deployment' }).click();
    await page.getByRole('heading', { level: 2, name: 'Run scale-deployment' }).waitFor();

    // The form follows the parameter schema: required marked, bounds on the number, descriptions shown.
    const ns = page.getByLabel('namespace (required)');
    const deployment = page.getByLabel('deployment (required)');
    const count = page.getByLabel('replicas (required)');
    assert.equal(await count.getAttribute('type'), 'number');
    assert.equal(await count.getAttribute('min'), '0');
    assert.equal(await count.getAttribute('max'), '100');
    assert.equal(await ns.getAttribute('required'), '');
    await page.getByText('The Deployment to scale.').waitFor();
    await page.getByText('How many pods it should run. A whole number from 0 to 100.').waitFor();
    // The one cluster the person reaches is offered, and chosen.
    const cluster = page.getByRole('checkbox', { name: 'dev' });
    assert.equal(await cluster.isChecked(), true);
    assert.equal(await page.getByRole('checkbox', { name: 'Dry run' }).isChecked(), false);
    assert.deepEqual(await unnamedControls(page), [], 'every control has a name');

    await ns.fill('platform-demo');
    await deployment.fill('demo-app');
    await count.fill('3');
    await page.getByLabel('Ticket').fill('INC-42');
    await screenshot(page, '41-runbook-form');

    // A double click: one request with an Idempotency-Key, one run.
    const before = await runCount();
    const posts: (string | undefined)[] = [];
    const onRequest = (r: {
      method(): string;
      url(): string;
      headers(): Record<string, string>;
    }) => {
      if (r.method() === 'POST' && r.url().endsWith('/api/v1/runs'))
        posts.push(r.headers()['idempotency-key']);
    };
    page.on('request', onRequest);
    await page.getByRole('button', { name: 'Run', exact: true }).dblclick();
    await page.waitForURL(/\/console\/runs\/[0-9a-f-]{36}$/);
    page.off('request', onRequest);
    runId = /\/console\/runs\/([0-9a-f-]{36})$/.exec(page.url())![1]!;
    assert.ok(posts.length >= 1);
    assert.match(posts[0] ?? '', /^[0-9a-f-]{36}$/, 'an Idempotency-Key was sent');
    assert.equal(new Set(posts).size, 1, 'every request of the double click had the same key');
    assert.equal(await runCount(), before + 1, 'one run');

    // Live status: the page follows the run to its end by itself.
    await page.getByRole('status').getByText('Status: succeeded').waitFor({ timeout: 60_000 });
    const facts = page.locator('dl.facts');
    await facts.getByText('INC-42').waitFor();
    await facts.getByText('replicas=3').waitFor();
    await facts.getByText('deployment="demo-app"').waitFor();
    await facts.getByText(/dev@example\.com/).waitFor();
    const target = page.getByRole('region', { name: /Cluster dev/ });
    await target.getByText('succeeded').first().waitFor();
    const diff = target.getByLabel('Diff of Step 1 on dev: scale');
    const text = (await diff.textContent()) ?? '';
    assert.match(text, /^-\s+replicas: 1$/m, text);
    assert.match(text, /^\+\s+replicas: 3$/m, text);
    assert.equal((await target.locator('.diff .add').count()) > 0, true, 'added lines are marked');
    await screenshot(page, '42-run-succeeded');
    assert.equal(await replicas(), 3);
  });

  test('a 422 lists every problem next to the form and makes no run', async () => {
    const page = dev.page;
    await goTo(page, 'Runbooks');
    await page.getByRole('link', { name: 'scale-deployment' }).click();
    await page.getByLabel('namespace (required)').fill('platform-demo');
    await page.getByLabel('deployment (required)').fill('Demo_App');
    await page.getByLabel('replicas (required)').fill('2');
    await page.getByLabel('Ticket').fill('INC 42');
    const before = await runCount();
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const problems = await alert.getByRole('listitem').allTextContents();
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.ok(
      problems.some((p) => /deployment.*Demo_App.*does not match/.test(p)),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => /^ticket: must be a reference/.test(p)),
      problems.join('\n'),
    );
    // The problems are beside the form, which keeps what was typed and marks the fields named.
    assert.equal(await page.getByLabel('deployment (required)').inputValue(), 'Demo_App');
    assert.equal(
      await page.getByLabel('deployment (required)').getAttribute('aria-invalid'),
      'true',
    );
    assert.equal(await page.getByLabel('Ticket').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByLabel('namespace (required)').getAttribute('aria-invalid'), null);
    assert.match(page.url(), /\/console\/runbooks\/scale-deployment$/);
    await screenshot(page, '43-run-problems');
    assert.equal(await runCount(), before);
  });

  test('the Runs page lists the run, with filters by status and runbook', async () => {
    const page = dev.page;
    await goTo(page, 'Runs');
    const table = page.getByRole('table', { name: 'Runs' });
    const row = table.getByRole('row', { name: /scale-deployment/ });
    await row.getByText('succeeded').waitFor();
    await row.getByText('INC-42').waitFor();
    await row.getByText(/dev@example\.com/).waitFor();
    assert.equal(await table.getByRole('row').count(), 2, 'a header and the one run');
    await screenshot(page, '44-runs');

    await page.getByLabel('Status').selectOption('failed');
    await page.getByText('No run matches these filters.').waitFor();
    assert.match(page.url(), /\?status=failed$/);
    await page.getByLabel('Status').selectOption('succeeded');
    await page.getByLabel('Runbook').selectOption('scale-deployment');
    await table.getByRole('row', { name: /scale-deployment/ }).waitFor();
    await page.getByLabel('Runbook').selectOption('rollout-restart');
    await page.getByText('No run matches these filters.').waitFor();
    await page.getByLabel('Runbook').selectOption('');
    await table.getByRole('link', { name: 'scale-deployment' }).click();
    await page.waitForURL(`**/console/runs/${runId}`);
    await page.getByRole('status').getByText('Status: succeeded').waitFor();
    // A reload of a run's address shows the same run.
    await page.reload();
    await page.getByRole('status').getByText('Status: succeeded').waitFor();
  });

  test('a dry run from the form shows the diff and changes nothing', async () => {
    const page = dev.page;
    await goTo(page, 'Runbooks');
    await page.getByRole('link', { name: 'scale-deployment' }).click();
    await page.getByLabel('namespace (required)').fill('platform-demo');
    await page.getByLabel('deployment (required)').fill('demo-app');
    await page.getByLabel('replicas (required)').fill('5');
    await page.getByRole('checkbox', { name: 'Dry run' }).check();
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForURL(/\/console\/runs\/[0-9a-f-]{36}$/);
    await page.getByRole('status').getByText('Status: succeeded').waitFor({ timeout: 60_000 });
    await page
      .getByRole('heading', { level: 2, name: 'Run of scale-deployment (dry run) on dev' })
      .waitFor();
    const diff = page.getByLabel('Diff of Step 1 on dev: scale');
    assert.match((await diff.textContent()) ?? '', /^\+\s+replicas: 5$/m);
    assert.equal(await replicas(), 3, 'nothing changed');
  });

  test('a run an approval policy covers waits: the approver sees its steps and dry-run diff in the inbox, the run page follows it to the end', async () => {
    // Developers' scale-deployment runs on dev wait for a platform lead.
    const policy = await httpGet(`${stack.publicUrl}/api/v1/approval-policies`, {
      ca,
      token: adminToken,
      method: 'POST',
      body: JSON.stringify({
        name: 'dev-runbooks',
        kind: 'runbook',
        description: 'a platform lead approves developers scaling on dev',
        approvers: { groups: ['platform-leads'] },
        clusters: { names: ['dev'] },
        runbooks: ['scale-deployment'],
        requesterGroups: ['developers'],
      }),
    });
    assert.equal(policy.status, 201, policy.body);

    const page = dev.page;
    await goTo(page, 'Runbooks');
    await page.getByRole('link', { name: 'scale-deployment' }).click();
    await page.getByLabel('namespace (required)').fill('platform-demo');
    await page.getByLabel('deployment (required)').fill('demo-app');
    await page.getByLabel('replicas (required)').fill('4');
    await page.getByLabel('Ticket').fill('INC-44');
    await page.getByLabel('Reason').fill('more pods for the sale');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForURL(/\/console\/runs\/[0-9a-f-]{36}$/);
    const id = /\/console\/runs\/([0-9a-f-]{36})$/.exec(page.url())![1]!;
    let asked = 0;
    const counting = (r: { method(): string; url(): string }) => {
      if (r.method() === 'GET' && r.url().endsWith(`/api/v1/runs/${id}`)) asked++;
    };
    await page.getByRole('status').getByText('Status: awaiting-approval').waitFor();
    // From here the page can learn the run's end only by asking again.
    page.on('request', counting);
    const facts = page.locator('dl.facts');
    await facts.getByText('more pods for the sale').waitFor();
    const link = facts.getByRole('link', { name: /approval request/ });
    assert.equal(
      await link.getAttribute('href'),
      '/console/requests',
      'the requester follows it there',
    );
    await facts.getByText('pending').waitFor();
    await screenshot(page, '45-run-awaiting-approval');

    // The approver's inbox: the run in full, and the dry run's diff once it is in.
    const inbox = lead.page;
    const card = inbox.getByRole('article', {
      name: 'Runbook run: scale-deployment in platform-demo on dev for INC-44',
    });
    const diff = card.getByLabel('Dry-run diff of the run requested by dev@example.com');
    await until(
      async () => {
        await goTo(inbox, 'Approvals');
        return (await diff.count()) === 1;
      },
      60_000,
      'the dry run to show in the inbox',
    );
    const cardFacts = card.locator('dl.facts');
    for (const t of ['version 1', 'replicas=4', 'deployment="demo-app"', 'INC-44'])
      await cardFacts.getByText(t).first().waitFor();
    assert.match((await cardFacts.textContent()) ?? '', /Namespaceplatform-demo/);
    assert.match((await cardFacts.textContent()) ?? '', /Dry runno/);
    assert.match((await cardFacts.textContent()) ?? '', /Reasonmore pods for the sale/);
    await cardFacts.getByRole('listitem').filter({ hasText: 'scale — scale' }).waitFor();
    const text = (await diff.textContent()) ?? '';
    assert.match(text, /^# cluster dev$/m, text);
    assert.match(text, /^-\s+replicas: 3$/m, text);
    assert.match(text, /^\+\s+replicas: 4$/m, text);
    await card.getByText('0 of 1 approval').waitFor();
    await screenshot(inbox, '46-approve-run');
    assert.deepEqual(await unnamedControls(inbox), [], 'every control has a name');
    assert.equal(await replicas(), 3, 'nothing ran before the approval');
    await card.getByLabel('Reason for your decision').fill('go ahead');
    await card.getByRole('button', { name: 'Approve' }).click();
    await inbox.getByText('Approved: the run starts now, as the runbook.').waitFor();

    // The requester's page, never reloaded, follows the run to its end.
    await page.getByRole('status').getByText('Status: succeeded').waitFor({ timeout: 60_000 });
    await facts.getByText('approved').waitFor();
    const step = page.getByLabel('Diff of Step 1 on dev: scale');
    assert.match((await step.textContent()) ?? '', /^\+\s+replicas: 4$/m);
    await page.getByText('The dry run made before approval').waitFor();
    await screenshot(page, '47-approved-run-succeeded');
    // (At least once: on a quick approval the first question after the request may
    // already be answered "succeeded"; the CI simulation saw just that.)
    assert.ok(asked >= 1, `the page asked again while the run was open (${asked})`);
    const after = asked;
    await page.waitForTimeout(2500);
    page.off('request', counting);
    assert.equal(asked, after, 'no more requests once the run has ended');
    assert.equal(await replicas(), 4);

    // The requester's own requests show it, with the way back to the run.
    await goTo(page, 'My access requests');
    const row = page.getByRole('row', { name: /Runbook run: scale-deployment/ });
    await row.getByText('approved').first().waitFor();
    await row.getByRole('link', { name: 'Follow the run' }).click();
    await page.waitForURL(`**/console/runs/${id}`);
    await page.getByRole('status').getByText('Status: succeeded').waitFor();
  });
  test('a run waiting for approval is cancelled from its page, with a reason', async () => {
    const page = dev.page;
    await goTo(page, 'Runbooks');
    await page.getByRole('link', { name: 'scale-deployment' }).click();
    await page.getByLabel('namespace (required)').fill('platform-demo');
    await page.getByLabel('deployment (required)').fill('demo-app');
    await page.getByLabel('replicas (required)').fill('1');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByRole('status').getByText('Status: awaiting-approval').waitFor();
    await page.getByLabel('Why cancel').fill('not needed after all');
    page.once('dialog', (d) => void d.accept());
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.getByRole('status').getByText('Status: cancelled').waitFor({ timeout: 30_000 });
    const facts = page.locator('dl.facts');
    assert.match(
      (await facts.textContent()) ?? '',
      /Cancelledcancelled by user:dev@example\.com: not needed after all/,
    );
    assert.equal(await page.getByRole('button', { name: 'Cancel run' }).count(), 0);
    assert.equal(await replicas(), 4, 'nothing ran');
    await goTo(page, 'Runs');
    await page.getByLabel('Status').selectOption('cancelled');
    await page
      .getByRole('table', { name: 'Runs' })
      .getByRole('row', { name: /scale-deployment/ })
      .getByText('cancelled')
      .waitFor();
  });
});
