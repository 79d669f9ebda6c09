/**
 * Reading the audit log: filters (from the REST API's query string or the
 * CLI's flags), newest first, with an opaque keyset cursor; and a paged
 * iterator for the NDJSON export, so an export of millions of events never
 * holds more than one page.
 */
import { parseDuration } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import {
  decisions,
  stages,
  type AuditDecision,
  type AuditEvent,
  type AuditSource,
  type Stage,
} from './event.js';
import { query, type Queryable } from '../db/query.js';

export interface AuditFilter {
  from?: Date;
  to?: Date;
  user?: string;
  /** `user`, `robot` or `cli`; set with `user` to pin one identity. */
  userKind?: string;
  group?: string;
  cluster?: string;
  namespace?: string;
  /** `pods`, `deployments.apps`, `pods/exec`. */
  resource?: string;
  verb?: string;
  decision?: AuditDecision;
  /** An exact code (403) or a class (`4xx`). */
  code?: string;
  stage?: Stage;
  auditId?: string;
  source?: AuditSource;
}

/** The query-string / flag names, each a filter. */
export const filterNames = [
  'from',
  'to',
  'since',
  'user',
  'group',
  'cluster',
  'namespace',
  'resource',
  'verb',
  'decision',
  'code',
  'stage',
  'auditID',
  'source',
] as const;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A time given as RFC 3339, or as a duration before now (`1h`). */
function timeParam(name: string, v: string, now: number, problems: string[]): Date | undefined {
  const ago = parseDuration(v);
  if (ago !== undefined) return new Date(now - ago);
  const t = Date.parse(v);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(v)) {
    problems.push(`${name} must be an RFC 3339 time or a duration like 1h (got "${v}")`);
    return undefined;
  }
  return new Date(t);
}

/**
 * Filters from named values (query string or CLI flags). Every problem is
 * reported at once as one KG_ERR_BAD_REQUEST.
 */
