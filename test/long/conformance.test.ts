/**
 * LONG-RUNNING (about 20 minutes): the Kubernetes conformance specs of sig-api-machinery pass
 * through kubegate exactly as they pass direct.
 *
 * test/cluster/bin/kg-e2e.test (the e2e.test of k8s.io/kubernetes with the sig-api-machinery
 * specs, built by `make e2e-bin`) runs every `[sig-api-machinery] … [Conformance]` spec that
 * needs neither a webhook pod nor serial access to the cluster, twice, one pass after the other,
 * each on a fresh real cluster: direct with the cluster's admin kubeconfig, then through
 * kubegate (the real stack: PostgreSQL, proxy, agent) with a fleet kubeconfig of a user granted
 * `cluster-admin` centrally. The nodes are kwok's fake nodes, so a spec that needs a container
 * really running may fail — both ways alike. A failing spec gets a second attempt, both ways
 * alike (specs with fixed 30 s waits miss them on a loaded machine). The test passes when the two
 * pass sets are identical; it prints both counts, every difference by spec name and every spec
 * that passed only on its second attempt. Each pass's full output is in test-results/conformance-{direct,kubegate}.log,
 * the proxy's in test-results/conformance-proxy.log.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack, type Stack } from '../support/stack.js';
import { startCluster } from '../support/cluster.js';
import { kubectl, kubectlPath } from '../support/kubectl.js';
import { grant } from '../support/grants.js';
import { repoRoot } from '../support/repo.js';

const E2E = join(repoRoot(), 'test', 'cluster', 'bin', 'kg-e2e.test');
const RESULTS = join(repoRoot(), 'test-results');
const FOCUS = String.raw`\[sig-api-machinery\].*\[Conformance\]`;
/**
 * Left out: specs that deploy a webhook server Pod (admission and CRD conversion webhooks, and
 * the CustomResourceFieldSelectors spec, which serves its CRD through a conversion webhook;
 * kwok's Pods run no container); [Serial] specs, which need the cluster to themselves; and the
 * one [Slow] spec (a continue token that expires when etcd is compacted: the test cluster's
 * apiserver never compacted within the spec's 10 minutes, so it only waits, both ways).
 */
const SKIP = String.raw`\[Serial\]|\[Slow\]|[Ww]ebhook|CustomResourceFieldSelectors`;
/** Sanity floors, so that two empty or broken passes never count as "identical". */
const MIN_SPECS = 55;
const MIN_DIRECT_PASSES = 50;
/** kwok fake nodes: the suite set-up needs a schedulable node; garbage-collector specs make Pods. */
const NODES = 2;
/** Attempts per spec (ginkgo's flake attempts). */
const ATTEMPTS = 2;

interface SpecReport {
  ContainerHierarchyTexts: string[] | null;
  LeafNodeText: string;
  LeafNodeType: string;
  State: string;
  NumAttempts?: number;
  Failure?: { Message?: string };
}

interface Pass {
  /** Every spec that ran (not skipped), by full name. */
  ran: Set<string>;
  passed: Set<string>;
  /** Failure message of each spec that did not pass. */
  failures: Map<string, string>;
  /** Specs that failed their first attempt and passed a later one. */
  flaked: Set<string>;
  seconds: number;
  exitCode: number | null;
}

