/**
 * The real helm binary (v4, extracted to .tools/bin by `make tools` from the
 * same npm package as kubectl), for chart tests: lint, template, expected
 * failures. Values go through a temp file, exactly as `-f values.yaml` would.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from './repo.js';

export function helmPath(): string {
  const p = process.env.HELM ?? join(repoRoot(), '.tools', 'bin', 'helm');
  if (!existsSync(p))
    throw new Error(`helm not found at ${p}: run \`make tools\` (tests need the real binary)`);
  return p;
}

export function chartPath(name: 'kubegate' | 'kubegate-agent'): string {
  return join(repoRoot(), 'helm', name);
}

export interface HelmResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function helm(args: string[], timeoutMs = 60_000): Promise<HelmResult> {
  return new Promise((resolve, reject) => {
    const home = mkdtempSync(join(tmpdir(), 'kg-helm-'));
    // A private HOME/cache: no repositories, plugins or settings of the machine leak in.
    const child = spawn(helmPath(), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: process.env.PATH,
        HOME: home,
        HELM_CACHE_HOME: join(home, 'cache'),
        HELM_CONFIG_HOME: join(home, 'config'),
        HELM_DATA_HOME: join(home, 'data'),
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      rmSync(home, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    });
  });
}

/** Write values to a temp file; returns `-f` args and a clean-up function. */
export function valuesArgs(values: unknown[]): { args: string[]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kg-values-'));
  const args = values.flatMap((v, i) => {
    const file = join(dir, `values-${i}.yaml`);
    writeFileSync(file, JSON.stringify(v)); // JSON is YAML
    return ['-f', file];
  });
  return { args, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TemplateOptions {
  release?: string;
  namespace?: string;
  /** Values files from the chart's ci/ directory, e.g. 'full-values.yaml'. */
  ciValues?: string[];
  /** Value objects layered after the ci/ files. */
  values?: unknown[];
  skipTests?: boolean;
  extraArgs?: string[];
}

/** `helm template`; resolves with the result (non-zero exit included). */
export async function helmTemplate(
  chart: 'kubegate' | 'kubegate-agent',
  opts: TemplateOptions = {},
): Promise<HelmResult> {
  const v = valuesArgs(opts.values ?? []);
  try {
    return await helm([
      'template',
      opts.release ?? chart,
      chartPath(chart),
      '--namespace',
      opts.namespace ?? 'kubegate-system',
      ...(opts.ciValues ?? []).flatMap((f) => ['-f', join(chartPath(chart), 'ci', f)]),
      ...v.args,
      ...(opts.skipTests ? ['--skip-tests'] : []),
      ...(opts.extraArgs ?? []),
    ]);
  } finally {
    v.cleanup();
  }
}

export type K8sObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
};

/** `helm template` that must succeed; returns the parsed objects. */
export async function renderObjects(
  chart: 'kubegate' | 'kubegate-agent',
  opts: TemplateOptions = {},
): Promise<{ yaml: string; objects: K8sObject[] }> {
  const r = await helmTemplate(chart, opts);
  if (r.code !== 0) throw new Error(`helm template ${chart} failed (${r.code}): ${r.stderr}`);
  return { yaml: r.stdout, objects: parseObjects(r.stdout) };
}

export function parseObjects(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length) throw new Error(`invalid YAML from helm: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null && typeof o === 'object');
}
