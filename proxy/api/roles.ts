/**
 * `/api/v1/roles`: the built-in roles (read-only) and custom roles.
 * PUT replaces a custom role's description and rules; DELETE is refused while
 * bindings use the role.
 */
import { KgError } from '../../common/errors.js';
import { ifMatchVersion, readJson, sendCreated, sendJson, sendNoContent } from './json.js';
import { checkQuery, pageParams } from './params.js';
import type { ApiCall, Route } from './types.js';

const collection = '/api/v1/roles';

async function getOne(call: ApiCall) {
  checkQuery(call.query, []);
  const name = call.params[0]!;
  const role = await call.store.getRole(name);
  if (!role) throw new KgError('KG_ERR_NOT_FOUND', `role "${name}" does not exist`);
  sendJson(call, role, role.version);
}

export const roleRoutes: Route[] = [
  {
    pattern: /^\/api\/v1\/roles$/,
    methods: {
      GET: async (call) => sendJson(call, await call.store.listRoles(pageParams(call.query))),
      POST: async (call) => {
        checkQuery(call.query, []);
        const role = await call.store.createRole(await readJson(call), call.actor);
        sendCreated(call, role, role.version, `${collection}/${role.name}`);
      },
    },
  },
  {
    pattern: /^\/api\/v1\/roles\/([^/]+)$/,
    methods: {
      GET: getOne,
      PUT: async (call) => {
        checkQuery(call.query, []);
        const version = ifMatchVersion(call);
        const role = await call.store.updateRole(call.params[0]!, await readJson(call), {
          actor: call.actor,
          version,
        });
        sendJson(call, role, role.version);
      },
      DELETE: async (call) => {
        checkQuery(call.query, []);
        const version = ifMatchVersion(call);
        await call.store.deleteRole(call.params[0]!, { actor: call.actor, version });
        sendNoContent(call);
      },
    },
  },
];
