/**
 * Session recordings and recording policies over REST:
 *
 *   GET    /api/v1/recordings               search (user, cluster, namespace, pod,
 *                                           container, command, status, from, to; limit, continue)
 *   GET    /api/v1/recordings/{id}          one recording's metadata
 *   GET    /api/v1/recordings/{id}/cast     the recording as asciicast v2 (.cast); audited
 *                                           (purpose=playback: the console's player)
 *   GET    /api/v1/recording-policies       the recording policies (admin)
 *   POST   /api/v1/recording-policies       create one (admin)
 *   DELETE /api/v1/recording-policies/{name} delete one (admin)
 *
 * Who may list and download recordings (access.ts): admins and the
 * recording viewer groups (default `kubegate-auditors`) everywhere, and
 * through the central RBAC, whoever holds `list`/`get` on `recordings`
 * (API group `kubegate.dev`) where the sessions ran. Everyone else is 403
 * and sees no listing; a recording outside a caller's grants is 404, as if
 * it did not exist. Every download is an audit event (resource
 * `recordings`, verb `download`, or `play` when the console's player
 * fetched it to play it).
 */
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { ApiCaller } from '../api/types.js';
import { recordAdminEvent, requestOrigin } from '../audit/admin-events.js';
import type { Pool } from 'pg';
import type { AnyRequest } from '../forward/forward.js';
import { writeJson, writeNoContent } from '../http/json-body.js';
import {
  createDispatcher,
  mount,
  requireAdmin,
  type BaseCall,
  type Operation,
  type Route,
  type RouteSpec,
} from '../http/routes.js';
import { writeDrained, type AnyResponse } from '../http/response.js';
import { castOf } from './events.js';
import { getRecording, searchFilters, searchRecordings, type SearchFilter } from './catalog.js';
import { createPolicy, deletePolicy, listPolicies, validatePolicy } from './policy.js';
import type { RecordingStorage } from './storage.js';
import type { RecordingAccess, Viewer } from './access.js';

export interface RecordingApiDeps {
  pool: Pool;
  storage: RecordingStorage;
  adminGroups: readonly string[];
  /** Who may watch which recordings (admins, the viewer groups, RBAC). */
  access: RecordingAccess;
  /** Resolves the caller (bearer token, or the console session with its CSRF checks); throws 401. */
  authenticate: (req: AnyRequest) => Promise<ApiCaller>;
  /** A policy was created or deleted (this replica's policy cache reads them again). */
  policiesChanged?: () => void;
  log: Logger;
}

interface RecordingCall extends BaseCall {
  caller: ApiCaller;
  admin: boolean;
  viewer: Viewer;
}

const listQuery = [...searchFilters, 'limit', 'continue'];

/**
 * Why a cast is fetched, as the audit event's verb: `download` (a file to
 * keep: the CLI, a link) or `play` (the console's player, `purpose=playback`).
 * Both send the whole recording and both are audited; the verb says which
 * the caller asked for.
 */
const castPurposes = { download: 'download', playback: 'play' } as const;

function checkQuery(query: URLSearchParams, allowed: readonly string[]): void {
  const unknown = [...new Set(query.keys())].filter((k) => !allowed.includes(k));
  if (unknown.length)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `unknown query parameter(s) ${unknown.slice(0, 5).join(', ').slice(0, 200)}; ${allowed.length ? `this endpoint takes ${allowed.join(', ')}` : 'this endpoint takes none'}`,
    );
  for (const k of allowed)
    if (query.getAll(k).length > 1)
      throw new KgError('KG_ERR_BAD_REQUEST', `query parameter ${k} given more than once`);
}

function requireViewer(deps: RecordingApiDeps, c: RecordingCall): void {
  if (deps.access.anywhere(c.viewer)) return;
  throw new KgError(
    'KG_ERR_FORBIDDEN',
    `${c.caller.kind === 'robot' ? 'Robot' : 'User'} "${c.caller.user}" may not read session recordings: this needs membership of an admin group or a recording viewer group, or a role with verbs get and list on resource "recordings" (API group kubegate.dev) where the sessions ran`,
  );
}

/** The recording an id names, or 404 (a malformed id, or one the caller may not watch, is simply not found). */
async function recordingOf(deps: RecordingApiDeps, c: RecordingCall) {
  const id = c.params[0]!;
  const r = await getRecording(deps.pool, id);
  if (!r || !deps.access.may(c.viewer, 'get', r.cluster, r.namespace, r.id))
    throw new KgError('KG_ERR_NOT_FOUND', `recording "${id.slice(0, 64)}" not found`);
  return r;
}

