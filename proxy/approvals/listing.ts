/**
 * Listing approval requests, a page at a time: newest first, keyset
 * pagination with the opaque `continue` token the other REST lists use.
 */
import type { Pool } from '../db/pool.js';
import { keysetPage } from '../rbac/cursor.js';
import { clampLimit, type Page } from '../rbac/records.js';
import { query, type Queryable } from '../db/query.js';
import { governor } from './governing.js';
import { mayDecide } from './policy-match.js';
import {
  approvalView,
  requesterOf,
  type ApprovalView,
  type DecisionRow,
  type RequestRow,
} from './records.js';
import type { Actor, ListFilter } from './records.js';

/**
 * One page of requests, newest first. `continue` is the opaque position
 * after the last item; absent on the last page. An approver's queue is
 * filtered by policy after SQL chose rows, so rows are read in batches
 * until the page is full.
 */
export async function listRequests(
  pool: Pool,
  publicUrl: string,
  who: Actor,
  f: ListFilter,
): Promise<Page<ApprovalView>> {
  const limit = clampLimit(f.limit);
  const where: string[] = [];
  const vals: unknown[] = [];
  const p = (v: unknown) => `$${vals.push(v)}`;
  if (f.view === 'mine')
    where.push(`requester = ${p(who.name)} AND requester_kind = ${p(who.kind)}`);
  if (f.view === 'approvable') where.push(`status = 'pending'`);
  if (f.status) where.push(`status = ${p(f.status)}`);
  if (f.kind) where.push(`kind = ${p(f.kind)}`);
  const govern = f.view === 'approvable' ? await governor(pool) : undefined;
  const page = await keysetPage(pool, {
    select: 'SELECT *, created_at::text AS cursor_at FROM approval_requests',
    where,
    values: vals,
    order: 'newest',
    limit,
    continue: f.continue,
    keep: (r: RequestRow & { cursor_at: string }) =>
      !govern || govern(r).some((x) => mayDecide(x, who, requesterOf(r))) ? r : undefined,
  });
  const items = await requestViews(pool, publicUrl, page.items);
  return page.continue ? { items, continue: page.continue } : { items };
}

/** Views of many requests, their votes read in one query. */
export async function requestViews(
  db: Queryable,
  publicUrl: string,
  rows: RequestRow[],
): Promise<ApprovalView[]> {
  if (!rows.length) return [];
  const d = await query<DecisionRow>(
    db,
    'SELECT * FROM approval_decisions WHERE request_id = ANY($1::uuid[]) ORDER BY at',
    [rows.map((r) => r.id)],
  );
  return rows.map((r) =>
    approvalView(
      r,
      d.filter((x) => x.request_id === r.id),
      publicUrl,
    ),
  );
}
