/**
 * The shape of identity's `/api/v1/` routes and the parameter helpers they
 * share. Each route says whether it is for admins only; the handler checks
 * that (and CSRF) before a route runs.
 */
import { parseDuration } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { TokenStore } from '../authn/token-store.js';
import type { Pool } from '../db/pool.js';
import type { AnyRequest } from '../forward/forward.js';
import type { AnyResponse } from '../http/respond-error.js';
import type { Caller } from './caller.js';
import type { IdentitySettings } from './settings.js';

export interface IdentityApiDeps {
  pool: Pool;
  tokens: TokenStore;
  settings: IdentitySettings;
  /** The CA kubectl must trust for the front, when it is private. */
  caPem: string | undefined;
  log: Logger;
}

export interface ApiCall {
  req: AnyRequest;
  res: AnyResponse;
  path: string;
  params: string[];
  query: URLSearchParams;
  caller: Caller;
  deps: IdentityApiDeps;
  log: Logger;
}

export type ApiMethod = 'GET' | 'POST' | 'DELETE';

export interface ApiRoute {
  pattern: RegExp;
  /** Only identities in an admin group. */
  admin: boolean;
  methods: Partial<Record<ApiMethod, (call: ApiCall) => Promise<void>>>;
}

/** Path parameter `i`, percent-decoded; a 400 when it does not decode. */
export function param(call: ApiCall, i: number): string {
  const raw = call.params[i] ?? '';
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new KgError('KG_ERR_BAD_PATH', `cannot decode path segment ${JSON.stringify(raw)}`);
  }
}

/** Refuse unknown or repeated query parameters: a typo is an error, not a silent default. */
export function checkQuery(query: URLSearchParams, allowed: readonly string[]): void {
  for (const key of new Set(query.keys())) {
    if (!allowed.includes(key))
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        `unknown query parameter "${key}"${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}`,
      );
    if (query.getAll(key).length > 1)
      throw new KgError('KG_ERR_BAD_REQUEST', `query parameter "${key}" given more than once`);
  }
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
