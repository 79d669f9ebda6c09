/**
 * The console's recording player (issue #21), in a real browser (Debian's
 * chromium driven by playwright-core) against the whole stack: a session
 * made by the real kubectl (`exec -it` in a pty from script(1)) is found by
 * an auditor in "Recordings", played, paused, sought, sped up, searched —
 * what xterm.js shows is read back from its rows — and downloaded; the
 * playback and the download are each in the audit log under the auditor's
 * name. A plain user sees no Recordings entry and, at its address, the
 * server's 403 and no listing. The page never trips the Content-Security-
 * Policy (xterm.js runs under the console's own).
 *
 * Screenshots go to test-results/console/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startStack, type Stack } from '../support/stack.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { downloadBy, goTo, signIn, unnamedControls } from '../support/console.js';
import { grant } from '../support/grants.js';
import { kubectlOk, kubectlPath } from '../support/kubectl.js';
import { until } from '../support/http.js';
import { launchChromium, screenshot, type ChromiumSession } from '../support/chromium.js';
import type { Page } from 'playwright-core';

const NS = 'rec';
const marker = 'player-e2e';

let stack: Stack;
let idp: Idp;
let publicUrl: string;
let auditor: ChromiumSession;
let dev: ChromiumSession;
let recordingId = '';
const problems: string[] = [];
/** Every response of 400 and above: `who status path`. */
const failed: string[] = [];

