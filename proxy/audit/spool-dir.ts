/**
 * The spool directory of one proxy process: where it is by default, and a
 * lock so two live processes never share one (each would replay and delete
 * the other's segments). A lock left by a dead process is taken over.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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

const segmentFile = /^(\d{12})\.jsonl$/;
const workerDir = /^worker-(\d+)$/;

/** Sealed segments in `dir`, as names. */
function segmentsIn(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => segmentFile.test(n));
  } catch {
    return [];
  }
}

/**
 * Before a proxy starts `workers` processes on `dir` (1: the process alone
 * uses `dir`; more: worker n uses `dir/worker-n`, common/workers.ts), move
 * the segments any other layout left there — a single process's, or those
 * of workers beyond the count — to where one of the coming processes will
 * replay them. Numbered after the target's own, so none is overwritten.
 * Holds the directory's lock meanwhile; a primary keeps it (returned) for as
 * long as its workers run, a single process releases it and locks again.
 */
export function adoptSpools(
  dir: string,
  workers: number,
  log?: { warn: (o: object, m: string) => void },
): () => void {
  const release = lockSpoolDir(dir);
  try {
    const owners = readdirSync(dir)
      .map((n) => ({ n, m: workerDir.exec(n) }))
      .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null);
    const moves: { from: string; to: string }[] = [];
    if (workers > 1) {
      moves.push({ from: dir, to: join(dir, 'worker-0') });
      for (const { n, m } of owners)
        if (Number(m[1]) >= workers)
          moves.push({ from: join(dir, n), to: join(dir, `worker-${Number(m[1]) % workers}`) });
    } else {
      for (const { n } of owners) moves.push({ from: join(dir, n), to: dir });
    }
    for (const { from, to } of moves) {
      const names = segmentsIn(from).sort();
      if (!names.length) continue;
      mkdirSync(to, { recursive: true, mode: 0o700 });
      let seq = Math.max(0, ...segmentsIn(to).map((n) => Number(segmentFile.exec(n)![1])));
      for (const name of names) {
        seq += 1;
        renameSync(join(from, name), join(to, `${String(seq).padStart(12, '0')}.jsonl`));
      }
      log?.warn(
        { from, to, segments: names.length },
        'audit spool segments moved to a running process',
      );
    }
  } catch (err) {
    release();
    throw err;
  }
  return release;
}
