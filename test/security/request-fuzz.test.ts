/**
 * Property-based attack on the request path (fast-check), through the real
 * stack over HTTP/1.1 and HTTP/2: hostile methods, paths (encoded dots and
 * slashes, reserved prefixes, NUL, non-ASCII, very long), queries (repeated,
 * reordered, badly encoded), headers (impersonation, kubegate's own kg-*,
 * huge) and bodies (20,000 deep, 50,000 wide, megabytes, invalid UTF-8,
 * duplicate keys), from four identities: none, an unknown token, a viewer,
 * and an editor fenced to one namespace.
 *
 * For every generated request: it is answered; it has exactly one final
 * audit event; kubegate never allowed what the central policy (evaluated
 * here, independently, from the same database) denies; and no proxy or
 * agent process ends. The number of requests tried is printed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import fc from 'fast-check';
import pg from 'pg';
import { startStack, type Stack } from '../support/stack.js';
import { grant } from '../support/grants.js';
import { kubectlOk } from '../support/kubectl.js';
import { credsOf, rawRequest } from '../support/creds.js';
import { loadPolicy } from '../../proxy/authz/policy-store.js';
import { routeKubeRequest } from '../../proxy/route/kube-path.js';
import { requestInfo } from '../../proxy/authz/request-info.js';
import { authorize } from '../../proxy/authz/authorizer.js';
import type { Identity } from '../../proxy/authz/types.js';

const RUNS = Number(process.env.KG_FUZZ_RUNS ?? 300);

interface Who {
  name: string;
  token?: string;
  identity?: Identity;
}

interface Hostile {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Outcome {
  req: Hostile;
  who: Who;
  transport: 'h1' | 'h2';
  status: number;
  auditId?: string;
  error?: string;
}

let stack: Stack;
let ca: Buffer;
let who: Who[] = [];
let session: http2.ClientHttp2Session | undefined;

// ---------------------------------------------------------------------------
// generators

const segment = fc.oneof(
  fc.constantFrom(
    'api',
    'apis',
    'v1',
    'apps',
    'namespaces',
    'fuzz',
    'default',
    'kube-system',
    'pods',
    'secrets',
    'configmaps',
    'nodes',
    'proxy',
    'exec',
    'watch',
    'status',
    'serviceaccounts',
    'token',
    'rbac.authorization.k8s.io',
    'clusterrolebindings',
    '.',
    '..',
    '%2e%2e',
    '%2E',
    '%2F',
    '%252F',
    '.kubegate',
    '%2ekubegate',
    'v1',
    '',
    '%00',
    '%ZZ',
    '%',
    'x;y',
    'a?b',
    '%C3%BC',
    '%FF',
    'web',
    'cm1',
  ),
  fc.string({ maxLength: 12 }).map(encodeURIComponent),
  fc.constant('a'.repeat(300)),
);

const clusterPart = fc.constantFrom(
  '/k8s/dev',
  '/k8s/dev',
  '/k8s/dev',
  '/k8s/prod',
  '/k8s//dev',
  '/k8s/dev%2F..',
  '/k8s/DEV',
  '/k8s/dev/.',
  '/k8s/.kubegate',
);

const query = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'watch',
        'labelSelector',
        'fieldSelector',
        'dryRun',
        'propagationPolicy',
        'command',
        'limit',
        'continue',
        'timeoutSeconds',
        '%ZZ',
        '',
        'resourceVersion',
      ),
      fc.oneof(
        fc.constantFrom(
          '1',
          'true',
          'false',
          'All',
          'Orphan',
          'metadata.name%3Dweb',
          'a%3Db,c!%3Dd',
          '%',
          '-1',
          '99999999999999999999',
          'id',
          'sh',
        ),
        fc.string({ maxLength: 8 }).map(encodeURIComponent),
      ),
    ),
    { maxLength: 6 },
  )
  .map((pairs) => (pairs.length ? '?' + pairs.map(([k, v]) => `${k}=${v}`).join('&') : ''));

const headerSets = fc
  .subarray([
    ['impersonate-user', 'admin'],
    ['impersonate-group', 'system:masters'],
    ['impersonate-uid', '0'],
    ['kg-impersonated-as', 'system:admin'],
    ['kg-grants', '[{"role":"cluster-admin"}]'],
    ['kg-control', '1'],
    ['x-remote-user', 'admin'],
    ['x-forwarded-for', '10.0.0.1'],
    ['content-type', 'application/json'],
    ['content-type', 'application/yaml'],
    ['content-type', 'application/vnd.kubernetes.protobuf'],
    ['content-type', 'application/apply-patch+yaml'],
    ['accept', 'application/json;as=Table;v=v1;g=meta.k8s.io'],
    ['accept', 'application/vnd.kubernetes.protobuf'],
    ['x-huge', 'h'.repeat(8000)],
  ] as [string, string][])
  .map((pairs) => Object.fromEntries(pairs) as Record<string, string>);

function deep(n: number, open: string, close: string): Buffer {
  return Buffer.from(open.repeat(n) + close.repeat(n));
}

const body = fc.oneof(
  fc.constant(undefined),
  fc.constant(undefined),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => deep(n, '[', ']')),
  fc.integer({ min: 1000, max: 20_000 }).map((n) => deep(n, '{"a":', '}').subarray(0)),
  fc
    .integer({ min: 1000, max: 50_000 })
    .map((n) =>
      Buffer.from('{' + Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',') + '}'),
    ),
  fc.integer({ min: 1, max: 4 }).map((mb) => Buffer.alloc(mb * 1024 * 1024, 0x41)),
  fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((a) => Buffer.from(a)),
  fc.constant(Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0x7b, 0x22, 0xed, 0xa0, 0x80, 0x22])),
  fc.constant(
    Buffer.from(
      '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm1","namespace":"fuzz"},"metadata":{"name":"cm2","namespace":"kube-system"},"data":{"a":"1"}}',
    ),
  ),
  fc.constant(
    Buffer.from('apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm3, namespace: fuzz}\n'),
  ),
);

const hostile: fc.Arbitrary<Hostile> = fc.record({
  method: fc.constantFrom(
    'GET',
    'GET',
    'HEAD',
    'POST',
    'PUT',
    'PATCH',
    'DELETE',
    'OPTIONS',
    'PROPFIND',
  ),
  path: fc
    .tuple(clusterPart, fc.array(segment, { maxLength: 8 }), query)
    .map(([c, segs, q]) => `${c}/${segs.join('/')}${q}`),
  headers: headerSets,
  body,
});

// ---------------------------------------------------------------------------
// sending

function h2(): http2.ClientHttp2Session {
  if (!session || session.closed || session.destroyed) {
    session = http2.connect(stack.publicUrl, { ca });
    session.on('error', () => undefined);
  }
  return session;
}

function sendH2(r: Hostile, w: Who): Promise<Outcome> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (o: Partial<Outcome>) => {
      if (done) return;
      done = true;
      resolve({ req: r, who: w, transport: 'h2', status: 0, ...o });
    };
    let stream: http2.ClientHttp2Stream;
    try {
      stream = h2().request(
        {
          ':method': r.method,
          ':path': r.path,
          ...(w.token ? { authorization: `Bearer ${w.token}` } : {}),
          ...r.headers,
        },
        // node:http2 closes the writable side of GET/HEAD/DELETE by default; a body must say so.
        { endStream: r.body === undefined },
      );
    } catch (e) {
      finish({ status: -1, error: `client refused to send: ${(e as Error).message}` });
      return;
    }
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      finish({ error: 'no answer in 30 s' });
    }, 30_000);
    stream.on('response', (h) => {
      const status = Number(h[':status']);
      const auditId = h['audit-id'] as string | undefined;
      stream.resume();
      stream.on('end', () => {
        clearTimeout(timer);
        finish({ status, auditId });
      });
      stream.on('close', () => {
        clearTimeout(timer);
        finish({ status, auditId });
      });
    });
    stream.on('error', (e) => {
      clearTimeout(timer);
      finish({ error: e.message });
    });
    if (r.body !== undefined) stream.end(r.body);
  });
}

async function sendH1(r: Hostile, w: Who): Promise<Outcome> {
  try {
    const a = await rawRequest(stack.publicUrl, ca, {
      method: r.method,
      path: r.path,
      token: w.token,
      headers: r.headers,
      body: r.body,
      timeoutMs: 30_000,
    });
    return {
      req: r,
      who: w,
      transport: 'h1',
      status: a.status,
      auditId: a.headers['audit-id'] as string | undefined,
    };
  } catch (e) {
    // Node's own client refuses some hostile requests before sending (invalid header bytes).
    const notSent = /^ERR_(INVALID|HTTP_INVALID)/.test((e as { code?: string }).code ?? '');
    return {
      req: r,
      who: w,
      transport: 'h1',
      status: notSent ? -1 : 0,
      error: (e as Error).message,
    };
  }
}

/** The central policy, evaluated here from the database: would it allow this? */
async function centralAllows(db: pg.Client, r: Hostile, w: Who): Promise<boolean> {
  if (!w.identity) return false;
  let route;
  let info;
  try {
    route = routeKubeRequest(r.path);
    info = requestInfo(r.method, route.kubePath, route.rawQuery, {
      upgrade: /upgrade/i.test(r.headers.connection ?? ''),
    });
  } catch {
    return false;
  }
  const state = await loadPolicy(db);
  const cluster = state.clusters.get(route.cluster);
  if (!cluster || cluster.disabled) return false;
  return authorize(state.snapshot, w.identity, info, cluster, new Date()).allowed;
}

