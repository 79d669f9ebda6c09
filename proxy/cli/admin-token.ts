/**
 * `kubegate admin token create|list|revoke` and `kubegate admin kubeconfig`:
 * bearer tokens from the command line, over the same stores as the REST API.
 * Minting a token needs only the database; a kubeconfig also needs the
 * proxy's public URL and the master key (for the server CA it embeds).
 */
import { KgError } from '../../common/errors.js';
import { parseDuration } from '../../common/config.js';
import { parseMasterKey } from '../pki/master-key.js';
import { loadCas } from '../pki/ca-store.js';
import { renderKubeconfig } from '../clusters/kubeconfig.js';
import { TokenStore } from '../authn/token-store.js';
import { loadPolicy } from '../authz/policy-store.js';
import { bindingsFor } from '../authz/authorizer.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import { inTransaction } from '../db/query.js';
import { recordChange } from '../rbac/changes.js';
import { listTokens, revokeToken, type TokenOwner } from '../identity/token-records.js';
import { findUser } from '../identity/user-store.js';
import { getRobot } from '../identity/robot-store.js';
import { isKgError } from '../../common/errors.js';
import type { Pool } from '../db/pool.js';
import { table } from './table.js';
import { cliActor, cliConfig, flag, flagList, output, withPool, type Invocation } from './args.js';

function ttlOf(p: Invocation, fallback: number): number {
  const t = flag(p, 'ttl');
  if (t === undefined) return fallback;
  const ms = parseDuration(t);
  if (!ms)
    throw new KgError('KG_ERR_BAD_REQUEST', `--ttl "${t}" must be a duration like 30m, 8h or 7d`);
  return ms;
}

/** Mint a token for `--user` and record it in the audit log. */
async function mint(p: Invocation, pool: Pool, tokenTtl: number, what: 'tokens' | 'kubeconfigs') {
  const user = flag(p, 'user')!;
  const t = await new TokenStore(pool).create({
    subject: user,
    kind: p.flags.has('robot') ? 'robot' : 'user',
    groups: flagList(p, 'group'),
    ttlMs: ttlOf(p, tokenTtl),
    description: what === 'kubeconfigs' ? 'kubeconfig (cli)' : 'cli',
    createdBy: 'cli',
  });
  await recordAdminEvent(pool, {
    actor: cliActor(),
    verb: 'create',
    resource: what,
    name: user,
    detail: {
      tokenId: t.id,
      expiresAt: t.expiresAt.toISOString(),
      groups: flagList(p, 'group'),
    },
    userAgent: 'kubegate-cli',
  });
  return t;
}

export async function tokenCreate(p: Invocation): Promise<void> {
  const { tokenTtl } = cliConfig(['tokenTtl'], p.io.env);
  await withPool(p, async (pool) => {
    const t = await mint(p, pool, tokenTtl, 'tokens');
    output(p, t.token + '\n', 'token');
    p.io.stderr.write(
      `token ${t.id} for ${flag(p, 'user')} expires ${t.expiresAt.toISOString()}\n`,
    );
  });
}

export async function kubeconfig(p: Invocation): Promise<void> {
  const cfg = cliConfig(['tokenTtl', 'publicUrl', 'masterKey'], p.io.env);
  const user = flag(p, 'user')!;
  await withPool(p, async (pool) => {
    const t = await mint(p, pool, cfg.tokenTtl, 'kubeconfigs');
    const cas = await loadCas(pool, parseMasterKey(cfg.masterKey));
    // One context per cluster the identity's bindings reach right now.
    const policy = await loadPolicy(pool);
    const who = {
      user,
      groups: flagList(p, 'group'),
      kind: p.flags.has('robot') ? ('robot' as const) : ('user' as const),
    };
    const clusters = [...policy.clusters.values()]
      .filter((c) => !c.disabled && bindingsFor(policy.snapshot, who, c, new Date()).length > 0)
      .map((c) => c.name)
      .sort();
    if (!clusters.length)
      p.io.stderr.write(
        `warning: ${user} has no binding on any cluster yet; the kubeconfig has no contexts\n`,
      );
    output(
      p,
      renderKubeconfig({
        publicUrl: cfg.publicUrl,
        clusters,
        user,
        token: t.token,
        caPem: cas.server.certPem,
      }),
      `kubeconfig for ${user}`,
    );
  });
}

/** Whose tokens `--user` / `--robot` ask for, with the row the name has now, if any. */
async function ownerOf(p: Invocation, pool: Pool): Promise<TokenOwner | undefined> {
  const user = flag(p, 'user');
  const robot = flag(p, 'robot');
  if (user !== undefined && robot !== undefined)
    throw new KgError('KG_ERR_BAD_REQUEST', 'give --user or --robot, not both');
  if (user !== undefined)
    return { kind: 'user', name: user, userId: (await findUser(pool, user))?.id };
  if (robot !== undefined) {
    // A deleted robot's tokens are still listed by name.
    const r = await getRobot(pool, robot).catch((err: unknown) => {
      if (isKgError(err) && err.code === 'KG_ERR_NOT_FOUND') return undefined;
      throw err;
    });
    return { kind: 'robot', name: robot, robotId: r?.id };
  }
  return undefined;
}

const time = (d: Date | null) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

export async function tokenList(p: Invocation): Promise<void> {
  const items = await withPool(p, async (pool) =>
    listTokens(pool, await ownerOf(p, pool), p.flags.has('all')),
  );
  p.io.stdout.write(
    table(
      ['ID', 'OWNER', 'STATE', 'CREATED', 'EXPIRES', 'LAST-USED', 'REVOKED', 'DESCRIPTION'],
      items.map((t) => [
        t.id,
        `${t.kind}:${t.subject}`,
        t.state,
        time(t.createdAt),
        time(t.expiresAt),
        time(t.lastUsedAt),
        time(t.revokedAt),
        t.description || '-',
      ]),
    ),
  );
}

export async function tokenRevoke(p: Invocation): Promise<void> {
  const id = p.positionals[0]!;
  // The REST API's revocation: setting revoked_at announces the token to every
  // replica, which drops it and ends the open requests using it.
  const r = await withPool(p, (pool) =>
    inTransaction(pool, async (c) => {
      const r = await revokeToken(c, id, undefined);
      if (r === 'revoked')
        await recordChange(c, cliActor(), 'delete', 'token', id, undefined, { revoked: true });
      return r;
    }),
  );
  if (r === 'missing') throw new KgError('KG_ERR_NOT_FOUND', `no token with id "${id}"`);
  p.io.stderr.write(
    r === 'revoked' ? `token ${id} revoked\n` : `token ${id} was already revoked\n`,
  );
}
