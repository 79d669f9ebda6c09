/**
 * The agent's control channel: one table of the messages the proxy sends on
 * a tunnel — path, method, how the body is checked, and what the agent does.
 * The stream classifier takes a stream as a control message only when the
 * table has its path and method; the dispatcher answers from the same entry.
 */
import type * as http2 from 'node:http2';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { isSubjectKind, subjectKinds } from '../../common/identity-key.js';
import {
  controlPrefix,
  goawayPath,
  grantsPath,
  hdrControl,
  hdrControlValue,
  hdrIdentity,
  hdrReplica,
  hdrReplicas,
  helloDeclinedStatus,
  helloPath,
  jitAccountsPath,
  jitUsersPath,
  namespacesPath,
  rolesPath,
  type GrantUpdate,
  type HelloResponse,
  type JitAccountsReport,
  type TunnelGrant,
  type TunnelRoles,
} from '../../common/tunnel-protocol.js';
import { replyStatus } from '../forward/forward.js';
import { canAnswer } from '../forward/can-answer.js';
import type { JitAccess } from '../jit/jit-manager.js';
import { parseRules } from '../jit/rules.js';
import { namespacesBody, type CheckedEntry } from '../namespaces/body.js';
import type { NamespaceReconciler } from '../namespaces/reconcile.js';

/** What control handlers act on: the tunnel the message came on, and JIT (absent when impersonating). */
export interface ControlContext {
  /** The hello: the replica reached and how many are live. Undefined declines the tunnel. */
  hello(replica: string, liveReplicas: number): HelloResponse | undefined;
  /** The replica is draining: move off it. */
  goaway(): void;
  jit: JitAccess | undefined;
  /** Managed namespaces (self-service namespaces); absent: the message is refused. */
  namespaces?: NamespaceReconciler;
}

export interface ControlReply {
  status: number;
  /** Sent as JSON; absent: an empty body. */
  body?: unknown;
  /** Run once the reply has been sent. */
  after?: () => void;
}

export interface ControlRoute<B = unknown> {
  method: 'GET' | 'POST';
  /**
   * Checks the parsed JSON body and returns it typed, or throws a
   * KG_ERR_BAD_REQUEST naming the field. Absent: the message has no body
   * and is answered at once.
   */
  body?: (value: unknown) => B;
  /** The most body bytes read (default 4 MiB); a longer body is refused (413) unread. */
  maxBytes?: number;
  handle(
    ctx: ControlContext,
    body: B,
    headers: http2.IncomingHttpHeaders,
  ): ControlReply | Promise<ControlReply>;
}

/** Typed per entry; the table holds them side by side (the body handle gets is what body returned). */
const route = <B>(r: ControlRoute<B>): ControlRoute => r as unknown as ControlRoute;

const bad = (field: string, problem: string) =>
  new KgError('KG_ERR_BAD_REQUEST', `control message body: ${field} ${problem}`);

const isStringList = (v: unknown): v is string[] =>
  Array.isArray(v) && v.every((s) => typeof s === 'string');

function rolesBody(value: unknown): TunnelRoles {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad('roles', 'must be an object of role name to rules');
  // fromEntries defines own keys, so a role named `__proto__` stays a plain key.
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([name, rules]) => {
      const parsed = parseRules(rules);
      if (parsed.problem !== undefined) throw bad(`roles[${JSON.stringify(name)}]`, parsed.problem);
      return [name, parsed.rules];
    }),
  );
}

