/**
 * The OpenAPI 3.1 document of the REST API, generated from the same route
 * table the dispatcher serves, so an endpoint cannot exist undocumented.
 * Served at `GET /api/v1/openapi.json` without credentials: it describes
 * endpoints, never data, and which paths and methods exist is already
 * answered to anyone (404 and 405 come before authentication).
 */
import { version } from '../../common/version.js';
import { writeJson } from './json-body.js';
import type { Logger } from '../../common/log.js';
import {
  createDispatcher,
  methods,
  mount,
  type Access,
  type Dispatcher,
  type Route,
  type RouteSpec,
} from './routes.js';

export const openApiPath = '/api/v1/openapi.json';

const errorStatuses: Readonly<Record<Access, Record<string, string>>> = {
  public: {},
  caller: {
    '401': 'no valid credentials (bearer token or signed-in session)',
    '403': 'refused (a cross-site browser request or a missing CSRF token)',
  },
  admin: {
    '401': 'no valid credentials (bearer token or signed-in session)',
    '403': 'not a member of an admin group (or a CSRF refusal)',
  },
};

const problem = { $ref: '#/components/responses/Problem' };

/** The document for `routes`. */
export function openApiDocument(routes: readonly Route[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const item: Record<string, unknown> = {};
    if (route.paramNames.length > 0) {
      item.parameters = route.paramNames.map((name) => ({
        name,
        in: 'path',
        required: true,
        schema: { type: 'string' },
      }));
    }
    for (const method of methods) {
      const op = route.ops[method];
      if (!op) continue;
      const responses: Record<string, unknown> = {};
      const own = Object.entries(op.responses ?? {});
      if (!own.some(([s]) => s.startsWith('2'))) responses['200'] = { description: 'success' };
      for (const [status, description] of own) responses[status] = { description };
      for (const [status, description] of Object.entries(errorStatuses[op.access]))
        responses[status] = { ...problem, description };
      responses.default = problem;
      item[method.toLowerCase()] = {
        operationId: `${method.toLowerCase()} ${route.path}`,
        summary: op.summary,
        tags: [route.tag],
        'x-kubegate-access': op.access,
        security: op.access === 'public' ? [] : [{ bearer: [] }, { session: [] }],
        ...(op.query?.length
          ? {
              parameters: op.query.map((name) => ({
                name,
                in: 'query',
                required: false,
                schema: { type: 'string' },
              })),
            }
          : {}),
        ...(op.body
          ? {
              requestBody: {
                required: !op.body.optional,
                content: Object.fromEntries(
                  (op.body.types ?? ['application/json']).map((t) => [
                    t,
                    { schema: op.body?.object ? { type: 'object' } : {} },
                  ]),
                ),
              },
            }
          : {}),
        responses,
      };
    }
    paths[route.path] = item;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'kubegate REST API',
      version,
      description:
        'Every endpoint under /api/v1/. Errors are problem JSON (RFC 9457) with a kubegate `code`.',
    },
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'A kubegate token (kg_…), from `kubegate admin token create` or a kubeconfig.',
        },
        session: {
          type: 'apiKey',
          in: 'cookie',
          name: '__Host-kg_session',
          description:
            'The web console session. Cross-site requests are refused; every change needs X-CSRF-Token (from GET /api/v1/me).',
        },
      },
      responses: {
        Problem: {
          description: 'an error',
          content: {
            'application/problem+json': {
              schema: {
                type: 'object',
                required: ['type', 'title', 'status', 'detail', 'code'],
                properties: {
                  type: { type: 'string' },
                  title: { type: 'string' },
                  status: { type: 'integer' },
                  detail: { type: 'string' },
                  code: { type: 'string' },
                  instance: { type: 'string' },
                },
              },
            },
          },
        },
      },
    },
  };
}

/**
 * The document's own route, describing `routes` and itself. The document is
 * built once, on the first request.
 */
export function openApiRoutes(routes: readonly Route[]): Route[] {
  let doc: Record<string, unknown> | undefined;
  const spec: RouteSpec<{ res: Parameters<typeof writeJson>[0] }> = {
    path: openApiPath,
    tag: 'meta',
    methods: {
      GET: {
        access: 'public',
        summary: 'This document: the OpenAPI 3.1 description of every endpoint',
        handle: async (call) => {
          writeJson(call.res, 200, (doc ??= openApiDocument([...routes, ...self])));
        },
      },
    },
  };
  const self = mount([spec], async () => {
    throw new Error('a public route has no guard');
  });
  return self;
}

/**
 * The front's REST API: one dispatcher over every feature's routes plus the
 * document that describes them, so nothing is served undocumented.
 */
export function createRestApi(routes: readonly Route[], log: Logger): Dispatcher {
  return createDispatcher([...routes, ...openApiRoutes(routes)], { log });
}
