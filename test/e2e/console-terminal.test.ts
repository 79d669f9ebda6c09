/**
 * The console's browser terminal in a real browser (chromium) against the
 * whole stack (dev IdP, proxy, agent, a kube-apiserver with a kwok node whose
 * pods really exec): a developer signs in, picks cluster, namespace, pod and
 * container — only what they may exec into is offered — types a command in
 * xterm.js and sees its output; the session is an exec by that user in the
 * audit log and a recording an auditor can read, with a link to it shown
 * to those who may read recordings. A user without exec right is offered
 * nothing and refused the upgrade; a binding removed mid-session ends the
 * terminal with the reason on screen.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import type { Page } from 'playwright-core';
import { startStack, type Stack } from '../support/stack.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { goTo, signIn } from '../support/console.js';
import { grant, ungrant } from '../support/grants.js';
import { kubectlOk } from '../support/kubectl.js';
import { httpGet, until } from '../support/http.js';
import { launchChromium, screenshot, type ChromiumSession } from '../support/chromium.js';
import { upgradeRequest } from '../support/terminal.js';

const NS = 'term';
let stack: Stack;
let idp: Idp;
let publicUrl: string;
let ca: string;
let auditorToken: string;
let dev: ChromiumSession;
let viewer: ChromiumSession;
let admin: ChromiumSession;
let devBinding = '';
let pod = '';

interface Recording {
  id: string;
  auditId: string;
  status: string;
  reason: string;
  user: { name: string };
  pod: string;
  container: string;
}

async function recordingsOf(user: string): Promise<Recording[]> {
  const r = await httpGet(
    `${publicUrl}/api/v1/recordings?user=${encodeURIComponent(user)}&namespace=${NS}&limit=20`,
    { token: auditorToken, ca },
  );
  assert.equal(r.status, 200, r.body);
  return (JSON.parse(r.body) as { items: Recording[] }).items;
}

/** Pick the one offered target, open the terminal and wait until it is connected. */
async function openTerminal(page: Page): Promise<void> {
  await goTo(page, 'Terminal');
  await page.getByLabel('Cluster').locator('option[value="dev"]').waitFor({ state: 'attached' });
  assert.equal(await page.getByLabel('Cluster').inputValue(), 'dev');
  const namespace = page.getByLabel('Namespace', { exact: true });
  // A namespaced grant offers its namespace; a cluster-wide one lists the cluster's.
  await namespace.locator(`option[value="${NS}"]`).waitFor({ state: 'attached' });
  if ((await namespace.inputValue()) !== NS) await namespace.selectOption(NS);
  await until(
    async () => (await page.getByLabel('Container').inputValue()) === 'busybox',
    30_000,
    'the pickers offer the pod and its container',
  );
  assert.equal(await page.getByLabel('Pod').inputValue(), pod);
  await page.getByRole('button', { name: 'Open terminal' }).click();
  await page
    .locator('#term-state')
    .getByText(/^Connected to /)
    .waitFor({ timeout: 30_000 });
}

/** Type into xterm as a person does (keyboard events into its focused textarea). */
async function typeLine(page: Page, line: string): Promise<void> {
  await page.locator('#term-screen .xterm').click();
  await page.keyboard.type(line);
  await page.keyboard.press('Enter');
}

/** A GET with the browser's session cookie, as the console's own fetches send it. */
function getWithCookie(path: string, cookie: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      `${publicUrl}${path}`,
      { ca, agent: false, headers: { cookie } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
  });
}

async function sessionCookie(s: ChromiumSession): Promise<string> {
  const c = (await s.context.cookies(publicUrl)).find((x) => x.name === '__Host-kg_session');
  assert.ok(c, 'signed in');
  return `${c.name}=${c.value}`;
}