/** Every CSP violation, console error and page error, for the test's end. */
async function watch(s: ChromiumSession, who: string): Promise<void> {
  // Listening from before the first script of every page (CDP, not subject to the page's CSP).
  await s.context.addInitScript(
    `document.addEventListener('securitypolicyviolation', (e) =>
      console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')))`,
  );
  s.page.on('console', (m) => {
    // A failed load is logged without its address: the responses below name them.
    if (m.type() === 'error' && !/^Failed to load resource: the server responded/.test(m.text()))
      problems.push(`${who}: ${m.text()}`);
  });
  s.page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${who} ${r.status()} ${new URL(r.url()).pathname}`);
  });
  s.page.on('pageerror', (e) => problems.push(`${who}: page error ${e.message}`));
  s.page.on('dialog', (d) => {
    problems.push(`${who}: a dialog: ${d.message()}`);
    void d.dismiss();
  });
}

/** What the terminal shows now: xterm's rows, as text. */
async function screenText(page: Page): Promise<string> {
  return (await page.evaluate(
    `[...document.querySelectorAll('.screen .xterm-rows > div')].map((d) => d.textContent).join('\\n')`,
  )) as string;
}

async function position(page: Page): Promise<number> {
  return Number(await page.getByLabel('Position').inputValue());
}

async function duration(page: Page): Promise<number> {
  return Number(await page.getByLabel('Position').getAttribute('max'));
}

/** Drag the slider to `t` seconds (what a person does with it: an input event). */
async function seekTo(page: Page, t: number): Promise<void> {
  await page.getByLabel('Position').fill(String(t));
}

/** A real interactive session: kubectl exec -it through kubegate in a pty. */
async function recordSession(kubeconfig: string, pod: string): Promise<void> {
  const cmd = `${kubectlPath()} --kubeconfig ${kubeconfig} -n ${NS} exec -it ${pod} -- sh -c 'echo ${marker}-start; exec sh'`;
  const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
    env: { ...process.env, TERM: 'xterm' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const seen: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => seen.push(b));
  const shown = () => Buffer.concat(seen).toString('utf8');
  const exited = new Promise<number | null>((r) => child.once('close', r));
  try {
    await until(async () => shown().includes(`${marker}-start`), 30_000, 'the session is up');
    // Sixty rows: the start scrolls out of a 24-row terminal.
    child.stdin.write('for i in $(seq 1 60); do echo row-$i; done\n');
    await until(async () => shown().includes('row-60'), 15_000, 'the rows are printed');
    // A pause longer than the player's default idle limit (2 s), then the word to find.
    child.stdin.write('sleep 4; echo needle-$((6 * 7))\n');
    await until(async () => shown().includes('needle-42'), 20_000, 'the needle is printed');
    child.stdin.write('exit\n');
    assert.equal(await exited, 0, shown());
  } finally {
    child.kill('SIGKILL');
  }
}

describe('the recording player in the web console', { timeout: 900_000 }, () => {
  before(async () => {
    const sso = await startStackIdp();
    idp = sso.idp;
    idp.addUser({ email: 'audrey@example.com', name: 'Audrey', groups: ['kubegate-auditors'] });
    publicUrl = sso.publicUrl;
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 1 }],
      proxyEnv: sso.proxyEnv,
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, { users: ['dora'], role: 'admin', clusters: ['dev'], namespaces: [NS] });
    const dora = { kubeconfig: await stack.kubeconfig('dora') };
    await kubectlOk(['-n', NS, 'create', 'deployment', 'shell', '--image=busybox'], dora);
    await kubectlOk(['-n', NS, 'rollout', 'status', 'deployment/shell', '--timeout=120s'], {
      ...dora,
      timeoutMs: 130_000,
    });
    const pod = (
      await kubectlOk(['-n', NS, 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'], dora)
    ).trim();
    await recordSession(dora.kubeconfig, pod);
    await until(
      async () => {
        const rows = await stack.sql<{ id: string; status: string }>(
          `SELECT id, status FROM recordings WHERE array_to_string(command, ' ') LIKE $1`,
          [`%${marker}%`],
        );
        recordingId = rows[0]?.status === 'complete' ? rows[0].id : '';
        return recordingId !== '';
      },
      15_000,
      'the recording is complete',
    );
    auditor = await launchChromium(publicUrl);
    dev = await launchChromium(publicUrl);
    await watch(auditor, 'auditor');
    await watch(dev, 'dev');
    await signIn(auditor.page, publicUrl, 'audrey@example.com');
    await signIn(dev.page, publicUrl, 'dev@example.com');
  });
  after(async () => {
    await auditor?.close();
    await dev?.close();
    await stack?.stop();
    await idp?.close();
  });

  test('an auditor finds the kubectl session in Recordings by its user and command', async () => {
    const page = auditor.page;
    await goTo(page, 'Recordings');
    await page.getByLabel('User').fill('dora');
    await page.getByLabel('Command').fill(marker);
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.getByRole('table', { name: 'Recordings' }).getByRole('row', { name: /dora/ });
    await row.getByText('complete').waitFor();
    assert.equal(await row.count(), 1);
    assert.match(await row.innerText(), new RegExp(`dev / ${NS} / shell-`));
    assert.deepEqual(await unnamedControls(page), []);
    await screenshot(page, '60-recordings-list');
    // A filter that matches nothing says so.
    await page.getByLabel('Command').fill('no-such-command');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByText('No recordings match these filters.').waitFor();
    await page.getByLabel('Command').fill(marker);
    await page.getByRole('button', { name: 'Search' }).click();
    await row.getByRole('link', { name: /^Open the recording of dora/ }).click();
    await page.getByRole('heading', { level: 2, name: /Session of dora in shell-/ }).waitFor();
    await page.getByRole('button', { name: 'Play' }).waitFor();
    assert.equal(new URL(page.url()).pathname, `/console/recordings/${recordingId}`);
  });

  test('it plays, pauses, seeks and changes speed; the terminal shows what kubectl showed', async () => {
    const page = auditor.page;
    const facts = page.locator('dl.facts');
    await facts.getByText('dora').waitFor();
    await facts.getByText('complete').waitFor();
    assert.match(await facts.innerText(), new RegExp(`sh -c echo ${marker}-start; exec sh`));
    assert.equal(await position(page), 0);
    const total = await duration(page);
    assert.ok(total > 2, `a session of a few seconds (${total})`);

    // Play at 1×: time moves; pause: it stops.
    await page.getByRole('button', { name: 'Play' }).click();
    await page.getByRole('button', { name: 'Pause' }).waitFor();
    await page.waitForTimeout(1000);
    await page.getByRole('button', { name: 'Pause' }).click();
    const atOne = await position(page);
    assert.ok(atOne > 0.3 && atOne < 3, `about a second played at 1× (${atOne})`);
    await page.waitForTimeout(700);
    assert.equal(await position(page), atOne, 'paused: the position stays');
    await page.getByText(/^Paused at /).waitFor();
    await until(
      async () => (await screenText(page)).trim() !== '',
      10_000,
      'the session so far on screen',
    );
    await screenshot(page, '61-player-paused');

    // The end: the last thing kubectl showed is on screen.
    await seekTo(page, total);
    await until(async () => (await screenText(page)).includes('needle-42'), 10_000, 'the end');
    assert.doesNotMatch(await screenText(page), new RegExp(`${marker}-start`), 'scrolled out');
    // Back to the start: the terminal is drawn again from the beginning.
    await seekTo(page, 0);
    await until(
      async () => !(await screenText(page)).includes('needle-42'),
      10_000,
      'back at the start',
    );
    assert.doesNotMatch(await screenText(page), /row-60/);

    // 8×: from the start, half a second of play goes far further than a second at 1×.
    await page.getByLabel('Speed').selectOption('8');
    await page.getByRole('button', { name: 'Play' }).click();
    await page.waitForTimeout(500);
    const pause = page.getByRole('button', { name: 'Pause' });
    if (await pause.isVisible()) await pause.click(); // (unless it already reached the end)
    const atEight = await position(page);
    assert.ok(
      atEight > 2 * atOne || atEight >= total - 0.05,
      `8× for 0.5 s (${atEight}) is ahead of 1× for 1 s (${atOne})`,
    );
    // Played on to the end (from the start again if it was there): it says so and shows the end.
    await page.getByRole('button', { name: 'Play' }).click();
    await until(
      async () =>
        (await page.getByRole('button', { name: 'Play' }).count()) === 1 &&
        (await position(page)) >= total - 0.05,
      20_000,
      'played to the end',
    );
    await page.getByText('Played to the end').waitFor();
    // xterm draws its rows on the next animation frame after the last write.
    await until(async () => /needle-42/.test(await screenText(page)), 10_000, 'the end shown');
    await screenshot(page, '62-player-ended');

    // The idle limit: the 4 s sleep is cut to 2 s; "as recorded" plays it whole.
    const capped = await duration(page);
    await page.getByLabel('Idle time limit').selectOption({ label: 'as recorded' });
    const whole = await duration(page);
    assert.ok(whole >= capped + 1.5, `the pause is back (${capped} → ${whole})`);
    await page.getByLabel('Idle time limit').selectOption({ label: '2 s' });
    assert.equal(await duration(page), capped);
    assert.deepEqual(await unnamedControls(page), []);
  });

  test('search finds a word across the output and jumps to when it was shown', async () => {
    const page = auditor.page;
    await seekTo(page, 0);
    const find = page.getByRole('searchbox', { name: 'Find in the output' });
    await find.fill('NEEDLE-42');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    const found = page.getByText(/^Match 1 of 1, shown at /);
    await found.waitFor();
    // xterm draws its rows on the next animation frame after a write: wait for the screen.
    await until(async () => /needle-42/.test(await screenText(page)), 10_000, 'the match shown');
    const at = await position(page);
    const end = await duration(page);
    assert.ok(at > 0 && at <= end, `the match's time (${at} of ${end})`);
    // Just before it, the word is not on screen yet.
    await seekTo(page, Math.max(0, at - 1.5));
    await until(
      async () => !(await screenText(page)).includes('needle-42'),
      10_000,
      'not yet shown',
    );
    // A word shown many times: each match in turn (the loop as typed and echoed, sixty rows).
    await find.fill('row-');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    // Wait for this search's answer, not the last one's ("Match 1 of 1" for the needle is
    // still shown until the new one replaces it: reading it then counted one match).
    const first = page.getByText(/^Match 1 of (?!1,)\d+, shown at /);
    await first.waitFor();
    const many = Number(/of (\d+)/.exec(await first.innerText())![1]);
    assert.ok(many >= 61, `sixty rows and the loop as typed (${many})`);
    const atFirst = await position(page);
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByText(new RegExp(`^Match 2 of ${many}, shown at `)).waitFor();
    assert.ok((await position(page)) >= atFirst, 'matches in the order they were shown');
    await page.getByRole('button', { name: 'Previous' }).click();
    await page.getByText(new RegExp(`^Match 1 of ${many}, shown at `)).waitFor();
    // The last row only the output has: the terminal shows it at its time.
    await find.fill('row-60');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.getByText(/^Match 1 of 1, shown at /).waitFor();
    await until(async () => /row-60/.test(await screenText(page)), 10_000, 'row-60 shown');
    assert.doesNotMatch(await screenText(page), /needle-42/);
    await find.fill('not-in-this-recording');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await page.getByText('"not-in-this-recording" is not in the output.').waitFor();
    await find.fill('needle-42');
    await page.getByRole('button', { name: 'Find', exact: true }).click();
    await found.waitFor();
    await screenshot(page, '63-player-search');
  });

  test('the .cast downloads; playback and download are each audited under the auditor', async () => {
    const page = auditor.page;
    const file = await downloadBy(auditor, () =>
      page.getByRole('link', { name: 'Download .cast' }).click(),
    );
    assert.equal(file.name, `kubegate-${recordingId}.cast`);
    const [header, ...events] = file.text.split('\n').filter(Boolean);
    assert.equal((JSON.parse(header!) as { version: number }).version, 2);
    assert.ok(events.some((l) => l.includes('needle-42')));
    let rows: { verb: string; username: string }[] = [];
    await until(
      async () => {
        rows = await stack.sql<{ verb: string; username: string }>(
          `SELECT verb, username FROM audit_events
            WHERE source = 'admin' AND resource = 'recordings' AND name = $1 ORDER BY verb`,
          [recordingId],
        );
        return rows.some((r) => r.verb === 'download');
      },
      10_000,
      'the download is audited',
    );
    assert.deepEqual(rows, [
      { verb: 'download', username: 'audrey@example.com' },
      { verb: 'play', username: 'audrey@example.com' },
    ]);
    // An admin reads it in the audit log too.
    const plays = await stack.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events WHERE verb = 'play' AND name = $1`,
      [recordingId],
    );
    assert.equal(plays[0]!.n, 1, 'one playback, one event');
  });

  test('a plain user sees no Recordings entry and, at its address, a 403 and no listing', async () => {
    const page = dev.page;
    const nav = page.getByRole('navigation', { name: 'Console' });
    await nav.getByRole('link', { name: 'My tokens', exact: true }).waitFor();
    assert.equal(await nav.getByRole('link', { name: 'Recordings' }).count(), 0);
    const me = (await page.evaluate(`fetch('/api/v1/me').then((r) => r.json())`)) as {
      recordingViewer: boolean;
    };
    assert.equal(me.recordingViewer, false);
    for (const path of ['/console/recordings', `/console/recordings/${recordingId}`]) {
      const refused = page.waitForResponse((r) => r.url().includes('/api/v1/recordings'));
      await page.goto(`${publicUrl}${path}`);
      assert.equal((await refused).status(), 403);
      await page.getByText('You may not watch session recordings.').waitFor();
      await page.getByText(/may not read session recordings/).waitFor();
      const main = await page.locator('main').innerText();
      assert.doesNotMatch(main, /dora|shell-|needle/, `${path}: nothing of the recording`);
      assert.equal(await page.getByRole('table').count(), 0);
      assert.equal(await page.getByRole('button', { name: 'Play' }).count(), 0);
    }
    await screenshot(page, '64-recordings-refused');
    // The auditor's navigation has the entry.
    const auditorNav = auditor.page.getByRole('navigation', { name: 'Console' });
    assert.equal(await auditorNav.getByRole('link', { name: 'Recordings' }).count(), 1);
  });

  test('no CSP violation, console error or page error on any page', () => {
    assert.deepEqual(problems, []);
    // What failed is what should: the plain user's refusals (and the browser's favicon guess).
    const unexpected = failed.filter(
      (f) =>
        !/^\w+ 404 \/favicon\.ico$/.test(f) &&
        !new RegExp(`^dev 403 /api/v1/recordings(/${recordingId})?$`).test(f),
    );
    assert.deepEqual(unexpected, []);
    assert.ok(failed.some((f) => f.startsWith('dev 403 ')));
  });
});
