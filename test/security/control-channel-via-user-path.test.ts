/**
 * Attack (issue #17 item 3): the agent's control API reached through the
 * user path. As a user bound to cluster-admin, `GET /k8s/dev/.kubegate/v1/jit-accounts`
 * returned the agent's JIT state and `POST /k8s/dev/.kubegate/v1/grants` with
 * `[{"user":"bob@example.com","groups":[],"grants":[]}]` deleted bob's
 * just-in-time account. Now the route stage refuses every spelling of the
 * reserved prefixes with a Kubernetes Status, before authentication, and
 * the agent answers control paths only on streams the proxy marks as its own
 * (the pure rules: test/unit/agent-control-channel.test.ts). Real stack: the
 * proxy, the agent, a real kube-apiserver, PostgreSQL and kubectl.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { serviceAccountName } from '../../agent/jit/names.js';

let stack: Stack;
let admin: { kubeconfig: string };
let ca: string;
let rootToken: string;
let rootKc: string;
let bobKc: string;
const bobSa = serviceAccountName('user', 'bob@example.com');

const tokenOf = (kubeconfig: string) =>
  /token: (kg_\S+)/.exec(readFileSync(kubeconfig, 'utf8'))![1]!;

/**
 * One request with the path sent byte for byte (a URL string would be
 * normalised by the client: `/./` and `..` gone before the proxy sees them).
 */
function raw(
  path: string,
  opts: { token?: string; method?: string; body?: string } = {},
): Promise<{ status: number; body: string }> {
  const u = new URL(stack.publicUrl);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        hostname: u.hostname,
        port: u.port,
        path,
        method: opts.method ?? 'GET',
        ca,
        agent: false,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.body ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** What the agent's control API would have answered. */
const agentState = /"accounts"\s*:|"mode"\s*:|"ok"\s*:\s*true|"applied"/;

async function bobAccount(): Promise<string[]> {
  const r = await kubectl(
    ['get', 'serviceaccount', bobSa, '-n', 'kubegate-system', '-o', 'name'],
    admin,
  );
  return r.code === 0 ? [r.stdout.trim()] : [];
}

describe(
  'the agent control API is not reachable through the user path',
  { timeout: 300_000 },
  () => {
    before(async () => {
      stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
      admin = { kubeconfig: stack.cluster.kubeconfig };
      ca = readFileSync(stack.agentEnv.get('dev')!.KUBEGATE_PROXY_CA_FILE!, 'utf8');
      await grant(stack, { users: ['root@example.com'], role: 'cluster-admin', clusters: ['dev'] });
      await grant(stack, { users: ['bob@example.com'], role: 'view', clusters: ['dev'] });
      rootKc = await stack.kubeconfig('root@example.com', ['kubegate-admins']);
      rootToken = tokenOf(rootKc);
      bobKc = await stack.kubeconfig('bob@example.com');
      // bob has a just-in-time account on the cluster now.
      await kubectlOk(['get', 'pods', '-n', 'default'], { kubeconfig: bobKc });
      assert.deepEqual(await bobAccount(), [`serviceaccount/${bobSa}`]);
    });
    after(async () => {
      await stack?.stop();
    });

    test('GET …/.kubegate/v1/jit-accounts as cluster-admin: 404 Status, no agent state', async () => {
      const r = await raw('/k8s/dev/.kubegate/v1/jit-accounts', { token: rootToken });
      assert.equal(r.status, 404, r.body);
      const s = JSON.parse(r.body) as { kind: string; reason: string; message: string };
      assert.equal(s.kind, 'Status');
      assert.equal(s.reason, 'NotFound');
      assert.match(s.message, /reserved for kubegate's agent control channel/);
      assert.doesNotMatch(r.body, agentState);
      assert.doesNotMatch(r.body, /kg-u-/);
    });

    test("POST …/.kubegate/v1/grants rewriting bob's account: refused, in every spelling; bob keeps his account", async () => {
      const body = JSON.stringify([{ user: 'bob@example.com', groups: [], grants: [] }]);
      const spellings: [string, number][] = [
        ['/.kubegate/v1/grants', 404],
        ['/.KUBEGATE/v1/grants', 404],
        ['/.KubeGate/v1/grants', 404],
        ['/%2Ekubegate/v1/grants', 404],
        ['/%2ekubegate/v1/grants', 404],
        ['/.kubegate/v1/grants?x=1', 404],
        ['/.kg-cancel', 404],
        ['//.kubegate/v1/grants', 400],
        ['/./.kubegate/v1/grants', 400],
        ['/api/../.kubegate/v1/grants', 400],
        ['/%2F.kubegate/v1/grants', 400],
        ['/api%2F..%2F.kubegate/v1/grants', 400],
      ];
      for (const [path, want] of spellings) {
        const r = await raw(`/k8s/dev${path}`, { token: rootToken, method: 'POST', body });
        assert.equal(r.status, want, `${path}: ${r.body}`);
        assert.equal((JSON.parse(r.body) as { kind: string }).kind, 'Status', path);
        assert.doesNotMatch(r.body, agentState, path);
      }
      // Refused before authentication too: no token, the same 404.
      const anon = await raw('/k8s/dev/.kubegate/v1/grants', { method: 'POST', body });
      assert.equal(anon.status, 404);
      // bob's account and bindings are untouched, and he works as before.
      await new Promise((r) => setTimeout(r, 500));
      assert.deepEqual(await bobAccount(), [`serviceaccount/${bobSa}`]);
      await kubectlOk(['get', 'pods', '-n', 'default'], { kubeconfig: bobKc });
    });

    test('kubectl get --raw on the reserved path prints the NotFound Status', async () => {
      const r = await kubectl(['get', '--raw', '/.kubegate/v1/jit-accounts'], {
        kubeconfig: rootKc,
      });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /NotFound|not found/i);
      assert.doesNotMatch(r.stdout, agentState);
    });

    test('every refusal is audited', async () => {
      await until(
        async () =>
          (
            await stack.sql<{ n: string }>(
              `SELECT count(*) AS n FROM audit_events WHERE stage = 'ResponseComplete' AND code = 404 AND event->>'requestURI' LIKE '%kubegate%'`,
            )
          )[0]!.n !== '0',
        10_000,
        'audit events of the refusals',
      );
    });

    test("the proxy's own control messages still work (admin API reads the agent's JIT accounts)", async () => {
      const r = await httpGet(`${stack.publicUrl}/api/v1/clusters/dev/jit-accounts`, {
        token: rootToken,
        ca,
      });
      assert.equal(r.status, 200, r.body);
      const report = JSON.parse(r.body) as { mode: string; accounts: { user?: string }[] };
      assert.equal(report.mode, 'jit');
      assert.ok(
        report.accounts.some((a) => a.user === 'bob@example.com'),
        r.body,
      );
    });
  },
);
