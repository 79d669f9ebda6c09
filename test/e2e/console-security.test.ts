/**
 * The console's browser defences, checked in a real browser (chromium) and
 * on the wire: the session cookie's flags, CSRF checks on every JSON API the
 * console uses (identity, RBAC admin, audit, console), the
 * Content-Security-Policy and Trusted Types actually enforced by the
 * browser, admin-only endpoints refused to a user, and the page-weight
 * budget of a cold load. A stack with no cluster: the proxy, PostgreSQL and
 * the dev IdP are all real.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as https from 'node:https';
import { startStack, type Stack } from '../support/stack.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { launchChromium, screenshot, type ChromiumSession } from '../support/chromium.js';
import { goTo, signIn, unnamedControls } from '../support/console.js';

let stack: Stack;
let idp: Idp;
let publicUrl: string;
let ca: string;
let admin: ChromiumSession;
let dev: ChromiumSession;

/** Page-weight budget of a cold load of the console (signed in, empty browser cache). */
const budget = { transferredBytes: 48 * 1024, decodedBytes: 128 * 1024, requests: 25 };

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw request with chosen headers (what a forging site could make a browser send). */
function send(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      `${publicUrl}${path}`,
      {
        method,
        ca,
        agent: false,
        headers: {
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function sessionOf(s: ChromiumSession): Promise<{ cookie: string; csrf: string }> {
  const c = (await s.context.cookies(publicUrl)).find((x) => x.name === '__Host-kg_session');
  assert.ok(c, 'the browser holds the session cookie');
  const cookie = `${c.name}=${c.value}`;
  const me = await send('GET', '/api/v1/me', { cookie });
  assert.equal(me.status, 200, me.body);
  return { cookie, csrf: (JSON.parse(me.body) as { csrfToken: string }).csrfToken };
}

describe(
  'console: cookies, CSRF, CSP and page weight in a real browser',
  { timeout: 600_000 },
  () => {
    before(async () => {
      const sso = await startStackIdp();
      idp = sso.idp;
      publicUrl = sso.publicUrl;
      stack = await startStack({ clusters: [], proxyEnv: sso.proxyEnv });
      ca = (
        await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
      )[0]!.cert_pem;
      await stack.sql(`INSERT INTO clusters (name, labels) VALUES ('eu-1', '{"env":"prod"}')`);
      admin = await launchChromium(publicUrl);
      dev = await launchChromium(publicUrl);
    });
    after(async () => {
      await admin?.close();
      await dev?.close();
      await stack?.stop();
      await idp?.close();
    });

    test('signed out, every console path is the script-free sign-in page', async () => {
      for (const path of ['/', '/console/tokens', '/console/admin/bindings']) {
        const r = await send('GET', path, {});
        assert.equal(r.status, 200, path);
        assert.match(r.body, /Sign in with single sign-on/);
        assert.doesNotMatch(r.body, /<script/i);
      }
      const api = await send('GET', '/api/v1/console/clusters', {});
      assert.equal(api.status, 401);
      await admin.page.goto(`${publicUrl}/console/tokens`);
      await screenshot(admin.page, '00-sign-in');
    });

    test('the session cookie is __Host-, Secure, HttpOnly, SameSite=Lax and invisible to scripts', async () => {
      await signIn(admin.page, publicUrl, 'admin@example.com');
      await signIn(dev.page, publicUrl, 'dev@example.com');
      // Nobody is bound to anything here: the empty state says what to do.
      await admin.page.getByText('You cannot reach any cluster yet.').waitFor();
      await admin.page.getByText(/Ask a kubegate admin for a binding.*kubegate-admins/).waitFor();
      await screenshot(admin.page, '12-my-clusters-empty');
      const cookies = await admin.context.cookies(publicUrl);
      const s = cookies.find((c) => c.name === '__Host-kg_session');
      assert.ok(s);
      assert.equal(s.secure, true);
      assert.equal(s.httpOnly, true);
      assert.equal(s.sameSite, 'Lax');
      assert.equal(s.path, '/');
      assert.equal(s.domain, '127.0.0.1', 'host-only: no Domain attribute');
      assert.equal(await admin.page.evaluate('document.cookie.includes("kg_session")'), false);
      assert.equal(
        cookies.find((c) => c.name === '__Host-kg_login'),
        undefined,
        'the sign-in cookie is gone after the callback',
      );
    });

    test('every change needs the CSRF token and a same-origin request, on every console API', async () => {
      const { cookie, csrf } = await sessionOf(admin);
      const origin = new URL(publicUrl).origin;
      const nil = '00000000-0000-0000-0000-000000000000';
      const changes: [string, string, string | undefined][] = [
        [
          'POST',
          '/api/v1/bindings',
          JSON.stringify({
            subjects: [{ kind: 'Group', name: 'x' }],
            role: 'view',
            clusters: { names: ['eu-1'] },
          }),
        ],
        ['POST', '/api/v1/clusters', JSON.stringify({ name: 'csrf-test' })],
        ['POST', '/api/v1/console/binding-reach', JSON.stringify({})],
        ['POST', '/api/v1/robots', JSON.stringify({ name: 'csrf-bot' })],
        ['DELETE', '/api/v1/tokens/00000000-0000-0000-0000-000000000000', undefined],
        // Editing a binding and a cluster's labels (If-Match given: only CSRF is missing).
        ['PUT', `/api/v1/bindings/${nil}`, JSON.stringify({})],
        ['PATCH', '/api/v1/clusters/eu-1', JSON.stringify({ labels: { env: null } })],
        // Approvals: ask, decide, withdraw, and the admin pages' policies and webhooks.
        [
          'POST',
          '/api/v1/approvals',
          JSON.stringify({
            role: 'view',
            clusters: { names: ['eu-1'] },
            duration: '15m',
            reason: 'csrf',
          }),
        ],
        ['POST', `/api/v1/approvals/${nil}/approve`, JSON.stringify({ reason: 'csrf' })],
        ['POST', `/api/v1/approvals/${nil}/deny`, JSON.stringify({ reason: 'csrf' })],
        ['POST', `/api/v1/approvals/${nil}/withdraw`, JSON.stringify({})],
        [
          'POST',
          '/api/v1/approval-policies',
          JSON.stringify({
            name: 'csrf-policy',
            kind: 'access',
            roles: ['view'],
            approvers: { groups: ['kubegate-admins'] },
            clusters: { selector: {} },
          }),
        ],
        ['DELETE', '/api/v1/approval-policies/any', undefined],
        // Self-service namespaces: ask, members, ownership, retire; the admin page's profiles.
        [
          'POST',
          '/api/v1/namespaces',
          JSON.stringify({ name: 'team-csrf', profile: 'dev', clusters: ['eu-1'] }),
        ],
        ['PUT', '/api/v1/namespaces/eu-1/team-x/members/User/x', JSON.stringify({ role: 'view' })],
        ['DELETE', '/api/v1/namespaces/eu-1/team-x/members/User/x', undefined],
        ['POST', '/api/v1/namespaces/eu-1/team-x/owner', JSON.stringify({ user: 'x' })],
        ['DELETE', '/api/v1/namespaces/eu-1/team-x', undefined],
        ['POST', '/api/v1/namespace-profiles', JSON.stringify({ name: 'csrf' })],
        ['PUT', '/api/v1/namespace-profiles/any', JSON.stringify({ name: 'any' })],
        ['DELETE', '/api/v1/namespace-profiles/any', undefined],
        [
          'POST',
          '/api/v1/approval-webhooks',
          JSON.stringify({ url: 'https://hooks.example/csrf' }),
        ],
        ['DELETE', `/api/v1/approval-webhooks/${nil}`, undefined],
      ];
      for (const [method, path, body] of changes) {
        const none = await send(method, path, { cookie, origin, 'if-match': '"1"' }, body);
        assert.equal(none.status, 403, `${method} ${path} without the CSRF token: ${none.body}`);
        assert.match(none.body, /CSRF/);
        const wrong = await send(
          method,
          path,
          { cookie, origin, 'x-csrf-token': csrf.slice(1) + 'x' },
          body,
        );
        assert.equal(wrong.status, 403, `${method} ${path} with a wrong token`);
        const foreign = await send(
          method,
          path,
          { cookie, origin: 'https://evil.example', 'x-csrf-token': csrf },
          body,
        );
        assert.equal(foreign.status, 403, `${method} ${path} from a foreign origin`);
        const crossSite = await send(
          method,
          path,
          { cookie, 'sec-fetch-site': 'cross-site', 'x-csrf-token': csrf },
          body,
        );
        assert.equal(crossSite.status, 403, `${method} ${path} marked cross-site by the browser`);
      }
      // Nothing above happened.
      assert.equal((await stack.sql(`SELECT 1 FROM clusters WHERE name = 'csrf-test'`)).length, 0);
      assert.equal((await stack.sql(`SELECT 1 FROM robots WHERE name = 'csrf-bot'`)).length, 0);
      assert.equal((await stack.sql(`SELECT 1 FROM bindings`)).length, 0);
      assert.equal((await stack.sql(`SELECT 1 FROM approval_requests`)).length, 0);
      assert.equal((await stack.sql(`SELECT 1 FROM approval_policies`)).length, 0);
      assert.equal((await stack.sql(`SELECT 1 FROM approval_webhooks`)).length, 0);
      assert.deepEqual(
        (
          await stack.sql<{ labels: unknown }>(`SELECT labels FROM clusters WHERE name = 'eu-1'`)
        )[0]!.labels,
        { env: 'prod' },
      );
      // Reads are refused cross-site too (the audit log and the admin API take the session now).
      for (const path of ['/api/v1/audit', '/api/v1/clusters', '/api/v1/console/clusters']) {
        const ok = await send('GET', path, { cookie });
        assert.equal(ok.status, 200, `${path}: ${ok.body}`);
        const x = await send('GET', path, { cookie, 'sec-fetch-site': 'cross-site' });
        assert.equal(x.status, 403, `${path} cross-site`);
      }
      // The same request with the token, from the real page, works.
      const status = await admin.page.evaluate(async (token) => {
        const r = await fetch('/api/v1/console/binding-reach', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': token },
          body: JSON.stringify({
            subjects: [{ kind: 'Group', name: 'sre' }],
            role: 'view',
            clusters: { selector: { matchLabels: { env: 'prod' } } },
          }),
        });
        return { status: r.status, body: (await r.json()) as { clusters: { name: string }[] } };
      }, csrf);
      assert.equal(status.status, 200);
      assert.deepEqual(
        status.body.clusters.map((c) => c.name),
        ['eu-1'],
      );
      const forged = await admin.page.evaluate(async () => {
        const r = await fetch('/api/v1/console/binding-reach', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{}',
        });
        return r.status;
      });
      assert.equal(forged, 403, 'the page itself cannot change anything without the token');
    });

    test('admin-only endpoints refuse a user; the user sees only their own audit events', async () => {
      const { cookie, csrf } = await sessionOf(dev);
      const origin = new URL(publicUrl).origin;
      for (const path of [
        '/api/v1/clusters',
        '/api/v1/bindings',
        '/api/v1/users',
        '/api/v1/approvals?view=all',
        '/api/v1/approval-webhooks',
      ]) {
        assert.equal((await send('GET', path, { cookie })).status, 403, path);
      }
      const policy = await send(
        'POST',
        '/api/v1/approval-policies',
        { cookie, origin, 'x-csrf-token': csrf },
        JSON.stringify({
          name: 'x',
          kind: 'access',
          roles: ['view'],
          approvers: { groups: ['developers'] },
          clusters: { selector: {} },
        }),
      );
      assert.equal(policy.status, 403, 'only admins write approval policies');
      const reach = await send(
        'POST',
        '/api/v1/console/binding-reach',
        { cookie, origin, 'x-csrf-token': csrf },
        '{}',
      );
      assert.equal(reach.status, 403);
      assert.equal(
        (await send('GET', '/api/v1/audit?user=admin@example.com', { cookie })).status,
        403,
      );
      await dev.page.goto(`${publicUrl}/console/admin/bindings`);
      await dev.page.getByText('This page is for kubegate admins only.').waitFor();
      assert.equal(await dev.page.getByRole('heading', { name: 'Administration' }).count(), 0);
    });

    test('the browser enforces the CSP and Trusted Types; the console itself breaks neither', async () => {
      const page = admin.page;
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(m.text());
      });
      page.on('pageerror', (e) => problems.push(e.message));
      const res = await page.goto(`${publicUrl}/`);
      const csp = res!.headers()['content-security-policy'] ?? '';
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /require-trusted-types-for 'script'/);
      assert.doesNotMatch(csp, /unsafe/);
      assert.equal(res!.headers()['x-frame-options'], 'DENY');
      await page.getByRole('heading', { level: 1, name: 'My clusters' }).waitFor();
      // Walk every view: no CSP or Trusted Types violation, no script error.
      for (const v of [
        'My tokens',
        'My activity',
        'Clusters',
        'Roles',
        'Bindings',
        'Robots',
        'Users',
        'Audit log',
        'My access requests',
        'Approvals',
        'Approval policies',
        'Approval webhooks',
        'Recordings',
        'Namespaces',
        'Namespace profiles',
        'My clusters',
      ]) {
        await goTo(page, v); // waits until the view has loaded
        // Accessibility basics on every view: each form control, button and link has a name.
        assert.deepEqual(
          await unnamedControls(page),
          [],
          `controls without an accessible name on ${v}`,
        );
      }
      assert.deepEqual(problems, []);
      // Keyboard: after a reload, the first Tab reaches the skip link, which moves focus to the content.
      await page.reload();
      await page.getByRole('heading', { level: 1, name: 'My clusters' }).waitFor();
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate('document.activeElement.textContent'), 'Skip to content');
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate('document.activeElement.id'), 'main');
      // An injected sink is refused by the browser.
      // (Browser code as strings: the test program itself has no DOM types.)
      const sink = await page.evaluate(`(() => {
      try {
        document.body.insertAdjacentHTML('beforeend', '<img src=x>');
        return 'allowed';
      } catch (e) {
        return e.name;
      }
    })()`);
      assert.equal(sink, 'TypeError', 'Trusted Types refuse HTML strings');
      const inline = String(
        await page.evaluate(`new Promise((resolve) => {
        document.addEventListener('securitypolicyviolation', (e) => resolve(e.violatedDirective), { once: true });
        const s = document.createElement('script');
        try {
          s.src = 'https://evil.example/x.js';
        } catch (e) {
          resolve('blocked: ' + e.name);
          return;
        }
        document.body.append(s);
        setTimeout(() => resolve('no violation'), 3000);
      })`),
      );
      assert.match(inline, /script-src|blocked/, `a foreign script is refused (${inline})`);
    });

    test(`a cold load of the console stays within the page-weight budget (${budget.transferredBytes / 1024} KiB)`, async () => {
      const page = admin.page;
      const cdp = await admin.context.newCDPSession(page);
      await cdp.send('Network.clearBrowserCache');
      const seen: { url: string; transferred: number; decoded: number }[] = [];
      const onResponse = (r: import('playwright-core').Response) =>
        void (async () => {
          if (!r.url().startsWith(publicUrl)) return;
          const sizes = await r.request().sizes();
          const body = await r.body().catch(() => Buffer.alloc(0));
          seen.push({
            url: r.url(),
            transferred: sizes.responseBodySize + sizes.responseHeadersSize,
            decoded: body.length,
          });
        })();
      page.on('response', onResponse);
      await page.goto(`${publicUrl}/`);
      await page.getByRole('heading', { level: 1, name: 'My clusters' }).waitFor();
      await page.waitForLoadState('networkidle');
      page.off('response', onResponse);
      const transferred = seen.reduce((n, r) => n + r.transferred, 0);
      const decoded = seen.reduce((n, r) => n + r.decoded, 0);
      process.stderr.write(
        `# console cold load: ${seen.length} requests, ${(transferred / 1024).toFixed(1)} KiB transferred, ${(decoded / 1024).toFixed(1)} KiB decoded\n`,
      );
      assert.ok(
        seen.some((r) => /\/console\/assets\/[0-9a-f]{16}\/app\.js$/.test(r.url)),
        'the modules were fetched, not cached',
      );
      // Views load when shown: a cold load of "My clusters" fetches no other view's module.
      const views = seen.map((r) => /\/views\/([a-z-]+)\.js$/.exec(r.url)?.[1]).filter(Boolean);
      assert.deepEqual(views.sort(), ['kubeconfig', 'my-clusters']);
      assert.ok(
        seen.length <= budget.requests,
        `${seen.length} requests (budget ${budget.requests})`,
      );
      assert.ok(
        transferred <= budget.transferredBytes,
        `${transferred} bytes transferred (budget ${budget.transferredBytes})`,
      );
      assert.ok(
        decoded <= budget.decodedBytes,
        `${decoded} bytes decoded (budget ${budget.decodedBytes})`,
      );
      // Assets: compressed, immutable, content-addressed; a stale version is a clean 404.
      const app = seen.find((r) => r.url.endsWith('/app.js'))!.url;
      const a = await send('GET', new URL(app).pathname, { 'accept-encoding': 'br' });
      assert.equal(a.status, 200);
      assert.equal(a.headers['content-encoding'], 'br');
      assert.match(String(a.headers['cache-control']), /immutable/);
      assert.equal(a.headers['x-content-type-options'], 'nosniff');
      const stale = await send('GET', '/console/assets/0000000000000000/app.js', {});
      assert.equal(stale.status, 404);
    });

    test('deactivating a user in the console ends their browser session at once', async () => {
      const { cookie } = await sessionOf(dev);
      await goTo(admin.page, 'Users');
      admin.page.once('dialog', (d) => void d.accept());
      await admin.page.getByRole('button', { name: 'Deactivate dev@example.com' }).click();
      await admin.page
        .getByText('dev@example.com deactivated: tokens and sessions ended.')
        .waitFor();
      await admin.page
        .getByRole('row', { name: /dev@example\.com/ })
        .getByText('deactivated')
        .first()
        .waitFor();
      await screenshot(admin.page, '13-admin-users-deactivated');
      assert.equal((await send('GET', '/api/v1/me', { cookie })).status, 401);
      // The user's open console notices at its next call and goes back to sign-in.
      await dev.page
        .getByRole('navigation', { name: 'Console' })
        .getByRole('link', { name: 'My tokens', exact: true })
        .click();
      await dev.page.getByRole('link', { name: 'Sign in with single sign-on' }).waitFor();
    });
  },
);
