/**
 * The shapes every admin resource shares: replace or patch one object under
 * If-Match, delete one under If-Match. A resource module names the store call;
 * the checks, the order they run in and the answer are the same everywhere.
 */
import type { ChangeOptions } from '../rbac/changes.js';
import type { BodySpec, Operation } from '../http/routes.js';
import { ifMatchVersion, sendJson, sendNoContent } from './json.js';
import { checkQuery } from './params.js';
import { admin, jsonBody, type ApiCall } from './types.js';

/** PUT or PATCH `{collection}/{key}`: no query, If-Match, a JSON body; the new object with its ETag. */
export function updateOne<T extends { version: number }>(
  summary: string,
  update: (call: ApiCall, key: string, body: unknown, change: ChangeOptions) => Promise<T>,
  body: BodySpec = jsonBody,
): Operation<ApiCall> {
  return admin(
    summary,
    async (call) => {
      checkQuery(call.query, []);
      const version = ifMatchVersion(call);
      const change = { actor: call.actor, version };
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
      checkQuery(call.query, []);
      const version = ifMatchVersion(call);
      await remove(call, call.params[0]!, { actor: call.actor, version });
      sendNoContent(call);
    },
    { responses: { 204: 'deleted' } },
  );
}