export function parseFilter(
  get: (name: string) => string | undefined,
  now = Date.now(),
): AuditFilter {
  const problems: string[] = [];
  const f: AuditFilter = {};
  const since = get('since');
  const from = get('from') ?? since;
  if (from !== undefined) f.from = timeParam(get('from') ? 'from' : 'since', from, now, problems);
  const to = get('to');
  if (to !== undefined) f.to = timeParam('to', to, now, problems);
  for (const k of ['user', 'group', 'cluster', 'namespace', 'resource', 'verb'] as const) {
    const v = get(k);
    if (v === undefined) continue;
    if (v === '' || v.length > 253) problems.push(`${k} must be 1 to 253 characters`);
    else f[k] = v;
  }
  const decision = get('decision');
  if (decision !== undefined) {
    if (decisions.includes(decision as AuditDecision)) f.decision = decision as AuditDecision;
    else problems.push(`decision must be one of ${decisions.join(', ')}`);
  }
  const code = get('code');
  if (code !== undefined) {
    if (/^[1-5](\d\d|xx)$/.test(code)) f.code = code;
    else problems.push('code must be an HTTP status (403) or a class (4xx)');
  }
  const stage = get('stage');
  if (stage !== undefined) {
    if (stages.includes(stage as Stage)) f.stage = stage as Stage;
    else problems.push(`stage must be one of ${stages.join(', ')}`);
  }
  const id = get('auditID');
  if (id !== undefined) {
    if (uuid.test(id)) f.auditId = id.toLowerCase();
    else problems.push('auditID must be a UUID');
  }
  const source = get('source');
  if (source !== undefined) {
    if (source === 'kube' || source === 'admin' || source === 'runbook') f.source = source;
    else problems.push('source must be kube, admin or runbook');
  }
  if (problems.length > 0) {
    throw new KgError('KG_ERR_BAD_REQUEST', `invalid audit filter: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return f;
}

interface Cursor {
  t: string;
  a: string;
  s: string;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

export function decodeCursor(token: string): Cursor {
  const bad = new KgError(
    'KG_ERR_BAD_REQUEST',
    'the continue token is not valid; start the list again without it',
  );
  if (token.length > 512 || !/^[A-Za-z0-9_-]+$/.test(token)) throw bad;
  let c: Partial<Cursor>;
  try {
    c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Partial<Cursor>;
  } catch {
    throw bad;
  }
  if (
    typeof c.t !== 'string' ||
    Number.isNaN(Date.parse(c.t)) ||
    typeof c.a !== 'string' ||
    !uuid.test(c.a) ||
    typeof c.s !== 'string' ||
    !stages.includes(c.s as Stage)
  )
    throw bad;
  return c as Cursor;
}

function whereOf(f: AuditFilter, after: Cursor | undefined): { sql: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, ...v: unknown[]) => {
    let text = sql;
    for (const x of v) {
      values.push(x);
      text = text.replace('?', `$${values.length}`);
    }
    where.push(text);
  };
  if (f.from) add('received_at >= ?', f.from);
  if (f.to) add('received_at < ?', f.to);
  if (f.user !== undefined) add('username = ?', f.user);
  if (f.userKind !== undefined) add('user_kind = ?', f.userKind);
  if (f.group !== undefined) add('groups @> ARRAY[?]::text[]', f.group);
  if (f.cluster !== undefined) add('cluster = ?', f.cluster);
  if (f.namespace !== undefined) add('namespace = ?', f.namespace);
  if (f.resource !== undefined) {
    const [res, sub] = f.resource.split('/', 2) as [string, string | undefined];
    const dot = res.indexOf('.');
    if (dot > 0) add('resource = ? AND api_group = ?', res.slice(0, dot), res.slice(dot + 1));
    else add('resource = ?', res);
    if (sub !== undefined) add('subresource = ?', sub);
  }
  if (f.verb !== undefined) add('verb = ?', f.verb);
  if (f.decision !== undefined) add('decision = ?', f.decision);
  if (f.code !== undefined) {
    if (f.code.endsWith('xx')) {
      const base = Number(f.code[0]) * 100;
      add('code >= ? AND code < ?', base, base + 100);
    } else add('code = ?', Number(f.code));
  }
  if (f.stage !== undefined) add('stage = ?', f.stage);
  if (f.auditId !== undefined) add('audit_id = ?::uuid', f.auditId);
  if (f.source !== undefined) add('source = ?', f.source);
  if (after)
    add('(received_at, audit_id, stage) < (?::timestamptz, ?::uuid, ?)', after.t, after.a, after.s);
  return { sql: where.length ? `WHERE ${where.join(' AND ')}` : '', values };
}

export interface AuditPage {
  items: AuditEvent[];
  continue?: string;
}

/** One page, newest first. `limit` is clamped to 1..1000. */
export async function queryEvents(
  db: Queryable,
  f: AuditFilter,
  opts: { limit?: number; continue?: string } = {},
): Promise<AuditPage> {
  const limit = Math.min(Math.max(opts.limit ?? 100, 1), 1000);
  const after = opts.continue ? decodeCursor(opts.continue) : undefined;
  const { sql, values } = whereOf(f, after);
  values.push(limit + 1);
  const rows = await query<{ event: AuditEvent; t: string; a: string; s: string }>(
    db,
    `SELECT event, event->>'requestReceivedTimestamp' AS t, audit_id::text AS a, stage AS s
       FROM audit_events ${sql}
      ORDER BY received_at DESC, audit_id DESC, stage DESC
      LIMIT $${values.length}`,
    values,
  );
  const page = rows.slice(0, limit);
  const items = page.map((r) => r.event);
  if (rows.length <= limit) return { items };
  const last = page[page.length - 1]!;
  return { items, continue: encodeCursor({ t: last.t, a: last.a, s: last.s }) };
}

/** Every matching event, page by page (newest first). */
export async function* exportEvents(
  db: Queryable,
  f: AuditFilter,
  pageSize = 1000,
): AsyncGenerator<AuditEvent[]> {
  let cont: string | undefined;
  do {
    const page = await queryEvents(db, f, { limit: pageSize, continue: cont });
    if (page.items.length) yield page.items;
    cont = page.continue;
  } while (cont);
}
