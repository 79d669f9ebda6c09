/**
 * Signing in to kubegate the way a browser does, against the real test
 * provider (test/support/idp.ts): /auth/login → provider → login form post →
 * consent form post → back to /auth/callback. Hooks let a test tamper with
 * the authorization request or hold the callback before kubegate sees it.
 */
import assert from 'node:assert/strict';
import { formOf, type Browser, type Page } from './browser.js';
import { demoPassword } from './idp.js';

export interface SignInOptions {
  password?: string;
  /** Rewrite the authorization URL before the browser follows it. */
  tamperAuthorize?: (u: URL) => URL;
  /** Return the callback URL without delivering it to kubegate. */
  holdCallback?: boolean;
  /** Extra headers on the two requests that reach kubegate (/auth/login and the callback). */
  headers?: Record<string, string>;
}

export interface SignIn {
  /** kubegate's redirect to the provider (its Location, before tampering). */
  authorize: URL;
  /** The provider's redirect back to kubegate. */
  callback: URL;
  /** kubegate's answer to the callback (unless held). */
  result?: Page;
  /** Whether the provider showed its login form (false: it reused its own session). */
  loginFormShown: boolean;
}

export async function signIn(
  b: Browser,
  publicUrl: string,
  email: string,
  opts: SignInOptions = {},
): Promise<SignIn> {
  const origin = new URL(publicUrl).origin;
  const headers = opts.headers ?? {};
  const start = await b.request(`${origin}/auth/login`, { headers });
  assert.equal(start.status, 303, `GET /auth/login: ${start.status} ${start.body}`);
  const authorize = new URL(start.headers.location!);
  const target = opts.tamperAuthorize ? opts.tamperAuthorize(new URL(authorize)) : authorize;
  const isCallback = (u: URL) => u.origin === origin && u.pathname === '/auth/callback';
  let step = await b.follow(await b.request(target), isCallback);
  let loginFormShown = false;
  for (let i = 0; !step.stoppedAt && i < 5; i++) {
    const page = step.page;
    assert.equal(page.status, 200, `provider page ${page.url.href}: ${page.status} ${page.body}`);
    const form = formOf(page);
    if (form.action.pathname.endsWith('/login')) {
      loginFormShown = true;
      step = await b.follow(
        await b.post(form.action, { login: email, password: opts.password ?? demoPassword }),
        isCallback,
      );
    } else {
      step = await b.follow(await b.post(form.action, form.fields), isCallback);
    }
  }
  assert.ok(step.stoppedAt, `the provider never redirected back to kubegate:\n${step.page.body}`);
  const callback = step.stoppedAt;
  if (opts.holdCallback) return { authorize, callback, loginFormShown };
  return { authorize, callback, result: await b.request(callback, { headers }), loginFormShown };
}
