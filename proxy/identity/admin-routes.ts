/**
 * Admin-only identity endpoints: users (list, show, deactivate, activate,
 * their tokens) and robots (create, list, show, rotate, delete, their
 * tokens). Every change is one transaction with its change-log row.
 */
import { KgError } from '../../common/errors.js';
import { parseDuration } from '../../common/config.js';
import { recordChange } from '../rbac/changes.js';
import { inTransaction } from '../db/query.js';
import { writeJson, writeNoContent } from '../http/json-body.js';
import { smallObjectBody, type RouteSpec } from '../http/routes.js';
import { createRobot, deleteRobot, getRobot, listRobots, rotateRobot } from './robot-store.js';
import { checkQuery } from '../api/params.js';
import { parseTtl, type ApiCall } from './routes.js';
import { pathParam } from '../http/routes.js';
import { listTokens, revokeAllTokens, type TokenOwner } from './token-records.js';
import { activateUser, deactivateUser, getUser, listUsers } from './user-store.js';

/** Default overlap of a robot token rotation. */
const defaultOverlapMs = 10 * 60_000;

function stringList(v: unknown, what: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((g) => typeof g !== 'string'))
    throw new KgError('KG_ERR_VALIDATION', `${what} must be a list of strings`);
  return [...new Set(v as string[])];
}

function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  if (extra.length)
    throw new KgError(
      'KG_ERR_VALIDATION',
      `unknown field(s) ${extra.join(', ')} (allowed: ${allowed.join(', ')})`,
    );
}

// --- users -------------------------------------------------------------

async function users(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  writeJson(call.res, 200, { items: await listUsers(call.deps.pool) });
}

async function user(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  writeJson(call.res, 200, await getUser(call.deps.pool, pathParam(call, 0)));
}

async function deactivate(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  const target = await getUser(call.deps.pool, pathParam(call, 0));
  if (
    call.caller.userId === target.id ||
    (call.caller.kind === 'user' && call.caller.name === target.username)
  )
    throw new KgError('KG_ERR_CONFLICT', 'you cannot deactivate yourself; ask another admin');
  const r = await deactivateUser(call.deps.pool, target.id, call.caller.actor);
  call.log.info(
    { actor: call.caller.actor, user: r.user.username, revokedTokens: r.revokedTokens },
    'user deactivated',
  );
  writeJson(call.res, 200, r);
}

async function activate(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  const u = await activateUser(call.deps.pool, pathParam(call, 0), call.caller.actor);
  call.log.info({ actor: call.caller.actor, user: u.username }, 'user activated');
  writeJson(call.res, 200, u);
}

/** The tokens of one user or robot: live ones, or all with `include=inactive`. */
async function ownerTokens(call: ApiCall, owner: () => Promise<TokenOwner>): Promise<void> {
  checkQuery(call.query, ['include']);
  const inactive = call.query.get('include') === 'inactive';
  writeJson(call.res, 200, { items: await listTokens(call.deps.pool, await owner(), inactive) });
}

const userTokens = (call: ApiCall) =>
  ownerTokens(call, async () => {
    const u = await getUser(call.deps.pool, pathParam(call, 0));
    return { kind: 'user', name: u.username, userId: u.id };
  });

async function revokeUserTokens(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  const u = await getUser(call.deps.pool, pathParam(call, 0));
  const revoked = await inTransaction(call.deps.pool, async (c) => {
    const n = await revokeAllTokens(c, { kind: 'user', name: u.username, userId: u.id });
    await recordChange(c, call.caller.actor, 'delete', 'token', u.username, undefined, {
      revokedAllOf: u.username,
      count: n,
    });
    return n;
  });
  call.log.info({ actor: call.caller.actor, user: u.username, revoked }, 'user tokens revoked');
  writeJson(call.res, 200, { revoked });
}

// --- robots ------------------------------------------------------------

async function robots(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  writeJson(call.res, 200, { items: await listRobots(call.deps.pool) });
}

async function newRobot(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  const body = (await call.readBody()) as Record<string, unknown>;
  onlyFields(body, ['name', 'groups', 'description', 'ttl']);
  if (typeof body.name !== 'string') throw new KgError('KG_ERR_VALIDATION', 'name is required');
  const description = body.description ?? '';
  if (typeof description !== 'string' || description.length > 1000)
    throw new KgError(
      'KG_ERR_VALIDATION',
      'description must be a string of at most 1000 characters',
    );
  const s = call.deps.settings;
  const r = await createRobot(
    call.deps.pool,
    call.deps.tokens,
    {
      name: body.name,
      groups: stringList(body.groups, 'groups'),
      description,
      ttlMs: parseTtl(body.ttl, s.robotTokenTtlMs, s.robotTokenMaxTtlMs, 'ttl'),
    },
    call.caller.actor,
  );
  call.log.info({ actor: call.caller.actor, robot: r.robot.name }, 'robot created');
  call.res.setHeader('location', `/api/v1/robots/${r.robot.name}`);
  writeJson(call.res, 201, { robot: r.robot, token: r.token });
}

