/**
 * One way to resolve the caller for every JSON API the console uses (the
 * RBAC admin API, the audit API and the console's own endpoints): a bearer
 * token as before, or — only when no Authorization header is sent — the
 * browser's session cookie, with identity's cross-site request forgery
 * checks (proxy/identity/caller.ts): cross-site fetches and foreign origins
 * refused, and X-CSRF-Token required on every change.
 */
import { authenticate } from '../authn/authenticate.js';
import type { ApiCaller } from '../api/types.js';
import type { AnyRequest } from '../forward/forward.js';
import { checkBrowserRequest, resolveCaller, type CallerDeps } from '../identity/caller.js';

export function sessionOrBearer(deps: CallerDeps): (req: AnyRequest) => Promise<ApiCaller> {
  return async (req) => {
    if (req.headers.authorization !== undefined) {
      // The bearer path stays exactly the token cache's: no extra database read.
      const id = await authenticate(
        deps.tokens,
        req.headers.authorization,
        req.socket.remoteAddress ?? '',
      );
      return { user: id.user, kind: id.kind, groups: id.groups, actor: `${id.kind}:${id.user}` };
    }
    const c = await resolveCaller(deps, req);
    checkBrowserRequest(req, c, deps.settings);
    return { user: c.name, kind: c.kind, groups: c.groups, actor: c.actor };
  };
}
