/**
 * Reading recordings' metadata: the search behind `GET /api/v1/recordings`
 * and one recording by id. Newest first, paged by (started_at, id).
 */
import { KgError } from '../../common/errors.js';
import { query, type Queryable } from '../db/query.js';
import { decodeCursor, encodeCursor, pgTimestamp, uuidPattern } from '../rbac/cursor.js';
import type { RecordingStatus, SessionKind } from './storage.js';

export interface RecordingView {
  id: string;
  auditId: string;
  kind: SessionKind;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  user: { name: string; kind: string; groups: string[] };
  mode: string;
  policy: string;
  stdinRecorded: boolean;
  replica: string;
  status: RecordingStatus;
  reason: string;
  bytesIn: number;
  bytesOut: number;
  startedAt: string;
  endedAt: string | null;
}

interface Row {
  id: string;
  audit_id: string;
  kind: SessionKind;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
  user_name: string;
  user_kind: string;
  user_groups: string[];
  mode: string;
  policy: string;
  stdin_recorded: boolean;
  replica: string;
  status: RecordingStatus;
  reason: string;
  bytes_in: string;
  bytes_out: string;
  started_at: Date;
  ended_at: Date | null;
  cursor_at: string;
}

function view(r: Row): RecordingView {
  return {
    id: r.id,
    auditId: r.audit_id,
    kind: r.kind,
    cluster: r.cluster,
    namespace: r.namespace,
    pod: r.pod,
    container: r.container,
    command: r.command,
    user: { name: r.user_name, kind: r.user_kind, groups: r.user_groups },
    mode: r.mode,
    policy: r.policy,
    stdinRecorded: r.stdin_recorded,
    replica: r.replica,
    status: r.status,
    reason: r.reason,
    bytesIn: Number(r.bytes_in),
    bytesOut: Number(r.bytes_out),
    startedAt: r.started_at.toISOString(),
    endedAt: r.ended_at?.toISOString() ?? null,
  };
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

export async function searchRecordings(
  db: Queryable,
  f: SearchFilter,
  page: { limit: number; continue?: string | undefined },
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
  if (page.continue) {
    const c = decodeCursor(page.continue, { t: pgTimestamp, i: uuidPattern });
    v.push(c.t, c.i);
    where.push(`(started_at, id) < ($${v.length - 1}::timestamptz, $${v.length}::uuid)`);
  }
  v.push(page.limit + 1);
  const rows = await query<Row>(
    db,
    `SELECT *, started_at::text AS cursor_at FROM recordings
      ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY started_at DESC, id DESC LIMIT $${v.length}`,
    v,
  );
  const items = rows.slice(0, page.limit);
  if (rows.length <= page.limit) return { items: items.map(view) };
  const last = items[items.length - 1]!;
  return { items: items.map(view), continue: encodeCursor({ t: last.cursor_at, i: last.id }) };
}

export async function getRecording(db: Queryable, id: string): Promise<RecordingView | undefined> {
  if (!uuidPattern.test(id)) return undefined;
  const [row] = await query<Row>(
    db,
    `SELECT *, started_at::text AS cursor_at FROM recordings WHERE id = $1`,
    [id],
  );
  return row && view(row);
}
