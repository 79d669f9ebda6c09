/**
 * `/api/v1/roles`: the built-in roles (read-only) and custom roles.
 * PUT replaces a custom role's description and rules; DELETE is refused while
 * bindings use the role.
 */
import { KgError } from '../../common/errors.js';
import { sendCreated, sendJson } from './json.js';
import { checkQuery, pageParams } from './params.js';
import type { RouteSpec } from '../http/routes.js';
import { admin, jsonBody, type ApiCall } from './types.js';
import { deleteOne, updateOne } from './operations.js';

const collection = '/api/v1/roles';

async function getOne(call: ApiCall) {
  checkQuery(call.query, []);
  const name = call.params[0]!;
  const role = await call.store.getRole(name);
  if (!role) throw new KgError('KG_ERR_NOT_FOUND', `role "${name}" does not exist`);
  sendJson(call, role, role.version);
}

export const roleRoutes: RouteSpec<ApiCall>[] = [
  {
    path: collection,
    tag: 'rbac',
    methods: {
      GET: admin(
        'Roles, built-in and custom',
        async (call) => sendJson(call, await call.store.listRoles(pageParams(call.query))),
        { query: ['limit', 'continue'] },
      ),
      POST: admin(
        'Create a custom role',
        async (call) => {
          checkQuery(call.query, []);
          const role = await call.store.createRole(await call.readBody(), call.actor);
          sendCreated(call, role, role.version, `${collection}/${role.name}`);
        },
        { body: jsonBody, responses: { 201: 'the new role' } },
      ),
    },
  },
  {
    path: `${collection}/{name}`,
    tag: 'rbac',
    methods: {
      GET: admin('One role', getOne),
      PUT: updateOne(
        "Replace a custom role's description and rules (If-Match)",
        (call, name, body, change) => call.store.updateRole(name, body, change),
      ),
      DELETE: deleteOne('Delete a custom role no binding uses (If-Match)', (call, name, change) =>
        call.store.deleteRole(name, change),
      ),
    },
  },
];
