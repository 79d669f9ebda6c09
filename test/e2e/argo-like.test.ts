/**
 * An ArgoCD-like client through kubegate with a robot token: test/argo-client (Go, client-go)
 * discovers every API group, starts a dynamic informer (list + watch) for every resource kind
 * that can be listed and watched — as ArgoCD's cluster cache does — over client-go's HTTP/2
 * connection to kubegate, waits for every cache to sync, and then sees a ConfigMap created
 * afterwards arrive through its watch. The set of resources it watched is compared with what
 * the apiserver itself reports to the admin.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startStack, type Stack } from '../support/stack.js';
import { kubectlOk } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { httpGet } from '../support/http.js';
import { repoRoot } from '../support/repo.js';

let stack: Stack;
let robotConfig: string;
let binary: string;

/** Build test/argo-client with the local Go toolchain (module cache shared with the cluster build). */
function buildClient(out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('go', ['build', '-o', out, '.'], {
      cwd: join(repoRoot(), 'test', 'argo-client'),
      env: { ...process.env, GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', (e) => reject(new Error(`go build of test/argo-client: ${e.message}`)));
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`go build of test/argo-client failed: ${err}`)),
    );
  });
}

interface Line {
  event: string;
  resources?: number;
  objects?: number;
  groups?: string[];
  names?: string[];
  configmap?: string;
  afterMs?: number;
}

describe(
  'an ArgoCD-like client (client-go dynamic informers) through kubegate',
  {
    timeout: 600_000,
  },
  () => {
    before(async () => {
      stack = await startStack({ log: (m) => process.stderr.write(`# ${m}\n`) });
      binary = join(stack.dir, 'argo-client');
      await buildClient(binary);
      // A robot as an admin would make one for ArgoCD, bound by its group.
      const tokenFile = join(stack.dir, 'argocd.token');
      await stack.admin([
        'robot',
        'create',
        'argocd',
        '--group',
        'gitops',
        '--ttl',
        '1h',
        '--out',
        tokenFile,
      ]);
      await grant(stack, { groups: ['gitops'], role: 'cluster-admin', clusters: ['dev'] });
      const ca = Buffer.from(
        /certificate-authority-data: (\S+)/.exec(
          readFileSync(await stack.kubeconfig('someone', ['gitops']), 'utf8'),
        )![1]!,
        'base64',
      ).toString();
      const kc = await httpGet(`${stack.publicUrl}/api/v1/kubeconfig?ttl=1h`, {
        token: readFileSync(tokenFile, 'utf8').trim(),
        ca,
      });
      assert.equal(kc.status, 200, kc.body);
      robotConfig = join(stack.dir, 'argocd.kubeconfig');
      writeFileSync(robotConfig, kc.body, { mode: 0o600 });
    });
    after(async () => {
      await stack?.stop();
    });

    test('every listable kind syncs through kubegate, and a later change arrives by watch', async () => {
      const expected = (
        await kubectlOk(['api-resources', '--verbs=list,watch', '-o', 'name'], {
          kubeconfig: stack.cluster.kubeconfig,
        })
      )
        .trim()
        .split('\n')
        .sort();
      const child = spawn(
        binary,
        [
          '-kubeconfig',
          robotConfig,
          '-expect-configmap',
          'default/argo-sees-this',
          '-timeout',
          '4m',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      const lines: Line[] = [];
      const waiters: (() => void)[] = [];
      createInterface({ input: child.stdout }).on('line', (l) => {
        lines.push(JSON.parse(l) as Line);
        for (const w of waiters.splice(0)) w();
      });
      const next = async (event: string, timeoutMs: number): Promise<Line> => {
        const t0 = Date.now();
        for (;;) {
          const found = lines.find((l) => l.event === event);
          if (found) return found;
          if (child.exitCode !== null)
            throw new Error(`argo-client exited ${child.exitCode}: ${stderr}`);
          if (Date.now() - t0 > timeoutMs)
            throw new Error(`no "${event}" within ${timeoutMs} ms: ${stderr}`);
          await new Promise<void>((r) => {
            waiters.push(r);
            setTimeout(r, 250);
          });
        }
      };
      try {
        const t0 = Date.now();
        const synced = await next('synced', 240_000);
        const syncMs = Date.now() - t0;
        assert.deepEqual(
          synced.names,
          expected,
          'one informer per listable kind, as the apiserver lists them',
        );
        assert.ok(synced.resources! >= 40, `${synced.resources} kinds`);
        assert.ok(synced.objects! > 0);
        for (const g of [
          'apps',
          'rbac.authorization.k8s.io',
          'apiextensions.k8s.io',
          'coordination.k8s.io',
        ])
          assert.ok(synced.groups!.includes(g), `group ${g} discovered`);

        await kubectlOk(['create', 'configmap', 'argo-sees-this', '-n', 'default'], {
          kubeconfig: stack.cluster.kubeconfig,
        });
        const seen = await next('seen', 60_000);
        assert.equal(seen.configmap, 'default/argo-sees-this');
        assert.equal(await exited, 0, stderr);
        process.stderr.write(
          `# argo-like: ${synced.resources} kinds, ${synced.objects} objects synced in ${syncMs} ms; change seen ${seen.afterMs} ms after sync\n`,
        );
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    });
  },
);
