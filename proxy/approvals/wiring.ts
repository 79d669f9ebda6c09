/**
 * Approvals, assembled for the proxy: the request store, the gate the
 * request path calls (stage 4b), the REST API and the webhook deliverer.
 * `app.ts` calls `startApprovals` once and closes it on shutdown.
 */
import type { Logger } from '../../common/log.js';
import type { TokenStore } from '../authn/token-store.js';
import type { Pool } from '../db/pool.js';
import type { Route } from '../http/routes.js';
import type { IdentitySettings } from '../identity/settings.js';
import type { TunnelRegistry } from '../tunnel/registry.js';
import { approvalsRoutes } from './api.js';
import { ApprovalGate } from './gate.js';
import { Housekeeping } from './housekeeping.js';
import { Deliverer } from './notify.js';
import { ApprovalRequests } from './requests.js';

export interface ApprovalsDeps {
  pool: Pool;
  tokens: TokenStore;
  registry: TunnelRegistry;
  settings: IdentitySettings;
  masterKey: Buffer;
  /** Largest body of a gated request (held in memory while it is checked). */
  maxGatedBody: number;
  log: Logger;
}

export interface Approvals {
  gate: ApprovalGate;
  /** The REST API's routes, for the front's route table. */
  routes: Route[];
  /** Notifications were queued elsewhere (runbook runs): deliver them now. */
  notified(): void;
  close(): Promise<void>;
}

export function startApprovals(deps: ApprovalsDeps): Approvals {
  const log = deps.log.child({ part: 'approvals' });
  const publicUrl = deps.settings.publicUrl.replace(/\/+$/, '');
  const deliverer = new Deliverer({ pool: deps.pool, masterKey: deps.masterKey, log });
  deliverer.start();
  const queued = () => deliverer.kick();
  const requests = new ApprovalRequests(deps.pool, publicUrl, queued);
  const gate = new ApprovalGate({
    pool: deps.pool,
    registry: deps.registry,
    publicUrl,
    maxBody: deps.maxGatedBody,
    notice: (r) => requests.notice(r, 'approval.requested'),
    queued,
    sweep: (fingerprint) => requests.sweep(fingerprint),
    log,
  });
  const housekeeping = new Housekeeping({
    pool: deps.pool,
    noticeOf: (...a) => requests.notice(...a),
    queued,
    log,
  });
  housekeeping.start();
  const routes = approvalsRoutes({
    pool: deps.pool,
    tokens: deps.tokens,
    settings: deps.settings,
    requests,
    masterKey: deps.masterKey,
    log,
  });
  return {
    gate,
    routes,
    notified: queued,
    close: async () => {
      await housekeeping.stop();
      await deliverer.stop();
    },
  };
}
