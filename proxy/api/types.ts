/**
 * Types shared by the admin API's resource modules: what they need from the
 * proxy (ApiDeps), the per-request state every resource handler gets
 * (ApiCall, one typed object) and the shape of an admin-only operation.
 */
import type { Logger } from '../../common/log.js';
import type { BaseCall, BodySpec, Operation } from '../http/routes.js';
import type { TokenStore } from '../authn/token-store.js';
import type { Pool } from '../db/pool.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/response.js';
import type { RbacStore } from '../rbac/rbac-store.js';

/** What `POST /api/v1/clusters` needs to write a cluster's bootstrap YAML. */
export interface BootstrapDeps {
  /** host:port agents dial (config `tunnelAddress`). */
  tunnelAddress: string;
  /** host:port agents enroll and renew at (config `enrollAddress`, see enrollAddressOf). */
  enrollAddress: string;
  /** The internal server CA the agent pins (`cas.server.certPem`). */
  serverCaPem: string;
  /** Lifetime of the one-time bootstrap token (config `bootstrapTokenTtl`). */
  bootstrapTokenTtlMs: number;
  /** Agent container image (config `agentImage`). */
  agentImage: string;
}

/** Who is calling, as authentication resolved it. */
export interface ApiCaller {
  user: string;
  kind: 'user' | 'robot';
  groups: string[];
  /** Who the admin change log names: `user:alice`, `robot:ci`. */
  actor: string;
}

export interface ApiDeps {
  pool: Pool;
  tokens: TokenStore;
  /** Identities with a group in this list may use the admin API; empty = nobody. */
  adminGroups: readonly string[];
  log: Logger;
  bootstrap: BootstrapDeps;
  /** Largest accepted request body in bytes; default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Resolve the caller or throw (401). Default: `Authorization: Bearer kg_…`
   * through authenticate(). Swap in a resolver that also accepts console
   * session cookies only together with its CSRF checks.
   */
  authenticate?: (req: AnyRequest) => Promise<ApiCaller>;
  /**
   * Standalone use only (createApiHandler): where requests for paths this
   * API does not serve go, before any authentication; default: 404 for an
   * admin, 401/403 for anyone else. The proxy serves every API from one
   * route table instead.
   */
  fallback?: (req: AnyRequest, res: AnyResponse) => void;
  /**
   * Ask a cluster's agent a control question over a tunnel (GET `path`);
   * undefined when no tunnel for it is reachable from this replica.
   */
  askAgent?: (cluster: string, path: string) => Promise<unknown>;
  /** Replicas whose heartbeat is older than this do not count for cluster health; default 10 s. */
  replicaStaleAfterMs?: number;
}

/** One API request, as every resource handler sees it. */
export interface ApiCall extends BaseCall {
  caller: ApiCaller;
  /** Who the admin change log names: `user:alice`, `robot:ci`. */
  actor: string;
  store: RbacStore;
  deps: ApiDeps;
}

export type Handler = (call: ApiCall) => Promise<void>;

/** An admin-only operation of this API. */
export function admin(
  summary: string,
  handle: Handler,
  more: Omit<Operation<ApiCall>, 'access' | 'summary' | 'handle'> = {},
): Operation<ApiCall> {
  return { access: 'admin', summary, ...more, handle };
}

/** A JSON body (any value; the stores validate its shape, 422). */
export const jsonBody: BodySpec = {};
