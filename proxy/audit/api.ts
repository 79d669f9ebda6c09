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
import { respondError, type AnyResponse } from '../http/respond-error.js';
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

/**
 * The handler for the audit endpoints. Returns false, having done nothing,
 * when the path is not one of them; true when it took the request (every
 * outcome is then a response, errors as problem JSON).
 */
export function createAuditApiHandler(
  deps: AuditApiDeps,
): (req: AnyRequest, res: AnyResponse) => boolean {
  const admins = new Set(deps.adminGroups);
  const log = deps.log.child({ part: 'audit-api' });
  return (req, res) => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q >= 0 ? target.slice(0, q) : target;
    if (path !== listPath && path !== exportPath) return false;
    const query = new URLSearchParams(q >= 0 ? target.slice(q + 1) : '');
    serve(deps, admins, req, res, path, query).catch((err: unknown) => {
      const e = err instanceof KgError ? err : undefined;
      if (e?.status === 401 && !res.headersSent)
        res.setHeader('www-authenticate', 'Bearer realm="kubegate"');
      respondError(res, err, path, log);
    });
    return true;
  };
}

async function serve(
  deps: AuditApiDeps,
  admins: ReadonlySet<string>,
  req: AnyRequest,
  res: AnyResponse,
  path: string,
  query: URLSearchParams,
): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
  }
  const identity = deps.authenticate
    ? await deps.authenticate(req)
    : await authenticate(deps.tokens, req.headers.authorization, req.socket.remoteAddress ?? '');
  const unknown = [...new Set(query.keys())].filter((k) => !known.has(k));
  if (unknown.length > 0)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `unknown query parameter(s) ${unknown.join(', ')}; filters are ${filterNames.join(', ')}`,
    );
  const filter: AuditFilter = parseFilter((n) => query.get(n) ?? undefined);
  if (!identity.groups.some((g) => admins.has(g))) {
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
  const write = async (text: string) => {
    if (!(res as NodeJS.WritableStream).write(text)) {
      await new Promise<void>((resolve) => {
        const go = () => {
          res.off('drain', go);
          res.off('close', go);
          resolve();
        };
        res.on('drain', go);
        res.on('close', go);
      });
    }
  };
  let page = first;
  while (!page.done && !closed) {
    await write(
      page.value.map((e) => JSON.stringify(strictKube ? toKubeEvent(e) : e) + '\n').join(''),
    );
    page = await pages.next();
  }
  if (!closed) res.end();
  else await pages.return(undefined);
}
