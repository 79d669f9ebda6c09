/**
 * The approvals REST API, for people (requesters and approvers, with a
 * bearer token or a console session + CSRF) and admins:
 *
 *   GET  /api/v1/approvals?view=mine|approvable|all&status=&kind=&limit=&continue=
 *   POST /api/v1/approvals                     ask for access {role, clusters, namespaces, duration, reason}
 *   GET  /api/v1/approvals/{id}                one request, with its votes (and diff, for actions)
 *   POST /api/v1/approvals/{id}/approve        {reason}
 *   POST /api/v1/approvals/{id}/deny           {reason} (required)
 *   POST /api/v1/approvals/{id}/withdraw       {reason}
 *   GET  /api/v1/approval-policies[/{name}]    anyone signed in (who approves what is no secret)
 *   POST /api/v1/approval-policies, PUT|DELETE /api/v1/approval-policies/{name}   admins
 *   GET|POST /api/v1/approval-webhooks, DELETE /api/v1/approval-webhooks/{id}      admins
 *
 * Errors are problem JSON. `handle` answers false for paths that are not
 * its own, so the front can offer the request to the next API.
 */
import { randomUUID } from 'node:crypto';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { TokenStore } from '../authn/token-store.js';
import type { Pool } from '../db/pool.js';
import type { AnyRequest } from '../forward/forward.js';
import { checkBrowserRequest, resolveCaller, type Caller } from '../identity/caller.js';
import { readJsonObject, respondApiError, sendJson, sendNoContent } from '../identity/http.js';
import type { IdentitySettings } from '../identity/settings.js';
import type { AnyResponse } from '../http/respond-error.js';
import { pageParams } from '../api/params.js';
import { createPolicy, deletePolicy, getPolicy, listPolicies, replacePolicy } from './policies.js';
import { policyView } from './policy-spec.js';
import { statuses, type Status } from './records.js';
import type { ApprovalRequests, Actor, ListFilter } from './requests.js';
import { createWebhook, deleteWebhook, listWebhooks } from './webhooks.js';

export interface ApprovalsApiDeps {
  pool: Pool;
  tokens: TokenStore;
  settings: IdentitySettings;
  requests: ApprovalRequests;
  masterKey: Buffer;
  log: Logger;
}

interface Call {
  req: AnyRequest;
  res: AnyResponse;
  params: string[];
  query: URLSearchParams;
  caller: Caller;
  actor: Actor;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
interface Route {
  pattern: RegExp;
  admin?: Partial<Record<Method, true>>;
  methods: Partial<Record<Method, (d: ApprovalsApiDeps, c: Call) => Promise<void>>>;
}

function onlyQuery(q: URLSearchParams, allowed: string[]): void {
  const bad = [...new Set(q.keys())].filter((k) => !allowed.includes(k));
  if (bad.length)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `unknown query parameter(s): ${bad.join(', ')}${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`,
    );
}

function oneOf<T extends string>(
  q: URLSearchParams,
  name: string,
  values: readonly T[],
): T | undefined {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!(values as readonly string[]).includes(v))
    throw new KgError('KG_ERR_BAD_REQUEST', `${name} must be one of ${values.join(', ')}`);
  return v as T;
}

/** Optional `If-Match: "N"` on policy changes (optimistic concurrency). */
function ifMatch(req: AnyRequest): number | undefined {
  const h = req.headers['if-match'];
  if (h === undefined) return undefined;
  const m = /^"(\d{1,9})"$/.exec(String(h).trim());
  if (!m)
    throw new KgError('KG_ERR_BAD_REQUEST', 'If-Match must be one strong entity tag such as "3"');
  return Number(m[1]);
}

