/**
 * What every signed-in identity may do for itself: see who it is
 * (`/api/v1/me`), download the fleet kubeconfig with a fresh token
 * (`/api/v1/kubeconfig`), and list and revoke its own tokens
 * (`/api/v1/tokens`). Admins may revoke anyone's token by id.
 */
import { KgError } from '../../common/errors.js';
import { renderKubeconfig } from '../clusters/kubeconfig.js';
import { recordChange } from '../rbac/changes.js';
import { ownerOf } from './caller.js';
import { recordAdminEvent, requestOrigin } from '../audit/admin-events.js';
import { inTransaction } from '../db/query.js';
import { clustersFor, kubeconfigFilename } from './fleet.js';
import { writeJson, writeNoContent } from '../http/json-body.js';
import type { RouteSpec } from '../http/routes.js';
import { checkQuery } from '../api/params.js';
import { parseTtl, type ApiCall } from './routes.js';
import { pathParam } from '../http/routes.js';
import { listTokens, revokeToken } from './token-records.js';
import { signinBound } from './sso-signins.js';

async function me(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  const c = call.caller;
  const clusters = await clustersFor(call.deps.pool, {
    user: c.name,
    groups: c.groups,
    kind: c.kind,
  });
  writeJson(call.res, 200, {
    kind: c.kind,
    name: c.name,
    groups: c.groups,
    admin: c.admin,
    // What the console shows: the Recordings page (the recordings API decides the same way).
    recordingViewer:
      call.deps.recordings?.anywhere({
        user: c.name,
        kind: c.kind,
        groups: c.groups,
        admin: c.admin,
      }) ?? false,
    via: c.via,
    clusters,
    ...(c.session
      ? {
          user: { id: c.session.user.id, email: c.session.user.email, name: c.session.user.name },
          // For a browser console: the header value state-changing calls need.
          csrfToken: c.session.csrfToken,
          sessionExpiresAt: c.session.expiresAt,
        }
      : {}),
    ...(c.tokenExpiresAt ? { tokenExpiresAt: c.tokenExpiresAt } : {}),
  });
}

/**
 * A fresh `kg_` token and the fleet kubeconfig around it. The lifetime is
 * `?ttl=` (default tokenTtl, at most tokenMaxTtl — robotTokenMaxTtl for
 * robots); a token minted with a bearer token never outlives that token, so
 * a token cannot renew itself past its own expiry; and one minted through a
 * single sign-on sign-in never outlives the sign-in's bound. `?cluster=` narrows the
 * file to that one cluster's context (404 unless the caller reaches it).
 */
