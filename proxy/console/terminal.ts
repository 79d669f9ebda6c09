/**
 * A shell into a pod's container from the console (issue #21): the browser
 * opens a WebSocket on `GET /api/v1/terminal?cluster=…&namespace=…&pod=…&
 * container=…[&command=…]` with its session cookie and the subprotocol
 * `v5.channel.k8s.io`, and speaks that protocol itself (stdin on channel 0,
 * output on 1, the end Status on 3, resizes on 4).
 *
 * Nothing here authorizes, audits, gates or records: after its own checks
 * (an upgrade, same origin, a live session, a well-formed query) the request
 * is rewritten into exactly the exec request kubectl sends —
 * `/k8s/<cluster>/api/v1/namespaces/<ns>/pods/<pod>/exec?…&tty=true` with a
 * bearer token — and handed to the kube path's upgrade handler
 * (pipeline.ts), which does all of that as for kubectl.
 *
 * The token is minted for this one connection, for the signed-in user with
 * the session's groups and sign-in (so a refreshed or ended sign-in follows
 * it as it follows a kubeconfig's token), never leaves the proxy, and is
 * revoked when the connection closes; signing out revokes the session's
 * terminal tokens (auth-routes.ts). So the session ends when its token is
 * revoked, its user deactivated, its sign-in ended or the binding removed —
 * through open-requests.ts, which tells the browser why on channel 3.
 *
 * The pickers (`/api/v1/terminal/targets`, `/api/v1/terminal/pods`) list
 * only what the caller may exec into, as the authorizer decides; the pods
 * are read from the cluster as the caller (pipeline.ts `readAs`).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { KgError, problemOf } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { checkQuery } from '../api/params.js';
import type { ApiCaller } from '../api/types.js';
import type { TokenIdentity } from '../authn/identity.js';
import type { TokenStore } from '../authn/token-store.js';
import { authorize, bindingsFor } from '../authz/authorizer.js';
import type { PolicyState } from '../authz/policy-store.js';
import { requestInfo } from '../authz/request-info.js';
import type { Pool } from '../db/pool.js';
import type { AnyRequest } from '../forward/forward.js';
import type { ClusterHealth } from '../ha/cluster-health.js';
import { writeJson } from '../http/json-body.js';
import { toKgError } from '../http/respond-error.js';
import { mount, type BaseCall, type Route, type RouteSpec } from '../http/routes.js';
import { checkBrowserRequest, resolveCaller } from '../identity/caller.js';
import { readCookies, sessionCookie } from '../identity/cookies.js';
import { terminalTokenDescription } from '../identity/session-store.js';
import type { IdentitySettings } from '../identity/settings.js';
import { signinBound } from '../identity/sso-signins.js';
import { revokeToken } from '../identity/token-records.js';

export const terminalPath = '/api/v1/terminal';
/** The one subprotocol the terminal speaks (the browser must offer it). */
export const terminalProtocol = 'v5.channel.k8s.io';

const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dnsSubdomain =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const maxArgs = 64;
const maxArgBytes = 8 * 1024;
const defaultCommand = ['sh'];

/** Whether an upgrade's target is the terminal's (the front sends it here, not to /k8s/). */
export function isTerminalTarget(url: string | undefined): boolean {
  const path = (url ?? '').split('?')[0];
  return path === terminalPath;
}

export interface TerminalTarget {
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
}

function one(q: URLSearchParams, name: string, pattern: RegExp, what: string): string {
  const v = q.get(name);
  if (v === null || v === '')
    throw new KgError('KG_ERR_BAD_REQUEST', `${name} is required (the ${what})`);
  if (!pattern.test(v))
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `${name}: ${JSON.stringify(v.slice(0, 80))} is not a valid ${what} name`,
    );
  return v;
}

/**
 * The terminal's query, strictly: each name exactly once and well-formed
 * (so no path trick can reach the kube path: names are DNS labels or
 * subdomains, never `..`, `/` or `%`), `command` repeated as argv (never
 * a shell line: each value is one argument), bounded.
 */
export function parseTerminalQuery(rawQuery: string): TerminalTarget {
  const q = new URLSearchParams(rawQuery);
  checkQuery(q, ['cluster', 'namespace', 'pod', 'container', 'command'], ['command']);
  const target = {
    cluster: one(q, 'cluster', dnsLabel, 'cluster'),
    namespace: one(q, 'namespace', dnsLabel, 'namespace'),
    pod: one(q, 'pod', dnsSubdomain, 'pod'),
    container: one(q, 'container', dnsLabel, 'container'),
    command: q.getAll('command'),
  };
  if (target.command.length === 0) target.command = [...defaultCommand];
  if (target.command.length > maxArgs)
    throw new KgError('KG_ERR_BAD_REQUEST', `command: at most ${maxArgs} arguments`);
  const bytes = target.command.reduce((n, a) => n + Buffer.byteLength(a), 0);
  if (bytes > maxArgBytes)
    throw new KgError('KG_ERR_BAD_REQUEST', `command: at most ${maxArgBytes} bytes in all`);
  if (target.command[0] === '' || target.command.some((a) => a.includes('\0')))
    throw new KgError('KG_ERR_BAD_REQUEST', 'command: an empty program or a NUL byte');
  return target;
}

