/**
 * Runbooks and their runs in PostgreSQL (migrations/0010_runbooks.sql).
 *
 * Definitions are versioned: each save adds a row to `runbook_versions`, and
 * a run copies the definition it ran. Built-in runbooks (catalogue.ts) are
 * read-only and never stored; a stored one cannot take a built-in name.
 *
 * Run state is what makes a run durable across replicas: a target (one
 * cluster of a run) is worked on by the replica holding its lease, each
 * step is written `running` before its API call is sent, and a lease that
 * runs out with a step still `running` makes that step (and the target)
 * `unknown` — it is never sent a second time.
 */
import { createHash } from 'node:crypto';
import { KgError, invalid } from '../../common/errors.js';
import type { Pool } from '../db/pool.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import { catalogue } from './catalogue.js';
import { validateRunbook, type RunbookSpec } from './definition.js';
import type { ParamValues } from './params.js';

export interface RunbookRecord {
  name: string;
  version: number;
  builtin: boolean;
  spec: RunbookSpec;
  updatedBy?: string;
  updatedAt?: string;
}

export type RunStatus =
  'queued' | 'running' | 'succeeded' | 'failed' | 'unknown' | 'offline' | 'cancelled';
export const runStatuses: readonly RunStatus[] = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'unknown',
  'offline',
  'cancelled',
];
export type StepStatus = 'running' | 'succeeded' | 'failed' | 'skipped' | 'unknown';

