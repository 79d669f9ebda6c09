/**
 * The proxy's REST route table built without a database, for tests of the
 * dispatcher and the OpenAPI document: every feature's routes, bound to
 * callers named by an `x-test-caller` header (`admin`, `dev`; anything else
 * is a 401). Handlers that would reach the database fail with a 503, so a
 * test sees which requests got as far as a handler.
 */
import { Writable } from 'node:stream';
import { KgError } from '../../common/errors.js';
import { createLogger } from '../../common/log.js';
import { adminApiRoutes, type ApiCaller } from '../../proxy/api/router.js';
import type { ApiCall } from '../../proxy/api/types.js';
import { approvalsRoutes } from '../../proxy/approvals/api.js';
import { auditRoutes } from '../../proxy/audit/api.js';
import { consoleRoutes } from '../../proxy/console/api.js';
import type { AnyRequest } from '../../proxy/forward/forward.js';
import { createRestApi } from '../../proxy/http/openapi.js';
import { mount, requireAdmin, type Dispatcher, type Route } from '../../proxy/http/routes.js';
import { adminRoutes } from '../../proxy/identity/admin-routes.js';
import type { ApiCall as IdentityCall } from '../../proxy/identity/routes.js';
import { selfRoutes } from '../../proxy/identity/self-routes.js';
import type { PolicyState } from '../../proxy/authz/policy-store.js';
import { recordingRoutes } from '../../proxy/recording/api.js';
import { RecordingAccess } from '../../proxy/recording/access.js';
import { runbooksRoutes } from '../../proxy/runbooks/api.js';
import { namespacesRoutes } from '../../proxy/namespaces/api.js';
import { terminalRoutes } from '../../proxy/console/terminal.js';

const callers: Record<string, ApiCaller> = {
  admin: { user: 'ada', kind: 'user', groups: ['admins'], actor: 'user:ada' },
  dev: { user: 'dev', kind: 'user', groups: ['developers'], actor: 'user:dev' },
};

async function who(req: AnyRequest): Promise<ApiCaller> {
  const c = callers[String(req.headers['x-test-caller'])];
  if (!c) throw new KgError('KG_ERR_UNAUTHENTICATED', 'no test caller');
  return c;
}

const noDatabase = () =>
  new KgError('KG_ERR_UNAVAILABLE', 'no database in this test', { retryAfter: 1 });

/** A pool whose every query is refused (503). */
const pool = {
  query: async () => {
    throw noDatabase();
  },
  connect: async () => {
    throw noDatabase();
  },
} as never;

const emptyPolicy: PolicyState = {
  snapshot: { roles: new Map(), bindings: [] },
  clusters: new Map(),
  loadedAt: new Date(),
};

export const quietLog = createLogger({
  name: 'test',
  destination: new Writable({ write: (_c, _e, cb) => cb() }),
});

/** Every feature's routes, as the proxy assembles them (proxy/app.ts), without the document. */
export function featureRoutes(): Route[] {
  const identity = mount<IdentityCall>([...selfRoutes, ...adminRoutes], async (base, op) => {
    const c = await who(base.req);
    const caller = {
      via: 'token' as const,
      kind: c.kind,
      name: c.user,
      groups: c.groups,
      admin: c.groups.includes('admins'),
      userId: undefined,
      robotId: undefined,
      tokenId: undefined,
      tokenExpiresAt: undefined,
      session: undefined,
      actor: c.actor,
    };
    requireAdmin(op, caller);
    return { ...base, caller, deps: { pool } as never };
  });
  const admin = adminApiRoutes({
    pool,
    tokens: {} as never,
    adminGroups: ['admins'],
    authenticate: who,
    log: quietLog,
    bootstrap: {} as ApiCall['deps']['bootstrap'],
  });
  const consoleApi = consoleRoutes({
    resolveCaller: who,
    adminGroups: ['admins'],
    policy: () => emptyPolicy,
    health: async () => new Map(),
    log: quietLog,
  });
  const audit = auditRoutes({
    pool,
    tokens: {} as never,
    adminGroups: ['admins'],
    authenticate: who,
    log: quietLog,
  });
  const approvals = approvalsRoutes({
    pool,
    tokens: {} as never,
    settings: {} as never,
    requests: {} as never,
    masterKey: Buffer.alloc(32),
    log: quietLog,
  });
  const recordings = recordingRoutes({
    pool,
    storage: {} as never,
    adminGroups: ['admins'],
    access: new RecordingAccess(['auditors'], () => emptyPolicy),
    authenticate: who,
    log: quietLog,
  });
  const runbooks = runbooksRoutes({
    pool,
    tokens: {} as never,
    settings: { publicUrl: 'https://kubegate.test' } as never,
    policy: () => emptyPolicy,
    changed: () => undefined,
    log: quietLog,
  });
  const namespaces = namespacesRoutes({
    pool,
    tokens: {} as never,
    settings: { publicUrl: 'https://kubegate.test' } as never,
    policy: () => emptyPolicy,
    changed: () => undefined,
    log: quietLog,
  });
  const terminal = terminalRoutes({
    resolveCaller: who,
    policy: () => emptyPolicy,
    health: async () => new Map(),
    readAs: async () => {
      throw noDatabase();
    },
  });
  return [
    ...identity,
    ...admin,
    ...consoleApi,
    ...terminal,
    ...audit,
    ...approvals,
    ...recordings,
    ...runbooks,
    ...namespaces,
  ];
}

/** The dispatcher the front uses over the whole table, the document included. */
export function testApi(): Dispatcher {
  return createRestApi(featureRoutes(), quietLog);
}
