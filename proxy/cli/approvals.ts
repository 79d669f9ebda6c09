/**
 * `kubegate request …` — ask for access and decide approvals as yourself,
 * through the proxy's REST API with the token of your fleet kubeconfig — and
 * `kubegate admin approval …` — manage approval policies and webhooks in the
 * database, like the other admin commands.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { KgError } from '../../common/errors.js';
import { parseMasterKey } from '../pki/master-key.js';
import { parseSelectorText } from '../../common/kube-grammar.js';
import {
  createPolicy,
  deletePolicy,
  getPolicy,
  listPolicies,
  replacePolicy,
} from '../approvals/policies.js';
import { policyView } from '../approvals/policy-spec.js';
import { createWebhook, deleteWebhook, listWebhooks } from '../approvals/webhooks.js';
import { cliActor, cliConfig, flag, flagList, withPool, type Invocation } from './args.js';
import { call, endpoint, type Endpoint } from './rest.js';

/** The answer's JSON (a refusal throws, with the problem's detail). */
const callJson = async (e: Endpoint, method: string, path: string, body?: unknown) =>
  (await call(e, method, path, body)).json;

type View = {
  id: string;
  kind: string;
  status: string;
  requester: { name: string };
  reason: string;
  access?: { role: string; expiresAt?: string };
  action?: { verb: string; resource: string; name: string; namespace: string; cluster: string };
  run?: { runbook: string; namespace: string; clusters: string[]; ticket: string };
  namespace?: { action: string; namespace: string; clusters: string[]; profile: string };
  diff?: string | null;
};

function line(v: View): string {
  const what = v.access
    ? `access ${v.access.role}`
    : v.run
      ? `run ${v.run.runbook} ${v.run.namespace || '-'}@${v.run.clusters.join(',')}${v.run.ticket ? ` ${v.run.ticket}` : ''}`
      : v.namespace
        ? `${v.namespace.action} namespace ${v.namespace.namespace}@${v.namespace.clusters.join(',')} (profile ${v.namespace.profile})`
        : `${v.action!.verb} ${v.action!.resource}/${v.action!.name} ${v.action!.namespace || '-'}@${v.action!.cluster}`;
  return `${v.id}\t${v.status}\t${v.requester.name}\t${what}\t${v.reason}\n`;
}

export async function requestCreate(p: Invocation): Promise<void> {
  const names = flagList(p, 'cluster');
  const sel = flag(p, 'selector');
  const body = {
    role: flag(p, 'role'),
    clusters: {
      ...(names.length ? { names } : {}),
      ...(sel !== undefined ? { selector: parseSelectorText(sel) } : {}),
    },
    namespaces: flagList(p, 'namespace'),
    duration: flag(p, 'duration'),
    reason: flag(p, 'reason'),
  };
  const v = (await callJson(endpoint(p), 'POST', '/api/v1/approvals', body)) as View;
  p.io.stdout.write(`${v.id}\n`);
  p.io.stderr.write(`access request ${v.id} is ${v.status}; approvers were notified\n`);
}

export async function requestList(p: Invocation): Promise<void> {
  const e = endpoint(p);
  const q = new URLSearchParams();
  for (const k of ['view', 'status', 'kind']) if (flag(p, k)) q.set(k, flag(p, k)!);
  // Every page, in order: the API pages with limit + continue.
  q.set('limit', '500');
  for (;;) {
    const r = (await callJson(e, 'GET', `/api/v1/approvals?${q.toString()}`)) as {
      items: View[];
      continue?: string;
    };
    p.io.stdout.write(r.items.map(line).join(''));
    if (!r.continue) return;
    q.set('continue', r.continue);
  }
}

export async function requestGet(p: Invocation): Promise<void> {
  const id = p.positionals[0]!;
  const v = (await callJson(
    endpoint(p),
    'GET',
    `/api/v1/approvals/${encodeURIComponent(id)}`,
  )) as View;
  const { diff, ...rest } = v;
  p.io.stdout.write(toYaml(rest));
  if (diff) p.io.stdout.write(`\n${diff}`);
}

/** `kubegate request approve|deny|withdraw ID`. */
export function requestDecide(verb: 'approve' | 'deny' | 'withdraw') {
  return async (p: Invocation): Promise<void> => {
    const id = p.positionals[0]!;
    const reason = flag(p, 'reason');
    const v = (await callJson(
      endpoint(p),
      'POST',
      `/api/v1/approvals/${encodeURIComponent(id)}/${verb}`,
      reason ? { reason } : {},
    )) as View;
    p.io.stdout.write(line(v));
  };
}

export async function policyList(p: Invocation): Promise<void> {
  for (const r of await withPool(p, (pool) => listPolicies(pool)))
    p.io.stdout.write(
      `${r.policy.name}\t${r.policy.kind}\t${r.policy.approvers.groups.join(',')}\t${r.policy.approvers.count}\n`,
    );
}

export async function policyGet(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  const r = await withPool(p, (pool) => getPolicy(pool, name));
  if (!r) throw new KgError('KG_ERR_NOT_FOUND', `approval policy "${name}" does not exist`);
  p.io.stdout.write(toYaml(policyView(r.policy)));
}

export async function policyApply(p: Invocation): Promise<void> {
  const file = flag(p, 'file')!;
  const doc = parseYaml(readFileSync(file === '-' ? 0 : file, 'utf8')) as { name?: unknown };
  await withPool(p, async (pool) => {
    const existing = typeof doc?.name === 'string' ? await getPolicy(pool, doc.name) : undefined;
    const r = existing
      ? await replacePolicy(pool, existing.policy.name, doc, cliActor())
      : await createPolicy(pool, doc, cliActor());
    p.io.stderr.write(`approval policy "${r.policy.name}" ${existing ? 'replaced' : 'created'}\n`);
  });
}

export async function policyDelete(p: Invocation): Promise<void> {
  await withPool(p, (pool) => deletePolicy(pool, p.positionals[0]!, cliActor()));
}

export async function webhookList(p: Invocation): Promise<void> {
  for (const w of await withPool(p, (pool) => listWebhooks(pool)))
    p.io.stdout.write(`${w.id}\t${w.format}\t${w.url}\n`);
}

export async function webhookAdd(p: Invocation): Promise<void> {
  const { masterKey } = cliConfig(['masterKey'], p.io.env);
  const input = {
    url: p.positionals[0]!,
    format: flag(p, 'format') ?? 'json',
    description: flag(p, 'description') ?? '',
  };
  const { webhook, secret } = await withPool(p, (pool) =>
    createWebhook(pool, parseMasterKey(masterKey), input, cliActor()),
  );
  p.io.stdout.write(`${secret}\n`);
  p.io.stderr.write(
    `webhook ${webhook.id} added; the line above is its signing secret (shown once)\n`,
  );
}

export async function webhookDelete(p: Invocation): Promise<void> {
  await withPool(p, (pool) => deleteWebhook(pool, p.positionals[0]!, cliActor()));
}
