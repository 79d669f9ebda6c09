/**
 * `kubegate request …` — ask for access and decide approvals as yourself,
 * through the proxy's REST API with the token of your fleet kubeconfig — and
 * `kubegate admin approval …` — manage approval policies and webhooks in the
 * database, like the other admin commands.
 */
import { readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { loadConfig } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import { proxySchema } from '../config.js';
import { createPool, type Pool } from '../db/pool.js';
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
import { flag, flagList, parseArgs, type Parsed } from './args.js';

export const requestUsage = `  kubegate request create --role ROLE (--cluster NAME... | --selector 'env=prod') [--namespace NS]...
        --duration 15m --reason TEXT          ask for time-bound access; prints the approval id
  kubegate request list [--view mine|approvable|all] [--status pending]
  kubegate request get ID                     one approval, with the diff of a gated change
  kubegate request approve|deny|withdraw ID [--reason TEXT]
        (these use the server and token of your fleet kubeconfig: --kubeconfig FILE, $KUBECONFIG,
         or KUBEGATE_SERVER + KUBEGATE_TOKEN)
  kubegate admin approval policy list|get NAME|delete NAME
  kubegate admin approval policy apply --file policy.yaml   create or replace a policy
  kubegate admin approval webhook list|delete ID
  kubegate admin approval webhook add URL [--format json|slack] [--description TEXT]
                                              prints the signing secret once
`;

interface Endpoint {
  base: string;
  token: string;
  ca?: string;
}

/** Server, token and CA from the environment or the current context of a kubeconfig. */
function endpoint(p: Parsed): Endpoint {
  const envServer = process.env.KUBEGATE_SERVER;
  const envToken = process.env.KUBEGATE_TOKEN;
  if (envServer && envToken) return { base: envServer.replace(/\/+$/, ''), token: envToken };
  const file =
    flag(p, 'kubeconfig') ??
    process.env.KUBECONFIG?.split(':')[0] ??
    join(homedir(), '.kube', 'config');
  type Kc = {
    'current-context'?: string;
    contexts?: { name: string; context: { cluster: string; user: string } }[];
    clusters?: {
      name: string;
      cluster: { server: string; 'certificate-authority-data'?: string };
    }[];
    users?: { name: string; user: { token?: string } }[];
  };
  let kc: Kc;
  try {
    kc = parseYaml(readFileSync(file, 'utf8')) as Kc;
  } catch (err) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `cannot read kubeconfig ${file}: ${(err as Error).message}`,
    );
  }
  const ctx = kc.contexts?.find((c) => c.name === kc['current-context']) ?? kc.contexts?.[0];
  const cluster = kc.clusters?.find((c) => c.name === ctx?.context.cluster);
  const user = kc.users?.find((u) => u.name === ctx?.context.user);
  if (!cluster || !user?.user.token)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `kubeconfig ${file} has no kubegate context with a token`,
    );
  const url = new URL(cluster.cluster.server);
  const caData = cluster.cluster['certificate-authority-data'];
  return {
    base: url.origin,
    token: user.user.token,
    ...(caData ? { ca: Buffer.from(caData, 'base64').toString('utf8') } : {}),
  };
}

