/**
 * `/api/v1/changes`: the admin change log — RBAC and identity changes —
 * newest first (filters kind, name, actor).
 */
import { loggedKinds } from '../rbac/records.js';
import { sendJson } from './json.js';
import { oneOf, optional, pageParams } from './params.js';
import type { RouteSpec } from '../http/routes.js';
import { admin, type ApiCall } from './types.js';

export const changeRoutes: RouteSpec<ApiCall>[] = [
  {
    path: '/api/v1/changes',
    tag: 'rbac',
    methods: {
      GET: admin(
        'The admin change log, newest first',
        async (call) => {
          const page = pageParams(call.query, ['kind', 'name', 'actor']);
          const result = await call.store.listChanges({
            ...page,
            kind: oneOf(call.query, 'kind', loggedKinds),
            name: optional(call.query, 'name'),
            actor: optional(call.query, 'actor'),
          });
          sendJson(call, result);
        },
        { query: ['kind', 'name', 'actor', 'limit', 'continue'] },
      ),
    },
  },
];
