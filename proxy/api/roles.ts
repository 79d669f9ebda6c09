/**
 * `/api/v1/roles`: the built-in roles (read-only) and custom roles.
 * PUT replaces a custom role's description and rules; DELETE is refused while
 * bindings use the role.
 */
import { KgError } from '../../common/errors.js';
import { sendJson } from './json.js';
import { pageParams } from './params.js';
import type { RouteSpec } from '../http/routes.js';
import { admin, type ApiCall } from './types.js';
import { createOne, deleteOne, findOne, updateOne } from './operations.js';

const collection = '/api/v1/roles';

async function getOne(call: ApiCall) {
  const { found: role } = await findOne(
    call,
    (name) => call.store.getRole(name),
    (name) => new KgError('KG_ERR_NOT_FOUND', `role "${name}" does not exist`),
  );
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
      POST: createOne(
        'Create a custom role',
        (call, body) => call.store.createRole(body, call.actor),
        (role) => `${collection}/${role.name}`,
        'the new role',
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
