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
 * The routes join the front's one table (proxy/http/routes.ts).
 */
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { TokenStore } from '../authn/token-store.js';
import type { Pool } from '../db/pool.js';
import type { AnyRequest } from '../forward/forward.js';
import { guardCaller, type Caller } from '../identity/caller.js';
import type { IdentitySettings } from '../identity/settings.js';
import { writeJson, writeNoContent } from '../http/json-body.js';
import {
  mount,
  smallObjectBody,
  type BaseCall,
  type Route,
  type RouteSpec,
} from '../http/routes.js';
import { checkQuery, oneOf, pageParams } from '../api/params.js';
import { createPolicy, deletePolicy, getPolicy, listPolicies, replacePolicy } from './policies.js';
import { policyView, type ApprovalPolicy } from './policy-spec.js';
import { requestKinds, statuses, type Status } from './records.js';
import type { ApprovalRequests } from './requests.js';
import type { Actor, ListFilter } from './records.js';
import { createWebhook, deleteWebhook, listWebhooks } from './webhooks.js';

export interface ApprovalsApiDeps {
  pool: Pool;
  tokens: TokenStore;
  settings: IdentitySettings;
  requests: ApprovalRequests;
  masterKey: Buffer;
  log: Logger;
}

interface Call extends BaseCall {
  caller: Caller;
  actor: Actor;
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

/** An approval policy as the API shows it, with the version to send back in If-Match. */
const versionedPolicy = (p: { policy: ApprovalPolicy; version: number }) => ({
  ...policyView(p.policy),
  version: p.version,
});

/** One policy with its ETag; a new one (201) also with its Location. */
function writePolicy(c: BaseCall, p: { policy: ApprovalPolicy; version: number }, status = 200) {
  writeJson(c.res, status, versionedPolicy(p), {
    etag: `"${p.version}"`,
    ...(status === 201 ? { location: `/api/v1/approval-policies/${p.policy.name}` } : {}),
  });
}

/** The approvals endpoints, bound to identity's caller resolution (bearer, or session + CSRF). */
export function approvalsRoutes(d: ApprovalsApiDeps): Route[] {
  const specs: RouteSpec<Call>[] = [
    {
      path: '/api/v1/approvals',
      tag: 'approvals',
      methods: {
        GET: {
          access: 'caller',
          summary: 'Approval requests: mine, the ones I may approve, or (admins) all',
          query: ['view', 'status', 'kind', 'limit', 'continue'],
          handle: async (c) => {
            const page = pageParams(c.query, ['view', 'status', 'kind']);
            const f: ListFilter = {
              view: oneOf(c.query, 'view', ['mine', 'approvable', 'all'] as const) ?? 'mine',
              ...page,
            };
            const status = oneOf<Status>(c.query, 'status', statuses);
            const kind = oneOf(c.query, 'kind', requestKinds);
            if (status) f.status = status;
            if (kind) f.kind = kind;
            writeJson(c.res, 200, await d.requests.list(c.actor, f));
          },
        },
        POST: {
          access: 'caller',
          summary: 'Ask for access {role, clusters, namespaces, duration, reason}',
          body: smallObjectBody,
          responses: { 201: 'the new request' },
          handle: async (c) => {
            checkQuery(c.query, []);
            const created = await d.requests.createAccess(c.actor, await objectBody(c));
            writeJson(c.res, 201, created, { location: `/api/v1/approvals/${created.id}` });
          },
        },
      },
    },
    {
      path: '/api/v1/approvals/{id}',
      tag: 'approvals',
      methods: {
        GET: {
          access: 'caller',
          summary: 'One request, with its votes (and diff, for actions)',
          handle: async (c) => {
            checkQuery(c.query, []);
            writeJson(c.res, 200, await d.requests.get(c.actor, c.params[0]!));
          },
        },
      },
    },
    ...(['approve', 'deny', 'withdraw'] as const).map((what): RouteSpec<Call> => ({
      path: `/api/v1/approvals/{id}/${what}`,
      tag: 'approvals',
      methods: {
        POST: {
          access: 'caller',
          summary:
            what === 'deny'
              ? 'Deny a request {reason} (required)'
              : `${what === 'approve' ? 'Approve' : 'Withdraw'} a request {reason}`,
          body: smallObjectBody,
          handle: async (c) => {
            checkQuery(c.query, []);
            const body = await objectBody(c);
            const id = c.params[0]!;
            const r =
              what === 'withdraw'
                ? await d.requests.withdraw(c.actor, id, body)
                : await d.requests.decide(c.actor, id, what, body);
            writeJson(c.res, 200, r);
          },
        },
      },
    })),
    {
      path: '/api/v1/approval-policies',
      tag: 'approvals',
      methods: {
        GET: {
          access: 'caller',
          summary: 'Approval policies (who approves what is no secret)',
          query: ['kind'],
          handle: async (c) => {
            checkQuery(c.query, ['kind']);
            const kind = oneOf(c.query, 'kind', ['access', 'gate'] as const);
            const items = await listPolicies(d.pool, kind);
            writeJson(c.res, 200, {
              items: items.map(versionedPolicy),
            });
          },
        },
        POST: {
          access: 'admin',
          summary: 'Create an approval policy',
          body: smallObjectBody,
          responses: { 201: 'the new policy' },
          handle: async (c) => {
            checkQuery(c.query, []);
            const p = await createPolicy(d.pool, await objectBody(c), c.caller.actor);
            writePolicy(c, p, 201);
          },
        },
      },
    },
    {
      path: '/api/v1/approval-policies/{name}',
      tag: 'approvals',
      methods: {
        GET: {
          access: 'caller',
          summary: 'One approval policy',
          handle: async (c) => {
            const p = await getPolicy(d.pool, c.params[0]!);
            if (!p)
              throw new KgError(
                'KG_ERR_NOT_FOUND',
                `approval policy "${c.params[0]}" does not exist`,
              );
            writePolicy(c, p);
          },
        },
        PUT: {
          access: 'admin',
          summary: 'Replace an approval policy (optional If-Match)',
          body: smallObjectBody,
          handle: async (c) => {
            const body = await objectBody(c);
            const p = await replacePolicy(
              d.pool,
              c.params[0]!,
              body,
              c.caller.actor,
              ifMatch(c.req),
            );
            writePolicy(c, p);
          },
        },
        DELETE: {
          access: 'admin',
          summary: 'Delete an approval policy (optional If-Match)',
          responses: { 204: 'deleted' },
          handle: async (c) => {
            await deletePolicy(d.pool, c.params[0]!, c.caller.actor, ifMatch(c.req));
            writeNoContent(c.res);
          },
        },
      },
    },
    {
      path: '/api/v1/approval-webhooks',
      tag: 'approvals',
      methods: {
        GET: {
          access: 'admin',
          summary: 'Approval webhooks',
          handle: async (c) => writeJson(c.res, 200, { items: await listWebhooks(d.pool) }),
        },
        POST: {
          access: 'admin',
          summary: 'Create an approval webhook (its signing secret is shown once)',
          body: smallObjectBody,
          responses: { 201: 'the new webhook with its secret' },
          handle: async (c) => {
            const { webhook, secret } = await createWebhook(
              d.pool,
              d.masterKey,
              await objectBody(c),
              c.caller.actor,
            );
            // The only time the secret is shown: the receiver needs it to verify signatures.
            writeJson(c.res, 201, { ...webhook, secret });
          },
        },
      },
    },
    {
      path: '/api/v1/approval-webhooks/{id}',
      tag: 'approvals',
      methods: {
        DELETE: {
          access: 'admin',
          summary: 'Delete an approval webhook',
          responses: { 204: 'deleted' },
          handle: async (c) => {
            await deleteWebhook(d.pool, c.params[0]!, c.caller.actor);
            writeNoContent(c.res);
          },
        },
      },
    },
  ];
  return mount(specs, async (base, op) => {
    const req = base.req;
    const caller = await guardCaller(d, req, op);
    const ua = req.headers['user-agent'];
    return {
      ...base,
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
    };
  });
}

async function objectBody(c: Call): Promise<Record<string, unknown>> {
  return (await c.readBody()) as Record<string, unknown>;
}
