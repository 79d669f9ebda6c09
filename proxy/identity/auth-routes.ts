/**
 * The browser routes: `/` (the minimal signed-in page), `/auth/login`,
 * `/auth/callback` and `/auth/logout`.
 *
 * A sign-in is bound to the browser that started it: /auth/login stores
 * state, nonce and PKCE verifier server-side under the hash of a fresh
 * `__Host-kg_login` cookie, and the callback must present that cookie and
 * echo the same state. The stored row is consumed by the first callback, so
 * a callback URL (and the code in it) cannot be replayed, and an attacker's
 * code cannot be planted into a victim's browser (login CSRF, RFC 9700 §4.7).
 */
import type { SourceBudget } from '../authn/source-budget.js';
import { timingSafeEqual } from 'node:crypto';
import { isKgError, KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Pool } from '../db/pool.js';
import type { TokenStore } from '../authn/token-store.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/response.js';
import { checkBrowserRequest, resolveCaller } from './caller.js';
import { clearCookie, loginCookie, readCookies, sessionCookie, setCookie } from './cookies.js';
import { clustersFor } from './fleet.js';
import { readForm, redirect } from './http.js';
import { loginIdentity } from './login-identity.js';
import type { OidcClient } from './oidc-client.js';
import { sendHtml, signedInPage, signedOutPage } from './page.js';
import {
  createSession,
  deleteSession,
  findSession,
  revokeTerminalTokens,
  savePendingLogin,
  takePendingLogin,
} from './session-store.js';
import type { IdentitySettings } from './settings.js';
import { recordLogin } from './user-store.js';
import { createSignin } from './sso-signins.js';
import { recordAdminEvent, requestOrigin } from '../audit/admin-events.js';

/** How long a sign-in may take at the provider. */
const loginTtlMs = 10 * 60_000;

export interface AuthDeps {
  pool: Pool;
  tokens: TokenStore;
  settings: IdentitySettings;
  oidc: OidcClient | undefined;
  log: Logger;
  /** Per-address budget for sign-in starts (each writes a row); absent = unlimited. */
  loginBudget?: SourceBudget | undefined;
}

function maxAgeSeconds(s: IdentitySettings): number {
  return Math.max(1, Math.floor(s.sessionMaxAgeMs / 1000));
}

function formatTtl(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} day(s)`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} hour(s)`;
  return `${Math.round(ms / 60_000)} minute(s)`;
}

/** GET / — who you are, your clusters, the kubeconfig button; or a sign-in link. */
export async function home(deps: AuthDeps, req: AnyRequest, res: AnyResponse): Promise<void> {
  const cookie = readCookies(req.headers.cookie).get(sessionCookie);
  const session = cookie ? await findSession(deps.pool, cookie) : undefined;
  if (!session) {
    sendHtml(
      res,
      200,
      signedOutPage(!!deps.oidc, cookie ? 'Your session has ended; please sign in again.' : ''),
      cookie ? { 'set-cookie': clearCookie(sessionCookie) } : {},
    );
    return;
  }
  const u = session.user;
  const clusters = await clustersFor(deps.pool, {
    user: u.username,
    groups: u.groups,
    kind: 'user',
  });
  sendHtml(
    res,
    200,
    signedInPage({
      name: u.name,
      username: u.username,
      groups: u.groups,
      clusters,
      csrfToken: session.csrfToken,
      sessionEnds: session.expiresAt,
      tokenTtl: formatTtl(deps.settings.tokenTtlMs),
    }),
  );
}

function notConfigured(): KgError {
  return new KgError('KG_ERR_NOT_FOUND', 'single sign-on is not configured on this kubegate');
}