export interface StepRecord {
  index: number;
  name: string;
  action: string;
  status: StepStatus;
  message: string;
  diff: string | null;
  result: unknown;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface TargetRecord {
  cluster: string;
  status: RunStatus;
  message: string;
  startedAt: string | null;
  finishedAt: string | null;
  steps: StepRecord[];
}

export interface RunRecord {
  id: string;
  runbook: string;
  version: number;
  namespace: string;
  params: ParamValues;
  dryRun: boolean;
  requester: { name: string; kind: string; groups: string[] };
  ticket: string;
  status: RunStatus;
  createdAt: string;
  finishedAt: string | null;
  targets: TargetRecord[];
}

const builtins = new Map(catalogue.map((s) => [s.name, s]));

function builtinRecord(spec: RunbookSpec): RunbookRecord {
  return { name: spec.name, version: 1, builtin: true, spec };
}

interface RunbookRow {
  name: string;
  version: number;
  spec: RunbookSpec;
  updated_by: string;
  updated_at: Date;
}

function storedRecord(r: RunbookRow): RunbookRecord {
  return {
    name: r.name,
    version: r.version,
    builtin: false,
    spec: r.spec,
    updatedBy: r.updated_by,
    updatedAt: r.updated_at.toISOString(),
  };
}

/** Every runbook: the catalogue, then the stored ones, by name. */
export async function listRunbooks(db: Queryable): Promise<RunbookRecord[]> {
  const rows = await query<RunbookRow>(
    db,
    'SELECT name, version, spec, updated_by, updated_at FROM runbooks ORDER BY name',
  );
  return [...catalogue.map(builtinRecord), ...rows.map(storedRecord)].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
}

/** One runbook, or a 404 that says where to look. */
export async function getRunbook(db: Queryable, name: string): Promise<RunbookRecord> {
  const b = builtins.get(name);
  if (b) return builtinRecord(b);
  const [row] = await query<RunbookRow>(
    db,
    'SELECT name, version, spec, updated_by, updated_at FROM runbooks WHERE name = $1',
    [name],
  );
  if (!row)
    throw new KgError(
      'KG_ERR_NOT_FOUND',
      `runbook ${JSON.stringify(name)} not found (GET /api/v1/runbooks lists them)`,
    );
  return storedRecord(row);
}

function checked(raw: unknown, name?: string): RunbookSpec {
  const { spec, problems } = validateRunbook(raw);
  if (spec && name !== undefined && spec.name !== name)
    problems.push(`name: must be ${JSON.stringify(name)}, the runbook in the path`);
  if (!spec || problems.length) throw invalid('runbook', problems);
  if (builtins.has(spec.name))
    throw new KgError(
      'KG_ERR_CONFLICT',
      `${JSON.stringify(spec.name)} is a built-in runbook; choose another name`,
    );
  return spec;
}

/** Save a new runbook (version 1). */
export async function createRunbook(
  pool: Pool,
  raw: unknown,
  actor: string,
): Promise<RunbookRecord> {
  const spec = checked(raw);
  return inTransaction(pool, async (c) => {
    const [row] = await query<RunbookRow>(
      c,
      `INSERT INTO runbooks (name, version, spec, created_by, updated_by)
       VALUES ($1, 1, $2, $3, $3) ON CONFLICT (name) DO NOTHING
       RETURNING name, version, spec, updated_by, updated_at`,
      [spec.name, JSON.stringify(spec), actor],
    );
    if (!row)
      throw new KgError('KG_ERR_CONFLICT', `runbook ${JSON.stringify(spec.name)} already exists`);
    await saved(c, row, actor, 'create');
    return storedRecord(row);
  });
}

/** Replace a runbook's definition: a new version; runs already made keep theirs. */
export async function replaceRunbook(
  pool: Pool,
  name: string,
  raw: unknown,
  actor: string,
): Promise<RunbookRecord> {
  if (builtins.has(name))
    throw new KgError(
      'KG_ERR_CONFLICT',
      `${JSON.stringify(name)} is built in and cannot be changed`,
    );
  const spec = checked(raw, name);
  return inTransaction(pool, async (c) => {
    const [row] = await query<RunbookRow>(
      c,
      `UPDATE runbooks SET version = version + 1, spec = $2, updated_by = $3, updated_at = now()
       WHERE name = $1 RETURNING name, version, spec, updated_by, updated_at`,
      [name, JSON.stringify(spec), actor],
    );
    if (!row) throw new KgError('KG_ERR_NOT_FOUND', `runbook ${JSON.stringify(name)} not found`);
    await saved(c, row, actor, 'update');
    return storedRecord(row);
  });
}

export async function deleteRunbook(pool: Pool, name: string, actor: string): Promise<void> {
  if (builtins.has(name))
    throw new KgError(
      'KG_ERR_CONFLICT',
      `${JSON.stringify(name)} is built in and cannot be deleted`,
    );
  await inTransaction(pool, async (c) => {
    const rows = await query(c, 'DELETE FROM runbooks WHERE name = $1 RETURNING name', [name]);
    if (!rows.length)
      throw new KgError('KG_ERR_NOT_FOUND', `runbook ${JSON.stringify(name)} not found`);
    await recordAdminEvent(c, { actor, verb: 'delete', resource: 'runbooks', name });
  });
}

async function saved(c: Queryable, row: RunbookRow, actor: string, verb: string): Promise<void> {
  await query(
    c,
    'INSERT INTO runbook_versions (name, version, spec, created_by) VALUES ($1, $2, $3, $4)',
    [row.name, row.version, JSON.stringify(row.spec), actor],
  );
  await recordAdminEvent(c, {
    actor,
    verb,
    resource: 'runbooks',
    name: row.name,
    detail: { version: row.version },
  });
}

// --- runs --------------------------------------------------------------------

export interface NewRun {
  runbook: RunbookRecord;
  params: ParamValues;
  namespace: string;
  clusters: string[];
  dryRun: boolean;
  requester: { name: string; kind: string; groups: string[] };
  ticket: string;
  idempotencyKey?: string;
}

/** What a retried request must repeat exactly to be the same run. */
function requestHash(r: NewRun): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        r.runbook.name,
        r.runbook.version,
        r.params,
        r.namespace,
        r.clusters,
        r.dryRun,
        r.ticket,
      ]),
    )
    .digest('hex');
}

/**
 * Create a run (queued on every target), or — for a key this requester used
 * before — return that run (`created: false`). The same key with a different
 * request is a 409: the client is confused, and guessing would be wrong.
 */
