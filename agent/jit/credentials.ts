/**
 * Credentials of JIT accounts: short-lived TokenRequest tokens, kept in
 * memory only, on each subject's in-memory entry. A token is refreshed with a
 * fifth of its lifetime left, well before the apiserver would refuse it.
 */
import type * as k8s from '@kubernetes/client-node';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { statusCode } from '../kube-client.js';

/** The token state of one account. */
export interface TokenSlot {
  token?: string;
  tokenRefreshAt: number;
  tokenExpiresAt: number;
}

export interface Credential {
  token: string;
  /** `system:serviceaccount:<ns>:<name>`, for audit. */
  username: string;
}

export interface TokenIssuerDeps {
  core: k8s.CoreV1Api;
  namespace: string;
  /** TokenRequest lifetime; the apiserver's minimum is 600 s. */
  tokenSeconds: number;
  log: Logger;
  /** Running totals, shared with the account manager. */
  stats: { tokenRequests: number; reconcileErrors: number };
}

export class TokenIssuer {
  constructor(private readonly deps: TokenIssuerDeps) {}

  /** True when the slot holds a token that is not yet due for refresh. */
  fresh(slot: TokenSlot): boolean {
    return !!slot.token && Date.now() < slot.tokenRefreshAt;
  }

  /** Forget the slot's token: the next request asks for a new one. */
  forget(slot: TokenSlot): void {
    slot.token = undefined;
    slot.tokenRefreshAt = 0;
  }

  /** Ask for a token for `account` unless the slot's is still fresh. Apiserver errors are thrown as they come. */
  async refresh(account: string, slot: TokenSlot): Promise<void> {
    if (this.fresh(slot)) return;
    const tr = await this.deps.core.createNamespacedServiceAccountToken({
      name: account,
      namespace: this.deps.namespace,
      body: { spec: { audiences: [], expirationSeconds: this.deps.tokenSeconds } },
    });
    this.deps.stats.tokenRequests++;
    const token = tr.status?.token;
    if (!token) throw new KgError('KG_ERR_UPSTREAM', 'TokenRequest returned no token');
    const expires = tr.status?.expirationTimestamp
      ? new Date(tr.status.expirationTimestamp).getTime()
      : Date.now() + this.deps.tokenSeconds * 1000;
    slot.token = token;
    slot.tokenExpiresAt = expires;
    // Refresh with a fifth of the lifetime left, well before the apiserver would refuse it.
    slot.tokenRefreshAt = Date.now() + ((expires - Date.now()) * 4) / 5;
  }

  /** A failed TokenRequest as the error the user sees (a KgError passes through). */
  error(user: string, err: unknown): KgError {
    if (err instanceof KgError) return err;
    this.deps.stats.reconcileErrors++;
    this.deps.log.warn({ user, status: statusCode(err) }, 'JIT TokenRequest failed');
    return new KgError(
      'KG_ERR_UPSTREAM',
      `kubegate agent could not get a token for the cluster identity of "${user}" (apiserver status ${statusCode(err) ?? 'none'}); retry, or check the agent's RBAC`,
      { cause: err },
    );
  }
}
