/**
 * Robots: machine identities (CI/CD, ArgoCD) that admins create with fixed
 * groups. Bindings name them as `Robot` subjects. Their tokens rotate with
 * an overlap window: the new token works at once, the old ones keep working
 * until the overlap ends, and then they are revoked — which is announced on
 * `kubegate_tokens`, so open watches made with them end on every replica.
 */
import { KgError } from '../../common/errors.js';
import type { Pool } from '../db/pool.js';
import { checkSubjectNames, type TokenStore } from '../authn/token-store.js';
import { recordChange } from '../rbac/changes.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { revokeAllTokens } from './token-records.js';

export interface RobotRecord {
  id: string;
  name: string;
  groups: string[];
  description: string;
  active: boolean;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

interface Row {
  id: string;
  name: string;
  groups: string[];
  description: string;
  active: boolean;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

const cols = 'id, name, groups, description, active, created_by, created_at, updated_at';
export const robotNamePattern = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

function robotRecord(r: Row): RobotRecord {
  return {
    id: r.id,
    name: r.name,
    groups: r.groups,
    description: r.description,
    active: r.active,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export interface IssuedToken {
  token: string;
  id: string;
  expiresAt: Date;
}

export interface NewRobot {
  name: string;
  groups: string[];
  description: string;
  ttlMs: number;
}

function notFound(name: string): KgError {
  return new KgError('KG_ERR_NOT_FOUND', `no robot named "${name}"`);
}

export async function getRobot(db: Queryable, name: string, lock = false): Promise<RobotRecord> {
  const rows = await query<Row>(
    db,
    `SELECT ${cols} FROM robots WHERE name = $1${lock ? ' FOR UPDATE' : ''}`,
    [name],
  );
  if (!rows[0]) throw notFound(name);
  return robotRecord(rows[0]);
}

export async function listRobots(db: Queryable): Promise<RobotRecord[]> {
  return (await query<Row>(db, `SELECT ${cols} FROM robots ORDER BY name`)).map(robotRecord);
}

/** Create a robot and its first token (the token is returned once, never stored). */
export async function createRobot(
  pool: Pool,
  tokens: TokenStore,
  input: NewRobot,
  actor: string,
): Promise<{ robot: RobotRecord; token: IssuedToken }> {
  if (!robotNamePattern.test(input.name))
    throw new KgError(
      'KG_ERR_VALIDATION',
      `robot name "${input.name}" must be lower-case letters, digits, "-" and ".", 1-63 characters, starting and ending with a letter or digit`,
    );
  checkSubjectNames(input.name, input.groups);
  return inTransaction(pool, async (c) => {
    const rows = await query<Row>(
      c,
      `INSERT INTO robots (name, groups, description, created_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO NOTHING RETURNING ${cols}`,
      [input.name, input.groups, input.description, actor],
    );
    if (!rows[0]) throw new KgError('KG_ERR_CONFLICT', `a robot named "${input.name}" exists`);
    const robot = robotRecord(rows[0]);
    const token = await tokens.create(
      {
        subject: robot.name,
        kind: 'robot',
        groups: robot.groups,
        ttlMs: input.ttlMs,
        description: 'robot token',
        createdBy: actor,
        robotId: robot.id,
      },
      c,
    );
    await recordChange(c, actor, 'create', 'robot', robot.name, undefined, {
      groups: robot.groups,
      description: robot.description,
      tokenId: token.id,
    });
    return { robot, token };
  });
}

export interface Rotation {
  token: IssuedToken;
  /** Earlier tokens now ending at `previousValidUntil`. */
  superseded: number;
  previousValidUntil: Date;
}

/**
 * Mint a new token and cut every earlier usable token of the robot down to
 * `overlapMs` from now (never lengthening one). With no overlap they are
 * revoked at once.
 */
export async function rotateRobot(
  pool: Pool,
  tokens: TokenStore,
  name: string,
  opts: { overlapMs: number; ttlMs: number },
  actor: string,
): Promise<Rotation> {
  return inTransaction(pool, async (c) => {
    const robot = await getRobot(c, name, true);
    if (!robot.active) throw new KgError('KG_ERR_CONFLICT', `robot "${name}" is not active`);
    const cut = await query<{ id: string; expires_at: Date }>(
      c,
      `UPDATE api_tokens SET
         superseded_at = COALESCE(superseded_at, now()),
         expires_at = LEAST(expires_at, now() + ($3 || ' milliseconds')::interval),
         revoked_at = CASE WHEN $3::bigint = 0 THEN now() ELSE revoked_at END
       WHERE (robot_id = $1 OR (subject_kind = 'robot' AND subject = $2))
         AND revoked_at IS NULL AND expires_at > now()
       RETURNING id, expires_at`,
      [robot.id, robot.name, String(opts.overlapMs)],
    );
    const token = await tokens.create(
      {
        subject: robot.name,
        kind: 'robot',
        groups: robot.groups,
        ttlMs: opts.ttlMs,
        description: 'robot token (rotated)',
        createdBy: actor,
        robotId: robot.id,
      },
      c,
    );
    const until = cut.reduce((m, r) => Math.max(m, r.expires_at.getTime()), Date.now());
    await recordChange(c, actor, 'update', 'robot', robot.name, undefined, {
      rotated: true,
      tokenId: token.id,
      superseded: cut.map((r) => r.id),
      overlapMs: opts.overlapMs,
    });
    return { token, superseded: cut.length, previousValidUntil: new Date(until) };
  });
}

/** Delete a robot: every token revoked (announced to every replica), the row removed, logged. */
export async function deleteRobot(pool: Pool, name: string, actor: string): Promise<number> {
  return inTransaction(pool, async (c) => {
    const robot = await getRobot(c, name, true);
    const revoked = await revokeAllTokens(c, { kind: 'robot', name, robotId: robot.id });
    await query(c, 'DELETE FROM robots WHERE id = $1', [robot.id]);
    await recordChange(c, actor, 'delete', 'robot', name, { groups: robot.groups }, undefined);
    return revoked;
  });
}

/**
 * Revoke superseded tokens whose overlap has ended. Expiry alone already
 * refuses them for new requests; revoking announces them, so requests that
 * were opened during the overlap (watches) are ended too. Every replica may
 * run this: a row changes once, whoever gets there first.
 */
export async function revokeEndedOverlaps(pool: Pool): Promise<number> {
  const rows = await query(
    pool,
    `UPDATE api_tokens SET revoked_at = now()
      WHERE superseded_at IS NOT NULL AND revoked_at IS NULL AND expires_at <= now()
      RETURNING id`,
  );
  return rows.length;
}
