/**
 * Self-service namespaces in the web console, in a real browser (Debian's
 * chromium driven by playwright-core) against the whole stack with the real
 * dev IdP, a real apiserver behind the agent and the real kubectl:
 *
 * - an admin writes a namespace profile in the JSON editor: a broken one
 *   shows every problem the server lists, the fixed one is saved and listed;
 * - a developer opens Namespaces, picks the profile and sees what it gives,
 *   types a name that breaks the profile's rule and is told so as they type,
 *   then asks for `team-a` on `dev`; the namespace's page follows it to
 *   `ready` by itself, and the namespace is on the cluster with its quota;
 * - the owner adds a colleague with a role picked among the profile's member
 *   roles only, and the colleague is listed; removing them takes them out;
 * - the list shows the namespace with its status and the owner's role;
 * - the `kubegate` CLI against the same proxy, with fleet kubeconfigs:
 *   `namespace create --wait` follows a namespace to ready, a name against
 *   the rule and a role beyond the profile are refused with the reason,
 *   list, get, add-member, delete; an admin reads and re-applies the profile
 *   and cannot delete it while namespaces use it.
 *
 * Screenshots go to test-results/console/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { goTo, signIn, unnamedControls } from '../support/console.js';
import { grant } from '../support/grants.js';
import { kubectlOk } from '../support/kubectl.js';
import { launchChromium, screenshot, type ChromiumSession } from '../support/chromium.js';
import { runKubegate } from '../support/proc.js';

let stack: Stack;
let idp: Idp;
let admin: ChromiumSession;
let dev: ChromiumSession;
const direct = () => ({ kubeconfig: stack.cluster.kubeconfig });

/** `kubegate ARGS` with a fleet kubeconfig, and no other way to reach kubegate. */
function cli(kubeconfig: string, args: string[]) {
  return runKubegate([...args, '--kubeconfig', kubeconfig], {
    DATABASE_URL: '',
    KUBECONFIG: '',
    KUBEGATE_SERVER: '',
    KUBEGATE_TOKEN: '',
  });
}

const profile = {
  name: 'dev-teams',
  description: 'Team namespaces on the development cluster',
  clusters: { names: ['dev'] },
  naming: { prefix: 'team-', maxLength: 30 },
  quota: { pods: '5', 'requests.cpu': '2' },
  limits: { default: { cpu: '200m', memory: '256Mi' } },
  networkPolicy: 'default-deny',
  ownerRole: 'admin',
  memberRoles: ['edit', 'view'],
  perUserLimit: 3,
  approval: null,
};

