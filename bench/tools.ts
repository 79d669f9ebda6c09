/**
 * What `make bench` needs beyond the npm packages, installed when missing:
 * nginx and h2load from Debian (one `apt-get update` first), and autocannon
 * from npm until package.json lists it.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { repoRoot } from '../test/support/repo.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function run(cmd: string, args: string[], log: (m: string) => void): void {
  log(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
}

/** Debian package that provides nginx here: nginx-light where it is a real candidate. */
function nginxPackage(): string {
  const r = spawnSync('apt-cache', ['policy', 'nginx-light'], { encoding: 'utf8' });
  return /Candidate: (?!\(none\))/.test(r.stdout ?? '') ? 'nginx-light' : 'nginx';
}

export function ensureTools(log: (m: string) => void): void {
  const missing: string[] = [];
  if (!has('h2load')) missing.push('nghttp2-client');
  if (!has('nginx')) missing.push('nginx');
  if (missing.length) {
    if (process.getuid?.() !== 0)
      throw new Error(
        `missing ${missing.join(', ')}: install them (apt-get install -y ${missing.join(' ')})`,
      );
    run('apt-get', ['update', '-qq'], log);
    const pkgs = missing.map((p) => (p === 'nginx' ? nginxPackage() : p));
    run('apt-get', ['install', '-y', '-qq', ...pkgs], log);
  }
  const require = createRequire(import.meta.url);
  try {
    require.resolve('autocannon');
  } catch {
    // Not in package.json yet: install it without touching package.json.
    const r = spawnSync(
      'npm',
      ['install', '--no-save', '--no-audit', '--no-fund', 'autocannon@9'],
      {
        cwd: repoRoot(),
        stdio: ['ignore', 'pipe', 'pipe'],
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(`npm install autocannon failed:\n${r.stderr}`);
    log('installed autocannon (npm, --no-save)');
  }
}
