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
import type { Requester } from '../approvals/records.js';
import { createHash } from 'node:crypto';
import { KgError, invalid } from '../../common/errors.js';
import { askRunApproval, runPolicies, withdrawRunApproval } from '../approvals/run-approval.js';
import { enqueue, type Notice, type NotifyEvent } from '../approvals/notify.js';
import type { ClusterRef } from '../authz/types.js';
import { proxyMetrics } from '../metrics.js';
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

export const runStatuses = [
  'awaiting-approval',
  'queued',
  'running',
  'succeeded',
  'failed',
  'unknown',
  'offline',
  'cancelled',
  'denied',
  'expired',
] as const;
export type RunStatus = (typeof runStatuses)[number];
/** A target (one cluster of a run) also has these, before it is queued. */
export type TargetStatus = RunStatus | 'preview' | 'held';
/** How one cluster of a run can end. */
export const finalTarget: readonly TargetStatus[] = [
  'succeeded',
  'failed',
  'unknown',
  'offline',
  'cancelled',
];
/** How a run can end: as its clusters can, or refused before it started. */
export const finalRun: readonly RunStatus[] = [
  ...(finalTarget as RunStatus[]),
  'denied',
  'expired',
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

export interface PreviewStep {
  index: number;
  name: string;
  status: StepStatus;
  message: string;
  diff?: string;
}

export interface TargetRecord {
  cluster: string;
  status: TargetStatus;
  message: string;
  startedAt: string | null;
  finishedAt: string | null;
  steps: StepRecord[];
  /** The dry run shown to approvers, when the run waited for approval. */
  preview: PreviewStep[] | null;
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
  reason: string;
  status: RunStatus;
  canary: number;
  concurrency: number;
  /** Seconds a queued cluster may stay offline before it is reported so. */
  offlineWait: number;
  approval: { id: string; status: string } | null;
  cancelReason: string | null;
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

export type { Requester };

export interface NewRun {
  runbook: RunbookRecord;
  params: ParamValues;
  namespace: string;
  /** The clusters, in the order they run (the first `canary` first). */
  clusters: ClusterRef[];
  /** The rendered steps, for the approval request. */
  steps: { index: number; name: string; action: string }[];
  dryRun: boolean;
  requester: Requester;
  ticket: string;
  reason: string;
  canary: number;
  concurrency: number;
  offlineWait: number;
  idempotencyKey?: string;
  publicUrl: string;
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
        r.clusters.map((c) => c.name),
        r.dryRun,
        r.ticket,
        r.reason,
        r.canary,
        r.concurrency,
        r.offlineWait,
      ]),
    )
    .digest('hex');
}

function runNotice(
  run: { id: string; runbook: string; ticket: string; requester: string; requester_kind: string },
  event: NotifyEvent,
  status: string,
  publicUrl: string,
  reason = '',
): Notice {
  return {
    event,
    id: run.id,
    kind: 'run',
    status,
    requester: `${run.requester_kind}:${run.requester}`,
    summary: `runbook ${run.runbook} ${status}${run.ticket ? ` (${run.ticket})` : ''}`,
    reason,
    url: `${publicUrl}/api/v1/runs/${run.id}`,
    at: new Date().toISOString(),
  };
}

/**
 * Create a run — waiting for approval when a runbook policy governs it (a
 * dry run never does: it changes nothing), else queued, canaries first —
 * or, for a key this requester used before, return that run (`created:
 * false`). The same key with a different request is a 409: the client is
 * confused, and guessing would be wrong.
 */
