/**
 * `kubegate admin user …` and `kubegate admin robot …`: the identity admin
 * commands, over the same stores (so the same transactions, revocation
 * notices and change log) as the REST API. A robot token goes to stdout (or
 * --out FILE) and is shown once; messages for people go to stderr.
 */
import { writeFileSync } from 'node:fs';
import { loadConfig, parseDuration } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import { proxyDefaults, proxySchema } from '../config.js';
import { TokenStore } from '../authn/token-store.js';
import { createPool, type Pool } from '../db/pool.js';
import { createRobot, deleteRobot, listRobots, rotateRobot } from '../identity/robot-store.js';
import { activateUser, deactivateUser, listUsers } from '../identity/user-store.js';
import { cliActor, flag, flagList, parseArgs, type Parsed } from './args.js';

/** Appended to `kubegate --help`. */
export const identityUsage = `  kubegate admin user list                    list users who signed in
  kubegate admin user deactivate NAME|ID      deactivate a user: every token revoked, sessions ended
  kubegate admin user activate NAME|ID        let a deactivated user sign in again
  kubegate admin robot list                   list robots
  kubegate admin robot create NAME [--group G]... [--description TEXT] [--ttl 90d] [--out FILE]
                                              create a robot; prints its first token (shown once)
  kubegate admin robot rotate NAME [--overlap 10m] [--ttl 90d] [--out FILE]
                                              a new token; earlier ones stop after the overlap
  kubegate admin robot delete NAME            delete a robot and revoke its tokens
`;

const actor = cliActor;

async function withPool<T>(fn: (pool: Pool) => Promise<T>): Promise<T> {
  const { databaseUrl } = loadConfig({ databaseUrl: proxySchema.databaseUrl }, {});
  const pool = createPool({ url: databaseUrl, max: 2, applicationName: 'kubegate-cli' });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

function robotTtls(): { ttl: number; max: number } {
  const c = loadConfig(
    { robotTokenTtl: proxySchema.robotTokenTtl, robotTokenMaxTtl: proxySchema.robotTokenMaxTtl },
    {
      robotTokenTtl: proxyDefaults.robotTokenTtl,
      robotTokenMaxTtl: proxyDefaults.robotTokenMaxTtl,
    },
  );
  return { ttl: c.robotTokenTtl, max: c.robotTokenMaxTtl };
}

function duration(p: Parsed, name: string, fallback: number, max = Infinity): number {
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

function only(p: Parsed, allowed: string[]): void {
  const unknown = [...p.flags.keys()].filter((f) => !allowed.includes(f));
  if (unknown.length)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `unknown flag(s) ${unknown.map((f) => `--${f}`).join(', ')}; usage:\n${identityUsage}`,
    );
}

function printToken(p: Parsed, token: string, what: string): void {
  const out = flag(p, 'out');
  if (out && out !== '-') {
    writeFileSync(out, token + '\n', { mode: 0o600 });
    process.stderr.write(`wrote ${what} to ${out}\n`);
  } else {
    process.stdout.write(token + '\n');
  }
}

async function user(p: Parsed, verb: string | undefined, name: string | undefined): Promise<void> {
  only(p, []);
  if (verb === 'list') {
    const users = await withPool((pool) => listUsers(pool));
    for (const u of users)
      process.stdout.write(
        `${u.username}\t${u.active ? 'active' : 'deactivated'}\t${u.groups.join(',') || '-'}\t${u.lastLoginAt?.toISOString() ?? '-'}\n`,
      );
    return;
  }
  if (verb === 'deactivate' && name) {
    const r = await withPool((pool) => deactivateUser(pool, name, actor()));
    process.stderr.write(
      `user ${r.user.username} deactivated: ${r.revokedTokens} token(s) revoked, ${r.endedSessions} session(s) ended\n`,
    );
    return;
  }
  if (verb === 'activate' && name) {
    const u = await withPool((pool) => activateUser(pool, name, actor()));
    process.stderr.write(`user ${u.username} may sign in again\n`);
    return;
  }
  throw new KgError('KG_ERR_BAD_REQUEST', `unknown user command; usage:\n${identityUsage}`);
}

async function robot(p: Parsed, verb: string | undefined, name: string | undefined): Promise<void> {
  if (verb === 'list') {
    only(p, []);
    for (const r of await withPool((pool) => listRobots(pool)))
      process.stdout.write(`${r.name}\t${r.groups.join(',') || '-'}\t${r.description}\n`);
    return;
  }
  if (verb === 'create' && name) {
    only(p, ['group', 'description', 'ttl', 'out']);
    const t = robotTtls();
    const r = await withPool((pool) =>
      createRobot(
        pool,
        new TokenStore(pool),
        {
          name,
          groups: flagList(p, 'group'),
          description: flag(p, 'description') ?? '',
          ttlMs: duration(p, 'ttl', t.ttl, t.max),
        },
        actor(),
      ),
    );
    printToken(p, r.token.token, `robot ${name}'s token`);
    process.stderr.write(
      `robot ${name} created; token expires ${r.token.expiresAt.toISOString()}\n`,
    );
    return;
  }
  if (verb === 'rotate' && name) {
    only(p, ['overlap', 'ttl', 'out']);
    const t = robotTtls();
    const r = await withPool((pool) =>
      rotateRobot(
        pool,
        new TokenStore(pool),
        name,
        { overlapMs: duration(p, 'overlap', 10 * 60_000), ttlMs: duration(p, 'ttl', t.ttl, t.max) },
        actor(),
      ),
    );
    printToken(p, r.token.token, `robot ${name}'s new token`);
    process.stderr.write(
      `robot ${name}: new token expires ${r.token.expiresAt.toISOString()}; ${r.superseded} earlier token(s) valid until ${r.previousValidUntil.toISOString()}\n`,
    );
    return;
  }
  if (verb === 'delete' && name) {
    only(p, []);
    const n = await withPool((pool) => deleteRobot(pool, name, actor()));
    process.stderr.write(`robot ${name} deleted; ${n} token(s) revoked\n`);
    return;
  }
  throw new KgError('KG_ERR_BAD_REQUEST', `unknown robot command; usage:\n${identityUsage}`);
}

/**
 * Run `kubegate admin user|robot …`; `args` starts at `user` or `robot`.
 * Throws KgError for the caller to print; needs DATABASE_URL.
 */
export async function adminIdentity(args: string[]): Promise<void> {
  const p = parseArgs(args);
  const [area, verb, name, ...extra] = p.positionals;
  if (extra.length)
    throw new KgError('KG_ERR_BAD_REQUEST', `unexpected argument(s): ${extra.join(' ')}`);
  if (area === 'user') return user(p, verb, name);
  if (area === 'robot') return robot(p, verb, name);
  throw new KgError('KG_ERR_BAD_REQUEST', `unknown admin command; usage:\n${identityUsage}`);
}