/** The kube path target kubectl would send for `exec -it`: what the terminal becomes. */
export function execTarget(t: TerminalTarget): string {
  const q = new URLSearchParams();
  q.set('container', t.container);
  for (const a of t.command) q.append('command', a);
  q.set('stdin', 'true');
  q.set('stdout', 'true');
  q.set('tty', 'true');
  return `/k8s/${t.cluster}/api/v1/namespaces/${t.namespace}/pods/${t.pod}/exec?${q.toString()}`;
}

/** A refusal before the upgrade, as problem JSON on the raw socket. */
function refuse(socket: Duplex, err: unknown, log: Logger): void {
  const e = toKgError(err);
  if (e.code === 'KG_ERR_INTERNAL') log.error({ err }, 'terminal: unexpected error (bug)');
  const body = JSON.stringify(problemOf(e, terminalPath));
  const head = [
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}`,
    'content-type: application/problem+json',
    `content-length: ${Buffer.byteLength(body)}`,
    'cache-control: no-store',
    'connection: close',
  ];
  if (e.retryAfter) head.push(`retry-after: ${e.retryAfter}`);
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export interface TerminalDeps {
  pool: Pool;
  tokens: TokenStore;
  settings: IdentitySettings;
  log: Logger;
  /** The kube path's upgrade handler (pipeline.ts createUpgradeHandler). */
  kubeUpgrade: (req: AnyRequest, socket: Duplex, head: Buffer) => void;
}

/**
 * The terminal's upgrade: checks, a token for this connection, and the
 * request rewritten into kubectl's exec for the kube path's handler.
 */
export function createTerminalUpgrade(
  deps: TerminalDeps,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    void open(deps, req, socket, head).catch((err: unknown) => refuse(socket, err, deps.log));
  };
}

async function open(
  deps: TerminalDeps,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const [path, ...rest] = (req.url ?? '').split('?');
  if (path !== terminalPath) throw new KgError('KG_ERR_NOT_FOUND', 'no such endpoint');
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket' || req.method !== 'GET')
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'the terminal is a WebSocket: GET with Upgrade: websocket',
    );
  // The console's session only: a token holder has kubectl exec.
  if (req.headers.authorization !== undefined)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'the terminal takes the console session, not a token; with a token, use kubectl exec',
    );
  // Cross-site WebSocket hijacking: a browser always sends Origin on a
  // WebSocket, and only the console's own origin may open one.
  const origin = header(req, 'origin');
  if (origin !== deps.settings.publicOrigin)
    throw new KgError(
      'KG_ERR_FORBIDDEN',
      origin === undefined
        ? 'the terminal needs an Origin header (open it from the console)'
        : `terminal connections from origin ${origin} are refused`,
    );
  const caller = await resolveCaller(deps, req);
  if (caller.via !== 'session' || !caller.session)
    throw new KgError('KG_ERR_UNAUTHENTICATED', 'not signed in');
  checkBrowserRequest(req, caller, deps.settings);
  const offered = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim());
  if (!offered.includes(terminalProtocol))
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `the terminal speaks the WebSocket subprotocol ${terminalProtocol}; offer it`,
    );
  const key = header(req, 'sec-websocket-key');
  const version = header(req, 'sec-websocket-version');
  if (!key || !version)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'Sec-WebSocket-Key and Sec-WebSocket-Version are required',
    );
  const target = parseTerminalQuery(rest.join('?'));

  // This connection's token: the session's user, groups and sign-in, ending
  // no later than the session (and the sign-in's bound).
  const s = caller.session;
  let notAfter = s.expiresAt < s.tokensEndBy ? s.expiresAt : s.tokensEndBy;
  if (caller.signinId) {
    const bound = await signinBound(deps.pool, caller.signinId);
    if (!bound)
      throw new KgError(
        'KG_ERR_UNAUTHENTICATED',
        'your single sign-on sign-in has ended; sign in again',
      );
    if (bound < notAfter) notAfter = bound;
  }
  const cookie = readCookies(req.headers.cookie).get(sessionCookie) ?? '';
  const minted = await deps.tokens.create({
    subject: caller.name,
    kind: 'user',
    groups: caller.groups,
    ttlMs: Math.max(1000, notAfter.getTime() - Date.now()),
    notAfter,
    description: terminalTokenDescription(cookie),
    createdBy: caller.actor,
    userId: caller.userId,
    signinId: caller.signinId,
  });
  const revoke = () =>
    void revokeToken(deps.pool, minted.id, undefined).catch((err: unknown) =>
      deps.log.warn(
        { err, tokenId: minted.id },
        'terminal: revoking its token failed (it expires with the session)',
      ),
    );
  if (socket.destroyed) return revoke();
  socket.once('close', revoke);
  deps.log.info(
    {
      user: caller.name,
      cluster: target.cluster,
      namespace: target.namespace,
      pod: target.pod,
      tokenId: minted.id,
    },
    'terminal opened',
  );

  // kubectl's exec, exactly: the same headers a WebSocket exec carries, no others.
  const ua = `kubegate-console-terminal (${header(req, 'user-agent')?.slice(0, 200) ?? ''})`;
  req.url = execTarget(target);
  req.rawHeaders = [
    'Upgrade',
    'websocket',
    'Connection',
    'Upgrade',
    'Sec-WebSocket-Key',
    key,
    'Sec-WebSocket-Version',
    version,
    'Sec-WebSocket-Protocol',
    terminalProtocol,
    'User-Agent',
    ua,
  ];
  req.headers = {
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': key,
    'sec-websocket-version': version,
    'sec-websocket-protocol': terminalProtocol,
    'user-agent': ua,
    authorization: `Bearer ${minted.token}`,
  };
  deps.kubeUpgrade(req, socket, head);
}

// ---------------------------------------------------------------- pickers

export interface TerminalPickerDeps {
  resolveCaller: (req: AnyRequest) => Promise<ApiCaller>;
  policy: () => PolicyState;
  health: (names: readonly string[]) => Promise<Map<string, ClusterHealth>>;
  /** A GET on a cluster as the caller, through the kube path's stages (pipeline.ts readAs). */
  readAs: (
    who: { identity: TokenIdentity; sourceIp: string; userAgent: string },
    target: string,
  ) => Promise<{ status: number; json: unknown }>;
}

interface PickerCall extends BaseCall {
  caller: ApiCaller;
}

function execInfo(namespace: string, pod: string) {
  return requestInfo('POST', `/api/v1/namespaces/${namespace}/pods/${pod}/exec`, '');
}

/** May the caller exec into `pod` (or, with pod '', some pod) in `namespace` on `cluster` now? */
function mayExec(
  state: PolicyState,
  c: ApiCaller,
  cluster: string,
  namespace: string,
  pod: string,
): boolean {
  const ref = state.clusters.get(cluster);
  if (!ref || ref.disabled) return false;
  const who = { user: c.user, kind: c.kind, groups: c.groups };
  return authorize(state.snapshot, who, execInfo(namespace, pod || 'x'), ref, new Date()).allowed;
}

/**
 * The clusters where the caller may exec somewhere, and there the namespaces:
 * those their bindings name, or — for a cluster-wide binding — every
 * namespace (`allNamespaces: true`; the pods picker then takes any name).
 */
function targets(state: PolicyState, c: ApiCaller) {
  const now = new Date();
  const who = { user: c.user, kind: c.kind, groups: c.groups };
  const out: { name: string; namespaces: string[]; allNamespaces: boolean }[] = [];
  for (const ref of [...state.clusters.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (ref.disabled) continue;
    const named = new Set<string>();
    let all = false;
    for (const b of bindingsFor(state.snapshot, who, ref, now)) {
      if (b.namespaces.length === 0) all = true;
      else for (const ns of b.namespaces) named.add(ns);
    }
    // A namespace is offered only when exec there is allowed (the binding's role may not grant it).
    const namespaces = [...named].filter((ns) => mayExec(state, c, ref.name, ns, '')).sort();
    // Cluster-wide: allowed in a namespace no binding names means allowed in every one.
    const allNamespaces = all && mayExec(state, c, ref.name, 'kubegate-terminal-probe', '');
    if (namespaces.length > 0 || allNamespaces)
      out.push({ name: ref.name, namespaces, allNamespaces });
  }
  return out;
}

interface NamedList {
  items?: { metadata?: { name?: string } }[];
}

/** The caller as the kube path's stages see an already authenticated identity. */
function whoIs(c: PickerCall) {
  const identity: TokenIdentity = {
    tokenId: '',
    tokenHash: '',
    user: c.caller.user,
    kind: c.caller.kind,
    groups: c.caller.groups,
    expiresAt: new Date(Date.now() + 60_000),
  };
  return {
    identity,
    sourceIp: c.req.socket.remoteAddress ?? '',
    userAgent: 'kubegate-console-terminal',
  };
}

interface PodList {
  items?: {
    metadata?: { name?: string };
    spec?: { containers?: { name?: string }[] };
    status?: { phase?: string };
  }[];
}

/** A picker: a GET for the signed-in caller taking exactly `query`, each at most once. */
function picker(
  path: string,
  summary: string,
  query: string[],
  answer: (c: PickerCall) => Promise<unknown>,
): RouteSpec<PickerCall> {
  const get = async (c: PickerCall) => {
    checkQuery(c.query, query);
    writeJson(c.res, 200, await answer(c));
  };
  return {
    path,
    tag: 'console',
    methods: { GET: { access: 'caller', summary, query, handle: get } },
  };
}

export function terminalRoutes(deps: TerminalPickerDeps): Route[] {
  const specs: RouteSpec<PickerCall>[] = [
    {
      path: terminalPath,
      tag: 'console',
      methods: {
        GET: {
          access: 'caller',
          summary:
            'A shell into a container (WebSocket upgrade only, subprotocol v5.channel.k8s.io, the console session)',
          query: ['cluster', 'namespace', 'pod', 'container', 'command'],
          handle: () => {
            throw new KgError(
              'KG_ERR_BAD_REQUEST',
              'the terminal is a WebSocket: open it with Upgrade: websocket from the console',
            );
          },
        },
      },
    },
    picker(
      `${terminalPath}/targets`,
      'The clusters and namespaces where the caller may open a terminal (exec)',
      [],
      async (c) => {
        const items = targets(deps.policy(), c.caller);
        const health = await deps.health(items.map((i) => i.name));
        return { items: items.map((i) => ({ ...i, online: health.get(i.name)?.online ?? false })) };
      },
    ),
    picker(
      `${terminalPath}/namespaces`,
      'The namespaces of a cluster where the caller may open a terminal (a cluster-wide grant: those the caller can list)',
      ['cluster'],
      async (c) => {
        const cluster = one(c.query, 'cluster', dnsLabel, 'cluster');
        const t = targets(deps.policy(), c.caller).find((x) => x.name === cluster);
        if (!t)
          throw new KgError(
            'KG_ERR_FORBIDDEN',
            `you may not open a terminal (exec) on cluster "${cluster}"`,
          );
        const names = new Set(t.namespaces);
        if (t.allNamespaces) {
          // Allowed everywhere: offer the namespaces the caller may list (if they may).
          const a = await deps.readAs(whoIs(c), `/k8s/${cluster}/api/v1/namespaces`);
          if (a.status === 200)
            for (const ns of (a.json as NamedList | undefined)?.items ?? [])
              if (ns.metadata?.name && dnsLabel.test(ns.metadata.name)) names.add(ns.metadata.name);
        }
        return { items: [...names].sort(), allNamespaces: t.allNamespaces };
      },
    ),
    picker(
      `${terminalPath}/pods`,
      'The running pods of a namespace the caller may exec into, with their containers',
      ['cluster', 'namespace'],
      async (c) => {
        const cluster = one(c.query, 'cluster', dnsLabel, 'cluster');
        const namespace = one(c.query, 'namespace', dnsLabel, 'namespace');
        const state = deps.policy();
        if (!mayExec(state, c.caller, cluster, namespace, ''))
          throw new KgError(
            'KG_ERR_FORBIDDEN',
            `you may not open a terminal (exec) in namespace "${namespace}" of cluster "${cluster}"`,
          );
        const a = await deps.readAs(
          whoIs(c),
          `/k8s/${cluster}/api/v1/namespaces/${namespace}/pods`,
        );
        if (a.status !== 200) {
          const msg = (a.json as { message?: unknown } | undefined)?.message;
          throw new KgError(
            a.status === 403 ? 'KG_ERR_FORBIDDEN' : 'KG_ERR_UPSTREAM',
            `listing pods in "${namespace}" on "${cluster}": ${a.status}${typeof msg === 'string' ? `: ${msg.slice(0, 300)}` : ''}`,
          );
        }
        const pods = ((a.json as PodList | undefined)?.items ?? [])
          .filter((p) => p.status?.phase === 'Running' && p.metadata?.name)
          .filter((p) => mayExec(state, c.caller, cluster, namespace, p.metadata!.name!))
          .map((p) => ({
            name: p.metadata!.name!,
            containers: (p.spec?.containers ?? []).map((x) => x.name ?? '').filter(Boolean),
          }))
          .sort((x, y) => (x.name < y.name ? -1 : 1));
        return { items: pods };
      },
    ),
  ];
  return mount(specs, async (base) => {
    const caller = await deps.resolveCaller(base.req);
    return { ...base, caller };
  });
}
