/**
 * The README's five-minute tour, followed literally against `kubegate dev`
 * (what `make dev` runs), in a directory of its own: every step does what the
 * README says. Step 5 kills the agent process (SIGKILL, as a crash or an OOM
 * kill would): kubectl says the cluster is offline, and within seconds the
 * agent is back (restarted with back-off, as its Deployment would be) and
 * kubectl works again.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { kubectl, kubectlOk } from '../support/kubectl.js';
import { kubegateBin, runKubegate } from '../support/proc.js';

let dir: string;
let dev: ChildProcess;
let out = '';
let exited: Promise<number | null>;

async function printed(re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const t0 = Date.now();
  for (;;) {
    const m = re.exec(out);
    if (m) return m;
    if (dev.exitCode !== null)
      throw new Error(`kubegate dev exited ${dev.exitCode}:\n${out.slice(-4000)}`);
    if (Date.now() - t0 > timeoutMs)
      throw new Error(
        `kubegate dev did not print ${re} within ${timeoutMs} ms:\n${out.slice(-4000)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The pids of every agent process `kubegate dev` started, in order. */
const agentPids = () =>
  [...out.matchAll(/agent for cluster "dev" is running \(pid (\d+)\)/g)].map((m) => Number(m[1]));

async function agentStarts(n: number): Promise<void> {
  const t0 = Date.now();
  while (agentPids().length < n) {
    if (Date.now() - t0 > 30_000) throw new Error(`no agent start #${n}:\n${out.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('the README tour, followed literally, holds', { timeout: 900_000 }, () => {
  let admin: { kubeconfig: string };
  let developer: { kubeconfig: string };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kg-tour-'));
    dev = spawn(process.execPath, [kubegateBin(), 'dev'], {
      env: { ...process.env, KUBEGATE_DEV_DIR: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    dev.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    dev.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    exited = new Promise((resolve) => dev.once('exit', (code) => resolve(code)));
    // 1. `make dev` and wait for `kubegate is running.`
    const t0 = Date.now();
    await printed(/^kubegate is running\.$/m, 600_000);
    process.stderr.write(`# kubegate dev: running after ${Date.now() - t0} ms\n`);
    admin = { kubeconfig: join(dir, 'kubeconfig') };
    developer = { kubeconfig: join(dir, 'kubeconfig-developer') };
  });
  after(async () => {
    if (dev && dev.exitCode === null) dev.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('1. it prints everything the tour uses, with the real ports filled in', () => {
    assert.match(out, /proxy \(kubectl, REST API\)\s+https:\/\/127\.0\.0\.1:\d+/);
    assert.match(out, /demo admin kubeconfig\s+\S+kubeconfig\n/);
    assert.match(out, /web console \(browser\)\s+https:\/\/127\.0\.0\.1:\d+\//);
  });

  test('2. the admin kubeconfig: get ns, auth whoami, create deployment', async () => {
    const ns = await kubectlOk(['get', 'ns'], admin);
    assert.match(ns, /^default\s+Active/m);
    await kubectlOk(['auth', 'whoami'], admin);
    const created = await kubectlOk(['create', 'deployment', 'demo-app', '--image=nginx'], admin);
    assert.match(created, /deployment\.apps\/demo-app created/);
  });

  test('3. the developer can read but not write: delete prints the cluster’s Forbidden', async () => {
    await kubectlOk(['get', 'deployment', 'demo-app'], developer);
    const r = await kubectl(['delete', 'deployment', 'demo-app'], developer);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Forbidden/);
  });

  test('4. the kubeconfig: a context per cluster, server https://<proxy>/k8s/<cluster>, a kg_ token, no plugin', () => {
    const cfg = parse(readFileSync(admin.kubeconfig, 'utf8')) as {
      contexts: { name: string; context: { cluster: string } }[];
      clusters: { name: string; cluster: { server: string } }[];
      users: { user: Record<string, unknown> }[];
    };
    assert.deepEqual(
      cfg.contexts.map((c) => c.context.cluster),
      cfg.clusters.map((c) => c.name),
    );
    for (const c of cfg.clusters) {
      assert.match(c.cluster.server, new RegExp(`^https://127\\.0\\.0\\.1:\\d+/k8s/${c.name}$`));
    }
    for (const u of cfg.users) {
      assert.match(String(u.user.token), /^kg_/);
      assert.equal(u.user.exec, undefined, 'no exec plugin');
    }
  });

  test('5. kill the agent: kubectl says offline, and it comes back within seconds', async () => {
    await agentStarts(1);
    const pid = agentPids()[0]!;
    assert.ok(alive(pid));
    process.kill(pid, 'SIGKILL');
    const killedAt = Date.now();
    const offline = await kubectl(['get', 'ns'], { ...admin, timeoutMs: 30_000 });
    assert.notEqual(offline.code, 0);
    assert.match(offline.stderr, /cluster "dev" is offline/);
    await printed(/agent for cluster "dev" exited \(SIGKILL\); restarting it in 1 s/, 10_000);
    // Back within seconds: kubectl works again.
    let back = Infinity;
    while (Date.now() - killedAt < 30_000) {
      const r = await kubectl(['get', 'ns'], { ...admin, timeoutMs: 30_000 });
      if (r.code === 0) {
        back = Date.now() - killedAt;
        break;
      }
      await new Promise((res) => setTimeout(res, 250));
    }
    process.stderr.write(`# agent killed → kubectl works again after ${back} ms\n`);
    assert.ok(back <= 15_000, `the agent came back within seconds (${back} ms)`);
    // A second crash soon after waits longer (exponential back-off), and it comes back again.
    await agentStarts(2);
    const pid2 = agentPids()[1]!;
    assert.notEqual(pid2, pid);
    process.kill(pid2, 'SIGKILL');
    await printed(
      /agent for cluster "dev" exited \(SIGKILL\); restarting it in 2 s \(restart 2;/,
      10_000,
    );
    await agentStarts(3);
    await kubectlOk(['get', 'ns'], admin);
  });

  test('6. the sign-in page answers at the printed URL', async () => {
    const url = (await printed(/web console \(browser\)\s+(https:\/\/\S+)/, 1000))[1]!;
    const r = await fetch(url, { redirect: 'manual' }).catch((e: Error) => e);
    // kubegate's own CA: Node's fetch refuses it, which still proves something answers TLS there.
    assert.ok(
      r instanceof Error ? /certificate|self-signed|issuer/i.test(String(r.cause)) : r.status < 500,
    );
  });

  test('7. the developer asks for a namespace and may deploy into it, read-only elsewhere', async () => {
    const r = await runKubegate(
      [
        'namespace',
        'create',
        'team-demo',
        '--profile',
        'dev',
        '--cluster',
        'dev',
        '--wait',
        '--kubeconfig',
        developer.kubeconfig,
      ],
      { DATABASE_URL: '', KUBECONFIG: '', KUBEGATE_SERVER: '', KUBEGATE_TOKEN: '' },
    );
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /^ready: dev\/team-demo$/m);
    await kubectlOk(
      ['-n', 'team-demo', 'create', 'deployment', 'demo-app', '--image=nginx'],
      developer,
    );
    await kubectlOk(['-n', 'team-demo', 'get', 'resourcequota', 'kubegate-quota'], admin);
    const elsewhere = await kubectl(['create', 'deployment', 'other', '--image=nginx'], developer);
    assert.match(elsewhere.stderr, /forbidden: User "dev@example.com" cannot create/);
  });

  test('Ctrl-C stops everything', async () => {
    const pids = agentPids();
    dev.kill('SIGINT');
    const code = await Promise.race([
      exited,
      new Promise<string>((r) => setTimeout(() => r('timeout'), 60_000)),
    ]);
    assert.equal(code, 0, out.slice(-2000));
    assert.match(out, /stopped\n/);
    for (const p of pids) assert.ok(!alive(p), `agent ${p} is gone`);
  });
});
