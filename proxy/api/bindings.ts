/**
 * `/api/v1/bindings`: list (filters subject, subjectKind, role, cluster;
 * paginated in creation order), get, create, replace (PUT) and delete, plus
 * `/api/v1/bindings/preview`: the bindings in effect for an identity on a
 * cluster, as the authorizer would see them now.
 */
import { KgError } from '../../common/errors.js';
import type { Identity } from '../authz/types.js';
import { sendJson } from './json.js';
import { checkQuery, oneOf, optional, pageParams } from './params.js';
import type { RouteSpec } from '../http/routes.js';
import { admin, type ApiCall } from './types.js';
import { createOne, deleteOne, findOne, updateOne } from './operations.js';

const collection = '/api/v1/bindings';
const subjectKinds = ['Group', 'User', 'Robot'] as const;

async function list(call: ApiCall) {
  const page = pageParams(call.query, ['subject', 'subjectKind', 'role', 'cluster']);
  const subjectKind = oneOf(call.query, 'subjectKind', subjectKinds);
  const subject = optional(call.query, 'subject');
  if (subjectKind && subject === undefined) {
    throw new KgError('KG_ERR_BAD_REQUEST', 'subjectKind narrows subject; give subject too');
  }
  const result = await call.store.listBindings({
    ...page,
    subject,
    subjectKind,
    role: optional(call.query, 'role'),
    cluster: optional(call.query, 'cluster'),
  });
  sendJson(call, result);
}

async function preview(call: ApiCall) {
  checkQuery(call.query, ['user', 'kind', 'group', 'cluster'], ['group']);
  const user = optional(call.query, 'user');
  const cluster = optional(call.query, 'cluster');
  if (user === undefined || cluster === undefined) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      'preview needs user and cluster (and optionally kind=user|robot and group, repeated)',
    );
  }
  const who: Identity = {
    user,
    kind: oneOf(call.query, 'kind', ['user', 'robot'] as const) ?? 'user',
    groups: call.query.getAll('group').filter((g) => g !== ''),
  };
  sendJson(call, { items: await call.store.previewBindings(who, cluster) });
}

export const bindingRoutes: RouteSpec<ApiCall>[] = [
  {
    path: collection,
    tag: 'rbac',
    methods: {
      GET: admin('Bindings, in creation order', list, {
        query: ['subject', 'subjectKind', 'role', 'cluster', 'limit', 'continue'],
      }),
      POST: createOne(
        'Create a binding',
        (call, body) => call.store.createBinding(body, call.actor),
        (b) => `${collection}/${b.id}`,
        'the new binding',
      ),
    },
  },
  {
    path: `${collection}/preview`,
    tag: 'rbac',
    methods: {
      GET: admin('The bindings that apply to an identity on a cluster', preview, {
        query: ['user', 'cluster', 'kind', 'group'],
      }),
    },
  },
  {
    path: `${collection}/{id}`,
    tag: 'rbac',
    methods: {
      GET: admin('One binding', async (call) => {
        const { found: b } = await findOne(
          call,
          (id) => call.store.getBinding(id),
          (id) => new KgError('KG_ERR_NOT_FOUND', `binding "${id}" does not exist`),
        );
        sendJson(call, b, b.version);
      }),
      PUT: updateOne('Replace a binding (If-Match)', (call, id, body, change) =>
        call.store.updateBinding(id, body, change),
      ),
      DELETE: deleteOne('Delete a binding (If-Match)', (call, id, change) =>
        call.store.deleteBinding(id, change),
      ),
    },
  },
];