describe('fuzzing the request path', { timeout: 1_800_000 }, () => {
  before(async () => {
    stack = await startStack({
      log: (m) => process.stderr.write(`# ${m}\n`),
      proxyEnv: { KUBEGATE_AUDIT_STRICT: 'false' },
    });
    await grant(stack, { groups: ['viewers'], role: 'view', clusters: ['dev'] });
    await grant(stack, {
      groups: ['editors'],
      role: 'edit',
      clusters: ['dev'],
      namespaces: ['fuzz'],
    });
    // Straight to the cluster (its own admin kubeconfig): the namespace the editor may write in.
    await kubectlOk(['create', 'namespace', 'fuzz'], { kubeconfig: stack.cluster.kubeconfig });
    const viewer = await stack.kubeconfig('vera', ['viewers']);
    const editor = await stack.kubeconfig('eddie', ['editors']);
    ca = credsOf(viewer).ca;
    who = [
      { name: 'no token' },
      { name: 'unknown token', token: `kg_${'A'.repeat(43)}` },
      {
        name: 'viewer',
        token: credsOf(viewer).token,
        identity: { user: 'vera', groups: ['viewers'], kind: 'user' },
      },
      {
        name: 'editor',
        token: credsOf(editor).token,
        identity: { user: 'eddie', groups: ['editors'], kind: 'user' },
      },
    ];
  });
  after(async () => {
    session?.destroy();
    await stack?.stop();
  });

  test(`${RUNS} generated hostile requests: answered, audited once, never an allow the policy denies, nobody dies`, async () => {
    const db = new pg.Client({ connectionString: stack.databaseUrl });
    await db.connect();
    const outcomes: Outcome[] = [];
    const wrongAllows: string[] = [];
    try {
      await fc.assert(
        fc.asyncProperty(
          hostile,
          fc.integer({ min: 0, max: 3 }),
          fc.boolean(),
          async (r, wi, useH2) => {
            const w = who[wi]!;
            const o = useH2 ? await sendH2(r, w) : await sendH1(r, w);
            outcomes.push(o);
            const allowed = await centralAllows(db, r, w);
            if (!allowed && o.auditId) {
              // Kubegate's own record of its decision for this request.
              for (let i = 0; i < 40; i++) {
                const rows = await db.query<{ decision: string }>(
                  "SELECT decision FROM audit_events WHERE audit_id = $1::uuid AND stage = 'ResponseComplete'",
                  [o.auditId],
                );
                if (rows.rows.length) {
                  if (rows.rows.some((x) => x.decision === 'allow'))
                    wrongAllows.push(`${w.name} ${r.method} ${r.path} → ${o.status}`);
                  break;
                }
                await new Promise((res) => setTimeout(res, 250));
              }
            }
            assert.equal(stack.proxy.child.exitCode, null, 'the proxy is running');
            assert.equal(stack.agents.get('dev')!.child.exitCode, null, 'the agent is running');
          },
        ),
        { numRuns: RUNS, endOnFailure: true },
      );
      const unanswered = outcomes.filter((o) => o.status === 0);
      const byCode = new Map<number, number>();
      for (const o of outcomes) byCode.set(o.status, (byCode.get(o.status) ?? 0) + 1);
      console.log(
        `# fuzz: ${outcomes.length} requests generated, ${outcomes.filter((o) => o.status === -1).length} refused by Node's own client before sending (${outcomes.filter((o) => o.transport === 'h2').length} over HTTP/2); statuses ${JSON.stringify(Object.fromEntries(byCode))}`,
      );
      for (const u of unanswered.slice(0, 10))
        console.log(
          `# unanswered (${u.transport}, ${u.who.name}): ${u.req.method} ${u.req.path.slice(0, 120)}: ${u.error}`,
        );
      assert.deepEqual(wrongAllows, [], 'kubegate allowed what the central policy denies');
      // Every answered request has exactly one final audit event.
      const ids = outcomes.filter((o) => o.auditId).map((o) => o.auditId!);
      assert.equal(
        ids.length,
        outcomes.filter((o) => o.status !== 0).length,
        'every answer names its audit id',
      );
      let counts = new Map<string, number>();
      for (let i = 0; i < 60; i++) {
        const rows = await db.query<{ id: string; n: string }>(
          "SELECT audit_id::text AS id, count(*) AS n FROM audit_events WHERE audit_id = ANY($1::uuid[]) AND stage = 'ResponseComplete' GROUP BY audit_id",
          [ids],
        );
        counts = new Map(rows.rows.map((x) => [x.id, Number(x.n)]));
        if (counts.size === new Set(ids).size) break;
        await new Promise((res) => setTimeout(res, 500));
      }
      const missing = ids.filter((id) => !counts.has(id));
      const doubled = [...counts].filter(([, n]) => n !== 1);
      console.log(
        `# audit: ${ids.length} answers, ${missing.length} without an event, ${doubled.length} with more than one`,
      );
      assert.equal(missing.length, 0);
      assert.equal(doubled.length, 0);
      assert.equal(unanswered.length, 0, 'every request is answered');
    } finally {
      await db.end();
    }
  });
});
