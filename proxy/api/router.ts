/**
 * The admin API (clusters, JIT accounts, roles, bindings, the change log):
 * its routes for the front's one route table, bound to how it learns the
 * caller — a bearer token, or whatever `deps.authenticate` accepts (the
 * proxy passes one that also takes the console's session cookie, only with
 * the CSRF checks of proxy/identity/caller.ts). Every operation here is
 * admin-only.
 *
 * CSRF: the API takes credentials only from the Authorization header, which
 * browsers never attach on their own, and bodies only as JSON, which an HTML
 * form cannot send; the session cookie comes only with those checks.
 */
import { authenticate } from '../authn/authenticate.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/response.js';
import { createDispatcher, mount, notAdmin, requireAdmin, type Route } from '../http/routes.js';
import { RbacStore } from '../rbac/rbac-store.js';
import { bindingRoutes } from './bindings.js';
import { changeRoutes } from './changes.js';
import { clusterRoutes } from './clusters.js';
import { jitAccountRoutes } from './jit-accounts.js';
import { roleRoutes } from './roles.js';
import type { ApiCaller, ApiCall, ApiDeps } from './types.js';

export type { ApiCaller, ApiDeps, BootstrapDeps } from './types.js';

const specs = [
  ...clusterRoutes,
  ...jitAccountRoutes,
  ...roleRoutes,
  ...bindingRoutes,
  ...changeRoutes,
];

function bearer(deps: ApiDeps): (req: AnyRequest) => Promise<ApiCaller> {
  return async (req) => {
    const id = await authenticate(
      deps.tokens,
      req.headers.authorization,
      req.socket.remoteAddress ?? '',
    );
    return { user: id.user, kind: id.kind, groups: id.groups, actor: `${id.kind}:${id.user}` };
  };
}

function callerOf(
  deps: ApiDeps,
): (req: AnyRequest) => Promise<{ caller: ApiCaller; admin: boolean }> {
  const admins = new Set(deps.adminGroups);
  const resolve = deps.authenticate ?? bearer(deps);
  return async (req) => {
    const caller = await resolve(req);
    return { caller, admin: caller.groups.some((g) => admins.has(g)) };
  };
}

/** The admin API's routes, for the front's route table. */
export function adminApiRoutes(deps: ApiDeps): Route[] {
  const store = new RbacStore(deps.pool);
  const who = callerOf(deps);
  return mount<ApiCall>(specs, async (base, op) => {
    const { caller, admin } = await who(base.req);
    requireAdmin(op, { admin, kind: caller.kind, name: caller.user });
    return { ...base, caller, actor: caller.actor, store, deps };
  });
}

/**
 * The admin API on its own (tests, or a server that hosts only it): paths it
 * does not serve go to `deps.fallback` when given, unauthenticated; without
 * one they are a 404 for an admin and 401/403 for anyone else.
 */
export function createApiHandler(deps: ApiDeps): (req: AnyRequest, res: AnyResponse) => void {
  const who = callerOf(deps);
  const dispatch = createDispatcher(adminApiRoutes(deps), {
    log: deps.log,
    ...(deps.maxBodyBytes !== undefined ? { maxBodyBytes: deps.maxBodyBytes } : {}),
    owns: () => deps.fallback === undefined,
    beforeNotFound: async (req) => {
      const { caller, admin } = await who(req);
      if (!admin) throw notAdmin(caller.kind, caller.user);
    },
  });
  return (req, res) => {
    if (!dispatch(req, res)) deps.fallback?.(req, res);
  };
}
