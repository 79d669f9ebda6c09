/**
 * `kubegate admin audit list|export`: the audit log from the command line,
 * straight from the database (DATABASE_URL), with the REST API's filters.
 * `list` prints a table (or JSON lines with --output json), newest first;
 * `export` writes every matching event as NDJSON to stdout or --out.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { KgError } from '../../common/errors.js';
import { toKubeEvent, type AuditEvent } from '../audit/event.js';
import { exportEvents, parseFilter, queryEvents } from '../audit/query.js';
import { flag, withPool, type Invocation } from './args.js';
import { table } from './table.js';

function row(e: AuditEvent): string[] {
  const ref = e.objectRef;
  const what = ref?.resource
    ? `${ref.resource}${ref.subresource ? '/' + ref.subresource : ''}${ref.apiGroup ? '.' + ref.apiGroup : ''}` +
      `${ref.namespace ? ' ' + ref.namespace + '/' : ' '}${ref.name ?? ''}`
    : e.requestURI.split('?')[0]!;
  return [
    e.requestReceivedTimestamp.slice(0, 23) + 'Z',
    e.user.username || '-',
    e.cluster || '-',
    e.verb,
    what.trim(),
    String(e.responseStatus?.code ?? '-'),
    e.decision,
    e.stage === 'ResponseComplete' ? '' : e.stage,
    e.auditID,
  ];
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

const header = [
  'TIME',
  'USER',
  'CLUSTER',
  'VERB',
  'OBJECT',
  'CODE',
  'DECISION',
  'STAGE',
  'AUDIT-ID',
];

/** `kubegate admin audit list`: one page, newest first. */
export async function auditList(p: Invocation): Promise<void> {
  const filter = parseFilter((n) => flag(p, n));
  const limit = Number(flag(p, 'limit') ?? 50);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    throw new KgError('KG_ERR_BAD_REQUEST', '--limit must be a whole number from 1 to 1000');
  const output = flag(p, 'output') ?? 'table';
  if (output !== 'table' && output !== 'json')
    throw new KgError('KG_ERR_BAD_REQUEST', '--output must be table or json');
  const page = await withPool(p, (pool) =>
    queryEvents(pool, filter, { limit, continue: flag(p, 'continue') }),
  );
  await write(
    p.io.stdout,
    output === 'json'
      ? page.items.map((e) => JSON.stringify(e) + '\n').join('')
      : table(header, page.items.map(row)),
  );
  if (page.continue) p.io.stderr.write(`more events: repeat with --continue ${page.continue}\n`);
}

/** `kubegate admin audit export`: every matching event as NDJSON. */
export async function auditExport(p: Invocation): Promise<void> {
  const filter = parseFilter((n) => flag(p, n));
  const format = flag(p, 'format') ?? 'kubegate';
  if (format !== 'kubegate' && format !== 'kube')
    throw new KgError('KG_ERR_BAD_REQUEST', '--format must be kubegate or kube');
  const file = flag(p, 'out');
  await withPool(p, async (pool) => {
    const out = file && file !== '-' ? createWriteStream(file, { mode: 0o600 }) : p.io.stdout;
    let n = 0;
    for await (const events of exportEvents(pool, filter)) {
      await write(
        out,
        events.map((e) => JSON.stringify(format === 'kube' ? toKubeEvent(e) : e) + '\n').join(''),
      );
      n += events.length;
    }
    if (out !== p.io.stdout) {
      out.end();
      await once(out, 'finish');
    }
    p.io.stderr.write(`exported ${n} audit event(s)${file && file !== '-' ? ` to ${file}` : ''}\n`);
  });
}
