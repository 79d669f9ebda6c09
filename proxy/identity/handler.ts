/**
 * Identity, assembled in one place: the browser routes (`/`, `/auth/*`) and
 * identity's `/api/v1/` routes — me, kubeconfig, tokens, users, robots. The
 * front server offers every request to `handle` first; it answers `false`
 * for a path that is not identity's, and the front routes it elsewhere.
 *
 * An API request goes: caller (bearer or session cookie, 401) → CSRF checks
 * for cookie callers (403) → admin check where the route needs it (403) →
 * the route. Errors become problem JSON; on browser routes, an HTML page.
 */
import type { SourceBudget } from '../authn/source-budget.js';
import { randomUUID } from 'node:crypto';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { TokenStore } from '../authn/token-store.js';
import type { Pool } from '../db/pool.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/respond-error.js';
import { adminRoutes } from './admin-routes.js';
import { callback, home, login, logout, type AuthDeps } from './auth-routes.js';
import { checkBrowserRequest, resolveCaller } from './caller.js';
import { clearCookie, loginCookie } from './cookies.js';
import { respondApiError, respondPageError } from './http.js';
import { OidcClient } from './oidc-client.js';
import { startReaper } from './reaper.js';
import { startRefresher } from './sso-signins.js';
import type { ApiMethod, ApiRoute, IdentityApiDeps } from './routes.js';
import { selfRoutes } from './self-routes.js';
import { identitySettings, type IdentityConfig, type IdentitySettings } from './settings.js';

export interface IdentityDeps {
  config: IdentityConfig;
  pool: Pool;
  tokens: TokenStore;
  /** The CA kubectl must trust for the front (the internal server CA); omit for a public certificate. */
  caPem?: string | undefined;
  log: Logger;
  /** How often superseded robot tokens are revoked once their overlap ends (default 500 ms). */
  reapIntervalMs?: number;
  /** Per-address budget for sign-in starts (each writes a pending-login row). */
  loginBudget?: SourceBudget;
}

export interface IdentityHandler {
  /** Answer the request if the path is identity's; false otherwise (nothing written). */
  handle(req: AnyRequest, res: AnyResponse): boolean;
  settings: IdentitySettings;
  close(): Promise<void>;
}

const routes: readonly ApiRoute[] = [...selfRoutes, ...adminRoutes];

function match(path: string): { route: ApiRoute; params: string[] } | undefined {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  return undefined;
}

/** `/console` and `/console/<view>`, but never the static `/console/assets/…`. */
const consoleView = /^\/console(\/(?!assets\/)[a-z][a-z0-9/-]{0,62})?\/?$/;

type PageHandler = (deps: AuthDeps, req: AnyRequest, res: AnyResponse) => Promise<void>;

const pages: Record<string, Partial<Record<string, PageHandler>>> = {
  '/': { GET: home },
  '/auth/login': { GET: login },
  '/auth/callback': { GET: callback },
  '/auth/logout': { POST: logout },
};

export function createIdentityHandler(deps: IdentityDeps): IdentityHandler {
  const settings = identitySettings(deps.config);
  const log = deps.log;
  const oidc = settings.oidc ? new OidcClient(settings.oidc, log) : undefined;
  const authDeps: AuthDeps = {
    pool: deps.pool,
    tokens: deps.tokens,
    settings,
    oidc,
    log,
    loginBudget: deps.loginBudget,
  };
  const apiDeps: IdentityApiDeps = {
    pool: deps.pool,
    tokens: deps.tokens,
    settings,
    caPem: deps.caPem,
    log,
  };
  const reaper = startReaper(deps.pool, log, deps.reapIntervalMs ?? 500);
  // Groups re-read from the provider with each sign-in's refresh token (sso-signins.ts).
  const refresher =
    oidc && settings.masterKey
      ? startRefresher({ pool: deps.pool, oidc, settings, log: log.child({ part: 'sso-refresh' }) })
      : undefined;

  const page = (
    req: AnyRequest,
    res: AnyResponse,
    path: string,
    methods: Partial<Record<string, PageHandler>>,
  ) => {
    const method = req.method ?? 'GET';
    const fn = methods[method];
    const run = async () => {
      if (!fn) {
        res.setHeader('allow', Object.keys(methods).join(', '));
        throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
      }
      await fn(authDeps, req, res);
    };
    run().catch((err: unknown) =>
      respondPageError(
        res,
        err,
        path,
        log,
        !!oidc,
        // A callback is single use whatever its outcome: drop its cookie.
        path === '/auth/callback' ? [clearCookie(loginCookie)] : [],
      ),
    );
  };

  const api = (
    req: AnyRequest,
    res: AnyResponse,
    path: string,
    query: string,
    found: { route: ApiRoute; params: string[] },
  ) => {
    const method = (req.method ?? 'GET') as ApiMethod;
    const reqLog = log.child({ requestId: randomUUID() });
    const run = async () => {
      const caller = await resolveCaller(apiDeps, req);
      checkBrowserRequest(req, caller, settings);
      if (found.route.admin && !caller.admin)
        throw new KgError(
          'KG_ERR_FORBIDDEN',
          `${caller.kind === 'robot' ? 'Robot' : 'User'} "${caller.name}" is not a kubegate admin: this needs membership of an admin group`,
        );
      const fn = found.route.methods[method];
      if (!fn) {
        res.setHeader('allow', Object.keys(found.route.methods).join(', '));
        throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
      }
      await fn({
        req,
        res,
        path,
        params: found.params,
        query: new URLSearchParams(query),
        caller,
        deps: apiDeps,
        log: reqLog,
      });
    };
    run().catch((err: unknown) => respondApiError(res, err, path, reqLog));
  };

  return {
    settings,
    handle(req, res) {
      const target = req.url ?? '/';
      const q = target.indexOf('?');
      const path = q >= 0 ? target.slice(0, q) : target;
      // The console's views (`/console/tokens`, …) are the same page as `/`;
      // its modules pick the view from the path.
      const methods = consoleView.test(path) ? pages['/'] : pages[path];
      if (methods) {
        page(req, res, path, methods);
        return true;
      }
      if (!path.startsWith('/api/v1/')) return false;
      const found = match(path);
      if (!found) return false;
      api(req, res, path, q >= 0 ? target.slice(q + 1) : '', found);
      return true;
    },
    close: async () => {
      await reaper.stop();
      await refresher?.stop();
    },
  };
}
