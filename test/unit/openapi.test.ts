/**
 * The OpenAPI document is generated from the route table the front serves:
 * every route appears with every method it takes (and nothing else), the
 * document is OpenAPI 3.1 in shape, it is served without credentials, and a
 * new route entry shows up in it with nothing else to do.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { openApiDocument, openApiPath } from '../../proxy/http/openapi.js';
import { methods, mount, type Route } from '../../proxy/http/routes.js';
import { featureRoutes, testApi } from '../support/route-table.js';

type Doc = {
  openapi: string;
  info: Record<string, unknown>;
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: {
    securitySchemes: Record<string, unknown>;
    responses: Record<string, unknown>;
  };
};

const operationKeys = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options', 'trace'];

/** The structural rules of OpenAPI 3.1 this document relies on (a subset of the schema). */
function shapeProblems(doc: Doc): string[] {
  const problems: string[] = [];
  if (!/^3\.1\.\d+$/.test(doc.openapi)) problems.push(`openapi is ${doc.openapi}`);
  if (typeof doc.info?.title !== 'string' || typeof doc.info?.version !== 'string')
    problems.push('info needs title and version strings');
  const ids = new Set<string>();
  for (const [path, item] of Object.entries(doc.paths)) {
    if (!path.startsWith('/')) problems.push(`path ${path} does not start with /`);
    const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    const declared = ((item.parameters ?? []) as unknown as { name: string; in: string }[])
      .filter((p) => p.in === 'path')
      .map((p) => p.name);
    assert.deepEqual(declared, templated, `${path}: path parameters match the template`);
    for (const [key, op] of Object.entries(item)) {
      if (key === 'parameters') continue;
      if (!operationKeys.includes(key)) {
        problems.push(`${path}: ${key} is not an operation`);
        continue;
      }
      const id = op.operationId as string;
      if (ids.has(id)) problems.push(`operationId ${id} twice`);
      ids.add(id);
      const responses = op.responses as Record<string, unknown> | undefined;
      if (!responses || Object.keys(responses).length === 0)
        problems.push(`${key} ${path}: no responses`);
      for (const status of Object.keys(responses ?? {}))
        if (status !== 'default' && !/^[1-5](\d\d|XX)$/.test(status))
          problems.push(`${key} ${path}: response key ${status}`);
      for (const sec of (op.security ?? []) as Record<string, unknown>[])
        for (const name of Object.keys(sec))
          if (!(name in doc.components.securitySchemes))
            problems.push(`${key} ${path}: unknown security scheme ${name}`);
    }
  }
  // Every $ref points at something in the document.
  const walk = (v: unknown) => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (v === null || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (k === '$ref') {
        const target = String(x)
          .replace(/^#\//, '')
          .split('/')
          .reduce<unknown>((o, seg) => (o as Record<string, unknown> | undefined)?.[seg], doc);
        if (target === undefined) problems.push(`dangling $ref ${String(x)}`);
      } else walk(x);
    }
  };
  walk(doc);
  return problems;
}

describe('the OpenAPI document', () => {
  let server: Server;
  let base = '';
  before(async () => {
    server = createServer(testApi());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  test('is served at /api/v1/openapi.json without credentials', async () => {
    const res = await fetch(base + openApiPath);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    const doc = (await res.json()) as Doc;
    assert.deepEqual(shapeProblems(doc), []);
    assert.ok(doc.paths[openApiPath]?.get, 'the document describes itself');
    const post = await fetch(base + openApiPath, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET');
  });

  test('every route in the table, with exactly its methods and who may call them', async () => {
    const routes = featureRoutes();
    assert.ok(routes.length >= 30, `the table has every feature (${routes.length} routes)`);
    const doc = (await (await fetch(base + openApiPath)).json()) as Doc;
    for (const route of routes) {
      const item = doc.paths[route.path];
      assert.ok(item, `${route.path} is documented`);
      const documented = Object.keys(item).filter((k) => k !== 'parameters');
      const served = methods.filter((m) => route.ops[m]).map((m) => m.toLowerCase());
      assert.deepEqual(documented.sort(), served.sort(), route.path);
      for (const m of methods) {
        const op = route.ops[m];
        if (!op) continue;
        const d = item[m.toLowerCase()]!;
        assert.equal(d['x-kubegate-access'], op.access, `${m} ${route.path}`);
        assert.equal(d.summary, op.summary);
        assert.equal(op.summary.length > 0, true, `${m} ${route.path} has a summary`);
        if (op.access === 'public') assert.deepEqual(d.security, []);
        else assert.ok((d.security as unknown[]).length > 0, `${m} ${route.path} needs a caller`);
        assert.equal(d.requestBody !== undefined, op.body !== undefined, `${m} ${route.path} body`);
      }
    }
    assert.equal(Object.keys(doc.paths).length, routes.length + 1, 'nothing else is documented');
  });

  test('a new route entry appears in the document with nothing else to do', () => {
    const extra = mount(
      [
        {
          path: '/api/v1/widgets/{name}',
          tag: 'widgets',
          methods: {
            GET: { access: 'caller', summary: 'One widget', handle: async () => {} },
            PUT: {
              access: 'admin',
              summary: 'Replace a widget',
              body: { object: true },
              handle: async () => {},
            },
          },
        },
      ],
      async () => ({}),
    );
    const doc = openApiDocument([...featureRoutes(), ...extra] as Route[]) as unknown as Doc;
    assert.deepEqual(shapeProblems(doc), []);
    const item = doc.paths['/api/v1/widgets/{name}']!;
    assert.deepEqual(Object.keys(item).sort(), ['get', 'parameters', 'put']);
    assert.equal(item.put!['x-kubegate-access'], 'admin');
    assert.ok(item.put!.requestBody);
  });
});
