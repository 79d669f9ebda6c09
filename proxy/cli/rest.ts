/**
 * The CLI's client for the proxy's REST API, as the person running it: the
 * server, token and CA come from KUBEGATE_SERVER + KUBEGATE_TOKEN or the
 * current context of the fleet kubeconfig. Used by `kubegate request …`,
 * `kubegate run`, `kubegate runs …`, `kubegate runbook …` and
 * `kubegate admin recording …`.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { parse as parseYaml } from 'yaml';
import { KgError } from '../../common/errors.js';
import { flag, type Invocation } from './args.js';

export interface Endpoint {
  base: string;
  token: string;
  ca?: string;
}

/**
 * Server, token and CA from KUBEGATE_SERVER + KUBEGATE_TOKEN or from the
 * current context of a kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config).
 */
export function endpoint(p: Invocation): Endpoint {
  const env = p.io.env;
  if (env.KUBEGATE_SERVER && env.KUBEGATE_TOKEN)
    return { base: env.KUBEGATE_SERVER.replace(/\/+$/, ''), token: env.KUBEGATE_TOKEN };
  const file =
    flag(p, 'kubeconfig') ?? env.KUBECONFIG?.split(':')[0] ?? join(homedir(), '.kube', 'config');
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
  const ctx = kc?.contexts?.find((c) => c.name === kc['current-context']) ?? kc?.contexts?.[0];
  const cluster = kc?.clusters?.find((c) => c.name === ctx?.context.cluster);
  const user = kc?.users?.find((u) => u.name === ctx?.context.user);
  if (!cluster || !user?.user.token)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `kubeconfig ${file} has no kubegate context with a token`,
    );
  const caData = cluster.cluster['certificate-authority-data'];
  return {
    base: new URL(cluster.cluster.server).origin,
    token: user.user.token,
    ...(caData ? { ca: Buffer.from(caData, 'base64').toString('utf8') } : {}),
  };
}

/** An answer of the API that is not a success: its status and problem JSON. */
export class ApiError extends KgError {
  constructor(
    readonly statusCode: number,
    readonly problem: Record<string, unknown>,
    message: string,
  ) {
    super('KG_ERR_BAD_REQUEST', message);
  }
}

/**
 * The sentence (or lines) to show for a refused request: the problem's
 * detail, and for a 422 every problem on a line of its own.
 */
export function refusal(status: number, problem: Record<string, unknown>, text = ''): string {
  const problems = Array.isArray(problem.problems)
    ? problem.problems.filter((x): x is string => typeof x === 'string')
    : [];
  if (status === 422 && problems.length) {
    const what = typeof problem.detail === 'string' ? problem.detail.split(' is invalid')[0] : '';
    const n = problems.length;
    return `${status}: ${what || 'the request'} refused, ${n} problem${n === 1 ? '' : 's'}:\n${problems.map((x) => `  - ${x}`).join('\n')}`;
  }
  const detail =
    typeof problem.detail === 'string' ? problem.detail : text.trim() || 'no detail given';
  return `${status}: ${detail}`;
}

export async function call(
  e: Endpoint,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; json: unknown }> {
  const { status, text } = await send(e, method, path, body, {
    accept: 'application/json',
    ...headers,
  });
  let parsed: unknown = {};
  try {
    parsed = text ? JSON.parse(text) : {};
  } catch {
    parsed = {};
  }
  return { status, json: parsed };
}

/** A GET whose answer is not JSON (a recording's .cast): its body as text. */
export async function callText(e: Endpoint, path: string, accept = '*/*'): Promise<string> {
  return (await send(e, 'GET', path, undefined, { accept })).text;
}

async function send(
  e: Endpoint,
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<{ status: number; text: string }> {
  const dispatcher = new Agent({ connect: e.ca ? { ca: e.ca } : {} });
  try {
    const res = await request(`${e.base}${path}`, {
      method: method as 'GET',
      dispatcher,
      headers: {
        authorization: `Bearer ${e.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    if (res.statusCode >= 400) {
      let parsed: unknown = {};
      try {
        parsed = text ? JSON.parse(text) : {};
      } catch {
        parsed = {};
      }
      const problem = (parsed && typeof parsed === 'object' ? parsed : {}) as Record<
        string,
        unknown
      >;
      throw new ApiError(res.statusCode, problem, refusal(res.statusCode, problem, text));
    }
    return { status: res.statusCode, text };
  } finally {
    await dispatcher.close();
  }
}

/**
 * GETs of something `--wait` follows: a refusal (403, 404) ends the wait at
 * once, since it will not get better; a network error or a 5xx (a proxy
 * restarting, a blip) only after `maxFailures` in a row. `lost` says what
 * the person can do instead.
 */
export class Poller {
  private failures = 0;

  constructor(
    private readonly e: Endpoint,
    private readonly maxFailures = 30,
  ) {}

  async get<T>(path: string, lost: (why: string) => string): Promise<T | undefined> {
    try {
      const v = (await call(this.e, 'GET', path)).json as T;
      this.failures = 0;
      return v;
    } catch (err) {
      const status = err instanceof ApiError ? err.statusCode : 0;
      if ((status && status < 500) || ++this.failures >= this.maxFailures)
        throw new KgError('KG_ERR_BAD_REQUEST', lost((err as Error).message));
      return undefined;
    }
  }
}
