/**
 * The shapes every admin resource shares: replace or patch one object under
 * If-Match, delete one under If-Match. A resource module names the store call;
 * the checks, the order they run in and the answer are the same everywhere.
 */
import type { ChangeOptions } from '../rbac/changes.js';
import type { BodySpec, Operation } from '../http/routes.js';
import type { KgError } from '../../common/errors.js';
import { ifMatchVersion, sendCreated, sendJson, sendNoContent } from './json.js';
import { checkQuery } from './params.js';
import { admin, jsonBody, type ApiCall } from './types.js';

/**
 * The object `{collection}/{key}` names, with no query parameters allowed;
 * the 404 `missing` says what is not there.
 */
export async function findOne<T>(
  call: ApiCall,
  get: (key: string) => Promise<T | undefined>,
  missing: (key: string) => KgError,
): Promise<{ key: string; found: T }> {
  checkQuery(call.query, []);
  const key = call.params[0]!;
  const found = await get(key);
  if (found === undefined) throw missing(key);
  return { key, found };
}

/** POST `{collection}`: no query, a JSON body; 201 with the new object, its ETag and Location. */
export function createOne<T extends { version: number }>(
  summary: string,
  create: (call: ApiCall, body: unknown) => Promise<T>,
  location: (created: T) => string,
  what: string,
): Operation<ApiCall> {
  return admin(
    summary,
    async (call) => {
      checkQuery(call.query, []);
      const created = await create(call, await call.readBody());
      sendCreated(call, created, created.version, location(created));
    },
    { body: jsonBody, responses: { 201: what } },
  );
}

/** A change to one object: no query parameters, and the version it was read at (If-Match). */
function changeOf(call: ApiCall): ChangeOptions {
  checkQuery(call.query, []);
  return { actor: call.actor, version: ifMatchVersion(call) };
}

/** PUT or PATCH `{collection}/{key}`: no query, If-Match, a JSON body; the new object with its ETag. */
export function updateOne<T extends { version: number }>(
  summary: string,
  update: (call: ApiCall, key: string, body: unknown, change: ChangeOptions) => Promise<T>,
  body: BodySpec = jsonBody,
): Operation<ApiCall> {
  return admin(
    summary,
    async (call) => {
      const change = changeOf(call);
      const updated = await update(call, call.params[0]!, await call.readBody(), change);
      sendJson(call, updated, updated.version);
    },
    { body },
  );
}

/** DELETE `{collection}/{key}`: no query, If-Match; 204. */
export function deleteOne(
  summary: string,
  remove: (call: ApiCall, key: string, change: ChangeOptions) => Promise<void>,
): Operation<ApiCall> {
  return admin(
    summary,
    async (call) => {
      await remove(call, call.params[0]!, changeOf(call));
      sendNoContent(call);
    },
    { responses: { 204: 'deleted' } },
  );
}
