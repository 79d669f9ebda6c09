/**
 * `kubegate admin audit list|export`: the audit log from the command line,
 * straight from the database (DATABASE_URL), with the REST API's filters.
 * `list` prints a table (or JSON lines with --output json), newest first;
 * `export` writes every matching event as NDJSON to stdout or --out.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { loadConfig } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import { proxySchema } from '../config.js';
import { createPool } from '../db/pool.js';
import { toKubeEvent, type AuditEvent } from '../audit/event.js';
import { exportEvents, filterNames, parseFilter, queryEvents } from '../audit/query.js';
import { flag, parseArgs } from './args.js';

/** Appended to `kubegate --help`. */
export const auditUsage = `  kubegate admin audit list [--since 1h] [--from T] [--to T] [--user U] [--group G]
        [--cluster C] [--namespace NS] [--resource pods|deployments.apps|pods/exec]
        [--verb V] [--decision allow|deny|error] [--code 403|4xx] [--stage S]
        [--auditID ID] [--source kube|admin] [--limit N] [--output table|json]
                                              audit events, newest first
  kubegate admin audit export [same filters] [--format kubegate|kube] [--out FILE]
                                              every matching event as NDJSON
`;

export interface CliIo {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
}

const defaultIo: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };

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

function table(rows: string[][]): string {
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
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return (
    all
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

/** `kubegate admin audit …`; `args` are the words after `audit`. */
export async function adminAudit(args: string[], io: CliIo = defaultIo): Promise<void> {
  const p = parseArgs(args);
  const [verb] = p.positionals;
  if (verb !== 'list' && verb !== 'export') {
    throw new KgError('KG_ERR_BAD_REQUEST', `usage:\n${auditUsage}`);
  }
  const allowed = new Set<string>([...filterNames, 'limit', 'output', 'format', 'out', 'continue']);
  const unknown = [...p.flags.keys()].filter((f) => !allowed.has(f));
  if (unknown.length > 0)
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `unknown flag(s) ${unknown.map((f) => '--' + f).join(', ')}\n${auditUsage}`,
    );
  const filter = parseFilter((n) => flag(p, n));
  const { databaseUrl } = loadConfig({ databaseUrl: proxySchema.databaseUrl }, {}, io.env);
  const pool = createPool({ url: databaseUrl, max: 2, applicationName: 'kubegate-cli' });
  try {
    if (verb === 'list') {
      const limit = Number(flag(p, 'limit') ?? 50);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new KgError('KG_ERR_BAD_REQUEST', '--limit must be a whole number from 1 to 1000');
      const page = await queryEvents(pool, filter, { limit, continue: flag(p, 'continue') });
      const output = flag(p, 'output') ?? 'table';
      if (output === 'json') {
        await write(io.stdout, page.items.map((e) => JSON.stringify(e) + '\n').join(''));
      } else if (output === 'table') {
        await write(io.stdout, table(page.items.map(row)));
      } else {
        throw new KgError('KG_ERR_BAD_REQUEST', '--output must be table or json');
      }
      if (page.continue) io.stderr.write(`more events: repeat with --continue ${page.continue}\n`);
      return;
    }
    const format = flag(p, 'format') ?? 'kubegate';
    if (format !== 'kubegate' && format !== 'kube')
      throw new KgError('KG_ERR_BAD_REQUEST', '--format must be kubegate or kube');
    const file = flag(p, 'out');
    const out = file && file !== '-' ? createWriteStream(file, { mode: 0o600 }) : io.stdout;
    let n = 0;
    for await (const events of exportEvents(pool, filter)) {
      await write(
        out,
        events.map((e) => JSON.stringify(format === 'kube' ? toKubeEvent(e) : e) + '\n').join(''),
      );
      n += events.length;
    }
    if (out !== io.stdout) {
      out.end();
      await once(out, 'finish');
    }
    io.stderr.write(`exported ${n} audit event(s)${file && file !== '-' ? ` to ${file}` : ''}\n`);
  } finally {
    await pool.end();
  }
}