async function kubeconfig(call: ApiCall): Promise<void> {
  checkQuery(call.query, ['ttl', 'cluster']);
  const { settings: s, pool, tokens, caPem } = call.deps;
  const c = call.caller;
  const robot = c.kind === 'robot';
  const ttlMs = parseTtl(
    call.query.get('ttl') ?? undefined,
    robot ? s.robotTokenTtlMs : s.tokenTtlMs,
    robot ? s.robotTokenMaxTtlMs : s.tokenMaxTtlMs,
    'ttl',
  );
  // Single sign-on (issue #17): a token minted through a sign-in — in its
  // browser session, or with a token that sign-in minted — ends by the
  // sign-in's bound (auth_time + KUBEGATE_SSO_TOKEN_MAX_AGE), whatever ttl
  // was asked for, and its groups are refreshed with the sign-in.
  let notAfter = c.tokenExpiresAt;
  if (c.signinId) {
    const bound = await signinBound(pool, c.signinId);
    if (!bound)
      throw new KgError(
        'KG_ERR_UNAUTHENTICATED',
        'your single sign-on sign-in has ended; sign in again to get a new kubeconfig',
      );
    if (!notAfter || bound < notAfter) notAfter = bound;
  } else if (c.session && (!notAfter || c.session.tokensEndBy < notAfter)) {
    notAfter = c.session.tokensEndBy;
  }
  const only = call.query.get('cluster');
  let clusters = await clustersFor(pool, { user: c.name, groups: c.groups, kind: c.kind });
  if (only !== null) {
    if (!clusters.includes(only))
      throw new KgError('KG_ERR_NOT_FOUND', `you have no access to a cluster named "${only}"`);
    clusters = [only];
  }
  // The token and the audit record of its download commit together.
  const t = await inTransaction(pool, async (db) => {
    const minted = await tokens.create(
      {
        subject: c.name,
        kind: c.kind,
        groups: c.groups,
        ttlMs,
        description:
          c.via === 'session' ? 'kubeconfig (single sign-on)' : 'kubeconfig (from a token)',
        createdBy: c.actor,
        userId: c.userId,
        robotId: c.robotId,
        notAfter,
        signinId: c.signinId,
      },
      db,
    );
    await recordAdminEvent(db, {
      actor: c.actor,
      verb: 'download',
      resource: 'kubeconfigs',
      name: c.name,
      detail: {
        tokenId: minted.id,
        expiresAt: minted.expiresAt.toISOString(),
        clusters,
        via: c.via,
      },
      ...requestOrigin(call.req),
    });
    return minted;
  });
  const yaml = renderKubeconfig({
    publicUrl: s.publicUrl,
    clusters,
    user: c.name,
    token: t.token,
    ...(caPem ? { caPem } : {}),
  });
  call.log.info(
    { user: c.name, kind: c.kind, tokenId: t.id, clusters: clusters.length, via: c.via },
    'fleet kubeconfig issued',
  );
  call.res.writeHead(200, {
    'content-type': 'application/yaml; charset=utf-8',
    'content-length': String(Buffer.byteLength(yaml)),
    'content-disposition': `attachment; filename="${kubeconfigFilename(c.name, only ?? undefined)}"`,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-kubegate-token-id': t.id,
    'x-kubegate-token-expires': t.expiresAt.toISOString(),
    ...(notAfter &&
    t.expiresAt.getTime() === notAfter.getTime() &&
    ttlMs > notAfter.getTime() - Date.now()
      ? { 'x-kubegate-token-capped': c.signinId ? 'sso-sign-in' : 'parent-token' }
      : {}),
  });
  call.res.end(yaml);
}

async function myTokens(call: ApiCall): Promise<void> {
  checkQuery(call.query, ['include']);
  const include = call.query.get('include');
  if (include !== null && include !== 'inactive')
    throw new KgError('KG_ERR_BAD_REQUEST', 'include must be "inactive" (or absent)');
  const items = await listTokens(call.deps.pool, ownerOf(call.caller), include === 'inactive');
  writeJson(call.res, 200, {
    items: items.map((t) => ({ ...t, current: t.id === call.caller.tokenId })),
  });
}

async function revokeMine(call: ApiCall): Promise<void> {
  checkQuery(call.query, []);
  const id = pathParam(call, 0);
  const owner = call.caller.admin ? undefined : ownerOf(call.caller);
  const r = await revokeToken(call.deps.pool, id, owner);
  if (r === 'missing') throw new KgError('KG_ERR_NOT_FOUND', `no token ${id} of yours`);
  if (r === 'revoked') {
    call.log.info({ actor: call.caller.actor, tokenId: id }, 'token revoked');
    if (call.caller.admin)
      await recordChange(call.deps.pool, call.caller.actor, 'delete', 'token', id, undefined, {
        revoked: true,
      });
  }
  writeNoContent(call.res);
}

export const selfRoutes: readonly RouteSpec<ApiCall>[] = [
  {
    path: '/api/v1/me',
    tag: 'identity',
    methods: {
      GET: {
        access: 'caller',
        summary:
          'Who the caller is: name, groups, admin, recording viewer, the clusters they reach (and CSRF token)',
        handle: me,
      },
    },
  },
  {
    path: '/api/v1/kubeconfig',
    tag: 'identity',
    methods: {
      GET: {
        access: 'caller',
        summary: 'The fleet kubeconfig (YAML) with a freshly minted token',
        query: ['ttl', 'cluster'],
        handle: kubeconfig,
      },
    },
  },
  {
    path: '/api/v1/tokens',
    tag: 'identity',
    methods: {
      GET: {
        access: 'caller',
        summary: "The caller's own tokens",
        query: ['include'],
        handle: myTokens,
      },
    },
  },
  {
    path: '/api/v1/tokens/{id}',
    tag: 'identity',
    methods: {
      DELETE: {
        access: 'caller',
        summary: "Revoke one of your tokens (admins: anyone's)",
        responses: { 204: 'revoked' },
        handle: revokeMine,
      },
    },
  },
];
