/**
 * Query parameters: each endpoint names the ones it takes and anything else
 * is a 400, so a typo (`?subjet=`) is an error rather than an unfiltered list.
 */
import { KgError } from '../../common/errors.js';
import { maxLimit, type PageRequest } from '../rbac/records.js';

const paging = ['limit', 'continue'];

/** Refuse parameters outside `allowed`, and repeats of single-valued ones. */
export function checkQuery(
  query: URLSearchParams,
  allowed: readonly string[],
  repeatable: readonly string[] = [],
): void {
  const unknown = new Set<string>();
  const repeated = new Set<string>();
  for (const key of query.keys()) {
    if (!allowed.includes(key)) unknown.add(key);
    else if (!repeatable.includes(key) && query.getAll(key).length > 1) repeated.add(key);
  }
  if (unknown.size > 0) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `unknown query parameter(s): ${[...unknown].join(', ')}${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ' (this endpoint takes none)'}`,
    );
  }
  if (repeated.size > 0) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `query parameter(s) given more than once: ${[...repeated].join(', ')}`,
    );
  }
}

/** `limit` (1..500, default 100) and `continue`, plus the endpoint's own filters. */
export function pageParams(query: URLSearchParams, filters: readonly string[] = []): PageRequest {
  checkQuery(query, [...paging, ...filters]);
  const page: PageRequest = {};
  const limit = query.get('limit');
  if (limit !== null) {
    const n = /^\d{1,4}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= maxLimit)) {
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        `limit must be a whole number from 1 to ${maxLimit}; got ${JSON.stringify(limit)}`,
      );
    }
    page.limit = n;
  }
  const cont = query.get('continue');
  if (cont !== null && cont !== '') page.continue = cont;
  return page;
}

/** An optional single-valued filter; empty counts as absent. */
export function optional(query: URLSearchParams, name: string): string | undefined {
  const v = query.get(name);
  return v === null || v === '' ? undefined : v;
}

/** An optional filter restricted to `values`. */
export function oneOf<T extends string>(
  query: URLSearchParams,
  name: string,
  values: readonly T[],
): T | undefined {
  const v = optional(query, name);
  if (v === undefined) return undefined;
  if (!(values as readonly string[]).includes(v)) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `${name} must be one of ${values.join(', ')}; got ${JSON.stringify(v)}`,
    );
  }
  return v as T;
}
