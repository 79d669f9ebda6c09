/**
 * The REST API's one route table and its one dispatcher.
 *
 * A feature folder describes its endpoints as `RouteSpec`s: a path pattern
 * with named parameters (`/api/v1/roles/{name}`) and, per method, who may
 * call it (`access`), what it reads (query parameters, a JSON body and its
 * limit) and a summary for the OpenAPI document. It then binds them with a
 * `Guard` — how that feature learns who is calling (bearer token, console
 * session with its CSRF checks) and what its handlers get as their call —
 * into `Route`s. The front serves every `/api/v1/` request from one table of
 * them; `openApiDocument` describes the same table.
 *
 * The dispatcher's order is the same for every endpoint:
 *   path (404) → method (405 with Allow) → caller (401; CSRF 403) → access
 *   (admin-only: 403) → the handler; every error is problem JSON.
 * Path and method come first: which endpoints exist and what methods they
 * take is public (GET /api/v1/openapi.json), so answering them before the
 * caller is known discloses nothing.
 */
import { randomUUID } from 'node:crypto';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { AnyRequest } from '../forward/forward.js';
import { defaultMaxBodyBytes, readJsonBody } from './json-body.js';
import { respondError, toKgError } from './respond-error.js';
import type { AnyResponse } from './response.js';

export const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'] as const;
export type Method = (typeof methods)[number];

/**
 * Who may call an operation:
 * - `public`: anyone, no credentials read;
 * - `caller`: any authenticated identity (bearer token, or the console's
 *   session cookie with its CSRF checks);
 * - `admin`: an authenticated identity in one of the admin groups.
 */
export type Access = 'public' | 'caller' | 'admin';

/** What an operation reads as its body, for the dispatcher and the document. */
export interface BodySpec {
  /** Accepted media types; default application/json. */
  types?: readonly string[];
  /** Largest body in bytes; default the mount's limit (1 MiB unless told). */
  maxBytes?: number;
  /** An empty body reads as `{}` (the body is optional). */
  optional?: boolean;
  /** Only a JSON object is accepted. */
  object?: boolean;
}

/**
 * The body of the identity, approvals and console endpoints: an optional
 * JSON object (empty reads as `{}`) of at most 64 KiB.
 */
export const smallObjectBody: BodySpec = { optional: true, object: true, maxBytes: 64 * 1024 };

/** What every handler gets from the dispatcher, before its feature adds the caller. */
export interface BaseCall {
  req: AnyRequest;
  res: AnyResponse;
  method: Method;
  /** The path without the query, exactly as received (never decoded). */
  path: string;
  query: URLSearchParams;
  /** The path parameters in pattern order, not decoded. */
  params: string[];
  log: Logger;
  /** The operation's JSON body (its `body` spec), read and parsed; undefined without one. */
  readBody(): Promise<unknown>;
}

/** Path parameter `i` of a call, percent-decoded once; a 400 when it does not decode. */
export function pathParam(call: { params: readonly string[] }, i: number): string {
  const raw = call.params[i] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new KgError(
      'KG_ERR_BAD_PATH',
      `cannot decode path segment ${JSON.stringify(raw)}: it is not valid percent-encoded text`,
    );
  }
}

export interface Operation<C> {
  access: Access;
  summary: string;
  /** Query parameters it takes (documentation; the handler checks them). */
  query?: readonly string[];
  /** A JSON body it reads. */
  body?: BodySpec;
  /** Response statuses other than the errors every endpoint may answer. */
  responses?: Readonly<Record<number, string>>;
  handle: (call: C) => Promise<void>;
}

export interface RouteSpec<C> {
  /** `/api/v1/roles/{name}`: literal segments and `{param}` segments. */
  path: string;
  /** The feature it belongs to (an OpenAPI tag). */
  tag: string;
  methods: Partial<Record<Method, Operation<C>>>;
}

/**
 * How a feature resolves its caller and builds its handlers' call: throws
 * 401 (or a CSRF 403) for anyone it does not accept, and must refuse a
 * non-admin when `op.access` is `admin` (`requireAdmin`). Not called for
 * `public` operations.
 */
export type Guard<C> = (base: BaseCall, op: Operation<C>) => Promise<C>;

/** A route bound to its guard: what the dispatcher runs. */
export interface Route {
  path: string;
  tag: string;
  pattern: RegExp;
  paramNames: string[];
  ops: Partial<Record<Method, OperationInfo & { run: (base: BaseCall) => Promise<void> }>>;
}

export type OperationInfo = Omit<Operation<unknown>, 'handle'>;

const paramSegment = /^\{([a-zA-Z][a-zA-Z0-9]*)\}$/;

/** The pattern of a route path: `{x}` matches one non-empty segment without `/`. */
function compile(path: string): { pattern: RegExp; paramNames: string[] } {
  const names: string[] = [];
  const parts = path.split('/').map((seg) => {
    const m = paramSegment.exec(seg);
    if (m) {
      names.push(m[1]!);
      return '([^/]+)';
    }
    if (!/^[a-z0-9._-]*$/.test(seg)) throw new Error(`route path segment "${seg}" in ${path}`);
    return seg.replace(/\./g, '\\.');
  });
  return { pattern: new RegExp(`^${parts.join('/')}$`), paramNames: names };
}