const routes: readonly Route[] = [
  {
    pattern: /^\/api\/v1\/approvals$/,
    methods: {
      GET: async (d, c) => {
        const page = pageParams(c.query, ['view', 'status', 'kind']);
        const f: ListFilter = {
          view: oneOf(c.query, 'view', ['mine', 'approvable', 'all'] as const) ?? 'mine',
          ...page,
        };
        const status = oneOf<Status>(c.query, 'status', statuses);
        const kind = oneOf(c.query, 'kind', ['access', 'action'] as const);
        if (status) f.status = status;
        if (kind) f.kind = kind;
        sendJson(c.res, 200, await d.requests.list(c.actor, f));
      },
      POST: async (d, c) => {
        onlyQuery(c.query, []);
        const created = await d.requests.createAccess(c.actor, await readJsonObject(c.req));
        c.res.setHeader('location', `/api/v1/approvals/${created.id}`);
        sendJson(c.res, 201, created);
      },
    },
  },
  {
    pattern: /^\/api\/v1\/approvals\/([^/]+)$/,
    methods: {
      GET: async (d, c) => {
        onlyQuery(c.query, []);
        sendJson(c.res, 200, await d.requests.get(c.actor, c.params[0]!));
      },
    },
  },
  {
    pattern: /^\/api\/v1\/approvals\/([^/]+)\/(approve|deny|withdraw)$/,
    methods: {
      POST: async (d, c) => {
        onlyQuery(c.query, []);
        const body = await readJsonObject(c.req);
        const [id, what] = c.params as [string, 'approve' | 'deny' | 'withdraw'];
        const r =
          what === 'withdraw'
            ? await d.requests.withdraw(c.actor, id, body)
            : await d.requests.decide(c.actor, id, what, body);
        sendJson(c.res, 200, r);
      },
    },
  },
  {
    pattern: /^\/api\/v1\/approval-policies$/,
    admin: { POST: true },
    methods: {
      GET: async (d, c) => {
        onlyQuery(c.query, ['kind']);
        const kind = oneOf(c.query, 'kind', ['access', 'gate'] as const);
        const items = await listPolicies(d.pool, kind);
        sendJson(c.res, 200, {
          items: items.map((p) => ({ ...policyView(p.policy), version: p.version })),
        });
      },
      POST: async (d, c) => {
        onlyQuery(c.query, []);
        const p = await createPolicy(d.pool, await readJsonObject(c.req), c.caller.actor);
        c.res.setHeader('etag', `"${p.version}"`);
        c.res.setHeader('location', `/api/v1/approval-policies/${p.policy.name}`);
        sendJson(c.res, 201, { ...policyView(p.policy), version: p.version });
      },
    },
  },
  {
    pattern: /^\/api\/v1\/approval-policies\/([^/]+)$/,
    admin: { PUT: true, DELETE: true },
    methods: {
      GET: async (d, c) => {
        const p = await getPolicy(d.pool, c.params[0]!);
        if (!p)
          throw new KgError('KG_ERR_NOT_FOUND', `approval policy "${c.params[0]}" does not exist`);
        c.res.setHeader('etag', `"${p.version}"`);
        sendJson(c.res, 200, { ...policyView(p.policy), version: p.version });
      },
      PUT: async (d, c) => {
        const body = await readJsonObject(c.req);
        const p = await replacePolicy(d.pool, c.params[0]!, body, c.caller.actor, ifMatch(c.req));
        c.res.setHeader('etag', `"${p.version}"`);
        sendJson(c.res, 200, { ...policyView(p.policy), version: p.version });
      },
      DELETE: async (d, c) => {
        await deletePolicy(d.pool, c.params[0]!, c.caller.actor, ifMatch(c.req));
        sendNoContent(c.res);
      },
    },
  },
  {
    pattern: /^\/api\/v1\/approval-webhooks$/,
    admin: { GET: true, POST: true },
    methods: {
      GET: async (d, c) => sendJson(c.res, 200, { items: await listWebhooks(d.pool) }),
      POST: async (d, c) => {
        const { webhook, secret } = await createWebhook(
          d.pool,
          d.masterKey,
          await readJsonObject(c.req),
          c.caller.actor,
        );
        // The only time the secret is shown: the receiver needs it to verify signatures.
        sendJson(c.res, 201, { ...webhook, secret });
      },
    },
  },
  {
    pattern: /^\/api\/v1\/approval-webhooks\/([^/]+)$/,
    admin: { DELETE: true },
    methods: {
      DELETE: async (d, c) => {
        await deleteWebhook(d.pool, c.params[0]!, c.caller.actor);
        sendNoContent(c.res);
      },
    },
  },
];

/** The handler; false (nothing written) for paths that are not the approvals API's. */
export function createApprovalsApi(
  deps: ApprovalsApiDeps,
): (req: AnyRequest, res: AnyResponse) => boolean {
  return (req, res) => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q >= 0 ? target.slice(0, q) : target;
    let found: { route: Route; params: string[] } | undefined;
    for (const route of routes) {
      const m = route.pattern.exec(path);
      if (m) {
        found = { route, params: m.slice(1) };
        break;
      }
    }
    if (!found) return false;
    const { route, params } = found;
    const log = deps.log.child({ requestId: randomUUID() });
    const run = async () => {
      const caller = await resolveCaller(deps, req);
      checkBrowserRequest(req, caller, deps.settings);
      const method = (req.method ?? 'GET') as Method;
      const fn = Object.hasOwn(route.methods, method) ? route.methods[method] : undefined;
      if (!fn) {
        res.setHeader('allow', Object.keys(route.methods).join(', '));
        throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
      }
      if (route.admin?.[method] && !caller.admin)
        throw new KgError(
          'KG_ERR_FORBIDDEN',
          `${caller.actor} is not a kubegate admin: this needs membership of an admin group`,
        );
      const ua = req.headers['user-agent'];
      await fn(deps, {
        req,
        res,
        params,
        query: new URLSearchParams(q >= 0 ? target.slice(q + 1) : ''),
        caller,
        actor: {
          name: caller.name,
          kind: caller.kind,
          groups: caller.groups,
          actor: caller.actor,
          admin: caller.admin,
          sourceIp: req.socket.remoteAddress ?? '',
          userAgent: typeof ua === 'string' ? ua : '',
        },
      });
    };
    run().catch((err: unknown) => {
      if (!req.complete) req.resume();
      respondApiError(res, err, path, log);
    });
    return true;
  };
}
