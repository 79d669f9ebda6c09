/**
 * The audit log over REST:
 *
 *   GET /api/v1/audit          a page of events, newest first: `{items, continue}`
 *   GET /api/v1/audit/export   every matching event as NDJSON (one event per line)
 *
 * Filters: from, to (RFC 3339 or a duration ago, e.g. `1h`), since (= from),
 * user, group, cluster, namespace, resource, verb, decision, code (403 or
 * 4xx), stage, auditID, source; `limit` and `continue` for pages; on export,
 * `format=kube` writes strict audit.k8s.io/v1 events (kubegate fields as
 * annotations).
 *
 * A bearer token, or the console's session (deps.authenticate). Admins (a
 * group in config `adminGroups`) see every event; anyone else sees only
 * their own, and asking for another user is 403.
 */
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { authenticate } from '../authn/authenticate.js';
import type { TokenStore } from '../authn/token-store.js';
import type { AnyRequest } from '../forward/forward.js';
import { writeDrained, type AnyResponse } from '../http/response.js';
import {
  createDispatcher,
  mount,
  type BaseCall,
  type Operation,
  type Route,
  type RouteSpec,
} from '../http/routes.js';
import type { Queryable } from '../db/query.js';
import { toKubeEvent } from './event.js';
import { exportEvents, filterNames, parseFilter, queryEvents, type AuditFilter } from './query.js';

export interface AuditApiDeps {
  pool: Queryable;
  tokens: TokenStore;
  /** Members of these groups read every event; empty = nobody. */
  adminGroups: readonly string[];
  log: Logger;
  /**
   * Resolve the caller or throw (401); default: the bearer token. The proxy
   * passes one that also takes the console's session cookie (with its CSRF
   * checks, proxy/console/caller.ts).
   */
  authenticate?: (
    req: AnyRequest,
  ) => Promise<{ user: string; kind: 'user' | 'robot'; groups: string[] }>;
}

const listPath = '/api/v1/audit';
const exportPath = '/api/v1/audit/export';
const known = new Set<string>([...filterNames, 'limit', 'continue', 'format']);

interface AuditCall extends BaseCall {
  identity: { user: string; kind: 'user' | 'robot'; groups: string[] };
  admin: boolean;
}

/** The audit endpoints, bound to how they resolve callers. */
export function auditRoutes(deps: AuditApiDeps): Route[] {
  const admins = new Set(deps.adminGroups);
  const query = [...known];
  const list: Operation<AuditCall> = {
    access: 'caller',
    summary: 'A page of audit events, newest first (admins: every event; others: their own)',
    query,
    handle: (c) => serve(deps, c),
  };
  const exporter: Operation<AuditCall> = {
    access: 'caller',
    summary: 'Every matching audit event as NDJSON (format=kube: strict audit.k8s.io/v1)',
    query,
    handle: (c) => serve(deps, c),
  };
  const specs: RouteSpec<AuditCall>[] = [
    { path: listPath, tag: 'audit', methods: { GET: list, HEAD: list } },
    { path: exportPath, tag: 'audit', methods: { GET: exporter, HEAD: exporter } },
  ];
  return mount(specs, async (base) => {
    const req = base.req;
    const identity = deps.authenticate
      ? await deps.authenticate(req)
      : await authenticate(deps.tokens, req.headers.authorization, req.socket.remoteAddress ?? '');
    return { ...base, identity, admin: identity.groups.some((g) => admins.has(g)) };
  });
}

/**
 * The audit endpoints on their own (tests). Returns false, having done
 * nothing, when the path is not one of them.
 */
export function createAuditApiHandler(
  deps: AuditApiDeps,
): (req: AnyRequest, res: AnyResponse) => boolean {
  return createDispatcher(auditRoutes(deps), { log: deps.log, owns: () => false });
}

async function serve(deps: AuditApiDeps, c: AuditCall): Promise<void> {
  const { res, path, query, method, identity } = c;
  const unknown = [...new Set(query.keys())].filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `unknown query parameter(s) ${unknown.join(', ')}; filters are ${filterNames.join(', ')}`,
    );
  const filter: AuditFilter = parseFilter((n) => query.get(n) ?? undefined);
  if (!c.admin) {
    // Not an admin: their own events only (never another identity of the same name).
    if (filter.user !== undefined && filter.user !== identity.user)
      throw new KgError(
        'KG_ERR_FORBIDDEN',
        `${identity.kind === 'robot' ? 'Robot' : 'User'} "${identity.user}" may read only their own audit events`,
      );
    filter.user = identity.user;
    filter.userKind = identity.kind;
  }
  if (path === listPath) {
    const limitText = query.get('limit');
    const limit = limitText === null ? 100 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new KgError('KG_ERR_BAD_REQUEST', 'limit must be a whole number from 1 to 1000');
    const page = await queryEvents(deps.pool, filter, {
      limit,
      continue: query.get('continue') ?? undefined,
    });
    const body = JSON.stringify(page);
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    if (method === 'HEAD') res.end();
    else res.end(body);
    return;
  }
  const format = query.get('format') ?? 'kubegate';
  if (format !== 'kubegate' && format !== 'kube')
    throw new KgError('KG_ERR_BAD_REQUEST', 'format must be kubegate or kube');
  await streamExport(deps, res, filter, format === 'kube', method === 'HEAD');
}

async function streamExport(
  deps: AuditApiDeps,
  res: AnyResponse,
  filter: AuditFilter,
  strictKube: boolean,
  headOnly: boolean,
): Promise<void> {
  const pages = exportEvents(deps.pool, filter);
  // The first page is read before the status is sent, so a database failure is still a clean 503.
  const first = await pages.next();
  res.writeHead(200, {
    'content-type': 'application/x-ndjson',
    'cache-control': 'no-store',
    'content-disposition': 'attachment; filename="kubegate-audit.ndjson"',
  });
  if (headOnly) {
    res.end();
    return;
  }
  let closed = false;
  res.once('close', () => (closed = true));
  let page = first;
  while (!page.done && !closed) {
    await writeDrained(
      res,
      page.value.map((e) => JSON.stringify(strictKube ? toKubeEvent(e) : e) + '\n').join(''),
    );
    page = await pages.next();
  }
  if (!closed) res.end();
  else await pages.return(undefined);
}