describe('console terminal: a shell into a pod from the browser', { timeout: 900_000 }, () => {
  before(async () => {
    const sso = await startStackIdp();
    idp = sso.idp;
    publicUrl = sso.publicUrl;
    stack = await startStack({
      clusters: [{ name: 'dev', nodes: 1 }],
      proxyEnv: sso.proxyEnv,
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    const cluster = { kubeconfig: stack.cluster.kubeconfig };
    await kubectlOk(['create', 'namespace', NS], cluster);
    await kubectlOk(['-n', NS, 'create', 'deployment', 'shell', '--image=busybox'], cluster);
    await kubectlOk(['-n', NS, 'rollout', 'status', 'deployment/shell', '--timeout=120s'], {
      ...cluster,
      timeoutMs: 130_000,
    });
    pod = (
      await kubectlOk(
        ['-n', NS, 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'],
        cluster,
      )
    ).trim();
    await grant(stack, { groups: ['kubegate-admins'], role: 'cluster-admin', selector: {} });
    // Developers may exec in `term` (edit); the viewer may only look there (view: no exec).
    devBinding = await grant(stack, {
      groups: ['developers'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: [NS],
    });
    await grant(stack, {
      users: ['nogroups@example.com'],
      role: 'view',
      clusters: ['dev'],
      namespaces: [NS],
    });
    auditorToken = /token: (kg_\S+)/.exec(
      readFileSync(await stack.kubeconfig('audrey', ['kubegate-auditors']), 'utf8'),
    )![1]!;
    dev = await launchChromium(publicUrl);
    viewer = await launchChromium(publicUrl);
    admin = await launchChromium(publicUrl);
  });
  after(async () => {
    await dev?.close();
    await viewer?.close();
    await admin?.close();
    await stack?.stop();
    await idp?.close();
  });

  test('a developer opens a shell, runs a command and sees its output; the session is audited and recorded', async () => {
    await signIn(dev.page, publicUrl, 'dev@example.com');
    await openTerminal(dev.page);
    const marker = `hello-${randomBytes(4).toString('hex')}`;
    await typeLine(dev.page, `echo ${marker}-$((6 * 7))`);
    await dev.page
      .locator('#term-screen .xterm-rows')
      .getByText(`${marker}-42`)
      .first()
      .waitFor({ timeout: 15_000 });
    await screenshot(dev.page, '40-terminal-connected');
    await typeLine(dev.page, 'exit');
    await dev.page
      .locator('#term-state')
      .getByText('Ended: the command exited (0).')
      .waitFor({ timeout: 15_000 });
    // Not an auditor: no link to the recording, and no error either.
    assert.equal(await dev.page.locator('#term-recording a').count(), 0);

    // The recording, as an auditor reads it: this user's exec, the typed command's output in it.
    let rec: Recording | undefined;
    await until(
      async () => {
        rec = (await recordingsOf('dev@example.com')).find((r) => r.status !== 'recording');
        return !!rec;
      },
      15_000,
      'the session is in the recordings',
    );
    assert.equal(rec!.status, 'complete', rec!.reason);
    assert.equal(rec!.pod, pod);
    assert.equal(rec!.container, 'busybox');
    const cast = await httpGet(`${publicUrl}/api/v1/recordings/${rec!.id}/cast`, {
      token: auditorToken,
      ca,
    });
    assert.equal(cast.status, 200);
    assert.match(cast.body, new RegExp(`${marker}-42`));
    // The audit log: an exec (create pods/exec) by that user, linking the recording.
    let event: Record<string, unknown> | undefined;
    await until(
      async () => {
        const rows = await stack.sql<{ event: Record<string, unknown> }>(
          `SELECT event FROM audit_events WHERE audit_id = $1::uuid AND stage = 'ResponseComplete'`,
          [rec!.auditId],
        );
        event = rows[0]?.event;
        return !!event;
      },
      10_000,
      'the exec audit event',
    );
    const ev = event as {
      verb: string;
      user: { username: string };
      objectRef: { resource: string; subresource: string; namespace: string; name: string };
      annotations: Record<string, string>;
      userAgent: string;
    };
    assert.equal(ev.verb, 'create');
    assert.equal(ev.user.username, 'dev@example.com');
    assert.deepEqual(
      [ev.objectRef.resource, ev.objectRef.subresource, ev.objectRef.namespace, ev.objectRef.name],
      ['pods', 'exec', NS, pod],
    );
    assert.equal(ev.annotations['kubegate.dev/recording'], rec!.id);
    assert.match(ev.userAgent, /^kubegate-console-terminal/);
  });

  test('someone who may read recordings gets a link to the session’s recording', async () => {
    await signIn(admin.page, publicUrl, 'admin@example.com');
    await openTerminal(admin.page);
    await typeLine(admin.page, 'echo admin-was-here; exit');
    await admin.page
      .locator('#term-state')
      .getByText(/^Ended: /)
      .waitFor({ timeout: 15_000 });
    const link = admin.page.locator('#term-recording a');
    await link.waitFor({ timeout: 15_000 });
    const href = await link.getAttribute('href');
    assert.match(String(href), /^\/console\/recordings\/[0-9a-f-]+$/);
    const recs = await recordingsOf('admin@example.com');
    assert.ok(recs.some((r) => href === `/console/recordings/${r.id}`));
    await screenshot(admin.page, '41-terminal-ended-recorded');
  });

  test('a user without exec right is offered no pod and refused the upgrade', async () => {
    await signIn(viewer.page, publicUrl, 'nogroups@example.com');
    await goTo(viewer.page, 'Terminal');
    await viewer.page.getByText('You may not open a terminal (exec) on any cluster.').waitFor();
    assert.equal(await viewer.page.getByLabel('Pod').isDisabled(), true);
    await screenshot(viewer.page, '42-terminal-no-exec');
    const cookie = await sessionCookie(viewer);
    const picker = await getWithCookie(`/api/v1/terminal/pods?cluster=dev&namespace=${NS}`, cookie);
    assert.equal(picker.status, 403, picker.body);
    assert.match(picker.body, /may not open a terminal/);
    const r = await upgradeRequest(
      publicUrl,
      ca,
      `/api/v1/terminal?cluster=dev&namespace=${NS}&pod=${pod}&container=busybox`,
      { origin: publicUrl, cookie },
    );
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /pods\/exec/);
  });

  test('the binding removed mid-session: the terminal ends and says why', async () => {
    await openTerminal(dev.page);
    await typeLine(dev.page, 'echo before-removal');
    await dev.page
      .locator('#term-screen .xterm-rows')
      .getByText('before-removal')
      .first()
      .waitFor({ timeout: 15_000 });
    await ungrant(stack, devBinding);
    await dev.page
      .locator('#term-state')
      .getByText(/^Ended: access removed: kubegate no longer allows "dev@example\.com"/)
      .waitFor({ timeout: 15_000 });
    await screenshot(dev.page, '43-terminal-access-removed');
    // And the pickers no longer offer anything.
    await goTo(dev.page, 'My tokens');
    await goTo(dev.page, 'Terminal');
    await dev.page.getByText('You may not open a terminal (exec) on any cluster.').waitFor();
  });
});
