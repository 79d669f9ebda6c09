/**
 * The requests in flight on this replica, so a policy change or a token
 * revocation can end the ones it no longer allows — open watches and exec
 * sessions included (docs/security.md, "Stale grants"): the registry, the
 * sweep that enforces it (`endStaleGrants`) and the reasons a client is told.
 */
import { authorize, isDeactivated } from './authz/authorizer.js';
import type { PolicySnapshot } from './authz/types.js';
import type { PolicyStore } from './authz/policy-store.js';
import type { RequestInfo } from './authz/request-info.js';
import type { TokenIdentity } from './authn/identity.js';
import type { EndReason } from './forward/end-status.js';
import type { Queryable } from './db/query.js';

export interface OpenRequest {
  cluster: string;
  identity: TokenIdentity;
  info: RequestInfo;
  /**
   * End it now. When `reason.refused`, the client is told why as the
   * apiserver would (a watch's ERROR event, exec's error channel;
   * forward/end-status.ts); otherwise it just sees its stream end.
   */
  end(reason: EndReason): void;
}

export class OpenRequests {
  private readonly open = new Set<OpenRequest>();

  add(r: OpenRequest): () => void {
    this.open.add(r);
    return () => this.open.delete(r);
  }

  get size(): number {
    return this.open.size;
  }

  /** End every open request for which `stillAllowed` is false; returns how many ended. */
  sweep(
    stillAllowed: (r: OpenRequest) => boolean,
    reason: EndReason | ((r: OpenRequest) => EndReason),
  ): number {
    let n = 0;
    for (const r of [...this.open]) {
      if (!stillAllowed(r)) {
        this.open.delete(r);
        r.end(typeof reason === 'function' ? reason(r) : reason);
        n++;
      }
    }
    return n;
  }
}

/**
 * Keep `open` true to the policy: a revoked token ends its requests at once
 * (with the reason the database gives: the token, or its user or robot
 * deactivated); every policy change, and a timer every `everyMs` for
 * expiries, end those the policy no longer allows or whose token expired.
 * With no policy known yet nothing is allowed. Returns the timer's stop.
 */
export function endStaleGrants(deps: {
  open: OpenRequests;
  policy: Pick<PolicyStore, 'onTokenRevoked' | 'onChange' | 'lastKnown'>;
  /** Forget a revoked token in the authentication cache before the sweep. */
  evictToken(hash: string): void;
  pool: Queryable;
  everyMs?: number;
}): () => void {
  const { open, policy } = deps;
  policy.onTokenRevoked((hash) => {
    deps.evictToken(hash);
    void revocationReason(deps.pool, hash).then((reason) =>
      open.sweep((r) => r.identity.tokenHash !== hash, reason),
    );
  });
  const stillAllowed = (now: Date) => (r: OpenRequest) => {
    if (r.identity.expiresAt <= now) return false;
    const state = policy.lastKnown();
    const cluster = state?.clusters.get(r.cluster);
    return (
      !!state &&
      !!cluster &&
      !cluster.disabled &&
      authorize(state.snapshot, r.identity, r.info, cluster, now).allowed
    );
  };
  const sweepNow = () => {
    const now = new Date();
    const snapshot = policy.lastKnown()?.snapshot;
    open.sweep(stillAllowed(now), (r) => endReasons.notAllowed(r, now, snapshot));
  };
  policy.onChange(sweepNow);
  const timer = setInterval(sweepNow, deps.everyMs ?? 500);
  timer.unref();
  return () => clearInterval(timer);
}

/** What the client of an ended request is told (kubectl prints it). */
export const endReasons = {
  tokenRevoked: (): EndReason => ({
    refused: true,
    message:
      'token revoked: kubegate ended this request because the token it was made with was revoked; get a new kubeconfig to continue',
  }),
  userDeactivated: (user: string, kind: string): EndReason => ({
    refused: true,
    message: `${kind} deactivated: kubegate ended this request because ${kind} "${user}" was deactivated and their tokens revoked`,
  }),
  /**
   * The policy no longer allows it: its token expired, its user was
   * deactivated (the policy reload that shows it can arrive before the
   * token revocation does), or a binding was removed or changed, or the
   * cluster disabled.
   */
  notAllowed: (r: OpenRequest, now: Date, snapshot?: PolicySnapshot): EndReason => {
    if (r.identity.expiresAt <= now) {
      return {
        refused: true,
        message:
          'token expired: kubegate ended this request because the token it was made with expired; get a new kubeconfig to continue',
      };
    }
    if (snapshot && isDeactivated(snapshot, r.identity))
      return endReasons.userDeactivated(r.identity.user, 'user');
    const what = [r.info.verb, r.info.resource, r.info.subresource].filter(Boolean).join(' ');
    return {
      refused: true,
      message: `access removed: kubegate no longer allows "${r.identity.user}" to ${what} on cluster "${r.cluster}" (a binding was removed, changed or expired)`,
    };
  },
  /** The token of a console terminal (proxy/console/terminal.ts), revoked by signing out or by hand. */
  terminalEnded: (): EndReason => ({
    refused: true,
    message:
      'session ended: kubegate ended this terminal because its console session was signed out or its token revoked; sign in and open it again',
  }),
  shuttingDown: (): EndReason => ({ refused: false, message: 'the proxy is shutting down' }),
};

/**
 * Why a token was revoked, as far as the database says within `waitMs`: its
 * user or robot deactivated, or the token itself revoked.
 */
export async function revocationReason(
  pool: Queryable,
  hash: string,
  waitMs = 300,
): Promise<EndReason> {
  const lookup = pool
    .query<{ subject: string; subject_kind: string; inactive: boolean; terminal: boolean }>(
      `SELECT t.subject, t.subject_kind, t.description LIKE 'console terminal %' AS terminal,
              EXISTS (SELECT 1 FROM users u WHERE u.id = t.user_id AND NOT u.active)
              OR EXISTS (SELECT 1 FROM users u
                   WHERE t.subject_kind = 'user' AND u.username = t.subject AND NOT u.active)
              OR EXISTS (SELECT 1 FROM robots r WHERE r.id = t.robot_id AND NOT r.active)
              OR EXISTS (SELECT 1 FROM robots r
                   WHERE t.subject_kind = 'robot' AND r.name = t.subject AND NOT r.active)
                AS inactive
         FROM api_tokens t WHERE t.hash = $1`,
      [hash],
    )
    .then(({ rows }) => {
      const row = rows[0];
      if (row?.inactive)
        return endReasons.userDeactivated(
          row.subject,
          row.subject_kind === 'robot' ? 'robot' : 'user',
        );
      return row?.terminal ? endReasons.terminalEnded() : endReasons.tokenRevoked();
    })
    .catch(() => endReasons.tokenRevoked());
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<EndReason>((resolve) => {
    timer = setTimeout(() => resolve(endReasons.tokenRevoked()), waitMs);
  });
  try {
    return await Promise.race([lookup, late]);
  } finally {
    clearTimeout(timer);
  }
}
