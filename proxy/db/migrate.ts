/**
 * Forward-only, numbered, checksummed migrations under an advisory lock, so
 * replicas starting together apply each migration exactly once.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from './pool.js';
import { inTransactionOn } from './query.js';
import { KgError } from '../../common/errors.js';
import { packageRoot } from '../../common/package-root.js';

/** Arbitrary constant: the advisory lock key that serialises migrations. */
const lockKey = 7_346_519_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

export function loadMigrations(dir = join(packageRoot(), 'migrations')): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const seen = new Set<number>();
  return files.map((file) => {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m)
      throw new KgError('KG_ERR_CONFIG', `migration file "${file}" must be named NNNN_name.sql`);
    const version = Number(m[1]);
    if (seen.has(version))
      throw new KgError('KG_ERR_CONFIG', `two migrations share version ${m[1]}`);
    seen.add(version);
    const sql = readFileSync(join(dir, file), 'utf8');
    return { version, name: file, sql, checksum: createHash('sha256').update(sql).digest('hex') };
  });
}

export interface MigrateResult {
  applied: string[];
  current: number;
}

/** Apply pending migrations; a re-run is a no-op; a changed applied migration is refused. */
export async function migrate(
  pool: Pool,
  migrations: Migration[] = loadMigrations(),
  onProgress: (msg: string) => void = () => undefined,
): Promise<MigrateResult> {
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [lockKey]);
    await client.query(`CREATE TABLE IF NOT EXISTS kg_schema_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      checksum text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number; name: string; checksum: string }>(
      'SELECT version, name, checksum FROM kg_schema_migrations ORDER BY version',
    );
    const done = new Map(rows.map((r) => [r.version, r]));
    const applied: string[] = [];
    for (const m of migrations) {
      const prior = done.get(m.version);
      if (prior) {
        if (prior.checksum !== m.checksum) {
          throw new KgError(
            'KG_ERR_CONFIG',
            `migration ${m.name} was changed after it was applied (recorded checksum ${prior.checksum.slice(0, 12)}…, file ${m.checksum.slice(0, 12)}…); migrations are forward-only: restore the file and add a new migration instead`,
          );
        }
        continue;
      }
      onProgress(`applying ${m.name}`);
      try {
        // The migration and its record commit together or not at all.
        await inTransactionOn(client, async (c) => {
          await c.query(m.sql);
          await c.query(
            'INSERT INTO kg_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
            [m.version, m.name, m.checksum],
          );
        });
      } catch (err) {
        throw new KgError(
          'KG_ERR_INTERNAL',
          `migration ${m.name} failed: ${(err as Error).message}`,
          { cause: err },
        );
      }
      applied.push(m.name);
    }
    const current = migrations.length ? migrations[migrations.length - 1]!.version : 0;
    return { applied, current };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [lockKey]).catch(() => undefined);
    client.release();
  }
}