export async function createRun(pool: Pool, r: NewRun): Promise<{ id: string; created: boolean }> {
  const hash = requestHash(r);
  return inTransaction(pool, async (c) => {
    const [row] = await query<{ id: string }>(
      c,
      `INSERT INTO runbook_runs (runbook, version, spec, params, namespace, dry_run, requester,
         requester_kind, requester_groups, ticket, idempotency_key, request_hash, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'queued')
       ON CONFLICT (requester_kind, requester, idempotency_key) WHERE idempotency_key IS NOT NULL
       DO NOTHING RETURNING id`,
      [
        r.runbook.name,
        r.runbook.version,
        JSON.stringify(r.runbook.spec),
        JSON.stringify(r.params),
        r.namespace,
        r.dryRun,
        r.requester.name,
        r.requester.kind,
        r.requester.groups,
        r.ticket,
        r.idempotencyKey ?? null,
        hash,
      ],
    );
    if (!row) {
      const [prev] = await query<{ id: string; request_hash: string }>(
        c,
        `SELECT id, request_hash FROM runbook_runs
         WHERE requester_kind = $1 AND requester = $2 AND idempotency_key = $3`,
        [r.requester.kind, r.requester.name, r.idempotencyKey],
      );
      if (!prev || prev.request_hash !== hash)
        throw new KgError(
          'KG_ERR_CONFLICT',
          'this Idempotency-Key was used before for a different request; use a new key for a new run',
        );
      return { id: prev.id, created: false };
    }
    for (const cluster of r.clusters)
      await query(
        c,
        `INSERT INTO runbook_run_targets (run_id, cluster, status) VALUES ($1, $2, 'queued')`,
        [row.id, cluster],
      );
    return { id: row.id, created: true };
  });
}

interface RunRow {
  id: string;
  runbook: string;
  version: number;
  params: ParamValues;
  namespace: string;
  dry_run: boolean;
  requester: string;
  requester_kind: string;
  requester_groups: string[];
  ticket: string;
  status: RunStatus;
  created_at: Date;
  finished_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function runRecord(r: RunRow, targets: TargetRecord[]): RunRecord {
  return {
    id: r.id,
    runbook: r.runbook,
    version: r.version,
    namespace: r.namespace,
    params: r.params,
    dryRun: r.dry_run,
    requester: { name: r.requester, kind: r.requester_kind, groups: r.requester_groups },
    ticket: r.ticket,
    status: r.status,
    createdAt: r.created_at.toISOString(),
    finishedAt: iso(r.finished_at),
    targets,
  };
}

const runCols = `id, runbook, version, params, namespace, dry_run, requester, requester_kind,
  requester_groups, ticket, status, created_at, finished_at`;
const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One run with its targets and steps. */
export async function getRun(db: Queryable, id: string): Promise<RunRecord> {
  const [row] = uuidRe.test(id)
    ? await query<RunRow>(db, `SELECT ${runCols} FROM runbook_runs WHERE id = $1`, [id])
    : [];
  if (!row) throw new KgError('KG_ERR_NOT_FOUND', `run ${JSON.stringify(id)} not found`);
  const targets = await query<{
    cluster: string;
    status: RunStatus;
    message: string;
    started_at: Date | null;
    finished_at: Date | null;
  }>(
    db,
    `SELECT cluster, status, message, started_at, finished_at FROM runbook_run_targets
     WHERE run_id = $1 ORDER BY cluster`,
    [id],
  );
  const steps = await query<{
    cluster: string;
    index: number;
    name: string;
    action: string;
    status: StepStatus;
    message: string;
    diff: string | null;
    result: unknown;
    started_at: Date | null;
    finished_at: Date | null;
  }>(
    db,
    `SELECT cluster, index, name, action, status, message, diff, result, started_at, finished_at
     FROM runbook_run_steps WHERE run_id = $1 ORDER BY cluster, index`,
    [id],
  );
  return runRecord(
    row,
    targets.map((t) => ({
      cluster: t.cluster,
      status: t.status,
      message: t.message,
      startedAt: iso(t.started_at),
      finishedAt: iso(t.finished_at),
      steps: steps
        .filter((s) => s.cluster === t.cluster)
        .map((s) => ({
          index: s.index,
          name: s.name,
          action: s.action,
          status: s.status,
          message: s.message,
          diff: s.diff,
          result: s.result,
          startedAt: iso(s.started_at),
          finishedAt: iso(s.finished_at),
        })),
    })),
  );
}

export interface RunFilter {
  runbook?: string;
  status?: RunStatus;
  requester?: string;
  ticket?: string;
  /** Only runs this requester asked for (non-admins see their own). */
  mine?: { name: string; kind: string };
  limit: number;
}

/** Run history, newest first (without steps: GET one run for those). */
export async function listRuns(db: Queryable, f: RunFilter): Promise<RunRecord[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    values.push(v);
    where.push(sql.replace('?', `$${values.length}`));
  };
  if (f.runbook) add('runbook = ?', f.runbook);
  if (f.status) add('status = ?', f.status);
  if (f.requester) add('requester = ?', f.requester);
  if (f.ticket) add('ticket = ?', f.ticket);
  if (f.mine) {
    add('requester = ?', f.mine.name);
    add('requester_kind = ?', f.mine.kind);
  }
  values.push(f.limit);
  const rows = await query<RunRow>(
    db,
    `SELECT ${runCols} FROM runbook_runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY created_at DESC, id DESC LIMIT $${values.length}`,
    values,
  );
  return rows.map((r) => runRecord(r, []));
}

