/**
 * Session recording end to end (issue #21), with real kubectl into a Pod on a
 * kwok node: exec -i over WebSocket and over SPDY is recorded byte for byte;
 * attach over both, and kubectl debug's ephemeral container, are recorded
 * (what kubectl printed is what the recording replays, in order; typed
 * input too, where the policy records stdin); the audit event names the
 * recording; an auditor lists and downloads it, and the download is itself
 * audited; a plain user gets 403 and no listing. With the store refusing
 * writes: a required policy refuses the exec before it starts, naming the
 * reason, and ends a running one with a Status; best effort runs it and
 * the audit event says unrecorded; the store back, sessions are recorded again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { kubectl, kubectlOk, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet, until } from '../support/http.js';
import { runKubegate } from '../support/proc.js';
import { appendPodLog } from '../support/cluster.js';

const NS = 'rec';
const SPDY = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
const transports = [
  {
    name: 'WebSocket',
    env: {},
    log: /subprotocol is v5\.channel\.k8s\.io/,
    attachLog: /subprotocol is v5\.channel\.k8s\.io/,
  },
  {
    name: 'SPDY',
    env: SPDY,
    log: /\/exec\?[^"]*" status="101 Switching Protocols"/,
    attachLog: /\/attach\?[^"]*" status="101 Switching Protocols"/,
  },
];

interface Recording {
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

let stack: Stack;
let ca: string;
let dora: { kubeconfig: string };
let tokens: { admin: string; auditor: string; dora: string };
let pod = '';

const tokenOf = (kubeconfig: string) =>
  /token: (kg_\S+)/.exec(readFileSync(kubeconfig, 'utf8'))![1]!;

async function api(token: string, path: string, method = 'GET', body?: unknown) {
  return httpGet(`${stack.publicUrl}${path}`, {
    token,
    ca,
    method,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
}

/** The newest recording of `command` (as an auditor), once its session has ended. */
async function recordingOf(marker: string, final = true): Promise<Recording> {
  let found: Recording | undefined;
  await until(
    async () => {
      const r = await api(
        tokens.auditor,
        `/api/v1/recordings?namespace=${NS}&command=${encodeURIComponent(marker)}&limit=5`,
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
function castEvents(cast: string): {
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

async function completeEvent(
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
function sameText(actual: string, expected: string, what: string): void {
  if (actual === expected) return;
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  assert.fail(
    `${what}: lengths ${actual.length} and ${expected.length}, first difference at ${i}: ${JSON.stringify(actual.slice(Math.max(0, i - 40), i + 40))} vs ${JSON.stringify(expected.slice(Math.max(0, i - 40), i + 40))}`,
  );
}

const storeDown = `ALTER TABLE recording_chunks ADD CONSTRAINT kg_test_store_down CHECK (false) NOT VALID`;
const storeUp = `ALTER TABLE recording_chunks DROP CONSTRAINT kg_test_store_down`;

describe('session recording through kubegate', { timeout: 600_000 }, () => {
  before(async () => {
    stack = await startStack({
      clusters: [{ name: 'dev', labels: { env: 'dev' }, nodes: 1 }],
      log: (m) => process.stderr.write(`# ${m}\n`),
    });
    await kubectlOk(['create', 'namespace', NS], { kubeconfig: stack.cluster.kubeconfig });
    await grant(stack, { users: ['dora'], role: 'admin', clusters: ['dev'], namespaces: [NS] });
    dora = { kubeconfig: await stack.kubeconfig('dora') };
    const adminKc = await stack.kubeconfig('root', ['kubegate-admins']);
    tokens = {
      admin: tokenOf(adminKc),
      auditor: tokenOf(await stack.kubeconfig('audrey', ['kubegate-auditors'])),
      dora: tokenOf(dora.kubeconfig),
    };
    ca = Buffer.from(
      /certificate-authority-data: (\S+)/.exec(readFileSync(dora.kubeconfig, 'utf8'))![1]!,
      'base64',
    ).toString();
    await kubectlOk(['-n', NS, 'create', 'deployment', 'shell', '--image=busybox'], dora);
    await kubectlOk(['-n', NS, 'rollout', 'status', 'deployment/shell', '--timeout=120s'], {
      ...dora,
      timeoutMs: 130_000,
    });
    pod = (
      await kubectlOk(['-n', NS, 'get', 'pods', '-o', 'jsonpath={.items[0].metadata.name}'], dora)
    ).trim();
  });
  after(async () => {
    await stack?.stop();
  });

  test('recording policies: admins create them; anyone else is refused', async () => {
    const policy = { name: 'rec-stdin', namespaces: [NS], mode: 'best-effort', recordStdin: true };
    const refused = await api(tokens.dora, '/api/v1/recording-policies', 'POST', policy);
    assert.equal(refused.status, 403, refused.body);
    const bad = await api(tokens.admin, '/api/v1/recording-policies', 'POST', {
      ...policy,
      mode: 'always',
    });
    assert.equal(bad.status, 422, bad.body);
    assert.match(bad.body, /mode: one of off, best-effort, required/);
    const made = await api(tokens.admin, '/api/v1/recording-policies', 'POST', policy);
    assert.equal(made.status, 201, made.body);
    const list = await api(tokens.admin, '/api/v1/recording-policies');
    assert.deepEqual(
      (JSON.parse(list.body) as { items: { name: string }[] }).items.map((p) => p.name),
      ['rec-stdin'],
    );
  });

  for (const t of transports) {
    test(`exec -i over ${t.name}: the recording replays kubectl's output byte for byte, and the typed input`, async () => {
      const marker = `mark-${t.name.toLowerCase()}`;
      // Enough lines to span several chunks, with UTF-8 and control bytes in them.
      const input =
        Array.from({ length: 3000 }, (_, i) => `line ${i} ünïcödé € \t tab`).join('\n') + '\n';
      const r = await kubectl(
        [
          '-v=6',
          '-n',
          NS,
          'exec',
          '-i',
          pod,
          '--',
          'sh',
          '-c',
          `while IFS= read -r l; do printf 'got:%s\\n' "$l"; done; echo ${marker}-stderr >&2`,
        ],
        { ...dora, env: t.env, input, timeoutMs: 60_000 },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, t.log, `kubectl used ${t.name}`);
      assert.equal(r.stdout.split('\n').length, 3001);
      const rec = await recordingOf(marker);
      assert.equal(rec.status, 'complete', rec.reason);
      assert.equal(rec.user.name, 'dora');
      assert.equal(rec.pod, pod);
      assert.equal(rec.stdinRecorded, true);
      const cast = await api(tokens.auditor, `/api/v1/recordings/${rec.id}/cast`);
      assert.equal(cast.status, 200);
      assert.match(String(cast.headers['content-type']), /application\/x-asciicast/);
      const ev = castEvents(cast.body);
      assert.equal(ev.header.version, 2);
      // stdout and stderr are both "o", in the order they passed the proxy: over SPDY
      // they are separate streams, so the stderr line may come before stdout's tail.
      const stderrLine = `${marker}-stderr\n`;
      assert.ok(ev.o.includes(stderrLine), 'stderr is recorded too');
      sameText(
        ev.o.replace(stderrLine, ''),
        r.stdout,
        'the output replays byte for byte, in order',
      );
      sameText(ev.i, input, 'the typed input, as the policy records stdin');
      // The exec's audit event names its recording.
      const audit = await completeEvent(rec.auditId);
      assert.equal(audit.annotations?.['kubegate.dev/recording'], rec.id);
      // The download is an audit event of its own.
      const downloads = await stack.sql<{ username: string }>(
        `SELECT username FROM audit_events WHERE resource = 'recordings' AND verb = 'download' AND name = $1`,
        [rec.id],
      );
      assert.deepEqual(
        downloads.map((d) => d.username),
        ['audrey'],
      );
    });
  }

  for (const t of transports) {
    test(`exec -it over ${t.name} (a pty from script(1)): what the terminal showed is what the recording replays`, async () => {
      const marker = `tty-${t.name.toLowerCase()}`;
      const cmd = `${kubectlPath()} --kubeconfig ${dora.kubeconfig} -n ${NS} exec -it ${pod} -- sh -c 'echo ${marker}; exec sh'`;
      const child = spawn('script', ['-qefc', cmd, '/dev/null'], {
        env: { ...process.env, ...t.env, TERM: 'xterm' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const seen: Buffer[] = [];
      child.stdout.on('data', (b: Buffer) => seen.push(b));
      const shown = () => Buffer.concat(seen).toString('utf8');
      const exited = new Promise<number | null>((r) => child.once('close', r));
      try {
        await until(async () => shown().includes(marker), 30_000, 'the terminal session is up');
        child.stdin.write('echo typed-$((6 * 7))\n');
        await until(async () => shown().includes('typed-42'), 15_000, 'the typed command ran');
        child.stdin.write('exit\n');
        assert.equal(await exited, 0, shown());
      } finally {
        child.kill('SIGKILL');
      }
      const rec = await recordingOf(marker);
      assert.equal(rec.status, 'complete', rec.reason);
      const ev = castEvents((await api(tokens.auditor, `/api/v1/recordings/${rec.id}/cast`)).body);
      assert.ok(
        ev.r.length >= 1 && /^\d+x\d+$/.test(ev.r[0]!),
        `a terminal size: ${ev.r.join(',')}`,
      );
      assert.match(ev.o, /typed-42/);
      assert.match(
        ev.i,
        /echo typed-\$\(\(6 \* 7\)\)/,
        'the typed command (stdin is recorded here)',
      );
      sameText(ev.o, shown(), 'the terminal output replays byte for byte');
    });
  }

  for (const t of transports) {
    test(`attach over ${t.name}: what kubectl showed of the container is in the recording, in order`, async () => {
      const tag = `attach-${t.name.toLowerCase()}-${Date.now()}`;
      const child = spawn(
        kubectlPath(),
        ['--kubeconfig', dora.kubeconfig, '-v=6', '-n', NS, 'attach', pod],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '', ...t.env } },
      );
      const out: Buffer[] = [];
      let err = '';
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const shown = () => Buffer.concat(out).toString('utf8');
      const exited = new Promise((r) => child.once('close', r));
      try {
        // attach shows what the container writes after it connected: write until lines show.
        let n = 0;
        await until(
          async () => {
            if (child.exitCode !== null) throw new Error(`attach exited: ${err}`);
            await appendPodLog(stack.cluster.podLogsFile!, [`${tag} ${n++} ünï`]);
            return (shown().match(new RegExp(`${tag} \\d+ ünï\n`, 'g')) ?? []).length >= 3;
          },
          60_000,
          `kubectl attach output (stderr ${JSON.stringify(err.slice(-2000))})`,
        );
        assert.match(err, t.attachLog, `kubectl used ${t.name}`);
      } finally {
        child.kill('SIGTERM');
      }
      await exited;
      let rec: Recording | undefined;
      await until(
        async () => {
          const r = await api(
            tokens.auditor,
            `/api/v1/recordings?namespace=${NS}&pod=${pod}&limit=20`,
          );
          rec = (JSON.parse(r.body) as { items: Recording[] }).items.find(
            (x) => x.kind === 'attach' && x.status !== 'recording',
          );
          return !!rec && rec.status !== 'recording';
        },
        15_000,
        'the attach session is recorded',
      );
      assert.equal(rec!.status, 'complete', rec!.reason);
      assert.equal(rec!.user.name, 'dora');
      const ev = castEvents((await api(tokens.auditor, `/api/v1/recordings/${rec!.id}/cast`)).body);
      // What kubectl printed before it was stopped is the start of what was recorded.
      sameText(ev.o.slice(0, shown().length), shown(), 'the attached output replays in order');
      assert.ok((ev.o.match(new RegExp(`${tag} \\d+ ünï\n`, 'g')) ?? []).length >= 3);
    });
  }

  test('kubectl debug: the ephemeral container it adds and attaches to is recorded as that container', async () => {
    const name = `dbg${Date.now() % 1_000_000}`;
    const tag = `debug-${name}`;
    // Adding an ephemeral container is a right of its own (as in Kubernetes' built-in roles,
    // admin and edit do not include it).
    const role = await api(tokens.admin, '/api/v1/roles', 'POST', {
      name: 'pod-debugger',
      description: 'may add ephemeral debug containers',
      rules: [
        { apiGroups: [''], resources: ['pods/ephemeralcontainers'], verbs: ['get', 'patch'] },
      ],
    });
    assert.equal(role.status, 201, role.body);
    await grant(stack, {
      users: ['dora'],
      role: 'pod-debugger',
      clusters: ['dev'],
      namespaces: [NS],
    });
    const ephemeral = `${stack.publicUrl}/k8s/dev/api/v1/namespaces/${NS}/pods/${pod}/ephemeralcontainers`;
    await until(
      async () => (await httpGet(ephemeral, { token: tokens.dora, ca })).status === 200,
      15_000,
      'the new grant reaches the cluster',
    );
    const child = spawn(
      kubectlPath(),
      [
        '--kubeconfig',
        dora.kubeconfig,
        '-n',
        NS,
        'debug',
        pod,
        '--image=busybox',
        `--container=${name}`,
        '-i',
        '--',
        'sh',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '' } },
    );
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const shown = () => Buffer.concat(out).toString('utf8');
    const exited = new Promise((r) => child.once('close', r));
    try {
      // kwok starts no ephemeral containers: once kubectl has added it (through kubegate), the
      // cluster's admin marks it running, as a kubelet would; kubectl then attaches to it.
      const admin = { kubeconfig: stack.cluster.kubeconfig };
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`kubectl debug exited: ${err.slice(-3000)}`);
          const spec = await kubectlOk(
            ['-n', NS, 'get', 'pod', pod, '-o', 'jsonpath={.spec.ephemeralContainers[*].name}'],
            admin,
          );
          return spec.split(' ').includes(name);
        },
        30_000,
        'the ephemeral container is added',
      ).catch((e: Error) => {
        throw new Error(`${e.message}; kubectl debug said: ${err.slice(-3000)}`);
      });
      const status = {
        status: {
          ephemeralContainerStatuses: [
            {
              name,
              image: 'busybox',
              imageID: '',
              ready: false,
              restartCount: 0,
              state: { running: { startedAt: new Date().toISOString() } },
            },
          ],
        },
      };
      await kubectlOk(
        [
          '-n',
          NS,
          'patch',
          'pod',
          pod,
          '--subresource=status',
          '--type=merge',
          '-p',
          JSON.stringify(status),
        ],
        admin,
      );
      let n = 0;
      await until(
        async () => {
          if (child.exitCode !== null) throw new Error(`kubectl debug exited: ${err}`);
          await appendPodLog(stack.cluster.podLogsFile!, [`${tag} ${n++}`]);
          return (shown().match(new RegExp(`${tag} \\d+\n`, 'g')) ?? []).length >= 2;
        },
        60_000,
        `kubectl debug output (stderr ${JSON.stringify(err.slice(-2000))})`,
      );
    } finally {
      child.kill('SIGTERM');
    }
    await exited;
    let rec: Recording | undefined;
    await until(
      async () => {
        const r = await api(
          tokens.auditor,
          `/api/v1/recordings?namespace=${NS}&pod=${pod}&container=${name}&limit=5`,
        );
        rec = (JSON.parse(r.body) as { items: Recording[] }).items[0];
        return !!rec && rec.status !== 'recording';
      },
      15_000,
      'the debug session is recorded',
    );
    assert.equal(rec!.kind, 'attach');
    assert.equal(rec!.status, 'complete', rec!.reason);
    const ev = castEvents((await api(tokens.auditor, `/api/v1/recordings/${rec!.id}/cast`)).body);
    sameText(ev.o.slice(0, shown().length), shown(), 'the debug session replays in order');
    assert.ok((ev.o.match(new RegExp(`${tag} \\d+\\n`, 'g')) ?? []).length >= 2);
  });

  test('who may watch: an auditor lists and reads; a plain user gets 403 and no listing', async () => {
    const rec = await recordingOf('mark-websocket');
    for (const path of [
      '/api/v1/recordings',
      `/api/v1/recordings?user=dora`,
      `/api/v1/recordings/${rec.id}`,
      `/api/v1/recordings/${rec.id}/cast`,
    ]) {
      const r = await api(tokens.dora, path);
      assert.equal(r.status, 403, `${path}: ${r.body}`);
      // Nothing but the refusal: the path asked for (instance) is the caller's own input.
      const problem = JSON.parse(r.body) as Record<string, unknown>;
      delete problem.instance;
      assert.doesNotMatch(JSON.stringify(problem), new RegExp(rec.id), 'no listing in the refusal');
      assert.match(r.body, /may not read session recordings/);
    }
    const meta = await api(tokens.auditor, `/api/v1/recordings/${rec.id}`);
    assert.equal(meta.status, 200);
    assert.equal((JSON.parse(meta.body) as Recording).auditId, rec.auditId);
    const admin = await api(tokens.admin, `/api/v1/recordings?user=dora&pod=${pod}`);
    assert.equal(admin.status, 200);
    assert.ok((JSON.parse(admin.body) as { items: Recording[] }).items.length >= 2);
  });

  test('kubegate admin recording list|get|download, as an auditor through the proxy; a plain user is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kg-rec-cli-'));
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca);
    const as = (token: string, args: string[]) =>
      runKubegate(['admin', 'recording', ...args], {
        DATABASE_URL: '',
        KUBECONFIG: '',
        KUBEGATE_SERVER: stack.publicUrl,
        KUBEGATE_TOKEN: token,
        NODE_EXTRA_CA_CERTS: caFile,
      });
    try {
      const rec = await recordingOf('mark-spdy');
      const list = await as(tokens.auditor, ['list', '--pod', pod, '--command', 'mark-spdy']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`${rec.id}.*dora.*exec.*dev/${NS}/${pod}.*complete`));
      const get = await as(tokens.auditor, ['get', rec.id]);
      assert.equal(get.code, 0, get.stderr);
      assert.match(get.stdout, new RegExp(`audit id:\\s+${rec.auditId}`));
      assert.match(get.stdout, /status:\s+complete/);
      const out = join(dir, 'session.cast');
      const dl = await as(tokens.auditor, ['download', rec.id, '--out', out]);
      assert.equal(dl.code, 0, dl.stderr);
      const viaApi = await api(tokens.auditor, `/api/v1/recordings/${rec.id}/cast`);
      assert.equal(readFileSync(out, 'utf8'), viaApi.body, 'the CLI saves the same .cast');
      const refused = await as(tokens.dora, ['list']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /403: User "dora" may not read session recordings/);
      assert.equal(refused.stdout, '');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('store refusing writes: required refuses the exec, naming why; best effort runs it unrecorded; back: recorded again', async () => {
    const required = { name: 'rec-required', namespaces: [NS], mode: 'required' };
    assert.equal(
      (await api(tokens.admin, '/api/v1/recording-policies', 'POST', required)).status,
      201,
    );
    await stack.sql(storeDown);
    try {
      for (const tr of transports) {
        const r = await kubectl(['-n', NS, 'exec', pod, '--', 'echo', 'refused-run'], {
          ...dora,
          env: tr.env,
          timeoutMs: 30_000,
        });
        assert.notEqual(r.code, 0, `${tr.name}: the exec must not run`);
        assert.doesNotMatch(r.stdout, /refused-run/);
        assert.match(
          r.stderr,
          /session recording is required .*the recording could not be started: the recording store failed/,
          `${tr.name}: ${r.stderr}`,
        );
      }
      // The refusals' audit events (written in batches, a moment later) say unrecorded,
      // with the reason: one per transport.
      let refusedRows: { event: { annotations: Record<string, string> }; code: number }[] = [];
      await until(
        async () => {
          refusedRows = await stack.sql(
            `SELECT event, code FROM audit_events WHERE subresource = 'exec' AND stage = 'ResponseComplete'
               AND event->'annotations'->>'kubegate.dev/command' LIKE '%refused-run%'`,
          );
          return refusedRows.length >= transports.length;
        },
        10_000,
        'the refused sessions in the audit log',
      );
      for (const row of refusedRows) {
        assert.equal(row.code, 503);
        assert.equal(row.event.annotations['kubegate.dev/recording'], 'unrecorded');
        assert.match(row.event.annotations['kubegate.dev/recording-reason']!, /store failed/);
      }
      // Best effort: it runs, and the audit event says unrecorded.
      assert.equal(
        (await api(tokens.admin, '/api/v1/recording-policies/rec-required', 'DELETE')).status,
        204,
      );
      const r = await kubectl(['-n', NS, 'exec', pod, '--', 'echo', 'best-effort-run'], {
        ...dora,
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 'best-effort-run\n');
      const row = await recordingOf('best-effort-run');
      assert.equal(row.status, 'unrecorded');
      const audit = await completeEvent(row.auditId);
      assert.equal(audit.annotations?.['kubegate.dev/recording'], 'unrecorded');
      assert.match(audit.annotations?.['kubegate.dev/recording-reason'] ?? '', /store failed/);
    } finally {
      await stack.sql(storeUp).catch(() => undefined);
    }
    // The store is back: a required session is recorded again.
    assert.equal(
      (await api(tokens.admin, '/api/v1/recording-policies', 'POST', required)).status,
      201,
    );
    const again = await kubectl(['-n', NS, 'exec', pod, '--', 'echo', 'store-back-run'], {
      ...dora,
      timeoutMs: 30_000,
    });
    assert.equal(again.code, 0, again.stderr);
    const rec = await recordingOf('store-back-run');
    assert.equal(rec.status, 'complete');
    const cast = await api(tokens.auditor, `/api/v1/recordings/${rec.id}/cast`);
    assert.equal(castEvents(cast.body).o, 'store-back-run\n');
  });

  test('required, and the store fails mid-session: the exec is ended with a Status saying why', async () => {
    for (const tr of transports) {
      const marker = `midway-${tr.name.toLowerCase()}`;
      const child = spawn(
        kubectlPath(),
        [
          '--kubeconfig',
          dora.kubeconfig,
          '-n',
          NS,
          'exec',
          '-i',
          pod,
          '--',
          'sh',
          '-c',
          `echo ${marker}; cat`,
        ],
        { env: { ...process.env, ...tr.env }, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      const exited = new Promise<number | null>((r) => child.once('close', r));
      try {
        await until(async () => out.includes(marker), 30_000, 'the session is up');
        await recordingOf(marker, false);
        await stack.sql(storeDown);
        child.stdin.write('after the store went down\n');
        const code = await Promise.race([
          exited,
          new Promise<string>((r) => setTimeout(() => r('still running'), 20_000)),
        ]);
        assert.notEqual(code, 0, `${tr.name}: ended with an error`);
        assert.notEqual(code, 'still running', `${tr.name}: the session was not ended`);
        assert.match(err, /session recording is required here and failed/, `${tr.name}: ${err}`);
        const rec = await recordingOf(marker);
        assert.equal(rec.status, 'incomplete');
        assert.match(rec.reason, /store failed/);
      } finally {
        child.kill('SIGKILL');
        await stack.sql(storeUp).catch(() => undefined);
      }
    }
  });
});