export async function createRun(
  pool: Pool,
  r: NewRun,
): Promise<{ run: RunRecord; created: boolean }> {
  const hash = requestHash(r);
  return inTransaction(pool, async (c) => {
    const [row] = await query<{ id: string }>(
      c,
      `INSERT INTO runbook_runs (runbook, version, spec, params, namespace, dry_run, requester,
         requester_kind, requester_groups, ticket, reason, idempotency_key, request_hash, status,
         canary, concurrency, offline_wait)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'queued', $14, $15, $16)
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
        r.reason,
        r.idempotencyKey ?? null,
        hash,
        r.canary,
        r.concurrency,
        r.offlineWait,
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
      return { run: await getRun(c, prev.id), created: false };
    }
    const policies = r.dryRun
      ? []
      : await runPolicies(
          c,
          { runbook: r.runbook.name, clusters: r.clusters, namespace: r.namespace },
          r.requester,
        );
    let approvalId: string | undefined;
    if (policies.length) {
      approvalId = await askRunApproval(c, {
        spec: {
          runId: row.id,
          runbook: r.runbook.name,
          version: r.runbook.version,
          clusters: r.clusters.map((x) => x.name),
          namespace: r.namespace,
          params: r.params,
          ticket: r.ticket,
          dryRun: r.dryRun,
          steps: r.steps,
        },
        policies,
        requester: r.requester,
        reason: r.reason,
        publicUrl: r.publicUrl,
      });
      await query(
        c,
        `UPDATE runbook_runs SET status = 'awaiting-approval', approval_id = $2 WHERE id = $1`,
        [row.id, approvalId],
      );
    }
    for (const [position, cluster] of r.clusters.entries()) {
      const status: TargetStatus = approvalId
        ? 'preview'
        : r.canary === 0 || position < r.canary
          ? 'queued'
          : 'held';
      await query(
        c,
        `INSERT INTO runbook_run_targets (run_id, cluster, position, status, queued_at)
         VALUES ($1, $2, $3, $4, CASE WHEN $4 = 'queued' THEN now() END)`,
        [row.id, cluster.name, position, status],
      );
    }
    await enqueue(
      c,
      runNotice(
        {
          id: row.id,
          runbook: r.runbook.name,
          ticket: r.ticket,
          requester: r.requester.name,
          requester_kind: r.requester.kind,
        },
        'run.requested',
        approvalId ? 'awaiting-approval' : 'queued',
        r.publicUrl,
        r.reason,
      ),
    );
    // Read before the commit: the run as it was made, before any runner takes it.
    return { run: await getRun(c, row.id), created: true };
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
  reason: string;
  status: RunStatus;
  canary: number;
  concurrency: number;
  offline_wait: number;
  cancel_reason: string | null;
  approval_id: string | null;
  approval_status: string | null;
  created_at: Date;
  finished_at: Date | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/** When a target or step started and ended, as PostgreSQL returns them. */
interface Times {
  started_at: Date | null;
  finished_at: Date | null;
}

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
    reason: r.reason,
    status: r.status,
    canary: r.canary,
    concurrency: r.concurrency,
    offlineWait: r.offline_wait,
    approval: r.approval_id ? { id: r.approval_id, status: r.approval_status ?? '' } : null,
    cancelReason: r.cancel_reason,
    createdAt: r.created_at.toISOString(),
    finishedAt: iso(r.finished_at),
    targets,
  };
}

const runCols = `r.id, r.runbook, r.version, r.params, r.namespace, r.dry_run, r.requester,
  r.requester_kind, r.requester_groups, r.ticket, r.reason, r.status, r.canary, r.concurrency,
  r.offline_wait, r.cancel_reason, r.approval_id, a.status AS approval_status, r.created_at,
  r.finished_at`;
const runFrom = 'runbook_runs r LEFT JOIN approval_requests a ON a.id = r.approval_id';
const uuidRe = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One run with its targets and steps. */
export async function getRun(db: Queryable, id: string): Promise<RunRecord> {
  const [row] = uuidRe.test(id)
    ? await query<RunRow>(db, `SELECT ${runCols} FROM ${runFrom} WHERE r.id = $1`, [id])
    : [];
  if (!row) throw new KgError('KG_ERR_NOT_FOUND', `run ${JSON.stringify(id)} not found`);
  const targets = await query<Omit<TargetRecord, 'startedAt' | 'finishedAt' | 'steps'> & Times>(
    db,
    `SELECT cluster, status, message, preview, started_at, finished_at FROM runbook_run_targets
     WHERE run_id = $1 ORDER BY position`,
    [id],
  );
  const steps = await query<
    Omit<StepRecord, 'startedAt' | 'finishedAt'> & Times & { cluster: string }
  >(
    db,
    `SELECT cluster, index, name, action, status, message, diff, result, started_at, finished_at
     FROM runbook_run_steps WHERE run_id = $1 ORDER BY cluster, index`,
    [id],
  );
  return runRecord(
    row,
    targets.map(({ started_at, finished_at, ...t }) => ({
      ...t,
      startedAt: iso(started_at),
      finishedAt: iso(finished_at),
      steps: steps
        .filter((s) => s.cluster === t.cluster)
        .map(({ cluster: _, started_at, finished_at, ...s }) => ({
          ...s,
          startedAt: iso(started_at),
          finishedAt: iso(finished_at),
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

/** Run history, newest first, with each cluster's status (GET one run for its steps). */
export async function listRuns(db: Queryable, f: RunFilter): Promise<RunRecord[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, v: unknown) => {
    values.push(v);
    where.push(sql.replace('?', `$${values.length}`));
  };
  if (f.runbook) add('r.runbook = ?', f.runbook);
  if (f.status) add('r.status = ?', f.status);
  if (f.requester) add('r.requester = ?', f.requester);
  if (f.ticket) add('r.ticket = ?', f.ticket);
  if (f.mine) {
    add('r.requester = ?', f.mine.name);
    add('r.requester_kind = ?', f.mine.kind);
  }
  values.push(f.limit);
  const rows = await query<RunRow>(
    db,
    `SELECT ${runCols} FROM ${runFrom} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY r.created_at DESC, r.id DESC LIMIT $${values.length}`,
    values,
  );
  const targets = rows.length
    ? await query<{ run_id: string; cluster: string; status: TargetStatus; message: string }>(
        db,
        `SELECT run_id, cluster, status, message FROM runbook_run_targets
         WHERE run_id = ANY($1) ORDER BY position`,
        [rows.map((r) => r.id)],
      )
    : [];
  return rows.map((r) =>
    runRecord(
      r,
      targets
        .filter((t) => t.run_id === r.id)
        .map((t) => ({
          cluster: t.cluster,
          status: t.status,
          message: t.message,
          startedAt: null,
          finishedAt: null,
          steps: [],
          preview: null,
        })),
    ),
  );
}

/**
 * Cancel a run: clusters not yet started never start; a cluster running
 * stops before its next step (the step in flight finishes). A run waiting
 * for approval has its approval request withdrawn.
 */
export async function cancelRun(
  pool: Pool,
  id: string,
  reason: string,
  actor: string,
  publicUrl: string,
): Promise<void> {
  await inTransaction(pool, async (c) => {
    const [run] = uuidRe.test(id)
      ? await query<{ status: RunStatus; approval_id: string | null }>(
          c,
          'SELECT status, approval_id FROM runbook_runs WHERE id = $1 FOR UPDATE',
          [id],
        )
      : [];
    if (!run) throw new KgError('KG_ERR_NOT_FOUND', `run ${JSON.stringify(id)} not found`);
    if (!['awaiting-approval', 'queued', 'running'].includes(run.status))
      throw new KgError(
        'KG_ERR_CONFLICT',
        `run ${id} is ${run.status}; there is nothing to cancel`,
      );
    const why = `cancelled by ${actor}${reason ? `: ${reason}` : ''}`;
    await query(c, 'UPDATE runbook_runs SET cancel_reason = $2 WHERE id = $1', [id, why]);
    if (run.status === 'awaiting-approval' && run.approval_id) {
      // The trigger ends the run and its targets with the request.
      await withdrawRunApproval(c, run.approval_id);
    } else {
      const open = await query<{ cluster: string }>(
        c,
        `SELECT cluster FROM runbook_run_targets WHERE run_id = $1 AND status IN ('queued', 'held', 'preview', 'awaiting-approval')`,
        [id],
      );
      for (const t of open) await finishTargetOn(c, id, t.cluster, 'cancelled', why, publicUrl);
    }
    await recordAdminEvent(c, {
      actor,
      verb: 'cancel',
      resource: 'runs',
      name: id,
      detail: { reason },
    });
  });
}

// --- execution state ---------------------------------------------------------

export interface ClaimedTarget {
  runId: string;
  cluster: string;
  /** `preview`: a dry run for the approvers, recorded apart from the steps. */
  mode: 'run' | 'preview';
  spec: RunbookSpec;
  params: ParamValues;
  namespace: string;
  dryRun: boolean;
  requester: string;
  requesterKind: string;
  ticket: string;
  approvalId: string | null;
  /** Steps already recorded (a target taken over between steps resumes after them). */
  done: number;
}

/**
 * Take one target this replica can serve (its cluster has a tunnel here):
 * a preview not being worked on, a queued one (within the run's
 * concurrency), or a running one whose lease ran out. A target whose last
 * step was started and never finished is not taken: its step and the
 * target become `unknown` (the step may or may not have happened).
 */
export async function claimTarget(
  pool: Pool,
  owner: string,
  clusters: string[],
  leaseMs: number,
  publicUrl: string,
): Promise<ClaimedTarget | undefined> {
  if (!clusters.length) return undefined;
  return inTransaction(pool, async (c) => {
    const [t] = await query<{ run_id: string; cluster: string; status: TargetStatus }>(
      c,
      `SELECT t.run_id, t.cluster, t.status FROM runbook_run_targets t JOIN runbook_runs r ON r.id = t.run_id
       WHERE t.cluster = ANY($1)
         AND ((t.status = 'preview' AND (t.lease_until IS NULL OR t.lease_until < now()))
           OR (t.status = 'queued' AND (SELECT count(*) FROM runbook_run_targets x
                 WHERE x.run_id = t.run_id AND x.status = 'running') < r.concurrency)
           OR (t.status = 'running' AND t.lease_until < now()))
       ORDER BY r.created_at, t.position LIMIT 1 FOR UPDATE OF t SKIP LOCKED`,
      [clusters],
    );
    if (!t) return undefined;
    // One claim per run at a time, so two replicas never pass its concurrency together.
    await query(c, 'SELECT 1 FROM runbook_runs WHERE id = $1 FOR UPDATE', [t.run_id]);
    if (t.status === 'running') {
      const lost = await query(
        c,
        `UPDATE runbook_run_steps SET status = 'unknown', finished_at = now(),
           message = 'the replica running this step stopped before it reported; whether it took effect on the cluster is unknown, and it was not sent again'
         WHERE run_id = $1 AND cluster = $2 AND status = 'running' RETURNING index`,
        [t.run_id, t.cluster],
      );
      if (lost.length) {
        await finishTargetOn(
          c,
          t.run_id,
          t.cluster,
          'unknown',
          'a step was interrupted',
          publicUrl,
        );
        return undefined;
      }
    } else if (t.status === 'queued') {
      const [n] = await query<{ n: number }>(
        c,
        `SELECT count(*)::int AS n FROM runbook_run_targets x JOIN runbook_runs r ON r.id = x.run_id
         WHERE x.run_id = $1 AND x.status = 'running' HAVING count(*) >= min(r.concurrency)`,
        [t.run_id],
      );
      if (n) return undefined;
    }
    await query(
      c,
      `UPDATE runbook_run_targets SET status = CASE WHEN status = 'preview' THEN 'preview' ELSE 'running' END,
         owner = $3, lease_until = now() + make_interval(secs => $4),
         started_at = CASE WHEN status = 'preview' THEN NULL ELSE coalesce(started_at, now()) END
       WHERE run_id = $1 AND cluster = $2`,
      [t.run_id, t.cluster, owner, leaseMs / 1000],
    );
    if (t.status !== 'preview')
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
      approval_id: string | null;
      done: number;
    }>(
      c,
      `SELECT spec, params, namespace, dry_run, requester, requester_kind, ticket, approval_id,
         (SELECT count(*)::int FROM runbook_run_steps s WHERE s.run_id = r.id AND s.cluster = $2) AS done
       FROM runbook_runs r WHERE id = $1`,
      [t.run_id, t.cluster],
    );
    return {
      runId: t.run_id,
      cluster: t.cluster,
      mode: t.status === 'preview' ? 'preview' : 'run',
      spec: run!.spec,
      params: run!.params,
      namespace: run!.namespace,
      dryRun: run!.dry_run,
      requester: run!.requester,
      requesterKind: run!.requester_kind,
      ticket: run!.ticket,
      approvalId: run!.approval_id,
      done: run!.done,
    };
  });
}

/**
 * Keep the lease while working. `lost`: another replica took over (stop
 * now); `cancel`: the run was cancelled (stop before the next step).
 */
export async function renewLease(
  pool: Pool,
  t: { runId: string; cluster: string },
  owner: string,
  leaseMs: number,
): Promise<{ lost: boolean; cancel: string | null }> {
  const [row] = await query<{ cancel_reason: string | null }>(
    pool,
    `UPDATE runbook_run_targets t SET lease_until = now() + make_interval(secs => $4)
     FROM runbook_runs r
     WHERE t.run_id = $1 AND t.cluster = $2 AND t.owner = $3 AND t.status IN ('running', 'preview')
       AND r.id = t.run_id
     RETURNING r.cancel_reason`,
    [t.runId, t.cluster, owner, leaseMs / 1000],
  );
  return { lost: !row, cancel: row?.cancel_reason ?? null };
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

/**
 * The approvers' dry run on one cluster is in. Returns the diff of every
 * cluster once all previews are in (for the approval request), else undefined.
 */
export async function previewDone(
  pool: Pool,
  t: { runId: string; cluster: string },
  preview: PreviewStep[],
): Promise<string | undefined> {
  return inTransaction(pool, async (c) => {
    await query(
      c,
      `UPDATE runbook_run_targets SET preview = $3, lease_until = NULL,
         status = CASE WHEN status = 'preview' THEN 'awaiting-approval' ELSE status END
       WHERE run_id = $1 AND cluster = $2`,
      [t.runId, t.cluster, JSON.stringify(preview)],
    );
    const all = await query<{ cluster: string; preview: PreviewStep[] | null }>(
      c,
      'SELECT cluster, preview FROM runbook_run_targets WHERE run_id = $1 ORDER BY position',
      [t.runId],
    );
    if (all.some((x) => !x.preview)) return undefined;
    return all
      .map(
        (x) =>
          `# cluster ${x.cluster}\n` +
          x
            .preview!.map(
              (s) =>
                `## step ${s.index + 1}: ${s.name} (${s.status}${s.message ? `: ${s.message}` : ''})\n${s.diff ?? ''}`,
            )
            .join(''),
      )
      .join('\n');
  });
}