/** Runs kg-e2e.test once against `kubeconfig`; reads its Ginkgo JSON report. */
async function runPass(name: string, kubeconfig: string, dir: string): Promise<Pass> {
  const report = join(dir, `${name}.json`);
  const logFile = join(RESULTS, `conformance-${name}.log`);
  const out = createWriteStream(logFile);
  const t0 = Date.now();
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(
      E2E,
      [
        `--kubeconfig=${kubeconfig}`,
        `--kubectl-path=${kubectlPath()}`,
        `--e2e-output-dir=${dir}`,
        `--ginkgo.focus=${FOCUS}`,
        `--ginkgo.skip=${SKIP}`,
        `--ginkgo.json-report=${report}`,
        '--ginkgo.no-color',
        '--ginkgo.v',
        '--ginkgo.poll-progress-after=3m',
        // The same order both ways.
        '--ginkgo.seed=1',
        '--ginkgo.timeout=45m',
        // A failing spec runs once more, both ways alike. Some specs wait a fixed 30 s for the
        // cluster (a CustomResourceDefinition to be gone, a namespace to empty); on two cores
        // shared with the main suite that deadline was missed once each way. A spec that fails
        // through kubegate because of kubegate fails its second attempt too; every spec that
        // needed it is printed (and counted) below.
        `--ginkgo.flake-attempts=${ATTEMPTS}`,
      ],
      { env: { ...process.env, KUBECONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout.pipe(out, { end: false });
    child.stderr.pipe(out, { end: false });
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  out.end();
  const seconds = Math.round((Date.now() - t0) / 1000);
  assert.ok(
    existsSync(report),
    `${name}: kg-e2e.test exited ${exitCode} without a report; see ${logFile}`,
  );
  const suites = JSON.parse(readFileSync(report, 'utf8')) as { SpecReports: SpecReport[] }[];
  const specs = suites.flatMap((s) => s.SpecReports ?? []);
  for (const s of specs.filter((r) => r.LeafNodeType !== 'It')) {
    // SynchronizedBeforeSuite and the like: a failure there fails every spec.
    assert.ok(
      s.State === 'passed' || s.State === 'skipped',
      `${name}: ${s.LeafNodeType} ${s.State}: ${s.Failure?.Message ?? ''}; see ${logFile}`,
    );
  }
  const pass: Pass = {
    ran: new Set(),
    passed: new Set(),
    failures: new Map(),
    flaked: new Set(),
    seconds,
    exitCode,
  };
  for (const s of specs) {
    if (s.LeafNodeType !== 'It' || s.State === 'skipped' || s.State === 'pending') continue;
    const full = [...(s.ContainerHierarchyTexts ?? []), s.LeafNodeText].join(' ');
    pass.ran.add(full);
    if (s.State === 'passed') pass.passed.add(full);
    if (s.State === 'passed' && (s.NumAttempts ?? 1) > 1) pass.flaked.add(full);
    if (s.State !== 'passed')
      pass.failures.set(full, `${s.State}: ${(s.Failure?.Message ?? '').slice(0, 600)}`);
  }
  process.stderr.write(
    `# conformance ${name}: ${pass.passed.size} of ${pass.ran.size} specs passed in ${seconds} s (exit ${exitCode}; log ${logFile})\n`,
  );
  for (const [spec, why] of pass.failures)
    process.stderr.write(`#   ${name} failed: ${spec}\n#     ${why.split('\n')[0]}\n`);
  for (const spec of pass.flaked)
    process.stderr.write(`#   ${name} passed on a later attempt: ${spec}\n`);
  return pass;
}

let stack: Stack;
let work: string;

describe(
  'LONG: sig-api-machinery conformance, direct and through kubegate',
  {
    timeout: 100 * 60_000,
  },
  () => {
    before(async () => {
      assert.ok(
        existsSync(E2E),
        `${E2E} is missing: run \`make e2e-bin\` (test/cluster/build-e2e.sh)`,
      );
      mkdirSync(RESULTS, { recursive: true });
      work = mkdtempSync(join(tmpdir(), 'kg-conformance-'));
    });
    after(async () => {
      if (stack) await writeFile(join(RESULTS, 'conformance-proxy.log'), stack.proxy.output());
      await stack?.stop();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    test('the same specs pass direct and through kubegate (cluster-admin)', async () => {
      // Each pass gets a fresh cluster of its own, so neither inherits the other's leftovers
      // (namespaces still terminating, the quota controller's backlog).
      const cluster = await startCluster({ nodes: NODES, timeoutMs: 180_000 });
      let direct: Pass;
      try {
        direct = await runPass('direct', cluster.kubeconfig, work);
      } finally {
        await cluster.stop();
      }

      stack = await startStack({
        clusters: [{ name: 'dev', nodes: NODES }],
        log: (m) => process.stderr.write(`# ${m}\n`),
      });
      await grant(stack, { users: ['conformance'], role: 'cluster-admin', clusters: ['dev'] });
      const kubeconfig = await stack.kubeconfig('conformance', [], '3h');
      // The proxy learns of the binding through LISTEN/NOTIFY: wait until it applies.
      for (let i = 0; ; i++) {
        const r = await kubectl(['get', 'nodes'], { kubeconfig });
        if (r.code === 0) break;
        assert.ok(i < 30, `kubectl get nodes through kubegate: ${r.stderr}`);
        await new Promise((res) => setTimeout(res, 1000));
      }
      const viaKubegate = await runPass('kubegate', kubeconfig, work);

      process.stderr.write(
        `# conformance: direct ${direct.passed.size}/${direct.ran.size} passed (${direct.seconds} s), through kubegate ${viaKubegate.passed.size}/${viaKubegate.ran.size} passed (${viaKubegate.seconds} s); passed on a later attempt: ${direct.flaked.size} direct, ${viaKubegate.flaked.size} through kubegate\n`,
      );
      assert.ok(direct.ran.size >= MIN_SPECS, `only ${direct.ran.size} specs ran direct`);
      assert.deepEqual(
        [...viaKubegate.ran].sort(),
        [...direct.ran].sort(),
        'the same specs ran both ways',
      );
      assert.ok(
        direct.passed.size >= MIN_DIRECT_PASSES,
        `only ${direct.passed.size} specs passed direct: the cluster, not kubegate, is broken`,
      );
      const onlyDirect = [...direct.passed].filter((s) => !viaKubegate.passed.has(s)).sort();
      const onlyKubegate = [...viaKubegate.passed].filter((s) => !direct.passed.has(s)).sort();
      const diff = [
        ...onlyDirect.map((s) => `passed direct only: ${s}\n    ${viaKubegate.failures.get(s)}`),
        ...onlyKubegate.map(
          (s) => `passed through kubegate only: ${s}\n    ${direct.failures.get(s)}`,
        ),
      ];
      for (const d of diff) process.stderr.write(`# conformance difference: ${d}\n`);
      assert.equal(diff.length, 0, `pass sets differ:\n${diff.join('\n')}`);
    });
  },
);