function grantsBody(value: unknown): GrantUpdate[] {
  if (!Array.isArray(value)) throw bad('grant updates', 'must be a list');
  return value.map((u: unknown, i): GrantUpdate => {
    const at = `[${i}]`;
    if (typeof u !== 'object' || u === null || Array.isArray(u)) throw bad(at, 'must be an object');
    const o = u as Record<string, unknown>;
    if (typeof o.user !== 'string') throw bad(`${at}.user`, 'must be a string');
    if (!isStringList(o.groups)) throw bad(`${at}.groups`, 'must be a list of strings');
    if (o.kind !== undefined && !isSubjectKind(o.kind))
      throw bad(`${at}.kind`, `must be one of ${subjectKinds.join(', ')}`);
    if (!Array.isArray(o.grants)) throw bad(`${at}.grants`, 'must be a list');
    const grants = o.grants.map((g: unknown, j): TunnelGrant => {
      const gr = g as Record<string, unknown> | null;
      if (typeof gr !== 'object' || gr === null || typeof gr.role !== 'string')
        throw bad(`${at}.grants[${j}].role`, 'must be a string');
      if (!isStringList(gr.namespaces))
        throw bad(`${at}.grants[${j}].namespaces`, 'must be a list of strings');
      return { role: gr.role, namespaces: gr.namespaces };
    });
    return { user: o.user, groups: o.groups, kind: o.kind, grants };
  });
}

const ok = { status: 200, body: { ok: true } };

/** Default body limit of a control message (roles and grants of many users fit easily). */
const defaultMaxBytes = 4 * 1024 * 1024;

/** Every control message the agent answers. Anything else under the control prefix is refused. */
export const controlTable: ReadonlyMap<string, ControlRoute> = new Map([
  [
    helloPath,
    route({
      method: 'GET',
      handle: (ctx, _body, headers) => {
        const replica = String(headers[hdrReplica] ?? '');
        const live = Number(headers[hdrReplicas] ?? 1) || 1;
        const hello = ctx.hello(replica, live);
        return hello ? { status: 200, body: hello } : { status: helloDeclinedStatus };
      },
    }),
  ],
  [goawayPath, route({ method: 'POST', handle: (ctx) => ({ status: 200, after: ctx.goaway }) })],
  [
    rolesPath,
    route({
      method: 'POST',
      body: rolesBody,
      handle: (ctx, roles) => {
        ctx.jit?.setRoles(roles);
        return ok;
      },
    }),
  ],
  [
    grantsPath,
    route({
      method: 'POST',
      body: grantsBody,
      handle: async ({ jit }, updates) => {
        if (!jit) return ok;
        await Promise.all(updates.map((u) => jit.applyUpdate(u)));
        return { status: 200, body: { ok: true, applied: updates.length } };
      },
    }),
  ],
  [
    jitUsersPath,
    route({
      method: 'GET',
      handle: async ({ jit }) => ({ status: 200, body: jit ? await jit.knownUsers() : [] }),
    }),
  ],
  [
    jitAccountsPath,
    route({
      method: 'GET',
      handle: async ({ jit }) => ({
        status: 200,
        body: jit
          ? await jit.describe()
          : ({ mode: 'impersonate', accounts: [] } satisfies JitAccountsReport),
      }),
    }),
  ],
  [
    namespacesPath,
    route<CheckedEntry[]>({
      method: 'POST',
      // 500 namespaces with their objects' specs (each at most 64 KiB, most far less).
      maxBytes: 16 * 1024 * 1024,
      body: (v) => namespacesBody(v),
      handle: async ({ namespaces }, entries) => {
        if (!namespaces)
          throw new KgError('KG_ERR_UNAVAILABLE', 'this agent does not manage namespaces');
        return { status: 200, body: await namespaces.reconcile(entries) };
      },
    }),
  ],
]);

export type StreamClass =
  | { kind: 'request' }
  | { kind: 'control'; path: string; route: ControlRoute }
  | { kind: 'refuse'; status: 403 | 404 | 405; message: string };

/**
 * True when the first segment of `path` is kubegate's reserved control
 * segment in any spelling a router might fold to it: `.kubegate` in any case,
 * raw or percent-encoded, after any number of leading slashes. (`cancelPath`
 * is not under it: that stream is recognised by its own `kg-cancel` header.)
 */
function underControlPrefix(path: string): boolean {
  const q = path.indexOf('?');
  let p = q < 0 ? path : path.slice(0, q);
  let i = 0;
  while (i < p.length && p.charCodeAt(i) === 0x2f) i++;
  const slash = p.indexOf('/', i);
  p = p.slice(i, slash < 0 ? p.length : slash);
  let seg: string;
  try {
    seg = decodeURIComponent(p);
  } catch {
    seg = p;
  }
  seg = seg.toLowerCase();
  return seg === controlPrefix.slice(1, -1);
}

