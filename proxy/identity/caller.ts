/**
 * Who is calling an identity endpoint: a bearer token (kubectl-side tools,
 * robots, scripts) or a browser session cookie. A request with an
 * Authorization header is judged on that header alone, never on a cookie.
 *
 * Browser requests get cross-site request forgery checks (docs/security.md,
 * "Browser"): a cross-site fetch (Sec-Fetch-Site) or a foreign Origin is
 * refused outright, and every state-changing call (anything but GET/HEAD)
 * must carry the session's CSRF token in `X-CSRF-Token` — a header no other
 * site can make a browser send. Bearer requests need none of this: browsers
 * never attach a bearer token by themselves.
 */
import { timingSafeEqual } from 'node:crypto';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { PolicyState } from '../authz/policy-store.js';
import type { Pool } from '../db/pool.js';
import { authenticate } from '../authn/authenticate.js';
import type { TokenStore } from '../authn/token-store.js';
import type { AnyRequest } from '../forward/forward.js';
import { readCookies, sessionCookie } from './cookies.js';
import { findSession, type Session } from './session-store.js';
import type { IdentitySettings } from './settings.js';
import type { TokenOwner } from './token-records.js';
import { tokenOwnerRefs } from './token-records.js';
import { requireAdmin, type Access, type BaseCall } from '../http/routes.js';

export interface Caller {
  via: 'session' | 'token';
  kind: 'user' | 'robot';
  /** The RBAC user (or robot) name. */
  name: string;
  groups: string[];
  admin: boolean;
  /** The users / robots row, when the identity has one. */
  userId: string | undefined;
  robotId: string | undefined;
  /** Bearer callers: the token used, and when it ends (tokens minted with it never outlive it). */
  tokenId: string | undefined;
  tokenExpiresAt: Date | undefined;
  /** Cookie callers: the session. */
  session: Session | undefined;
  /** The single sign-on sign-in behind the session or token; tokens minted now inherit it. */
  signinId?: string | undefined;
  /** How the admin change log names the caller: `user:alice@example.com`, `robot:ci`. */
  actor: string;
}

export function ownerOf(c: Caller): TokenOwner {
  return { kind: c.kind, name: c.name, userId: c.userId, robotId: c.robotId };
}

export function signInHint(s: IdentitySettings): string {
  return s.oidc
    ? `sign in at ${s.publicUrl}/ (or send a kubegate bearer token)`
    : 'send a kubegate bearer token (single sign-on is not configured)';
}

export interface CallerDeps {
  pool: Pool;
  tokens: TokenStore;
  settings: IdentitySettings;
}

/** What a handler of a route guarded by `guardCaller` gets: the call and who makes it. */
export interface CallerCall extends BaseCall {
  caller: Caller;
}

/**
 * What a feature's REST routes need that decide with central RBAC and hand
 * work to a background worker (runbook runs, namespaces): the caller, the
 * policy, a log, and `changed` — work was made here, so the worker looks now
 * rather than at its next pass.
 */
export interface PolicyRouteDeps extends CallerDeps {
  policy: () => PolicyState;
  log: Logger;
  changed: () => void;
}

/** Resolve the caller, or throw 401. Does not check CSRF; see `checkBrowserRequest`. */
export async function resolveCaller(deps: CallerDeps, req: AnyRequest): Promise<Caller> {
  const isAdmin = (groups: string[]) => groups.some((g) => deps.settings.adminGroups.has(g));
  if (req.headers.authorization !== undefined) {
    const id = await authenticate(
      deps.tokens,
      req.headers.authorization,
      req.socket.remoteAddress ?? '',
    );
    const refs = await tokenOwnerRefs(deps.pool, id.tokenId);
    return {
      via: 'token',
      kind: id.kind,
      name: id.user,
      groups: id.groups,
      admin: isAdmin(id.groups),
      userId: refs.userId ?? undefined,
      robotId: refs.robotId ?? undefined,
      tokenId: id.tokenId,
      tokenExpiresAt: id.expiresAt,
      session: undefined,
      signinId: refs.signinId ?? undefined,
      actor: `${id.kind}:${id.user}`,
    };
  }
  const cookie = readCookies(req.headers.cookie).get(sessionCookie);
  const session = cookie ? await findSession(deps.pool, cookie) : undefined;
  if (!session) {
    throw new KgError(
      'KG_ERR_UNAUTHENTICATED',
      `not signed in (or the session ended): ${signInHint(deps.settings)}`,
    );
  }
  const u = session.user;
  return {
    via: 'session',
    kind: 'user',
    name: u.username,
    groups: u.groups,
    admin: isAdmin(u.groups),
    userId: u.id,
    robotId: undefined,
    tokenId: undefined,
    tokenExpiresAt: undefined,
    session,
    signinId: session.signinId,
    actor: `user:${u.username}`,
  };
}

function header(req: AnyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * CSRF defences for cookie-authenticated requests. `formToken` is the token
 * from a same-origin HTML form (logout), where a header cannot be set.
 */
export function checkBrowserRequest(
  req: AnyRequest,
  caller: Caller,
  settings: IdentitySettings,
  formToken?: string,
): void {
  if (caller.via !== 'session' || !caller.session) return;
  const site = header(req, 'sec-fetch-site');
  if (site === 'cross-site')
    throw new KgError(
      'KG_ERR_FORBIDDEN',
      `cross-site requests are refused; open ${settings.publicUrl}/ and use it from there`,
    );
  const origin = header(req, 'origin');
  if (origin !== undefined && origin !== settings.publicOrigin)
    throw new KgError('KG_ERR_FORBIDDEN', `requests from origin ${origin} are refused`);
  const method = req.method ?? 'GET';
  if (method === 'GET' || method === 'HEAD') return;
  const token = formToken ?? header(req, 'x-csrf-token');
  if (!token || !sameSecret(token, caller.session.csrfToken))
    throw new KgError(
      'KG_ERR_FORBIDDEN',
      'missing or wrong CSRF token: a signed-in browser must send X-CSRF-Token (from GET /api/v1/me) with every change',
    );
}

/**
 * The guard of the APIs a browser uses too (identity, approvals): the
 * caller by bearer token, or by session cookie with its CSRF checks; a
 * non-admin refused on an admin-only operation.
 */
export async function guardCaller(
  deps: CallerDeps,
  req: AnyRequest,
  op: { access: Access },
): Promise<Caller> {
  const caller = await resolveCaller(deps, req);
  checkBrowserRequest(req, caller, deps.settings);
  requireAdmin(op, caller);
  return caller;
}
