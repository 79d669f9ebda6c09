/**
 * Just-in-time approvals end to end (issue #12): real kubectl, a real
 * apiserver behind the agent, PostgreSQL, the REST API, the CLI and the dev
 * IdP (oidc-provider): every person signs in with SSO, their groups come from
 * the provider's claims, and their kubectl uses the fleet kubeconfig the
 * console hands out.
 *
 * - access requests: a developer asks for `edit` on env=prod for 15 minutes,
 *   a lead approves (console session + CSRF token), the developer's kubectl
 *   apply works; once the grant expires both the proxy and the cluster refuse
 *   again;
 * - self-approval refused, a two-approver policy enforced, denial;
 * - a gated change (Ingress in prod): pending Status message, the diff for
 *   the approver, the identical request runs once, a different one does not;
 *   a request the cluster refuses (409) gives its approval back;
 * - expiry: an unanswered request expires with one audit event and one
 *   notification;
 * - webhooks: generic JSON and Slack payloads arrive, retried after a
 *   failure, and verify against their HMAC.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { parse } from 'yaml';
import { startStack, type Stack } from '../support/stack.js';
import { serviceAccountName } from '../../agent/jit/names.js';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { runKubegate } from '../support/proc.js';
import { Browser } from '../support/browser.js';
import { startStackIdp, type Idp } from '../support/idp.js';
import { signIn } from '../support/sso.js';
import { freePort } from '../support/ports.js';

let stack: Stack;
let idp: Idp;
let ca: string;
let admin: { kubeconfig: string };
let metricsPort = 0;

/** A signed-in person: their console session, and the fleet kubeconfig it gave them. */
interface Person {
  email: string;
  browser: Browser;
  csrf: string;
  kubeconfig: string;
  token: string;
  /** How `api` calls as them: the console session (cookie + CSRF) or their kubeconfig token. */
  via: 'session' | 'token';
}
const people: Record<string, Person> = {};
const kubeconfigs: Record<string, string> = {};
/** RBAC user names are the email claim. */
const user = (who: string) => people[who]!.email;

interface Hook {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  status: number;
}
const received: Hook[] = [];
let receiver: http.Server;
let failFirst = true;
const secrets: Record<string, string> = {};

const sa = (user: string) => serviceAccountName('user', user);

