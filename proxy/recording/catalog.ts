/**
 * Reading recordings' metadata: the search behind `GET /api/v1/recordings`
 * and one recording by id. Newest first, paged by (started_at, id).
 */
import type { RecordingView } from '../console/ui/wire/recordings.js';
import { KgError } from '../../common/errors.js';
import { query, type Queryable } from '../db/query.js';
import { decodeCursor, encodeCursor, pgTimestamp, uuidPattern } from '../rbac/cursor.js';

export type { RecordingView };

/**
 * The columns, named as the view names them (times as ISO 8601 UTC text, as
 * toISOString writes them), and the page cursor's timestamp.
 */
const columns = `id, audit_id AS "auditId", kind, cluster, namespace, pod, container, command,
  json_build_object('name', user_name, 'kind', user_kind, 'groups', user_groups) AS "user",
  mode, policy, stdin_recorded AS "stdinRecorded", replica, status, reason,
  bytes_in::float8 AS "bytesIn", bytes_out::float8 AS "bytesOut",
  to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "startedAt",
  to_char(ended_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "endedAt",
  started_at::text AS cursor_at`;

type Row = RecordingView & { cursor_at: string };

function view({ cursor_at: _, ...r }: Row): RecordingView {
  return r;
}

export const searchFilters = [
  'user',
  'cluster',
  'namespace',
  'pod',
  'container',
  'command',
  'status',
  'from',
  'to',
] as const;
export type SearchFilter = Partial<Record<(typeof searchFilters)[number], string>>;

const maxFilterLength = 512;

/** An RFC 3339 time, or a duration ago (`90s`, `15m`, `2h`, `7d`). */
function timeOf(name: string, v: string, now: number): Date {
  const ago = /^(\d{1,9})(s|m|h|d)$/.exec(v);
  if (ago) {
    const unit = { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[ago[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now - Number(ago[1]) * unit);
  }
  const t = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(v)
    ? Date.parse(v)
    : NaN;
  if (!Number.isFinite(t))
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `${name} must be an RFC 3339 time (2026-01-02T03:04:05Z) or a duration ago (15m, 2h, 7d)`,
    );
  return new Date(t);
}

/** `%`, `_` and `\` taken literally in a LIKE pattern. */
function likeLiteral(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * What a caller may see of the recordings: those of `clusters`, and of those
 * the ones `visible` says (RBAC per cluster and namespace). A page then holds
 * at most `limit` visible recordings, possibly fewer, with a cursor while more
 * rows remain.
 */
export interface SearchScope {
  clusters: readonly string[];
  visible(r: RecordingView): boolean;
}

/** Rows read at most per search beyond the page (a scoped search skips rows it may not show). */
const maxScanned = 5000;

export async function searchRecordings(
  db: Queryable,
  f: SearchFilter,
  page: { limit: number; continue?: string | undefined },
  scope?: SearchScope,
): Promise<{ items: RecordingView[]; continue?: string }> {
  const where: string[] = [];
  const v: unknown[] = [];
  for (const [name, value] of Object.entries(f)) {
    if (value !== undefined && value.length > maxFilterLength)
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        `${name} is longer than ${maxFilterLength} characters`,
      );
  }
  const eq = (col: string, value: string | undefined) => {
    if (value === undefined) return;
    v.push(value);
    where.push(`${col} = $${v.length}`);
  };
  eq('user_name', f.user);
  eq('cluster', f.cluster);
  eq('namespace', f.namespace);
  eq('pod', f.pod);
  eq('container', f.container);
  eq('status', f.status);
  if (f.command !== undefined) {
    v.push(`%${likeLiteral(f.command)}%`);
    where.push(`array_to_string(command, ' ') LIKE $${v.length}`);
  }
  const now = Date.now();
  if (f.from !== undefined) {
    v.push(timeOf('from', f.from, now));
    where.push(`started_at >= $${v.length}`);
  }
  if (f.to !== undefined) {
    v.push(timeOf('to', f.to, now));
    where.push(`started_at < $${v.length}`);
  }
  if (scope) {
    v.push(scope.clusters);
    where.push(`cluster = ANY($${v.length}::text[])`);
  }
  let after = page.continue
    ? decodeCursor(page.continue, { t: pgTimestamp, i: uuidPattern })
    : undefined;
  const batch = page.limit + 1;
  const items: RecordingView[] = [];
  let last: Row | undefined;
  for (let scanned = 0; scanned < maxScanned; scanned += batch) {
    const w = [...where];
    const vv = [...v];
    if (after) {
      vv.push(after.t, after.i);
      w.push(`(started_at, id) < ($${vv.length - 1}::timestamptz, $${vv.length}::uuid)`);
    }
    vv.push(batch);
    const rows = await query<Row>(
      db,
      `SELECT ${columns} FROM recordings
        ${w.length ? `WHERE ${w.join(' AND ')}` : ''}
        ORDER BY started_at DESC, id DESC LIMIT $${vv.length}`,
      vv,
    );
    for (const row of rows) {
      // A full page and a row after it: the next page starts after the last row read.
      if (items.length === page.limit)
        return { items, continue: encodeCursor({ t: last!.cursor_at, i: last!.id }) };
      const r = view(row);
      if (!scope || scope.visible(r)) items.push(r);
      last = row;
    }
    if (rows.length < batch) return { items };
    after = { t: last!.cursor_at, i: last!.id };
  }
  // Many rows this caller may not see: what was found, and where to go on.
  return { items, continue: encodeCursor({ t: last!.cursor_at, i: last!.id }) };
}

export async function getRecording(db: Queryable, id: string): Promise<RecordingView | undefined> {
  if (!uuidPattern.test(id)) return undefined;
  const [row] = await query<Row>(db, `SELECT ${columns} FROM recordings WHERE id = $1`, [id]);
  return row && view(row);
}