async function call(e: Endpoint, method: string, path: string, body?: unknown): Promise<unknown> {
  const dispatcher = new Agent({ connect: e.ca ? { ca: e.ca } : {} });
  try {
    const res = await request(`${e.base}${path}`, {
      method: method as 'GET',
      dispatcher,
      headers: {
        authorization: `Bearer ${e.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    const parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (res.statusCode >= 400)
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        `${res.statusCode}: ${String(parsed.detail ?? text)}`,
      );
    return parsed;
  } finally {
    await dispatcher.close();
  }
}

function need(v: string | undefined, what: string): string {
  if (!v) throw new KgError('KG_ERR_BAD_REQUEST', `${what} is required`);
  return v;
}

type View = {
  id: string;
  kind: string;
  status: string;
  requester: { name: string };
  reason: string;
  access?: { role: string; expiresAt?: string };
  action?: { verb: string; resource: string; name: string; namespace: string; cluster: string };
  diff?: string | null;
};

function line(v: View): string {
  const what = v.access
    ? `access ${v.access.role}`
    : `${v.action!.verb} ${v.action!.resource}/${v.action!.name} ${v.action!.namespace || '-'}@${v.action!.cluster}`;
  return `${v.id}\t${v.status}\t${v.requester.name}\t${what}\t${v.reason}\n`;
}

/** `kubegate request …` */
export async function requestCommand(args: string[]): Promise<void> {
  const p = parseArgs(args);
  const [verb, id] = p.positionals;
  const e = endpoint(p);
  switch (verb) {
    case 'create': {
      const names = flagList(p, 'cluster');
      const sel = flag(p, 'selector');
      const v = (await call(e, 'POST', '/api/v1/approvals', {
        role: need(flag(p, 'role'), '--role'),
        clusters: {
          ...(names.length ? { names } : {}),
          ...(sel !== undefined ? { selector: parseSelectorText(sel) } : {}),
        },
        namespaces: flagList(p, 'namespace'),
        duration: need(flag(p, 'duration'), '--duration'),
        reason: need(flag(p, 'reason'), '--reason'),
      })) as View;
      process.stdout.write(`${v.id}\n`);
      process.stderr.write(`access request ${v.id} is ${v.status}; approvers were notified\n`);
      return;
    }
    case 'list': {
      const q = new URLSearchParams();
      for (const k of ['view', 'status', 'kind']) if (flag(p, k)) q.set(k, flag(p, k)!);
      // Every page, in order: the API pages with limit + continue.
      q.set('limit', '500');
      for (;;) {
        const r = (await call(e, 'GET', `/api/v1/approvals?${q.toString()}`)) as {
          items: View[];
          continue?: string;
        };
        process.stdout.write(r.items.map(line).join(''));
        if (!r.continue) return;
        q.set('continue', r.continue);
      }
    }
    case 'get': {
      const v = (await call(
        e,
        'GET',
        `/api/v1/approvals/${encodeURIComponent(need(id, 'ID'))}`,
      )) as View;
      const { diff, ...rest } = v;
      process.stdout.write(toYaml(rest));
      if (diff) process.stdout.write(`\n${diff}`);
      return;
    }
    case 'approve':
    case 'deny':
    case 'withdraw': {
      const reason = flag(p, 'reason');
      const v = (await call(
        e,
        'POST',
        `/api/v1/approvals/${encodeURIComponent(need(id, 'ID'))}/${verb}`,
        reason ? { reason } : {},
      )) as View;
      process.stdout.write(line(v));
      return;
    }
    default:
      throw new KgError('KG_ERR_BAD_REQUEST', `unknown request command\n\n${requestUsage}`);
  }
}

function actor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return `cli:${process.env.USER ?? 'unknown'}`;
  }
}

async function withPool<T>(fn: (pool: Pool) => Promise<T>): Promise<T> {
  const { databaseUrl } = loadConfig({ databaseUrl: proxySchema.databaseUrl }, {});
  const pool = createPool({ url: databaseUrl, max: 2, applicationName: 'kubegate-cli' });
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}

/** `kubegate admin approval …` */
export async function adminApproval(args: string[]): Promise<void> {
  const p = parseArgs(args);
  const [area, verb, name] = p.positionals;
  await withPool(async (pool) => {
    if (area === 'policy' && verb === 'list') {
      for (const r of await listPolicies(pool))
        process.stdout.write(
          `${r.policy.name}\t${r.policy.kind}\t${r.policy.approvers.groups.join(',')}\t${r.policy.approvers.count}\n`,
        );
    } else if (area === 'policy' && verb === 'get') {
      const r = await getPolicy(pool, need(name, 'NAME'));
      if (!r) throw new KgError('KG_ERR_NOT_FOUND', `approval policy "${name}" does not exist`);
      process.stdout.write(toYaml(policyView(r.policy)));
    } else if (area === 'policy' && verb === 'apply') {
      const file = need(flag(p, 'file'), '--file');
      const doc = parseYaml(readFileSync(file === '-' ? 0 : file, 'utf8')) as { name?: unknown };
      const existing = typeof doc?.name === 'string' ? await getPolicy(pool, doc.name) : undefined;
      const r = existing
        ? await replacePolicy(pool, existing.policy.name, doc, actor())
        : await createPolicy(pool, doc, actor());
      process.stderr.write(
        `approval policy "${r.policy.name}" ${existing ? 'replaced' : 'created'}\n`,
      );
    } else if (area === 'policy' && verb === 'delete') {
      await deletePolicy(pool, need(name, 'NAME'), actor());
    } else if (area === 'webhook' && verb === 'list') {
      for (const w of await listWebhooks(pool))
        process.stdout.write(`${w.id}\t${w.format}\t${w.url}\n`);
    } else if (area === 'webhook' && verb === 'add') {
      const { masterKey } = loadConfig({ masterKey: proxySchema.masterKey }, {});
      const { webhook, secret } = await createWebhook(
        pool,
        parseMasterKey(masterKey),
        {
          url: need(name, 'URL'),
          format: flag(p, 'format') ?? 'json',
          description: flag(p, 'description') ?? '',
        },
        actor(),
      );
      process.stdout.write(`${secret}\n`);
      process.stderr.write(
        `webhook ${webhook.id} added; the line above is its signing secret (shown once)\n`,
      );
    } else if (area === 'webhook' && verb === 'delete') {
      await deleteWebhook(pool, need(name, 'ID'), actor());
    } else {
      throw new KgError('KG_ERR_BAD_REQUEST', `unknown approval command\n\n${requestUsage}`);
    }
  });
}