export function recordingRoutes(deps: RecordingApiDeps): Route[] {
  const admins = new Set(deps.adminGroups);
  const viewerOp = (
    summary: string,
    query: readonly string[],
    handle: (c: RecordingCall) => Promise<void>,
  ): Operation<RecordingCall> => ({
    access: 'caller',
    summary,
    query,
    handle: async (c) => {
      // Who may read recordings comes first: anyone else learns nothing, not even what a query lacks.
      requireViewer(deps, c);
      checkQuery(c.query, query);
      await handle(c);
    },
  });
  const changedBy = (c: RecordingCall) => ({ actor: c.caller.actor, ...requestOrigin(c.req) });
  /** An admin's operation on the recording policies (no query parameters). */
  const adminOp = (
    summary: string,
    handle: (c: RecordingCall) => Promise<void>,
    more: Pick<Operation<RecordingCall>, 'body' | 'responses'> = {},
  ): Operation<RecordingCall> => ({
    access: 'admin',
    summary,
    ...more,
    handle: async (c) => {
      checkQuery(c.query, []);
      await handle(c);
    },
  });
  const specs: RouteSpec<RecordingCall>[] = [
    {
      path: '/api/v1/recordings',
      tag: 'recordings',
      methods: {
        GET: viewerOp(
          'Search session recordings, newest first (admins and recording viewers)',
          listQuery,
          async (c) => {
            const limitText = c.query.get('limit');
            const limit = limitText === null ? 100 : Number(limitText);
            if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
              throw new KgError(
                'KG_ERR_BAD_REQUEST',
                'limit must be a whole number from 1 to 1000',
              );
            const filter: SearchFilter = {};
            for (const n of searchFilters) {
              const v = c.query.get(n);
              if (v !== null) filter[n] = v;
            }
            const clusters = deps.access.searchable(c.viewer);
            const page = await searchRecordings(
              deps.pool,
              filter,
              { limit, continue: c.query.get('continue') ?? undefined },
              clusters === 'all'
                ? undefined
                : {
                    clusters,
                    visible: (r) => deps.access.may(c.viewer, 'list', r.cluster, r.namespace),
                  },
            );
            writeJson(c.res, 200, page, { 'cache-control': 'no-store' });
          },
        ),
      },
    },
    {
      path: '/api/v1/recordings/{id}',
      tag: 'recordings',
      methods: {
        GET: viewerOp("A session recording's metadata", [], async (c) => {
          writeJson(c.res, 200, await recordingOf(deps, c), { 'cache-control': 'no-store' });
        }),
      },
    },
    {
      path: '/api/v1/recordings/{id}/cast',
      tag: 'recordings',
      methods: {
        GET: viewerOp(
          'Download a session recording as asciicast v2 (audited: purpose=playback for the player)',
          ['purpose'],
          async (c) => {
            const purpose = c.query.get('purpose') ?? 'download';
            if (!Object.hasOwn(castPurposes, purpose))
              throw new KgError(
                'KG_ERR_BAD_REQUEST',
                `purpose must be "download" or "playback"; got ${JSON.stringify(purpose.slice(0, 64))}`,
              );
            const r = await recordingOf(deps, c);
            // The download is recorded before a byte of it is sent.
            await recordAdminEvent(deps.pool, {
              actor: c.caller.actor,
              verb: castPurposes[purpose as keyof typeof castPurposes],
              resource: 'recordings',
              name: r.id,
              cluster: r.cluster,
              detail: { user: r.user.name, namespace: r.namespace, pod: r.pod, auditId: r.auditId },
              ...requestOrigin(c.req),
            });
            await sendCast(deps, c.res, r.id);
          },
        ),
      },
    },
    {
      path: '/api/v1/recording-policies',
      tag: 'recordings',
      methods: {
        GET: adminOp('The recording policies', async (c) =>
          writeJson(c.res, 200, { items: await listPolicies(deps.pool) }),
        ),
        POST: adminOp(
          'Create a recording policy',
          async (c) => {
            const p = validatePolicy(await c.readBody());
            const stored = await createPolicy(deps.pool, p, changedBy(c));
            deps.policiesChanged?.();
            writeJson(c.res, 201, stored, {
              location: `/api/v1/recording-policies/${stored.name}`,
            });
          },
          {
            body: { object: true, maxBytes: 64 * 1024 },
            responses: { 201: 'the policy as stored' },
          },
        ),
      },
    },
    {
      path: '/api/v1/recording-policies/{name}',
      tag: 'recordings',
      methods: {
        DELETE: adminOp(
          'Delete a recording policy',
          async (c) => {
            await deletePolicy(deps.pool, c.params[0]!, changedBy(c));
            deps.policiesChanged?.();
            writeNoContent(c.res);
          },
          { responses: { 204: 'deleted' } },
        ),
      },
    },
  ];
  return mount(specs, async (base, op) => {
    const caller = await deps.authenticate(base.req);
    const admin = caller.groups.some((g) => admins.has(g));
    const call: RecordingCall = {
      ...base,
      caller,
      admin,
      viewer: { user: caller.user, kind: caller.kind, groups: caller.groups, admin },
    };
    requireAdmin(op, { admin, kind: caller.kind, name: caller.user });
    return call;
  });
}

/** The recording endpoints on their own (tests). */
export function createRecordingApiHandler(
  deps: RecordingApiDeps,
): (req: AnyRequest, res: AnyResponse) => boolean {
  return createDispatcher(recordingRoutes(deps), { log: deps.log, owns: () => false });
}

/** Stream a recording's chunks; the first is read before the status goes, so a store failure is a clean error. */
async function sendCast(deps: RecordingApiDeps, res: AnyResponse, id: string): Promise<void> {
  const it = castOf(deps.storage.chunks(id))[Symbol.asyncIterator]();
  let next = await it.next();
  res.writeHead(200, {
    'content-type': 'application/x-asciicast',
    'content-disposition': `attachment; filename="kubegate-${id}.cast"`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  });
  let closed = false;
  res.once('close', () => (closed = true));
  try {
    while (!next.done && !closed) {
      await writeDrained(res, next.value);
      next = await it.next();
    }
  } catch (err) {
    // The status is sent: a store failure midway can only cut the download short.
    deps.log.warn({ recording: id, err: (err as Error).message }, 'recording download failed');
    (res as unknown as { destroy(): void }).destroy();
    return;
  }
  if (!closed) res.end();
  else await it.return?.(undefined);
}