describe('self-service namespaces in the web console', { timeout: 900_000 }, () => {
  before(async () => {
    const sso = await startStackIdp();
    idp = sso.idp;
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' } }],
      proxyEnv: sso.proxyEnv,
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    await grant(stack, { groups: ['kubegate-admins'], role: 'cluster-admin', selector: {} });
    // Developers may look at one shared namespace: their fleet kubeconfig has a dev context.
    await kubectlOk(['create', 'namespace', 'shared'], direct());
    await grant(stack, {
      groups: ['developers'],
      role: 'view',
      clusters: ['dev'],
      namespaces: ['shared'],
    });
    admin = await launchChromium(sso.publicUrl);
    dev = await launchChromium(sso.publicUrl);
    await signIn(admin.page, sso.publicUrl, 'admin@example.com');
    await signIn(dev.page, sso.publicUrl, 'dev@example.com');
  });
  after(async () => {
    await admin?.close();
    await dev?.close();
    await stack?.stop();
    await idp?.close();
  });

  test("an admin writes a namespace profile as JSON; the server's problems are listed", async () => {
    const page = admin.page;
    await goTo(page, 'Namespace profiles');
    await page.getByText('No namespace profiles: nobody can ask for a namespace yet.').waitFor();
    const editor = page.getByLabel('Profile (JSON)');
    // The editor starts from an example that names every field.
    assert.match(await editor.inputValue(), /"networkPolicy": "default-deny"/);

    await editor.fill(JSON.stringify({ ...profile, networkPolicy: 'open', perUserLimit: -1 }));
    await page.getByRole('button', { name: 'Save profile' }).click();
    const alert = page.getByRole('alert');
    await alert.getByText(/networkPolicy/).waitFor();
    await alert.getByText(/perUserLimit/).waitFor();
    await screenshot(page, '70-namespace-profile-problems');

    await editor.fill('{ not json');
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page
      .getByRole('alert')
      .getByText(/The profile is not JSON/)
      .waitFor();

    await editor.fill(JSON.stringify(profile, null, 2));
    await page.getByRole('button', { name: 'Save profile' }).click();
    await page.getByText(/Profile dev-teams saved \(version 1\)/).waitFor();
    const row = page
      .getByRole('table', { name: 'Namespace profiles' })
      .getByRole('row', { name: /dev-teams/ });
    await row.getByText('pods 5').waitFor();
    await row.getByText('default-deny').waitFor();
    // Saving again edits the stored one: a new version.
    await page.getByRole('heading', { name: /Edit namespace profile dev-teams/ }).waitFor();
    assert.deepEqual(await unnamedControls(page), [], 'every control has a name');
    await screenshot(page, '71-namespace-profiles');
  });

  test('a developer asks for team-a on dev, sees it ready, and adds a colleague', async () => {
    const page = dev.page;
    await goTo(page, 'Namespaces');
    await page.getByText('You own no namespace and are a member of none yet.').waitFor();
    await page.getByRole('heading', { name: 'Ask for a namespace' }).waitFor();

    // The profile says what it gives before anyone asks.
    assert.equal(await page.getByLabel('Profile', { exact: true }).inputValue(), 'dev-teams');
    const gives = page.locator('dl.facts');
    await gives.getByText('pods 5, requests.cpu 2').waitFor();
    await gives.getByText(/default deny/).waitFor();
    await gives.getByText('not needed: ready in seconds').waitFor();
    await gives.getByText('owners get admin; members may get edit, view').waitFor();

    // The name rule is shown, and checked as one types.
    await page.getByText(/starting with team-; at most 30 characters\./).waitFor();
    const name = page.getByLabel('Name', { exact: true });
    await name.fill('payments');
    await page.getByText(/Not yet: must start with team-/).waitFor();
    assert.equal(await name.getAttribute('aria-invalid'), 'true');
    await name.fill('team-a');
    await page.getByText('The name fits the rule.').waitFor();
    assert.equal(await name.getAttribute('aria-invalid'), null);
    // The profile's one cluster is offered, and chosen.
    assert.equal(await page.getByRole('checkbox', { name: 'dev' }).isChecked(), true);
    assert.deepEqual(await unnamedControls(page), [], 'every control has a name');
    await screenshot(page, '72-namespace-request');

    await page.getByRole('button', { name: 'Ask for the namespace' }).click();
    await page.waitForURL(/\/console\/namespaces\/dev\/team-a$/);
    // The page follows the namespace until it is ready.
    await page.getByRole('status').getByText('ready', { exact: true }).waitFor({ timeout: 30_000 });
    await screenshot(page, '73-namespace-ready');
    const quota = await kubectlOk(
      ['get', 'resourcequota', '-n', 'team-a', '-o', 'jsonpath={.items[*].spec.hard.pods}'],
      direct(),
    );
    assert.equal(quota.trim(), '5');

    // Members: the owner is listed; roles offered are the profile's member roles only.
    const members = page.getByRole('table', { name: 'Members of team-a' });
    await members
      .getByRole('row', { name: /dev@example\.com/ })
      .getByText('owner')
      .waitFor();
    const role = page.getByLabel('Role', { exact: true });
    assert.deepEqual(await role.locator('option').allTextContents(), ['edit', 'view']);
    await page.getByLabel('User or group').fill('csv@example.com');
    await role.selectOption('edit');
    await page.getByRole('button', { name: 'Add member' }).click();
    await page.getByText('User csv@example.com is edit in team-a').waitFor();
    const colleague = members.getByRole('row', { name: /csv@example\.com/ });
    await colleague.getByText('edit', { exact: true }).waitFor();
    assert.deepEqual(await unnamedControls(page), [], 'every control has a name');
    await screenshot(page, '74-namespace-members');

    // Removing asks first, then takes the colleague out.
    page.once('dialog', (d) => void d.accept());
    await colleague.getByRole('button', { name: 'Remove User csv@example.com' }).click();
    await page.getByText(/User csv@example\.com removed/).waitFor();
    await colleague.waitFor({ state: 'detached' });

    // The list shows it, ready, with the owner's role.
    await goTo(page, 'Namespaces');
    const row = page
      .getByRole('table', { name: 'My namespaces' })
      .getByRole('row', { name: /team-a/ });
    await row.getByText('ready', { exact: true }).waitFor();
    await row.getByText('dev-teams').waitFor();
  });

  test('the CLI against the same proxy: create --wait, refusals, members, delete, profiles', async () => {
    const owner = await stack.kubeconfig('dev@example.com', ['developers']);
    const created = await cli(owner, [
      'namespace',
      'create',
      'team-b',
      '--profile',
      'dev-teams',
      '--cluster',
      'dev',
      '--wait',
    ]);
    assert.equal(created.code, 0, created.stdout + created.stderr);
    assert.match(created.stdout, /^dev\/team-b: provisioning/m);
    assert.match(created.stdout, /^ready: dev\/team-b$/m);

    const badName = await cli(owner, [
      'namespace',
      'create',
      'payments',
      '--profile',
      'dev-teams',
      '--cluster',
      'dev',
    ]);
    assert.equal(badName.code, 1);
    assert.match(badName.stderr, /start with "team-"/);

    const list = await cli(owner, ['namespace', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^CLUSTER +NAME +PROFILE +STATUS/);
    assert.match(list.stdout, /^dev +team-a +dev-teams +ready/m);
    assert.match(list.stdout, /^dev +team-b +dev-teams +ready/m);

    const tooMuch = await cli(owner, [
      'namespace',
      'add-member',
      'team-b',
      '--cluster',
      'dev',
      '--group',
      'qa',
      '--role',
      'admin',
    ]);
    assert.equal(tooMuch.code, 1);
    assert.match(tooMuch.stderr, /lets owners give "edit", "view", not "admin"/);
    const added = await cli(owner, [
      'namespace',
      'add-member',
      'team-b',
      '--cluster',
      'dev',
      '--user',
      'csv@example.com',
      '--role',
      'view',
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, 'User csv@example.com is view in dev/team-b\n');
    const one = await cli(owner, ['namespace', 'get', 'team-b', '--cluster', 'dev', '-o', 'json']);
    assert.equal(one.code, 0, one.stderr);
    const got = JSON.parse(one.stdout) as { members: { name: string; role: string }[] };
    assert.ok(got.members.some((m) => m.name === 'csv@example.com' && m.role === 'view'));

    const deleted = await cli(owner, ['namespace', 'delete', 'team-b', '--cluster', 'dev']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stdout, /^dev\/team-b: (retiring|retired)/);

    // An admin reads the profile as YAML, applies it back changed, and cannot delete it while in use.
    const adminKc = await stack.kubeconfig('admin@example.com', ['kubegate-admins']);
    const yaml = await cli(adminKc, ['admin', 'namespace-profile', 'get', 'dev-teams']);
    assert.equal(yaml.code, 0, yaml.stderr);
    assert.match(yaml.stdout, /^name: dev-teams$/m);
    const file = join(stack.dir, 'dev-teams.yaml');
    writeFileSync(file, yaml.stdout.replace(/^perUserLimit: 3$/m, 'perUserLimit: 4'));
    const applied = await cli(adminKc, ['admin', 'namespace-profile', 'apply', '-f', file]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stderr, /^namespace profile "dev-teams" replaced \(version \d+\)$/m);
    const table = await cli(adminKc, ['admin', 'namespace-profile', 'list']);
    assert.match(table.stdout, /^dev-teams +dev +no +4 /m);
    const refused = await cli(adminKc, ['admin', 'namespace-profile', 'delete', 'dev-teams']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^kubegate: 409: .*used by/);
  });
});
