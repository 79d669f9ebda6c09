/**
 * `kubegate admin user …` and `kubegate admin robot …`: the identity admin
 * commands, over the same stores (so the same transactions, revocation
 * notices and change log) as the REST API. A robot token goes to stdout (or
 * --out FILE) and is shown once; messages for people go to stderr.
 */
import { parseDuration } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import { TokenStore } from '../authn/token-store.js';
import { createRobot, deleteRobot, listRobots, rotateRobot } from '../identity/robot-store.js';
import { activateUser, deactivateUser, listUsers } from '../identity/user-store.js';
import { cliActor, cliConfig, flag, flagList, output, withPool, type Invocation } from './args.js';

const actor = cliActor;

function robotTtls(p: Invocation): { ttl: number; max: number } {
  const c = cliConfig(['robotTokenTtl', 'robotTokenMaxTtl'], p.io.env);
  return { ttl: c.robotTokenTtl, max: c.robotTokenMaxTtl };
}

function duration(p: Invocation, name: string, fallback: number, max = Infinity): number {
  const v = flag(p, name);
  if (v === undefined) return fallback;
  const ms = parseDuration(v);
  if (ms === undefined)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `--${name} "${v}" must be a duration like 30m, 8h or 90d`,
    );
  if (ms > max)
    throw new KgError('KG_ERR_VALIDATION', `--${name} ${v} is longer than the allowed maximum`);
  return ms;
}

export async function userList(p: Invocation): Promise<void> {
  const users = await withPool(p, (pool) => listUsers(pool));
  for (const u of users)
    p.io.stdout.write(
      `${u.username}\t${u.active ? 'active' : 'deactivated'}\t${u.groups.join(',') || '-'}\t${u.lastLoginAt?.toISOString() ?? '-'}\n`,
    );
}

export async function userDeactivate(p: Invocation): Promise<void> {
  const r = await withPool(p, (pool) => deactivateUser(pool, p.positionals[0]!, actor()));
  p.io.stderr.write(
    `user ${r.user.username} deactivated: ${r.revokedTokens} token(s) revoked, ${r.endedSessions} session(s) ended\n`,
  );
}

export async function userActivate(p: Invocation): Promise<void> {
  const u = await withPool(p, (pool) => activateUser(pool, p.positionals[0]!, actor()));
  p.io.stderr.write(`user ${u.username} may sign in again\n`);
}

export async function robotList(p: Invocation): Promise<void> {
  for (const r of await withPool(p, (pool) => listRobots(pool)))
    p.io.stdout.write(`${r.name}\t${r.groups.join(',') || '-'}\t${r.description}\n`);
}

export async function robotCreate(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  const t = robotTtls(p);
  const ttlMs = duration(p, 'ttl', t.ttl, t.max);
  const r = await withPool(p, (pool) =>
    createRobot(
      pool,
      new TokenStore(pool),
      { name, groups: flagList(p, 'group'), description: flag(p, 'description') ?? '', ttlMs },
      actor(),
    ),
  );
  output(p, r.token.token + '\n', `robot ${name}'s token`);
  p.io.stderr.write(`robot ${name} created; token expires ${r.token.expiresAt.toISOString()}\n`);
}

export async function robotRotate(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  const t = robotTtls(p);
  const opts = {
    overlapMs: duration(p, 'overlap', 10 * 60_000),
    ttlMs: duration(p, 'ttl', t.ttl, t.max),
  };
  const r = await withPool(p, (pool) =>
    rotateRobot(pool, new TokenStore(pool), name, opts, actor()),
  );
  output(p, r.token.token + '\n', `robot ${name}'s new token`);
  p.io.stderr.write(
    `robot ${name}: new token expires ${r.token.expiresAt.toISOString()}; ${r.superseded} earlier token(s) valid until ${r.previousValidUntil.toISOString()}\n`,
  );
}

export async function robotDelete(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  const n = await withPool(p, (pool) => deleteRobot(pool, name, actor()));
  p.io.stderr.write(`robot ${name} deleted; ${n} token(s) revoked\n`);
}