async function robot(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  writeJson(call.res, 200, await getRobot(call.deps.pool, pathParam(call, 0)));
}

async function removeRobot(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  const name = pathParam(call, 0);
  const revoked = await deleteRobot(call.deps.pool, name, call.caller.actor);
  call.log.info({ actor: call.caller.actor, robot: name, revoked }, 'robot deleted');
  writeNoContent(call.res);
}

async function rotate(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  const body = (await call.readBody()) as Record<string, unknown>;
  onlyFields(body, ['overlap', 'ttl']);
  let overlapMs = defaultOverlapMs;
  if (body.overlap !== undefined) {
    const o = typeof body.overlap === 'string' ? parseDuration(body.overlap) : undefined;
    if (o === undefined)
      throw new KgError('KG_ERR_VALIDATION', 'overlap must be a duration like 0s, 10m or 1h');
    overlapMs = o;
  }
  const s = call.deps.settings;
  const r = await rotateRobot(
    call.deps.pool,
    call.deps.tokens,
    pathParam(call, 0),
    { overlapMs, ttlMs: parseTtl(body.ttl, s.robotTokenTtlMs, s.robotTokenMaxTtlMs, 'ttl') },
    call.caller.actor,
  );
  call.log.info(
    { actor: call.caller.actor, robot: pathParam(call, 0), superseded: r.superseded, overlapMs },
    'robot token rotated',
  );
  writeJson(call.res, 200, r);
}

const robotTokens = (call: ApiCall) =>
  ownerTokens(call, async () => {
    const r = await getRobot(call.deps.pool, pathParam(call, 0));
    return { kind: 'robot', name: r.name, robotId: r.id };
  });

export const adminRoutes: readonly RouteSpec<ApiCall>[] = [
  {
    path: '/api/v1/users',
    tag: 'identity',
    methods: {
      GET: { access: 'admin', summary: 'Users who have signed in', handle: users },
    },
  },
  {
    path: '/api/v1/users/{id}',
    tag: 'identity',
    methods: {
      GET: { access: 'admin', summary: 'One user', handle: user },
    },
  },
  {
    path: '/api/v1/users/{id}/deactivate',
    tag: 'identity',
    methods: {
      POST: {
        access: 'admin',
        summary: 'Deactivate a user and revoke their tokens',
        handle: deactivate,
      },
    },
  },
  {
    path: '/api/v1/users/{id}/activate',
    tag: 'identity',
    methods: {
      POST: { access: 'admin', summary: 'Activate a user again', handle: activate },
    },
  },
  {
    path: '/api/v1/users/{id}/tokens',
    tag: 'identity',
    methods: {
      GET: { access: 'admin', summary: "A user's tokens", query: ['include'], handle: userTokens },
      DELETE: {
        access: 'admin',
        summary: 'Revoke every token of a user',
        handle: revokeUserTokens,
      },
    },
  },
  {
    path: '/api/v1/robots',
    tag: 'identity',
    methods: {
      GET: { access: 'admin', summary: 'Robots', handle: robots },
      POST: {
        access: 'admin',
        summary: 'Create a robot and its first token',
        body: smallObjectBody,
        responses: { 201: 'the robot and its token' },
        handle: newRobot,
      },
    },
  },
  {
    path: '/api/v1/robots/{name}',
    tag: 'identity',
    methods: {
      GET: { access: 'admin', summary: 'One robot', handle: robot },
      DELETE: {
        access: 'admin',
        summary: 'Delete a robot and revoke its tokens',
        responses: { 204: 'deleted' },
        handle: removeRobot,
      },
    },
  },
  {
    path: '/api/v1/robots/{name}/rotate',
    tag: 'identity',
    methods: {
      POST: {
        access: 'admin',
        summary: "Rotate a robot's token (old one overlaps for a while)",
        body: smallObjectBody,
        handle: rotate,
      },
    },
  },
  {
    path: '/api/v1/robots/{name}/tokens',
    tag: 'identity',
    methods: {
      GET: {
        access: 'admin',
        summary: "A robot's tokens",
        query: ['include'],
        handle: robotTokens,
      },
    },
  },
];