// --- execution state ---------------------------------------------------------

export interface ClaimedTarget {
  runId: string;
  cluster: string;
  spec: RunbookSpec;
  params: ParamValues;
  namespace: string;
  dryRun: boolean;
  requester: string;
  requesterKind: string;
  ticket: string;
  /** Steps already finished (a target taken over between steps resumes after them). */
  done: number;
}

/**
 * Take one target this replica can serve (its cluster has a tunnel here):
 * queued, or running under a lease that ran out. A target whose last step
 * was started and never finished is not taken: its step and the target
 * become `unknown` (the step may or may not have happened on the cluster).
 */
export async function claimTarget(
  pool: Pool,
  owner: string,
  clusters: string[],
  leaseMs: number,
): Promise<ClaimedTarget | undefined> {
  if (!clusters.length) return undefined;
  return inTransaction(pool, async (c) => {
    const [t] = await query<{ run_id: string; cluster: string; status: RunStatus }>(
      c,
      `SELECT run_id, cluster, status FROM runbook_run_targets
       WHERE cluster = ANY($1) AND (status = 'queued' OR (status = 'running' AND lease_until < now()))
       ORDER BY run_id LIMIT 1 FOR UPDATE SKIP LOCKED`,
      [clusters],
    );
    if (!t) return undefined;
    if (t.status === 'running') {
      const lost = await query(
        c,
        `UPDATE runbook_run_steps SET status = 'unknown', finished_at = now(),
           message = 'the replica running this step stopped before it reported; whether it took effect on the cluster is unknown, and it was not sent again'
         WHERE run_id = $1 AND cluster = $2 AND status = 'running' RETURNING index`,
        [t.run_id, t.cluster],
      );
      if (lost.length) {
        await finishTargetOn(c, t.run_id, t.cluster, 'unknown', 'a step was interrupted');
        return undefined;
      }
    }
    await query(
      c,
      `UPDATE runbook_run_targets SET status = 'running', owner = $3,
         lease_until = now() + make_interval(secs => $4), started_at = coalesce(started_at, now())
       WHERE run_id = $1 AND cluster = $2`,
      [t.run_id, t.cluster, owner, leaseMs / 1000],
    );
    await query(
      c,
      `UPDATE runbook_runs SET status = 'running' WHERE id = $1 AND status = 'queued'`,
      [t.run_id],
    );
    const [run] = await query<{
      spec: RunbookSpec;
      params: ParamValues;
      namespace: string;
      dry_run: boolean;
      requester: string;
      requester_kind: string;
      ticket: string;
      done: number;
    }>(
      c,
      `SELECT spec, params, namespace, dry_run, requester, requester_kind, ticket,
         (SELECT count(*)::int FROM runbook_run_steps s WHERE s.run_id = r.id AND s.cluster = $2) AS done
       FROM runbook_runs r WHERE id = $1`,
      [t.run_id, t.cluster],
    );
    return {
      runId: t.run_id,
      cluster: t.cluster,
      spec: run!.spec,
      params: run!.params,
      namespace: run!.namespace,
      dryRun: run!.dry_run,
      requester: run!.requester,
      requesterKind: run!.requester_kind,
      ticket: run!.ticket,
      done: run!.done,
    };
  });
}

/** Keep the lease while working; false when it was lost (another replica took over). */
export async function renewLease(
  pool: Pool,
  t: { runId: string; cluster: string },
  owner: string,
  leaseMs: number,
): Promise<boolean> {
  const rows = await query(
    pool,
    `UPDATE runbook_run_targets SET lease_until = now() + make_interval(secs => $4)
     WHERE run_id = $1 AND cluster = $2 AND owner = $3 AND status = 'running' RETURNING 1`,
    [t.runId, t.cluster, owner, leaseMs / 1000],
  );
  return rows.length > 0;
}

