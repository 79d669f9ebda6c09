/**
 * `kubegate admin recording list|get|download`: session recordings, through
 * the proxy's REST API as the person running it (the token of the fleet
 * kubeconfig, or KUBEGATE_SERVER + KUBEGATE_TOKEN), so the same rule decides
 * who may read them (an admin or a recording viewer group) and every
 * download is audited — unlike the other admin commands, which work on the
 * database directly.
 */
import { stringify as toYaml } from 'yaml';
import { searchFilters, type RecordingView } from '../recording/catalog.js';
import { flag, output, UsageError, type Invocation } from './args.js';
import { call, callText, endpoint } from './rest.js';
import { table } from './table.js';

export const recordingFilters = [...searchFilters, 'limit', 'continue'] as const;

function wantStructured(p: Invocation): 'json' | 'yaml' | undefined {
  const o = flag(p, 'output') ?? 'text';
  if (o !== 'text' && o !== 'json' && o !== 'yaml')
    throw new UsageError(`--output must be text, json or yaml (got ${JSON.stringify(o)})`, p.path);
  return o === 'text' ? undefined : o;
}

function structured(p: Invocation, as: 'json' | 'yaml', value: unknown): void {
  p.io.stdout.write(as === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value));
}

function bytes(n: number): string {
  return n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1048576).toFixed(1)} MiB`;
}

/** The table `admin recording list` prints. */
export function recordingsTable(items: RecordingView[]): string {
  return table(
    ['ID', 'STARTED', 'USER', 'KIND', 'WHERE', 'COMMAND', 'STATUS', 'OUT'],
    items.map((r) => [
      r.id,
      r.startedAt,
      r.user.name,
      r.kind,
      `${r.cluster}/${r.namespace}/${r.pod}${r.container ? `/${r.container}` : ''}`,
      r.command.join(' ').slice(0, 40),
      r.status,
      bytes(r.bytesOut),
    ]),
  );
}

/** The text `admin recording get` prints. */
export function recordingText(r: RecordingView): string {
  const lines = [
    `id:        ${r.id}`,
    `audit id:  ${r.auditId}`,
    `kind:      ${r.kind}`,
    `where:     cluster ${r.cluster}, namespace ${r.namespace}, pod ${r.pod}${r.container ? `, container ${r.container}` : ''}`,
    `command:   ${r.command.length ? JSON.stringify(r.command) : '(none)'}`,
    `user:      ${r.user.kind} ${r.user.name}${r.user.groups.length ? ` (groups ${r.user.groups.join(', ')})` : ''}`,
    `policy:    ${r.policy || '(default)'}: ${r.mode}, stdin ${r.stdinRecorded ? 'recorded' : 'not recorded'}`,
    `status:    ${r.status}${r.reason ? ` (${r.reason})` : ''}`,
    `started:   ${r.startedAt}`,
    `ended:     ${r.endedAt ?? '-'}`,
    `bytes:     ${bytes(r.bytesIn)} in, ${bytes(r.bytesOut)} out`,
  ];
  return lines.join('\n') + '\n';
}

export async function recordingList(p: Invocation): Promise<void> {
  const q = new URLSearchParams();
  for (const k of recordingFilters) if (flag(p, k) !== undefined) q.set(k, flag(p, k)!);
  const as = wantStructured(p);
  const qs = q.toString();
  const page = (await call(endpoint(p), 'GET', `/api/v1/recordings${qs ? `?${qs}` : ''}`)).json as {
    items: RecordingView[];
    continue?: string;
  };
  if (as) return structured(p, as, page);
  if (page.items.length) p.io.stdout.write(recordingsTable(page.items));
  else p.io.stderr.write('no recordings\n');
  if (page.continue) p.io.stderr.write(`more: --continue ${page.continue}\n`);
}

export async function recordingGet(p: Invocation): Promise<void> {
  const as = wantStructured(p);
  const r = (
    await call(endpoint(p), 'GET', `/api/v1/recordings/${encodeURIComponent(p.positionals[0]!)}`)
  ).json as RecordingView;
  if (as) structured(p, as, r);
  else p.io.stdout.write(recordingText(r));
}

export async function recordingDownload(p: Invocation): Promise<void> {
  const id = p.positionals[0]!;
  const cast = await callText(
    endpoint(p),
    `/api/v1/recordings/${encodeURIComponent(id)}/cast`,
    'application/x-asciicast',
  );
  output(p, cast, `recording ${id}`);
}
