/**
 * The JSON endpoints only the console needs, under `/api/v1/console/`:
 *
 *   GET  /api/v1/console/clusters        the clusters the caller reaches now:
 *                                        labels, health and their access on each
 *   GET  /api/v1/console/tunnels         (admin) agents connected to this replica
 *   POST /api/v1/console/binding-reach   (admin) a draft binding → its problems
 *                                        and the clusters and namespaces it would reach
 *
 * Answers come from this replica's live policy snapshot — what the request
 * path decides on — so they fail closed (503) exactly when it would.
 */
import { randomUUID } from 'node:crypto';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { ApiCaller } from '../api/types.js';
import { bindingsFor, selectorMatches } from '../authz/authorizer.js';
import type { PolicyState } from '../authz/policy-store.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/respond-error.js';
import { readJsonObject, respondApiError, sendJson } from '../identity/http.js';
import { validateBindingSpec } from '../rbac/binding-spec.js';

/** One agent tunnel as the console shows it. */
export interface TunnelView {
  cluster: string;
  agentVersion: string;
  connectedAt: Date;
  replica: string;
}

export interface ConsoleApiDeps {
  resolveCaller: (req: AnyRequest) => Promise<ApiCaller>;
  adminGroups: readonly string[];
  /** The replica's policy, or a 503 when it cannot vouch for it (PolicyStore.current). */
  policy: () => PolicyState;
  /**
   * The live tunnels of a cluster (all clusters when omitted). Today: this
   * replica's registry; a fleet-wide view (issue #10, HA) plugs in here.
   */
  tunnels: (cluster?: string) => TunnelView[];
  log: Logger;
}

const prefix = '/api/v1/console/';

/** Online when at least one live tunnel exists; which replica holds it is for admins only. */
function health(deps: ConsoleApiDeps, name: string, admin: boolean) {
  const tunnels = deps.tunnels(name);
  return {
    online: tunnels.length > 0,
    tunnels: tunnels.map((t) => ({
      agentVersion: t.agentVersion,
      connectedAt: t.connectedAt,
      ...(admin ? { replica: t.replica } : {}),
    })),
  };
}

function myClusters(deps: ConsoleApiDeps, caller: ApiCaller, admin: boolean) {
  const state = deps.policy();
  const now = new Date();
  const who = { user: caller.user, kind: caller.kind, groups: caller.groups };
  const items = [];
  for (const c of [...state.clusters.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (c.disabled) continue;
    const bindings = bindingsFor(state.snapshot, who, c, now);
    if (bindings.length === 0) continue;
    items.push({
      name: c.name,
      labels: c.labels,
      ...health(deps, c.name, admin),
      access: bindings.map((b) => ({
        binding: b.id,
        role: b.role,
        namespaces: b.namespaces,
        expiresAt: b.expiresAt ?? null,
      })),
    });
  }
  return { items };
}

/** What a draft binding would reach if saved now; validation problems instead of a 422. */
function bindingReach(deps: ConsoleApiDeps, draft: Record<string, unknown>) {
  const { spec, problems } = validateBindingSpec(draft);
  const state = deps.policy();
  if (spec && !state.snapshot.roles.has(spec.role))
    problems.push(`role: "${spec.role}" does not exist (built-in or custom)`);
  if (!spec || problems.length > 0) return { problems, clusters: [], namespaces: [] };
  const clusters = [...state.clusters.values()]
    .filter(
      (c) =>
        spec.clusters.names?.includes(c.name) ||
        (spec.clusters.selector !== undefined && selectorMatches(spec.clusters.selector, c.labels)),
    )
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((c) => ({
      name: c.name,
      labels: c.labels,
      disabled: c.disabled,
      ...health(deps, c.name, true),
    }));
  const registered = new Set(state.clusters.keys());
  const unknownNames = (spec.clusters.names ?? []).filter((n) => !registered.has(n));
  return {
    problems: [],
    clusters,
    // Named clusters that are not registered (yet): the binding will reach them once they are.
    unregistered: unknownNames,
    namespaces: spec.namespaces,
    clusterWide: spec.namespaces.length === 0,
    subjects: spec.subjects,
    role: spec.role,
    expiresAt: spec.expiresAt,
  };
}

/** The handler; false (nothing written) for paths outside `/api/v1/console/`. */
export function createConsoleApiHandler(
  deps: ConsoleApiDeps,
): (req: AnyRequest, res: AnyResponse) => boolean {
  const admins = new Set(deps.adminGroups);
  const apiLog = deps.log.child({ part: 'console-api' });
  return (req, res) => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q >= 0 ? target.slice(0, q) : target;
    if (!path.startsWith(prefix)) return false;
    const method = req.method ?? 'GET';
    const log = apiLog.child({ requestId: randomUUID() });
    const allow = (methods: string) => {
      if (methods.split(', ').includes(method)) return;
      res.setHeader('allow', methods);
      throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
    };
    const run = async () => {
      const caller = await deps.resolveCaller(req);
      const admin = caller.groups.some((g) => admins.has(g));
      const needAdmin = () => {
        if (!admin)
          throw new KgError('KG_ERR_FORBIDDEN', `"${caller.user}" is not a kubegate admin`);
      };
      if (q >= 0 && target.length > q + 1)
        throw new KgError('KG_ERR_BAD_REQUEST', 'this endpoint takes no query parameters');
      switch (path.slice(prefix.length)) {
        case 'clusters':
          allow('GET');
          return sendJson(res, 200, myClusters(deps, caller, admin));
        case 'tunnels':
          allow('GET');
          needAdmin();
          return sendJson(res, 200, { items: deps.tunnels() });
        case 'binding-reach':
          allow('POST');
          needAdmin();
          return sendJson(res, 200, bindingReach(deps, await readJsonObject(req)));
        default:
          throw new KgError('KG_ERR_NOT_FOUND', `no such console endpoint: ${path}`);
      }
    };
    run().catch((err: unknown) => {
      if (!req.complete) req.resume();
      respondApiError(res, err, path, log);
    });
    return true;
  };
}