/**
 * Mark a step `running` before its call is sent. False when the row exists
 * already: the step was started before, and is never sent twice.
 */
export async function stepStarted(
  pool: Pool,
  t: { runId: string; cluster: string },
  step: { index: number; name: string; action: string },
): Promise<boolean> {
  const rows = await query(
    pool,
    `INSERT INTO runbook_run_steps (run_id, cluster, index, name, action, status, started_at)
     VALUES ($1, $2, $3, $4, $5, 'running', now()) ON CONFLICT DO NOTHING RETURNING 1`,
    [t.runId, t.cluster, step.index, step.name, step.action],
  );
  return rows.length > 0;
}

export async function stepFinished(
  pool: Pool,
  t: { runId: string; cluster: string },
  index: number,
  outcome: { status: StepStatus; message: string; diff?: string; result?: unknown },
): Promise<void> {
  await query(
    pool,
    `UPDATE runbook_run_steps SET status = $4, message = $5, diff = $6, result = $7, finished_at = now()
     WHERE run_id = $1 AND cluster = $2 AND index = $3`,
    [
      t.runId,
      t.cluster,
      index,
      outcome.status,
      outcome.message,
      outcome.diff ?? null,
      outcome.result === undefined ? null : JSON.stringify(outcome.result),
    ],
  );
}

/** Steps never started because the run stopped before them. */
export async function stepsSkipped(
  pool: Pool,
  t: { runId: string; cluster: string },
  steps: { index: number; name: string; action: string }[],
  why: string,
): Promise<void> {
  for (const s of steps)
    await query(
      pool,
      `INSERT INTO runbook_run_steps (run_id, cluster, index, name, action, status, message)
       VALUES ($1, $2, $3, $4, $5, 'skipped', $6) ON CONFLICT DO NOTHING`,
      [t.runId, t.cluster, s.index, s.name, s.action, why],
    );
}

/** The run's status from its targets: running while any is open; else the worst outcome. */
const severity: RunStatus[] = ['succeeded', 'cancelled', 'offline', 'failed', 'unknown'];

async function finishTargetOn(
  c: Queryable,
  runId: string,
  cluster: string,
  status: RunStatus,
  message: string,
): Promise<void> {
  await query(
    c,
    `UPDATE runbook_run_targets SET status = $3, message = $4, finished_at = now(), lease_until = NULL
     WHERE run_id = $1 AND cluster = $2`,
    [runId, cluster, status, message],
  );
  const targets = await query<{ status: RunStatus }>(
    c,
    'SELECT status FROM runbook_run_targets WHERE run_id = $1',
    [runId],
  );
  if (targets.some((t) => t.status === 'queued' || t.status === 'running')) return;
  const worst = targets.reduce<RunStatus>(
    (w, t) => (severity.indexOf(t.status) > severity.indexOf(w) ? t.status : w),
    'succeeded',
  );
  await query(
    c,
    `UPDATE runbook_runs SET status = $2, finished_at = now() WHERE id = $1 AND finished_at IS NULL`,
    [runId, worst],
  );
}

export function finishTarget(
  pool: Pool,
  t: { runId: string; cluster: string },
  status: RunStatus,
  message: string,
): Promise<void> {
  return inTransaction(pool, (c) => finishTargetOn(c, t.runId, t.cluster, status, message));
}

/** Queued targets whose cluster no replica served within `waitMs`: offline. */
export async function expireOffline(pool: Pool, waitMs: number): Promise<number> {
  const rows = await query<{ run_id: string; cluster: string }>(
    pool,
    `SELECT t.run_id, t.cluster FROM runbook_run_targets t JOIN runbook_runs r ON r.id = t.run_id
     WHERE t.status = 'queued' AND r.created_at < now() - make_interval(secs => $1)`,
    [waitMs / 1000],
  );
  for (const r of rows)
    await finishTarget(
      pool,
      { runId: r.run_id, cluster: r.cluster },
      'offline',
      `cluster ${JSON.stringify(r.cluster)} had no agent connected within ${Math.round(waitMs / 1000)} s; nothing was run there`,
    );
  return rows.length;
}