/** GET /auth/login — start a sign-in at the provider. */
export async function login(deps: AuthDeps, req: AnyRequest, res: AnyResponse): Promise<void> {
  if (!deps.oidc) throw notConfigured();
  const source = req.socket.remoteAddress ?? '';
  if (deps.loginBudget && !deps.loginBudget.take(source)) {
    throw new KgError(
      'KG_ERR_RATE_LIMITED',
      'too many sign-ins started from this address; wait a moment and try again',
      { retryAfter: deps.loginBudget.retryAfter(source) },
    );
  }
  const { url, pending } = await deps.oidc.begin(maxAgeSeconds(deps.settings));
  const cookie = await savePendingLogin(deps.pool, pending, loginTtlMs);
  redirect(res, url.href, [setCookie(loginCookie, cookie, loginTtlMs / 1000)]);
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * GET /auth/callback — finish a sign-in. The caller clears the sign-in
 * cookie on every outcome (it is single use either way).
 */
export async function callback(deps: AuthDeps, req: AnyRequest, res: AnyResponse): Promise<void> {
  if (!deps.oidc) throw notConfigured();
  try {
    await finishSignIn(deps, req, res);
  } catch (err) {
    // A refused sign-in is a security event too: recorded, then shown to the user.
    await recordAdminEvent(deps.pool, {
      actor: 'anonymous',
      verb: 'login',
      resource: 'logins',
      code: isKgError(err) && err.status === 403 ? 403 : 401,
      annotations: { 'kubegate.dev/reason': (err as Error).message.slice(0, 300) },
      ...requestOrigin(req),
    }).catch((e: unknown) =>
      deps.log.warn({ err: (e as Error).message }, 'could not audit a refused sign-in'),
    );
    throw err;
  }
}

async function finishSignIn(deps: AuthDeps, req: AnyRequest, res: AnyResponse): Promise<void> {
  if (!deps.oidc) throw notConfigured();
  const target = req.url ?? '';
  const rawQuery = target.includes('?') ? target.slice(target.indexOf('?') + 1) : '';
  const params = new URLSearchParams(rawQuery);
  const cookies = readCookies(req.headers.cookie);
  const bound = cookies.get(loginCookie);
  const pending = bound ? await takePendingLogin(deps.pool, bound) : undefined;
  if (!pending)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'Sign-in refused: no sign-in is in progress in this browser (it was already completed, took longer than 10 minutes, or cookies are blocked). Please sign in again.',
    );
  const state = params.get('state');
  if (state === null || state === '')
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'Sign-in refused: the response from the identity provider has no state parameter.',
    );
  if (!sameText(state, pending.state))
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'Sign-in refused: the state parameter does not match the sign-in this browser started.',
    );
  if (!pending.codeVerifier)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'Sign-in refused: the PKCE code verifier of this sign-in is missing.',
    );
  const maxAge = maxAgeSeconds(deps.settings);
  const { claims, refreshToken } = await deps.oidc.finishSignIn(rawQuery, pending, maxAge);
  const li = loginIdentity(claims, deps.settings, deps.log);
  const user = await recordLogin(deps.pool, li);

  // The session never outlives max age counted from the authentication at
  // the provider (auth_time), so an older provider session cannot stretch it.
  const now = Date.now();
  const authTime = typeof claims.auth_time === 'number' ? claims.auth_time * 1000 : now;
  const expiresAt = new Date(Math.min(now, authTime) + deps.settings.sessionMaxAgeMs);
  // The sign-in bounds every token minted through it (KUBEGATE_SSO_TOKEN_MAX_AGE
  // from auth_time) and keeps the refresh token that re-reads the groups.
  const signin = await createSignin(deps.pool, deps.settings, {
    userId: user.id,
    authTime: new Date(Math.min(now, authTime)),
    refreshToken,
  });
  const old = cookies.get(sessionCookie);
  if (old) await deleteSession(deps.pool, old);
  const s = await createSession(
    deps.pool,
    user.id,
    expiresAt,
    {
      userAgent: String(req.headers['user-agent'] ?? ''),
      sourceIp: req.socket.remoteAddress ?? '',
    },
    signin.id,
  );
  await recordAdminEvent(deps.pool, {
    actor: `user:${user.username}`,
    verb: 'login',
    resource: 'logins',
    name: user.username,
    detail: {
      issuer: li.issuer,
      groups: user.groups,
      sessionExpiresAt: expiresAt.toISOString(),
      tokensEndBy: signin.expiresAt.toISOString(),
      groupsRefreshed: !!refreshToken && !!deps.settings.masterKey,
    },
    ...requestOrigin(req),
  });
  deps.log.info(
    { user: user.username, userId: user.id, groups: user.groups.length },
    'signed in with single sign-on',
  );
  redirect(res, '/', [
    clearCookie(loginCookie),
    setCookie(sessionCookie, s.cookie, (expiresAt.getTime() - now) / 1000),
  ]);
}

/** POST /auth/logout — end this browser's session (form post with the CSRF token). */
export async function logout(deps: AuthDeps, req: AnyRequest, res: AnyResponse): Promise<void> {
  const form = await readForm(req);
  const cookie = readCookies(req.headers.cookie).get(sessionCookie);
  if (cookie) {
    const caller = await resolveCaller(deps, req).catch(() => undefined);
    if (caller?.via === 'session') {
      checkBrowserRequest(req, caller, deps.settings, form.get('csrf') ?? undefined);
      await deleteSession(deps.pool, cookie);
      // The session's open terminals end with it (their tokens' revocation ends them).
      await revokeTerminalTokens(deps.pool, caller.userId, cookie);
      await recordAdminEvent(deps.pool, {
        actor: caller.actor,
        verb: 'logout',
        resource: 'logins',
        name: caller.name,
        ...requestOrigin(req),
      });
      deps.log.info({ user: caller.name }, 'signed out');
    }
  }
  redirect(res, '/', [clearCookie(sessionCookie)]);
}