/** Bind a feature's route specs to its guard. */
export function mount<C>(specs: readonly RouteSpec<C>[], guard: Guard<C>): Route[] {
  return specs.map((spec) => {
    const ops: Route['ops'] = {};
    for (const [method, op] of Object.entries(spec.methods) as [Method, Operation<C>][]) {
      const { handle, ...info } = op;
      ops[method] = {
        ...info,
        run: async (base) =>
          handle(op.access === 'public' ? (base as unknown as C) : await guard(base, op)),
      };
    }
    return { path: spec.path, tag: spec.tag, ...compile(spec.path), ops };
  });
}

/** The one refusal of a non-admin. */
export function notAdmin(kind: 'user' | 'robot', name: string): KgError {
  return new KgError(
    'KG_ERR_FORBIDDEN',
    `${kind === 'robot' ? 'Robot' : 'User'} "${name}" is not a kubegate admin: this needs membership of an admin group`,
  );
}

/** Throw `notAdmin` when `op` is admin-only and the caller is not an admin. */
export function requireAdmin(
  op: { access: Access },
  caller: { admin: boolean; kind: 'user' | 'robot'; name: string },
): void {
  if (op.access === 'admin' && !caller.admin) throw notAdmin(caller.kind, caller.name);
}

export interface DispatchOptions {
  log: Logger;
  /** Largest JSON body for operations whose body names no limit; default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Which unmatched paths this dispatcher answers (404) rather than leaving
   * alone (`false` from the handler): by default every path it is given.
   */
  owns?: (path: string) => boolean;
  /** Before the 404 of an unmatched path it owns (e.g. check the caller first). */
  beforeNotFound?: (req: AnyRequest, path: string) => Promise<void>;
}

export type Dispatcher = ((req: AnyRequest, res: AnyResponse) => boolean) & {
  routes: readonly Route[];
};

function find(
  routes: readonly Route[],
  path: string,
): { route: Route; params: string[] } | undefined {
  for (const route of routes) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  return undefined;
}

/**
 * The dispatcher over `routes`. It answers true when it took the request
 * (every outcome is then a response) and false, having written nothing, for
 * a path it neither serves nor owns.
 */
export function createDispatcher(routes: readonly Route[], opts: DispatchOptions): Dispatcher {
  const seen = new Set<string>();
  for (const r of routes) {
    if (seen.has(r.pattern.source)) throw new Error(`two routes for ${r.path}`);
    seen.add(r.pattern.source);
  }
  const apiLog = opts.log.child({ part: 'api' });
  const dispatch = (req: AnyRequest, res: AnyResponse): boolean => {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q >= 0 ? target.slice(0, q) : target;
    const found = find(routes, path);
    if (!found && !(opts.owns?.(path) ?? true)) return false;
    const method = req.method ?? 'GET';
    const log = apiLog.child({ requestId: randomUUID() });
    const started = Date.now();
    const run = async () => {
      if (!found) {
        await opts.beforeNotFound?.(req, path);
        throw new KgError('KG_ERR_NOT_FOUND', `no such API endpoint: ${path}`);
      }
      // Own properties only: an HTTP/2 `:method` may be any token, `constructor` included.
      const op = Object.hasOwn(found.route.ops, method)
        ? found.route.ops[method as Method]
        : undefined;
      if (!op) {
        res.setHeader('allow', Object.keys(found.route.ops).join(', '));
        throw new KgError('KG_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}`);
      }
      const body = op.body;
      await op.run({
        req,
        res,
        method: method as Method,
        path,
        query: new URLSearchParams(q >= 0 ? target.slice(q + 1) : ''),
        params: found.params,
        log,
        readBody: async () =>
          body === undefined
            ? undefined
            : readJsonBody(req, res, {
                maxBytes: body.maxBytes ?? opts.maxBodyBytes ?? defaultMaxBodyBytes,
                ...(body.types ? { types: body.types } : {}),
                emptyIsObject: body.optional ?? false,
                object: body.object ?? false,
              }),
      });
      log.debug(
        { method, path, status: res.statusCode, ms: Date.now() - started },
        'api request done',
      );
    };
    run().catch((err: unknown) => {
      const e = toKgError(err);
      // RFC 9110 §11.6.1: a 401 names the scheme it wants.
      if (e.status === 401 && !res.headersSent)
        res.setHeader('www-authenticate', 'Bearer realm="kubegate"');
      if (e.status < 500) log.debug({ method, path, code: e.code }, 'api request refused');
      // A refused request's unread body is drained and dropped, so an HTTP/2
      // stream is not left half-open with its flow-control window full.
      if (!req.complete) req.resume();
      respondError(res, err, path, log);
    });
    return true;
  };
  return Object.assign(dispatch, { routes });
}
