/**
 * The JSON endpoints only the console needs, under `/api/v1/console/`:
 *
 *   GET  /api/v1/console/clusters        the clusters the caller reaches now:
 *                                        labels, health and their access on each
 *   POST /api/v1/console/binding-reach   (admin) a draft binding → its problems
 *                                        and the clusters and namespaces it would reach
 *
 * Who may reach what comes from this replica's live policy snapshot — what
 * the request path decides on — so they fail closed (503) exactly when it
 * would. Health is fleet-wide (the replica registry, proxy/ha/cluster-health.ts),
 * the same block GET /api/v1/clusters carries, so every replica shows the
 * same truth whichever holds the tunnel; admins see the tunnels per
 * replica there.
 */
import type { Logger } from '../../common/log.js';
import { checkQuery } from '../api/params.js';
import type { ApiCaller } from '../api/types.js';
import { bindingsFor } from '../authz/authorizer.js';
import { selectorMatches } from '../../common/kube-grammar.js';
import type { PolicyState } from '../authz/policy-store.js';
import type { ClusterHealth } from '../ha/cluster-health.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/response.js';
import { writeJson } from '../http/json-body.js';
import {
  createDispatcher,
  mount,
  requireAdmin,
  smallObjectBody,
  type BaseCall,
  type Route,
  type RouteSpec,
} from '../http/routes.js';
import { validateBindingSpec } from '../rbac/binding-spec.js';

export interface ConsoleApiDeps {
  resolveCaller: (req: AnyRequest) => Promise<ApiCaller>;
  adminGroups: readonly string[];
  /** The replica's policy, or a 503 when it cannot vouch for it (PolicyStore.current). */
  policy: () => PolicyState;
  /**
   * Fleet-wide health of the named clusters (every name gets an entry):
   * clusterHealth() over the replica registry in the proxy.
   */
  health: (names: readonly string[]) => Promise<Map<string, ClusterHealth>>;
  log: Logger;
}

const prefix = '/api/v1/console/';

const offline: ClusterHealth = {
  online: false,
  since: null,
  agentVersion: null,
  agentVersions: [],
  replicas: [],
};

/**
 * A cluster's health as the console shows it: online, since when, agent
 * version(s); which replicas hold its tunnels is for admins only.
 */
function healthView(h: ClusterHealth | undefined, admin: boolean) {
  const { replicas, ...rest } = h ?? offline;
  return admin ? { ...rest, replicas } : rest;
}

async function myClusters(deps: ConsoleApiDeps, caller: ApiCaller, admin: boolean) {
  const state = deps.policy();
  const now = new Date();
  const who = { user: caller.user, kind: caller.kind, groups: caller.groups };
  const reached = [];
  for (const c of [...state.clusters.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (c.disabled) continue;
    const bindings = bindingsFor(state.snapshot, who, c, now);
    if (bindings.length === 0) continue;
    reached.push({ c, bindings });
  }
  const health = await deps.health(reached.map((r) => r.c.name));
  return {
    items: reached.map(({ c, bindings }) => ({
      name: c.name,
      labels: c.labels,
      health: healthView(health.get(c.name), admin),
      access: bindings.map((b) => ({
        binding: b.id,
        role: b.role,
        namespaces: b.namespaces,
        expiresAt: b.expiresAt ?? null,
      })),
    })),
  };
}

/** What a draft binding would reach if saved now; validation problems instead of a 422. */
async function bindingReach(deps: ConsoleApiDeps, draft: Record<string, unknown>) {
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
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const health = await deps.health(clusters.map((c) => c.name));
  const registered = new Set(state.clusters.keys());
  const unknownNames = (spec.clusters.names ?? []).filter((n) => !registered.has(n));
  return {
    problems: [],
    clusters: clusters.map((c) => ({
      name: c.name,
      labels: c.labels,
      disabled: c.disabled,
      online: health.get(c.name)?.online ?? false,
    })),
    // Named clusters that are not registered (yet): the binding will reach them once they are.
    unregistered: unknownNames,
    namespaces: spec.namespaces,
    clusterWide: spec.namespaces.length === 0,
    subjects: spec.subjects,
    role: spec.role,
    expiresAt: spec.expiresAt,
  };
}

interface ConsoleCall extends BaseCall {
  caller: ApiCaller;
  admin: boolean;
}

/** The console's routes, bound to how it resolves callers. */
export function consoleRoutes(deps: ConsoleApiDeps): Route[] {
  const admins = new Set(deps.adminGroups);
  const specs: RouteSpec<ConsoleCall>[] = [
    {
      path: '/api/v1/console/clusters',
      tag: 'console',
      methods: {
        GET: {
          access: 'caller',
          summary: 'The clusters the caller reaches now: labels, health and their access on each',
          handle: async (c) => {
            checkQuery(c.query, []);
            writeJson(c.res, 200, await myClusters(deps, c.caller, c.admin));
          },
        },
      },
    },
    {
      path: '/api/v1/console/binding-reach',
      tag: 'console',
      methods: {
        POST: {
          access: 'admin',
          summary: 'What a draft binding would reach if saved now (its problems instead of a 422)',
          body: smallObjectBody,
          handle: async (c) => {
            checkQuery(c.query, []);
            const draft = (await c.readBody()) as Record<string, unknown>;
            writeJson(c.res, 200, await bindingReach(deps, draft));
          },
        },
      },
    },
  ];
  return mount(specs, async (base, op) => {
    const caller = await deps.resolveCaller(base.req);
    const admin = caller.groups.some((g) => admins.has(g));
    requireAdmin(op, { admin, kind: caller.kind, name: caller.user });
    return { ...base, caller, admin };
  });
}

/**
 * The console's endpoints on their own (tests): every path under
 * `/api/v1/console/` is answered, other paths are left alone (false).
 */
export function createConsoleApiHandler(
  deps: ConsoleApiDeps,
): (req: AnyRequest, res: AnyResponse) => boolean {
  return createDispatcher(consoleRoutes(deps), {
    log: deps.log,
    owns: (path) => path.startsWith(prefix),
  });
}