/** The run's status from its targets: worst outcome first. */
const severity: RunStatus[] = ['succeeded', 'cancelled', 'offline', 'failed', 'unknown'];

async function finishTargetOn(
  c: Queryable,
  runId: string,
  cluster: string,
  status: TargetStatus,
  message: string,
  publicUrl: string,
): Promise<void> {
  const [done] = await query<{ seconds: number | null }>(
    c,
    `UPDATE runbook_run_targets SET status = $3, message = $4, finished_at = now(), lease_until = NULL
     WHERE run_id = $1 AND cluster = $2 AND status NOT IN ('succeeded', 'failed', 'unknown', 'offline', 'cancelled')
     RETURNING extract(epoch FROM now() - started_at)::float8 AS seconds`,
    [runId, cluster, status, message],
  );
  if (!done) return;
  const [run] = await query<{
    id: string;
    runbook: string;
    ticket: string;
    requester: string;
    requester_kind: string;
    canary: number;
    cancel_reason: string | null;
  }>(
    c,
    'SELECT id, runbook, ticket, requester, requester_kind, canary, cancel_reason FROM runbook_runs WHERE id = $1',
    [runId],
  );
  proxyMetrics.runbooks.ended(run!.runbook, status, done.seconds ?? undefined);
  const targets = await query<{ cluster: string; status: TargetStatus; position: number }>(
    c,
    'SELECT cluster, status, position FROM runbook_run_targets WHERE run_id = $1',
    [runId],
  );
  // Canaries all done: the rest go ahead if every one succeeded, else are held back for good.
  const canaries = targets.filter((t) => t.position < run!.canary);
  if (run!.canary > 0 && canaries.every((t) => finalTarget.includes(t.status))) {
    const failed = canaries.filter((t) => t.status !== 'succeeded');
    for (const t of targets.filter((x) => x.status === 'held')) {
      if (failed.length === 0) {
        await query(
          c,
          `UPDATE runbook_run_targets SET status = 'queued', queued_at = now() WHERE run_id = $1 AND cluster = $2`,
          [runId, t.cluster],
        );
        t.status = 'queued';
      } else {
        await query(
          c,
          `UPDATE runbook_run_targets SET status = 'cancelled', finished_at = now(), message = $3
           WHERE run_id = $1 AND cluster = $2`,
          [
            runId,
            t.cluster,
            `held back: canary cluster ${failed.map((f) => f.cluster).join(', ')} did not succeed`,
          ],
        );
        t.status = 'cancelled';
        proxyMetrics.runbooks.ended(run!.runbook, 'cancelled');
      }
    }
  }
  if (targets.some((t) => !finalTarget.includes(t.status))) return;
  const worst = targets.reduce<RunStatus>(
    (w, t) =>
      severity.indexOf(t.status as RunStatus) > severity.indexOf(w) ? (t.status as RunStatus) : w,
    'succeeded',
  );
  const [ended] = await query<{ id: string }>(
    c,
    `UPDATE runbook_runs SET status = $2, finished_at = now()
     WHERE id = $1 AND finished_at IS NULL RETURNING id`,
    [runId, worst],
  );
  if (ended)
    await enqueue(
      c,
      runNotice(run!, `run.${worst}` as NotifyEvent, worst, publicUrl, run!.cancel_reason ?? ''),
    );
}

