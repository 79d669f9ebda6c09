/**
 * What identity's `/api/v1/` handlers get and the parameter helpers they
 * share (query parameters: proxy/api/params.ts; path parameters: `pathParam` in proxy/http/routes.ts). Each route says who may call it (proxy/http/routes.ts); the guard
 * in handler.ts checks that, and CSRF, before a handler runs.
 */
import { parseDuration } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { BaseCall } from '../http/routes.js';
import type { TokenStore } from '../authn/token-store.js';
import type { Pool } from '../db/pool.js';
import type { Caller } from './caller.js';
import type { IdentitySettings } from './settings.js';
import type { RecordingAccess } from '../recording/access.js';

export interface IdentityApiDeps {
  pool: Pool;
  tokens: TokenStore;
  settings: IdentitySettings;
  /** The CA kubectl must trust for the front, when it is private. */
  caPem: string | undefined;
  log: Logger;
  /** Who may watch session recordings (the console shows Recordings to them). */
  recordings?: RecordingAccess | undefined;
}

/** What identity's handlers get: the dispatcher's call, the caller and identity's dependencies. */
export interface ApiCall extends BaseCall {
  caller: Caller;
  deps: IdentityApiDeps;
}

/** A lifetime like `8h` within (0, max]; `fallback` when absent. */
export function parseTtl(raw: unknown, fallback: number, max: number, what: string): number {
  if (raw === undefined || raw === null || raw === '') return fallback;
  const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
  if (ms === undefined || ms <= 0)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `${what} must be a duration like 30m, 8h or 7d; got ${JSON.stringify(raw)}`,
    );
  if (ms > max)
    throw new KgError(
      'KG_ERR_VALIDATION',
      `${what} ${String(raw)} is longer than the maximum an admin allows (${Math.floor(max / 60_000)} minutes)`,
    );
  return ms;
}