async function api(who: string, method: string, path: string, body?: unknown) {
  const p = people[who]!;
  const text = body !== undefined ? JSON.stringify(body) : undefined;
  let r: { status: number; body: string };
  if (p.via === 'session') {
    r = await p.browser.request(`${stack.publicUrl}${path}`, {
      method,
      headers: {
        ...(method === 'GET' ? {} : { 'x-csrf-token': p.csrf }),
        ...(text !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(text !== undefined ? { body: text } : {}),
    });
  } else {
    r = await httpGet(`${stack.publicUrl}${path}`, {
      ca,
      token: p.token,
      method,
      ...(text !== undefined ? { body: text } : {}),
      timeoutMs: 30_000,
    });
  }
  // The test reads answers field by field; their shapes are what it asserts.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return { status: r.status, json: r.body ? (JSON.parse(r.body) as Record<string, any>) : {} };
}

/** Sign in at the dev IdP, read the CSRF token, download the fleet kubeconfig. */
async function person(who: string, email: string, via: Person['via']): Promise<void> {
  const b = new Browser({ ca });
  const s = await signIn(b, stack.publicUrl, email);
  assert.equal(s.result!.status, 303, s.result!.body);
  const me = await b.request(`${stack.publicUrl}/api/v1/me`);
  assert.equal(me.status, 200, me.body);
  const csrf = (JSON.parse(me.body) as { csrfToken: string }).csrfToken;
  const kc = await b.request(`${stack.publicUrl}/api/v1/kubeconfig`);
  assert.equal(kc.status, 200, kc.body);
  const file = `${stack.dir}/${who}.kubeconfig`;
  writeFileSync(file, kc.body, { mode: 0o600 });
  const token = (parse(kc.body) as { users: { user: { token: string } }[] }).users[0]!.user.token;
  assert.match(token, /^kg_/);
  people[who] = { email, browser: b, csrf, kubeconfig: file, token, via };
  kubeconfigs[who] = file;
}

function manifest(name: string, kind: 'ConfigMap' | 'Ingress', value: string): string {
  const file = `${stack.dir}/${name}-${value}.yaml`;
  writeFileSync(
    file,
    kind === 'ConfigMap'
      ? `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: shop}\ndata: {v: "${value}"}\n`
      : `apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: ${name}, namespace: shop}\nspec:\n  rules:\n  - host: ${value}\n    http:\n      paths:\n      - path: /\n        pathType: Prefix\n        backend: {service: {name: web, port: {number: 80}}}\n`,
  );
  return file;
}

async function auditAnnotated(auditId: string) {
  const rows = await stack.sql<{ decision: string; annotations: Record<string, string> }>(
    `SELECT decision, event->'annotations' AS annotations FROM audit_events
      WHERE audit_id = $1 AND stage = 'ResponseComplete'`,
    [auditId],
  );
  return rows[0];
}

describe('just-in-time approvals', { timeout: 900_000 }, () => {
  before(async () => {
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        // The very first delivery fails, so the retry path is exercised.
        const status = failFirst ? 500 : 204;
        failFirst = false;
        received.push({ path: req.url ?? '', headers: req.headers, body, status });
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    metricsPort = await freePort();
    const sso = await startStackIdp();
    idp = sso.idp;
    // Approvers and a bystander; the developer and the admin are demo users.
    idp.addUser({ email: 'lead1@example.com', name: 'Lead One', groups: ['platform-leads'] });
    idp.addUser({ email: 'lead2@example.com', name: 'Lead Two', groups: ['platform-leads'] });
    idp.addUser({ email: 'bob@example.com', name: 'Bob', groups: ['sre'] });
    stack = await startStack({
      clusters: [{ name: 'prod', labels: { env: 'prod' } }],
      proxyEnv: { ...sso.proxyEnv, KUBEGATE_METRICS_LISTEN: `127.0.0.1:${metricsPort}` },
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    assert.equal(stack.publicUrl, sso.publicUrl);
    ca = (
      await stack.sql<{ cert_pem: string }>(`SELECT cert_pem FROM ca_keys WHERE name = 'server'`)
    )[0]!.cert_pem;
    admin = { kubeconfig: stack.cluster.kubeconfig };
    await kubectlOk(['create', 'namespace', 'shop'], admin);
    // Standing access: everyone reads prod; nobody but admins changes it.
    await grant(stack, {
      groups: ['developers', 'platform-leads'],
      role: 'view',
      selector: { matchLabels: { env: 'prod' } },
    });
    await person('root', 'admin@example.com', 'session');
    await person('dev', 'dev@example.com', 'token');
    await person('lead1', 'lead1@example.com', 'session');
    await person('lead2', 'lead2@example.com', 'token');
    await person('bob', 'bob@example.com', 'token');
  });
  after(async () => {
    await stack?.stop();
    await idp?.close();
    receiver?.close();
  });

  test('webhooks and policies are admin-managed', async () => {
    const port = (receiver.address() as AddressInfo).port;
    const nope = await api('dev', 'POST', '/api/v1/approval-webhooks', {
      url: `http://127.0.0.1:${port}/x`,
    });
    assert.equal(nope.status, 403);
    for (const format of ['json', 'slack']) {
      const w = await api('root', 'POST', '/api/v1/approval-webhooks', {
        url: `http://127.0.0.1:${port}/${format}`,
        format,
      });
      assert.equal(w.status, 201, JSON.stringify(w.json));
      assert.ok(String(w.json.secret).length >= 32);
      secrets[format] = w.json.secret as string;
    }
    const bad = await api('root', 'POST', '/api/v1/approval-policies', {
      name: 'Bad Name',
      kind: 'access',
      roles: [],
      approvers: { groups: [] },
      clusters: {},
    });
    assert.equal(bad.status, 422);
    assert.ok((bad.json.problems as string[]).length >= 4, JSON.stringify(bad.json));
    const p = await api('root', 'POST', '/api/v1/approval-policies', {
      name: 'prod-edit',
      kind: 'access',
      description: 'platform leads approve edit in prod',
      approvers: { groups: ['platform-leads'] },
      roles: ['edit'],
      clusters: { selector: { matchLabels: { env: 'prod' } } },
      maxDuration: '1h',
    });
    assert.equal(p.status, 201, JSON.stringify(p.json));
    // The CLI writes policies straight to the database, like the other admin commands.
    const file = `${stack.dir}/two.yaml`;
    writeFileSync(
      file,
      'name: prod-admin\nkind: access\napprovers: {groups: [platform-leads], count: 2}\nroles: [admin]\nclusters: {selector: {matchLabels: {env: prod}}}\nnamespaces: [shop]\nmaxDuration: 30m\n',
    );
    await stack.admin(['approval', 'policy', 'apply', '--file', file]);
    const list = await api('dev', 'GET', '/api/v1/approval-policies');
    assert.deepEqual(
      (list.json.items as { name: string }[]).map((x) => x.name),
      ['prod-admin', 'prod-edit'],
    );
  });

  let accessId = '';

  test('a developer gets edit on env=prod for 15 minutes once a lead approves', async () => {
    const cm = manifest('settings', 'ConfigMap', 'one');
    const denied = await kubectl(['apply', '-f', cm], { kubeconfig: kubeconfigs.dev! });
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /Forbidden/);

    // Not covered by any policy: too long, and refused up front.
    const tooLong = await api('dev', 'POST', '/api/v1/approvals', {
      role: 'edit',
      clusters: { selector: { matchLabels: { env: 'prod' } } },
      duration: '2h',
      reason: 'x',
    });
    assert.equal(tooLong.status, 403);

    // Through the CLI, with the developer's own fleet kubeconfig.
    const r = await runKubegate(
      [
        'request',
        'create',
        '--kubeconfig',
        kubeconfigs.dev!,
        '--role',
        'edit',
        '--selector',
        'env=prod',
        '--namespace',
        'shop',
        '--duration',
        '15m',
        '--reason',
        'hotfix INC-42',
      ],
      {},
    );
    assert.equal(r.code, 0, r.stderr);
    accessId = r.stdout.trim();
    const mine = await api('dev', 'GET', `/api/v1/approvals/${accessId}`);
    assert.equal(mine.json.status, 'pending');
    assert.equal(mine.json.access.role, 'edit');
    assert.equal(mine.json.access.durationSeconds, 900);
    // Who asked, with the groups the IdP's claims gave them.
    assert.equal(mine.json.requester.name, 'dev@example.com');
    assert.deepEqual(mine.json.requester.groups, ['developers']);

    // Not an approver: cannot even see it. An approver sees it in their queue.
    assert.equal((await api('bob', 'GET', `/api/v1/approvals/${accessId}`)).status, 404);
    assert.equal(
      (await api('dev', 'POST', `/api/v1/approvals/${accessId}/approve`, {})).status,
      403,
    );
    const queue = await api('lead1', 'GET', '/api/v1/approvals?view=approvable');
    assert.ok((queue.json.items as { id: string }[]).some((x) => x.id === accessId));

    // lead1 decides in the console: a session cookie is not enough without the CSRF token.
    const forged = await people.lead1!.browser.request(
      `${stack.publicUrl}/api/v1/approvals/${accessId}/approve`,
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' },
    );
    assert.equal(forged.status, 403, forged.body);
    assert.match(forged.body, /CSRF/);
    const ok = await api('lead1', 'POST', `/api/v1/approvals/${accessId}/approve`, {
      reason: 'known incident',
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    assert.equal(ok.json.status, 'approved');
    const bindingId = ok.json.access.bindingId as string;
    const binding = await stack.sql<{ expires_at: Date; role: string }>(
      'SELECT expires_at, role FROM bindings WHERE id = $1',
      [bindingId],
    );
    assert.equal(binding[0]!.role, 'edit');
    const left = binding[0]!.expires_at.getTime() - Date.now();
    assert.ok(left > 14 * 60_000 && left <= 15 * 60_000, `expires in ${left} ms`);

    await until(
      async () => (await kubectl(['apply', '-f', cm], { kubeconfig: kubeconfigs.dev! })).code === 0,
      30_000,
      'apply after approval',
    );
    const data = await kubectlOk(
      ['get', 'configmap', 'settings', '-n', 'shop', '-o', 'jsonpath={.data.v}'],
      admin,
    );
    assert.equal(data, 'one');
    const rbs = await kubectlOk(['get', 'rolebindings', '-n', 'shop', '-o', 'json'], admin);
    assert.match(rbs, new RegExp(sa(user('dev'))));

    // The decision is in the audit log, with the approval and the binding.
    await until(
      async () =>
        (
          await stack.sql(
            `SELECT 1 FROM audit_events WHERE verb = 'approve'
              AND event->'annotations'->>'kubegate.dev/approval-id' = $1
              AND event->'annotations'->>'kubegate.dev/binding' = $2`,
            [accessId, bindingId],
          )
        ).length === 1,
      10_000,
      'approval audited',
    );

    // Expiry, shortened: both the proxy and the cluster refuse again.
    await stack.sql(`UPDATE bindings SET expires_at = now() + interval '2 seconds' WHERE id = $1`, [
      bindingId,
    ]);
    // Past the expiry, every write is refused (a new object each time, so
    // kubectl never answers "unchanged" without asking).
    await new Promise((r) => setTimeout(r, 2500));
    let attempt = 0;
    await until(
      async () => {
        const r2 = await kubectl(['create', 'configmap', `after-${attempt++}`, '-n', 'shop'], {
          kubeconfig: kubeconfigs.dev!,
        });
        // The proxy's own refusal (the apiserver never says "on cluster").
        return (
          r2.code !== 0 &&
          /is forbidden: User "dev@example\.com" cannot create .* on cluster "prod"/.test(r2.stderr)
        );
      },
      60_000,
      'proxy denies after expiry',
    );
    assert.equal(
      (
        await kubectl(['auth', 'can-i', 'create', 'configmaps', '-n', 'shop'], {
          kubeconfig: kubeconfigs.dev!,
        })
      ).stdout.split(/\s/)[0],
      'no',
    );
    await until(
      async () =>
        !(await kubectlOk(['get', 'rolebindings', '-n', 'shop', '-o', 'json'], admin)).includes(
          sa(user('dev')),
        ),
      60_000,
      'JIT RoleBinding removed',
    );
    const saToken = (
      await kubectlOk(['create', 'token', sa(user('dev')), '-n', 'kubegate-system'], admin)
    ).trim();
    const direct = `${stack.dir}/dev-direct`;
    writeFileSync(
      direct,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: ${stack.cluster.server}, certificate-authority: ${stack.cluster.caFile}}}]\nusers: [{name: u, user: {token: ${saToken}}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
    );
    const can = await kubectl(['auth', 'can-i', 'create', 'configmaps', '-n', 'shop'], {
      kubeconfig: direct,
    });
    assert.equal(can.stdout.split(/\s/)[0], 'no');
  });

  test('self-approval is refused; a two-approver policy needs two; a denial grants nothing', async () => {
    const own = await api('lead1', 'POST', '/api/v1/approvals', {
      role: 'edit',
      clusters: { names: ['prod'] },
      duration: '10m',
      reason: 'my own',
    });
    assert.equal(own.status, 201, JSON.stringify(own.json));
    const self = await api('lead1', 'POST', `/api/v1/approvals/${own.json.id}/approve`, {});
    assert.equal(self.status, 403);
    assert.match(self.json.detail, /your own request/);

    const two = await api('dev', 'POST', '/api/v1/approvals', {
      role: 'admin',
      clusters: { selector: { matchLabels: { env: 'prod' } } },
      namespaces: ['shop'],
      duration: '20m',
      reason: 'rotate certificates',
    });
    assert.equal(two.status, 201, JSON.stringify(two.json));
    const id = two.json.id as string;
    const first = await api('lead1', 'POST', `/api/v1/approvals/${id}/approve`, { reason: 'ok' });
    assert.equal(first.json.status, 'pending');
    assert.equal(first.json.access.bindingId, null);
    const again = await api('lead1', 'POST', `/api/v1/approvals/${id}/approve`, {});
    assert.equal(again.status, 409);
    const second = await api('lead2', 'POST', `/api/v1/approvals/${id}/approve`, { reason: 'ok' });
    assert.equal(second.json.status, 'approved');
    assert.equal((second.json.decisions as unknown[]).length, 2);
    assert.ok(second.json.access.bindingId);

    const deny = await api('dev', 'POST', '/api/v1/approvals', {
      role: 'edit',
      clusters: { names: ['prod'] },
      duration: '5m',
      reason: 'please',
    });
    const noReason = await api('lead2', 'POST', `/api/v1/approvals/${deny.json.id}/deny`, {});
    assert.equal(noReason.status, 422);
    const d = await api('lead2', 'POST', `/api/v1/approvals/${deny.json.id}/deny`, {
      reason: 'use the runbook',
    });
    assert.equal(d.json.status, 'denied');
    assert.equal(d.json.access.bindingId, null);
    const late = await api('lead1', 'POST', `/api/v1/approvals/${deny.json.id}/approve`, {});
    assert.equal(late.status, 409);
    const w = await api('dev', 'POST', `/api/v1/approvals/${own.json.id}/withdraw`, {});
    assert.equal(w.status, 404, 'only visible to its requester and approvers');
    const w2 = await api('lead1', 'POST', `/api/v1/approvals/${own.json.id}/withdraw`, {});
    assert.equal(w2.json.status, 'withdrawn');
  });

  test('editing an Ingress in prod waits for approval, then runs once, exactly as approved', async () => {
    await grant(stack, {
      groups: ['developers'],
      role: 'edit',
      clusters: ['prod'],
      namespaces: ['shop'],
    });
    await kubectlOk(['apply', '-f', manifest('web', 'Ingress', 'a.example.com')], admin);
    const gate = await api('root', 'POST', '/api/v1/approval-policies', {
      name: 'prod-ingress',
      kind: 'gate',
      approvers: { groups: ['platform-leads'] },
      clusters: { selector: { matchLabels: { env: 'prod' } } },
      resources: ['ingresses.networking.k8s.io'],
      window: '10m',
    });
    assert.equal(gate.status, 201, JSON.stringify(gate.json));
    // The gate is live on the proxy once a harmless gated request meets it.
    await until(
      async () =>
        /approval required/.test(
          (
            await kubectl(['delete', 'ingress', 'nothing-here', '-n', 'shop'], {
              kubeconfig: kubeconfigs.dev!,
            })
          ).stderr,
        ),
      30_000,
      'gate active',
    );

    const v2 = manifest('web', 'Ingress', 'b.example.com');
    const first = await kubectl(['apply', '-f', v2], { kubeconfig: kubeconfigs.dev! });
    assert.notEqual(first.code, 0);
    assert.match(first.stderr, /Forbidden/);
    assert.match(first.stderr, /approval required/);
    const id = /Approval ([0-9a-f-]{36}) is pending/.exec(first.stderr)?.[1];
    assert.ok(id, first.stderr);
    assert.match(first.stderr, new RegExp(`${stack.publicUrl}/api/v1/approvals/${id}`));
    assert.match(first.stderr, new RegExp(`kubegate request get ${id}`));
    // Asking again does not open a second approval.
    const retry = await kubectl(['apply', '-f', v2], { kubeconfig: kubeconfigs.dev! });
    assert.match(retry.stderr, new RegExp(`Approval ${id} is pending`));

    const seen = await api('lead1', 'GET', `/api/v1/approvals/${id}`);
    assert.equal(seen.json.kind, 'action');
    assert.equal(seen.json.requester.name, user('dev'));
    assert.equal(seen.json.action.verb, 'patch');
    assert.equal(seen.json.action.name, 'web');
    assert.equal(seen.json.action.cluster, 'prod');
    assert.match(seen.json.action.bodySha256, /^[0-9a-f]{64}$/);
    const diff = seen.json.diff as string;
    assert.match(diff, /^-\s+- host: a\.example\.com$/m, diff);
    assert.match(diff, /^\+\s+- host: b\.example\.com$/m, diff);
    assert.doesNotMatch(diff, /managedFields|resourceVersion/);
    // The refused attempt is in the audit log as a denial naming the approval.
    const reqAudit = seen.json.action.requestAuditId as string;
    await until(async () => !!(await auditAnnotated(reqAudit)), 10_000, 'request audited');
    const refused = (await auditAnnotated(reqAudit))!;
    assert.equal(refused.decision, 'deny');
    assert.equal(refused.annotations['kubegate.dev/approval-id'], id);
    assert.equal(
      await kubectlOk(
        ['get', 'ingress', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.rules[0].host}'],
        admin,
      ),
      'a.example.com',
    );

    const ok = await api('lead1', 'POST', `/api/v1/approvals/${id}/approve`, {
      reason: 'reviewed diff',
    });
    assert.equal(ok.json.status, 'approved', JSON.stringify(ok.json));
    const run = await kubectl(['apply', '-f', v2], { kubeconfig: kubeconfigs.dev! });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      await kubectlOk(
        ['get', 'ingress', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.rules[0].host}'],
        admin,
      ),
      'b.example.com',
    );
    const done = await api('dev', 'GET', `/api/v1/approvals/${id}`);
    assert.equal(done.json.status, 'executed');
    const execAudit = done.json.action.executionAuditId as string;
    await until(async () => !!(await auditAnnotated(execAudit)), 10_000, 'execution audited');
    const executed = (await auditAnnotated(execAudit))!;
    assert.equal(executed.decision, 'allow');
    assert.equal(executed.annotations['kubegate.dev/approval-id'], id);
    assert.equal(executed.annotations['kubegate.dev/approval'], 'executed');

    // A different body is a different request: a new approval, nothing changed.
    const v3 = await kubectl(['apply', '-f', manifest('web', 'Ingress', 'c.example.com')], {
      kubeconfig: kubeconfigs.dev!,
    });
    assert.notEqual(v3.code, 0);
    const id3 = /Approval ([0-9a-f-]{36}) is pending/.exec(v3.stderr)?.[1];
    assert.ok(id3 && id3 !== id, v3.stderr);
    assert.equal(
      await kubectlOk(
        ['get', 'ingress', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.rules[0].host}'],
        admin,
      ),
      'b.example.com',
    );

    // Exactly once: the very same bytes, sent twice after one approval.
    const path = `/k8s/prod/apis/networking.k8s.io/v1/namespaces/shop/ingresses/web`;
    const patch = (n: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const body = JSON.stringify({ metadata: { labels: { release: n } } });
        const req = https.request(
          `${stack.publicUrl}${path}`,
          {
            method: 'PATCH',
            ca,
            agent: false,
            headers: {
              authorization: `Bearer ${people.dev!.token}`,
              'content-type': 'application/merge-patch+json',
            },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    const p1 = await patch('r1');
    assert.equal(p1.status, 403);
    const pid = /Approval ([0-9a-f-]{36}) is pending/.exec(p1.body)![1]!;
    assert.equal(
      (await api('lead2', 'POST', `/api/v1/approvals/${pid}/approve`, {})).json.status,
      'approved',
    );
    assert.equal((await patch('r1')).status, 200);
    const p3 = await patch('r1');
    assert.equal(p3.status, 403, 'an approval is spent by its one execution');
    assert.notEqual(/Approval ([0-9a-f-]{36}) is pending/.exec(p3.body)![1], pid);
  });

  test('an approved request the cluster refuses (409) keeps its approval for a retry', async () => {
    const dup = manifest('web', 'Ingress', 'd.example.com');
    const ask = await kubectl(['create', '-f', dup], { kubeconfig: kubeconfigs.dev! });
    assert.notEqual(ask.code, 0);
    const id = /Approval ([0-9a-f-]{36}) is pending/.exec(ask.stderr)?.[1];
    assert.ok(id, ask.stderr);
    assert.equal((await api('lead2', 'POST', `/api/v1/approvals/${id}/approve`, {})).status, 200);
    // "web" exists: the apiserver refuses the create, and nothing changed.
    const refused = await kubectl(['create', '-f', dup], { kubeconfig: kubeconfigs.dev! });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /AlreadyExists|already exists/, refused.stderr);
    assert.doesNotMatch(refused.stderr, /approval required/, 'the gate let it through');
    await until(
      async () => (await api('dev', 'GET', `/api/v1/approvals/${id}`)).json.status === 'approved',
      15_000,
      'approval given back',
    );
    await until(
      async () =>
        (
          await stack.sql(
            `SELECT 1 FROM audit_events WHERE verb = 'return'
              AND event->'annotations'->>'kubegate.dev/approval-id' = $1`,
            [id],
          )
        ).length === 1,
      10_000,
      'give-back audited',
    );
    // Once the cause is gone, the same request runs on the same approval — once.
    await kubectlOk(['delete', 'ingress', 'web', '-n', 'shop'], admin);
    const run = await kubectl(['create', '-f', dup], { kubeconfig: kubeconfigs.dev! });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      await kubectlOk(
        ['get', 'ingress', 'web', '-n', 'shop', '-o', 'jsonpath={.spec.rules[0].host}'],
        admin,
      ),
      'd.example.com',
    );
    const done = await api('dev', 'GET', `/api/v1/approvals/${id}`);
    assert.equal(done.json.status, 'executed');
    const execAudit = done.json.action.executionAuditId as string;
    await until(async () => !!(await auditAnnotated(execAudit)), 10_000, 'execution audited');
    assert.equal(
      (await auditAnnotated(execAudit))!.annotations['kubegate.dev/approval'],
      'executed',
    );
  });

  test('an unanswered request expires once: one audit event, one notification', async () => {
    const r = await api('dev', 'POST', '/api/v1/approvals', {
      role: 'edit',
      clusters: { names: ['prod'] },
      duration: '5m',
      reason: 'will be forgotten',
    });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const id = r.json.id as string;
    // Shortened: the request is due now; no one reads it, the replica's sweep expires it.
    await stack.sql(
      `UPDATE approval_requests SET pending_until = now() - interval '1 second' WHERE id = $1`,
      [id],
    );
    const expiredIn = (h: Hook) => {
      const b = JSON.parse(h.body) as { type?: string; approval?: { id?: string } };
      return h.path === '/json' && b.type === 'approval.expired' && b.approval?.id === id;
    };
    await until(async () => received.some(expiredIn), 30_000, 'expiry notified');
    const row = await stack.sql<{ status: string }>(
      'SELECT status FROM approval_requests WHERE id = $1',
      [id],
    );
    assert.equal(row[0]!.status, 'expired');
    // Give later sweeps a chance to (wrongly) announce it again.
    await new Promise((res) => setTimeout(res, 6000));
    const deliveries = new Set(
      received.filter(expiredIn).map((h) => String(h.headers['x-kubegate-delivery'])),
    );
    assert.equal(deliveries.size, 1);
    const events = await stack.sql(
      `SELECT 1 FROM audit_events WHERE verb = 'expire'
        AND event->'annotations'->>'kubegate.dev/approval-id' = $1`,
      [id],
    );
    assert.equal(events.length, 1);
    assert.equal((await api('lead1', 'POST', `/api/v1/approvals/${id}/approve`, {})).status, 409);
  });

  test('approval metrics count what happened', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };
    assert.ok(
      value('kubegate_approval_gate_decisions_total{cluster="prod",decision="allowed_once"}') >= 3,
    );
    assert.ok(
      value('kubegate_approval_gate_decisions_total{cluster="prod",decision="pending"}') >= 5,
    );
    assert.ok(
      value('kubegate_approval_gate_decisions_total{cluster="prod",decision="returned"}') >= 1,
    );
    assert.ok(value('kubegate_approval_requests_total{kind="access",state="expired"}') >= 1);
    assert.ok(value('kubegate_approval_requests_total{kind="access",state="approved"}') >= 2);
    assert.ok(value('kubegate_approval_webhook_deliveries_total{result="failed"}') >= 1);
    assert.ok(value('kubegate_approval_webhook_deliveries_total{result="delivered"}') >= 5);
    assert.ok(
      value('kubegate_approval_decision_seconds_count{kind="access",decision="approved"}') >= 2,
    );
  });

  test('webhook deliveries are signed with HMAC-SHA256 and retried after a failure', async () => {
    await until(
      async () =>
        received.some((h) => h.status === 204 && JSON.parse(h.body).type === 'approval.approved'),
      30_000,
      'approval notifications',
    );
    assert.ok(received[0]!.status === 500, 'the first delivery was refused by the receiver');
    const firstId = received[0]!.headers['x-kubegate-delivery'];
    await until(
      async () =>
        received.some((h) => h.status === 204 && h.headers['x-kubegate-delivery'] === firstId),
      30_000,
      'the refused delivery retried',
    );
    let json = 0;
    let slack = 0;
    for (const h of received) {
      const format = h.path === '/slack' ? 'slack' : 'json';
      const ts = String(h.headers['x-kubegate-timestamp']);
      const want = Buffer.from(
        'v1=' + createHmac('sha256', secrets[format]!).update(`v1:${ts}:${h.body}`).digest('hex'),
      );
      const got = Buffer.from(String(h.headers['x-kubegate-signature']));
      assert.ok(want.length === got.length && timingSafeEqual(want, got), `signature of ${h.body}`);
      assert.ok(Math.abs(Date.now() / 1000 - Number(ts)) < 600);
      // A forged body does not verify.
      const forged = createHmac('sha256', secrets[format]!)
        .update(`v1:${ts}:${h.body}x`)
        .digest('hex');
      assert.notEqual(`v1=${forged}`, got.toString());
      const payload = JSON.parse(h.body);
      if (format === 'slack') {
        slack++;
        assert.equal(typeof payload.text, 'string');
        assert.equal(payload.blocks[0].type, 'section');
      } else {
        json++;
        assert.match(payload.type, /^approval\./);
        assert.match(payload.approval.url, /\/api\/v1\/approvals\//);
      }
    }
    assert.ok(json > 0 && slack > 0, `json ${json}, slack ${slack}`);
    const types = new Set(
      received.filter((h) => h.path === '/json').map((h) => JSON.parse(h.body).type as string),
    );
    for (const t of [
      'approval.requested',
      'approval.approved',
      'approval.denied',
      'approval.vote',
      'approval.expired',
    ])
      assert.ok(types.has(t), `saw ${t}: ${[...types].join(', ')}`);
  });
});
