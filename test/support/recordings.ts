/**
 * Reading session recordings in end-to-end tests: find one through the REST
 * API, split a .cast into its events, compare texts, read an audit event.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { grant } from './grants.js';
import { httpGet, until } from './http.js';
import { kubectlOk } from './kubectl.js';
import { startStack, type Stack } from './stack.js';

export interface Recording {
  id: string;
  kind: string;
  auditId: string;
  status: string;
  reason: string;
  user: { name: string };
  pod: string;
  command: string[];
  stdinRecorded: boolean;
  bytesOut: number;
}

/**
 * The newest recording in `namespace` whose command has `marker` (read with
 * `get`, as an auditor), once its session has ended (unless `final` is false).
 */
export async function findRecording(
  get: (path: string) => Promise<{ status: number; body: string }>,
  namespace: string,
  marker: string,
  final = true,
): Promise<Recording> {
  let found: Recording | undefined;
  await until(
    async () => {
      const r = await get(
        `/api/v1/recordings?namespace=${namespace}&command=${encodeURIComponent(marker)}&limit=5`,
      );
      assert.equal(r.status, 200, r.body);
      found = (JSON.parse(r.body) as { items: Recording[] }).items[0];
      return !!found && (!final || found.status !== 'recording');
    },
    15_000,
    `recording of ${marker}`,
  );
  return found!;
}

/** The recording's events: [type, data], consecutive output joined. */
export function castEvents(cast: string): {
  header: Record<string, unknown>;
  o: string;
  i: string;
  r: string[];
} {
  const [first, ...lines] = cast.split('\n').filter(Boolean);
  const out = {
    header: JSON.parse(first!) as Record<string, unknown>,
    o: '',
    i: '',
    r: [] as string[],
  };
  let last = -1;
  for (const l of lines) {
    const [t, type, data] = JSON.parse(l) as [number, string, string];
    assert.ok(t >= last, 'event times never go back');
    last = t;
    if (type === 'o') out.o += data;
    else if (type === 'i') out.i += data;
    else if (type === 'r') out.r.push(data);
  }
  return out;
}

/** The ResponseComplete audit event of a request. */
export async function completeEvent(
  stack: Pick<Stack, 'sql'>,
  auditId: string,
): Promise<{ annotations?: Record<string, string>; responseStatus?: { code?: number } }> {
  let ev: { annotations?: Record<string, string> } | undefined;
  await until(
    async () => {
      const rows = await stack.sql<{ event: { annotations?: Record<string, string> } }>(
        `SELECT event FROM audit_events WHERE audit_id = $1::uuid AND stage = 'ResponseComplete'`,
        [auditId],
      );
      ev = rows[0]?.event;
      return !!ev;
    },
    10_000,
    `audit event ${auditId}`,
  );
  return ev!;
}

/** Equal strings; on a difference, where it starts (not the whole text). */
export function sameText(actual: string, expected: string, what: string): void {
  if (actual === expected) return;
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  assert.fail(
    `${what}: lengths ${actual.length} and ${expected.length}, first difference at ${i}: ${JSON.stringify(actual.slice(Math.max(0, i - 40), i + 40))} vs ${JSON.stringify(expected.slice(Math.max(0, i - 40), i + 40))}`,
  );
}

/** A stack for recording tests: cluster `dev` with a node, a busybox Pod in `namespace`, and who uses it. */
export interface RecordingStack {
  stack: Stack;
  /** The proxy's CA (PEM). */
  ca: string;
  /** dora: admin in `namespace`, no more. */
  dora: { kubeconfig: string };
  /** Tokens of an admin (root), an auditor (audrey, kubegate-auditors) and dora. */
  tokens: { admin: string; auditor: string; dora: string };
  pod: string;
  api(token: string, path: string, method?: string, body?: unknown): ReturnType<typeof httpGet>;
  recordingOf(marker: string, final?: boolean): Promise<Recording>;
}

const tokenOf = (kubeconfig: string) =>
  /token: (kg_\S+)/.exec(readFileSync(kubeconfig, 'utf8'))![1]!;

export async function startRecordingStack(
  namespace: string,
  proxyEnv?: NodeJS.ProcessEnv,
): Promise<RecordingStack> {
  const stack = await startStack({
    clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 1 }],
    ...(proxyEnv ? { proxyEnv } : {}),
    log: (m) => process.stderr.write(`# ${m}\n`),
  });
  try {
    await kubectlOk(['create', 'namespace', namespace], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, {
      users: ['dora'],
      role: 'admin',
      clusters: ['dev'],
      namespaces: [namespace],
    });
    const dora = { kubeconfig: await stack.kubeconfig('dora') };
    const tokens = {
      admin: tokenOf(await stack.kubeconfig('root', ['kubegate-admins'])),
      auditor: tokenOf(await stack.kubeconfig('audrey', ['kubegate-auditors'])),
      dora: tokenOf(dora.kubeconfig),
    };
    const ca = Buffer.from(
      /certificate-authority-data: (\S+)/.exec(readFileSync(dora.kubeconfig, 'utf8'))![1]!,
      'base64',
    ).toString();
    await kubectlOk(['-n', namespace, 'create', 'deployment', 'shell', '--image=busybox'], dora);
    await kubectlOk(['-n', namespace, 'rollout', 'status', 'deployment/shell', '--timeout=120s'], {
      ...dora,
      timeoutMs: 130_000,
    });
    const pod = (
      await kubectlOk(
        ['-n', namespace, 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'],
        dora,
      )
    ).trim();
    const api: RecordingStack['api'] = (token, path, method = 'GET', body) =>
      httpGet(`${stack.publicUrl}${path}`, {
        token,
        ca,
        method,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
    return {
      stack,
      ca,
      dora,
      tokens,
      pod,
      api,
      recordingOf: (marker, final = true) =>
        findRecording((path) => api(tokens.auditor, path), namespace, marker, final),
    };
  } catch (err) {
    await stack.stop().catch(() => undefined);
    throw err;
  }
}
