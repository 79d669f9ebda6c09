/**
 * Identity, assembled in one place: the browser routes (`/`, `/auth/*`) and
 * identity's `/api/v1/` routes — me, kubeconfig, tokens, users, robots. The
 * front serves the pages through `pages` and the routes from the one route
 * table (proxy/http/routes.ts); `handle` serves both, for a front that
 * mounts identity alone.
 *
 * An API caller is resolved by `resolveCaller` (bearer or session cookie,
 * 401), cookie callers pass the CSRF checks (403), and admin-only routes
 * need an admin (403). Errors become problem JSON; on browser routes, an
 * HTML page.
 */
import type { SourceBudget } from '../authn/source-budget.js';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { TokenStore } from '../authn/token-store.js';
import type { Pool } from '../db/pool.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/response.js';
import { adminRoutes } from './admin-routes.js';
import { callback, home, login, logout, type AuthDeps } from './auth-routes.js';
import { guardCaller } from './caller.js';
import { clearCookie, loginCookie } from './cookies.js';
import { respondPageError } from './http.js';
import { OidcClient } from './oidc-client.js';
import { startReaper } from './reaper.js';
import { startRefresher } from './sso-signins.js';
import type { ApiCall, IdentityApiDeps } from './routes.js';
import { createDispatcher, mount, type Route } from '../http/routes.js';
import { selfRoutes } from './self-routes.js';
import { identitySettings, type IdentityConfig, type IdentitySettings } from './settings.js';
import type { RecordingAccess } from '../recording/access.js';

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
  /** Who may watch session recordings (`/api/v1/me` says so for the console). */
  recordings?: RecordingAccess;
}

export interface IdentityHandler {
  /** Answer the request if the path is identity's (page or API); false otherwise (nothing written). */
  handle(req: AnyRequest, res: AnyResponse): boolean;
  /** The browser routes only (`/`, `/auth/*`, console views); false for other paths. */
  pages(req: AnyRequest, res: AnyResponse): boolean;
  /** Identity's `/api/v1/` routes, for the front's route table. */
  routes: Route[];
  settings: IdentitySettings;
  close(): Promise<void>;
}

/** `/console` and `/console/<view>`, but never the static `/console/assets/…`. */
const consoleView = /^\/console(\/(?!assets\/)[a-z][a-z0-9/-]{0,127})?\/?$/;

type PageHandler = (deps: AuthDeps, req: AnyRequest, res: AnyResponse) => Promise<void>;

const pagesByPath: Record<string, Partial<Record<string, PageHandler>>> = {
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
    recordings: deps.recordings,
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

  const routes = mount<ApiCall>([...selfRoutes, ...adminRoutes], async (base, op) => {
    const caller = await guardCaller(apiDeps, base.req, op);
    return { ...base, caller, deps: apiDeps };
  });
  // Identity on its own (tests mount only this handler): its API routes, and nothing else under /api/.
  const api = createDispatcher(routes, { log, owns: () => false });

  const pages = (req: AnyRequest, res: AnyResponse): boolean => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q >= 0 ? target.slice(0, q) : target;
    // The console's views (`/console/tokens`, …) are the same page as `/`;
    // its modules pick the view from the path.
    const methods = consoleView.test(path) ? pagesByPath['/'] : pagesByPath[path];
    if (!methods) return false;
    page(req, res, path, methods);
    return true;
  };

  return {
    settings,
    routes,
    pages,
    handle: (req, res) => pages(req, res) || api(req, res),
    close: async () => {
      await reaper.stop();
      await refresher?.stop();
    },
  };
}
