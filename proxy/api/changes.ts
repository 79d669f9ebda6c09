/**
 * `/api/v1/changes`: the admin change log — RBAC and identity changes —
 * newest first (filters kind, name, actor).
 */
import { loggedKinds } from '../rbac/records.js';
import { sendJson } from './json.js';
import { oneOf, optional, pageParams } from './params.js';
import type { Route } from './types.js';

export const changeRoutes: Route[] = [
  {
    pattern: /^\/api\/v1\/changes$/,
    methods: {
      GET: async (call) => {
        const page = pageParams(call.query, ['kind', 'name', 'actor']);
        const result = await call.store.listChanges({
          ...page,
          kind: oneOf(call.query, 'kind', loggedKinds),
          name: optional(call.query, 'name'),
          actor: optional(call.query, 'actor'),
        });
        sendJson(call, result);
      },
    },
  },
];