export function finishTarget(
  pool: Pool,
  t: { runId: string; cluster: string },
  status: TargetStatus,
  message: string,
  publicUrl: string,
): Promise<void> {
  return inTransaction(pool, (c) =>
    finishTargetOn(c, t.runId, t.cluster, status, message, publicUrl),
  );
}

/**
 * Queued targets whose cluster has had no agent connected (to any replica)
 * for the run's offline wait: offline, with nothing run there.
 */
export async function expireOffline(pool: Pool, publicUrl: string): Promise<number> {
  const rows = await query<{ run_id: string; cluster: string; offline_wait: number }>(
    pool,
    `SELECT t.run_id, t.cluster, r.offline_wait FROM runbook_run_targets t JOIN runbook_runs r ON r.id = t.run_id
     WHERE t.status = 'queued' AND t.queued_at < now() - make_interval(secs => r.offline_wait)
       -- Waiting for a slot (the run's concurrency) is not being offline.
       AND NOT EXISTS (SELECT 1 FROM replica_tunnels rt WHERE rt.cluster = t.cluster)`,
  );
  for (const r of rows)
    await finishTarget(
      pool,
      { runId: r.run_id, cluster: r.cluster },
      'offline',
      `cluster ${JSON.stringify(r.cluster)} had no agent connected within ${r.offline_wait} s; nothing was run there`,
      publicUrl,
    );
  return rows.length;
}
