/**
 * The REST API under `/api/v1/`, assembled in one place: authenticate
 * (bearer token, 401) → authorize (admin groups only, 403) → route (404,
 * 405) → the resource handler. Every error becomes problem JSON through
 * `respondError`, the one error → response function.
 *
 * CSRF: the API takes credentials only from the Authorization header, which
 * browsers never attach on their own, and bodies only as JSON, which an HTML
 * form cannot send. The console's session cookie is accepted only with the
 * CSRF checks of proxy/identity/caller.ts (wired in proxy/app.ts).
 */
import { randomUUID } from 'node:crypto';
import { KgError } from '../../common/errors.js';
import { authenticate } from '../authn/authenticate.js';
import type { AnyRequest } from '../forward/forward.js';
import { respondError, toKgError, type AnyResponse } from '../http/respond-error.js';
import { RbacStore } from '../rbac/rbac-store.js';
import { bindingRoutes } from './bindings.js';
import { changeRoutes } from './changes.js';
import { clusterRoutes } from './clusters.js';
import { jitAccountRoutes } from './jit-accounts.js';
import { roleRoutes } from './roles.js';
import type { ApiCaller, ApiDeps, Handler, Route } from './types.js';

export type { ApiCaller, ApiDeps, BootstrapDeps } from './types.js';

const routes: readonly Route[] = [
  ...clusterRoutes,
  ...jitAccountRoutes,
  ...roleRoutes,
  ...bindingRoutes,
  ...changeRoutes,
];

function match(path: string): { route: Route; params: string[] } | undefined {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  return undefined;
}

/** Whether this API serves `path` (without query), for a front that hosts several APIs. */
export function isAdminApiPath(path: string): boolean {
  return match(path) !== undefined;
}

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

/**
 * The handler the front server calls for every URL under `/api/`. It never
 * throws; every outcome is a response.
 */
export function createApiHandler(deps: ApiDeps): (req: AnyRequest, res: AnyResponse) => void {
  const store = new RbacStore(deps.pool);
  const admins = new Set(deps.adminGroups);
  const apiLog = deps.log.child({ part: 'api' });
  const resolveCaller = deps.authenticate ?? bearer(deps);

  return (req, res) => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q >= 0 ? target.slice(0, q) : target;
    const found = match(path);
    if (!found && deps.fallback) return deps.fallback(req, res);
    const method = req.method ?? 'GET';
    const log = apiLog.child({ requestId: randomUUID() });
    const started = Date.now();

    const run = async () => {
      const caller = await resolveCaller(req);
      if (!caller.groups.some((g) => admins.has(g))) {
        throw new KgError(
          'KG_ERR_FORBIDDEN',
          `${caller.kind === 'robot' ? 'Robot' : 'User'} "${caller.user}" is not a kubegate admin: the admin API needs membership of an admin group`,
        );
      }
      if (!found) throw new KgError('KG_ERR_NOT_FOUND', `no such API endpoint: ${path}`);
      // Own properties only: an HTTP/2 `:method` may be any token, `constructor` included.
      const handler: Handler | undefined = Object.hasOwn(found.route.methods, method)
        ? found.route.methods[method as keyof Route['methods']]
        : undefined;
      if (!handler) {
        res.setHeader('allow', Object.keys(found.route.methods).join(', '));
        throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
      }
      await handler({
        req,
        res,
        method,
        path,
        query: new URLSearchParams(q >= 0 ? target.slice(q + 1) : ''),
        params: found.params,
        caller,
        actor: caller.actor,
        store,
        deps,
        log,
      });
      log.debug(
        {
          method,
          path,
          status: res.statusCode,
          actor: caller.actor,
          ms: Date.now() - started,
        },
        'api request done',
      );
    };

    run().catch((err: unknown) => {
      const e = toKgError(err);
      // RFC 9110 §11.6.1: a 401 names the scheme it wants.
      if (e.status === 401 && !res.headersSent) {
        res.setHeader('www-authenticate', 'Bearer realm="kubegate"');
      }
      if (e.status < 500) log.debug({ method, path, code: e.code }, 'api request refused');
      // A refused request's unread body is drained and dropped, so an HTTP/2
      // stream is not left half-open with its flow-control window full.
      if (!req.complete) req.resume();
      respondError(res, err, path, log);
    });
  };
}
