/**
 * The spool directory of one proxy process: where it is by default, and a
 * lock so two live processes never share one (each would replay and delete
 * the other's segments). A lock left by a dead process is taken over.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KgError } from '../../common/errors.js';

/**
 * A stable default for a replica: the same database and listen address give
 * the same directory, so a restarted process replays what its predecessor
 * left. Production should set KUBEGATE_AUDIT_SPOOL_DIR to a persistent volume.
 */
export function defaultSpoolDir(databaseUrl: string, listen: string): string {
  let db = databaseUrl;
  try {
    const u = new URL(databaseUrl);
    u.password = '';
    db = u.toString();
  } catch {
    // not a URL: hash it as it is
  }
  const id = createHash('sha256').update(`${db}\n${listen}`).digest('hex').slice(0, 16);
  return join(tmpdir(), 'kubegate-audit-spool', id);
}

function alive(pid: number): boolean {
  if (pid === process.pid) return false; // our own stale lock (a container's pid 1 restarted)
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Take the directory's lock; returns the release function. */
export function lockSpoolDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) {
        throw new KgError(
          'KG_ERR_CONFIG',
          `audit spool directory ${dir} is in use by process ${holder}; give each proxy process its own KUBEGATE_AUDIT_SPOOL_DIR`,
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new KgError('KG_ERR_CONFIG', `cannot lock the audit spool directory ${dir}`);
}