/**
 * What one tunnel stream is (security.md, "Agent control channel"): a control
 * message only when the proxy's marker header is present, no user identity
 * rides along, the path is in the control table and the method is that
 * route's. A stream under the reserved prefix that fails any of these is
 * refused here and never reaches the apiserver; everything else is a user
 * request for the apiserver.
 */
export function classifyStream(headers: http2.IncomingHttpHeaders): StreamClass {
  const path = String(headers[':path'] ?? '');
  const marked = headers[hdrControl] !== undefined;
  if (!marked) {
    if (path.startsWith(controlPrefix) || underControlPrefix(path))
      return {
        kind: 'refuse',
        status: 404,
        message: `the path ${JSON.stringify(path.slice(0, 100))} is reserved for kubegate's control channel`,
      };
    return { kind: 'request' };
  }
  if (headers[hdrControl] !== hdrControlValue || headers[hdrIdentity] !== undefined)
    return {
      kind: 'refuse',
      status: 403,
      message: 'a control message may not carry a user identity',
    };
  const r = controlTable.get(path);
  if (r === undefined)
    return {
      kind: 'refuse',
      status: 404,
      message: `unknown control path ${JSON.stringify(path.slice(0, 100))}`,
    };
  if (headers[':method'] !== r.method)
    return {
      kind: 'refuse',
      status: 405,
      message: `control path ${path} takes ${r.method} only`,
    };
  return { kind: 'control', path, route: r };
}

/**
 * Answer a stream `classifyStream` found to be a control message: read and
 * check its body when the route takes one, run the handler, reply. A body
 * that fails its check is a 400 naming the field; a handler that fails is a
 * 500 with its message.
 */
export function dispatchControl(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  c: { path: string; route: ControlRoute },
  ctx: ControlContext,
  log: Logger,
): void {
  const run = (body: () => unknown) => {
    let value: unknown;
    try {
      value = body();
    } catch (err) {
      log.warn({ path: c.path, err: (err as Error).message }, 'control message refused');
      const e =
        err instanceof KgError
          ? err
          : new KgError('KG_ERR_BAD_REQUEST', `control message body: ${(err as Error).message}`);
      return Promise.resolve(replyStatus(stream, e.status, e.reason, e.message));
    }
    return Promise.resolve()
      .then(() => c.route.handle(ctx, value, headers))
      .then((reply) => {
        // The proxy may have gone while the handler ran (a replica killed).
        if (canAnswer(stream) && reply.body === undefined) {
          stream.respond({ ':status': reply.status });
          stream.end();
        } else if (canAnswer(stream)) {
          stream.respond({ ':status': reply.status, 'content-type': 'application/json' });
          stream.end(JSON.stringify(reply.body));
        }
        reply.after?.();
      })
      .catch((err: unknown) => {
        log.warn({ path: c.path, err: (err as Error).message }, 'control message failed');
        replyStatus(
          stream,
          500,
          'InternalError',
          `control message failed: ${(err as Error).message}`,
        );
      });
  };
  const parse = c.route.body;
  if (!parse) {
    stream.resume();
    void run(() => undefined);
    return;
  }
  const chunks: Buffer[] = [];
  const max = c.route.maxBytes ?? defaultMaxBytes;
  let size = 0;
  stream.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= max) chunks.push(chunk);
  });
  stream.on('end', () => {
    if (size > max) {
      chunks.length = 0;
      log.warn({ path: c.path, bytes: size }, 'control message refused: body too large');
      replyStatus(
        stream,
        413,
        'RequestEntityTooLarge',
        `control message body exceeds ${max} bytes`,
      );
      return;
    }
    void run(() => {
      let value: unknown;
      try {
        value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        throw new KgError(
          'KG_ERR_BAD_REQUEST',
          `control message body is not JSON: ${(err as Error).message}`,
        );
      }
      return parse(value);
    });
  });
}
