/**
 * Runbooks on the command line.
 *
 * `kubegate run`, `kubegate runs …` and `kubegate runbook …` act as you,
 * through the proxy's REST API with the token of your fleet kubeconfig (as
 * `kubegate request …` does): ask for a run and follow it, read the run
 * history, cancel a run, read the runbooks. `kubegate admin runbook …`
 * manages stored runbooks straight in the database, like the other admin
 * commands.
 *
 * What a command prints is built by the pure functions below (runBody,
 * Progress, runsTable, runText, runbookText), so the unit tests check the
 * text without a proxy.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { parseDuration } from '../../common/config.js';
import { KgError, isKgError } from '../../common/errors.js';
import {
  formatSelector,
  parseSelectorText,
  type LabelSelector,
} from '../../common/kube-grammar.js';
import { validateRunbook, type ParamSpec, type Step } from '../runbooks/definition.js';
import {
  createRunbook,
  deleteRunbook,
  getRunbook,
  listRunbooks,
  replaceRunbook,
  finalRun,
  finalTarget,
  type RunbookRecord,
} from '../runbooks/store.js';
import { cliActor, flag, flagList, UsageError, withPool, type Invocation } from './args.js';
import { table } from './table.js';
import { call, endpoint, Poller, type Endpoint } from './rest.js';

// --- shapes the API answers with ---------------------------------------------------

export interface StepView {
  index: number;
  name: string;
  action: string;
  status: string;
  message: string;
  diff: string | null;
  result?: unknown;
  startedAt?: string | null;
  finishedAt?: string | null;
}

export interface TargetView {
  cluster: string;
  status: string;
  message: string;
  startedAt?: string | null;
  finishedAt?: string | null;
  steps?: StepView[];
  preview?:
    { index: number; name: string; status: string; message: string; diff: string | null }[] | null;
}

export interface RunView {
  id: string;
  runbook: string;
  version: number;
  namespace: string;
  params: Record<string, unknown>;
  dryRun: boolean;
  requester: { name: string; kind: string; groups?: string[] };
  ticket: string;
  reason?: string;
  status: string;
  canary?: number;
  concurrency?: number;
  offlineWait?: number;
  cancelReason?: string | null;
  createdAt: string;
  finishedAt: string | null;
  approval?: { id: string; status: string } | null;
  targets: TargetView[];
}

export type RunbookView = Omit<RunbookRecord, 'spec'> & RunbookRecord['spec'];

/** Whether a run has ended: one of the final statuses, or a finishedAt set. */
export function runFinished(r: Pick<RunView, 'status' | 'finishedAt'>): boolean {
  return (finalRun as readonly string[]).includes(r.status) || !!r.finishedAt;
}

// --- kubegate run --------------------------------------------------------------------

/** `--param k=v`, repeated: every problem at once (a value may hold '=' and ','). */
export function paramsOf(given: readonly string[]): {
  params: Record<string, string>;
  problems: string[];
} {
  const params: Record<string, string> = Object.create(null) as Record<string, string>;
  const problems: string[] = [];
  for (const item of given) {
    const eq = item.indexOf('=');
    if (eq <= 0) {
      problems.push(`--param ${JSON.stringify(item)} must look like name=value`);
      continue;
    }
    const name = item.slice(0, eq);
    if (Object.prototype.hasOwnProperty.call(params, name))
      problems.push(`--param ${name} is given more than once`);
    else params[name] = item.slice(eq + 1);
  }
  return { params: { ...params }, problems };
}

function countFlag(
  p: Invocation,
  name: string,
  min: number,
  problems: string[],
): number | undefined {
  const v = flag(p, name);
  if (v === undefined) return undefined;
  if (!/^\d{1,6}$/.test(v) || Number(v) < min) {
    problems.push(`--${name} must be a whole number of at least ${min} (got ${JSON.stringify(v)})`);
    return undefined;
  }
  return Number(v);
}

/**
 * The body and headers of `POST /api/v1/runs` for a `kubegate run` command
 * line. Parameters go as the text given; the server converts them by the
 * runbook's declarations. Fields are sent only when given. Command-line
 * mistakes are a UsageError (exit 2) naming every one.
 */
export function runBody(p: Invocation): {
  body: Record<string, unknown>;
  headers: Record<string, string>;
} {
  const problems: string[] = [];
  const clusters = flagList(p, 'cluster');
  const selText = flag(p, 'selector');
  let selector: LabelSelector | undefined;
  if (selText !== undefined) {
    try {
      selector = parseSelectorText(selText);
    } catch (err) {
      problems.push(`--selector: ${(err as Error).message}`);
    }
  }
  if (!clusters.length && selText === undefined)
    problems.push('say where: --cluster NAME (repeatable) or --selector');
  const { params, problems: paramProblems } = paramsOf(p.flags.get('param') ?? []);
  problems.push(...paramProblems);
  const canary = countFlag(p, 'canary', 0, problems);
  const concurrency = countFlag(p, 'concurrency', 1, problems);
  const offlineWait = flag(p, 'offline-wait');
  if (offlineWait !== undefined && parseDuration(offlineWait) === undefined)
    problems.push(
      `--offline-wait must be a duration such as 90s or 5m (got ${JSON.stringify(offlineWait)})`,
    );
  const key = flag(p, 'idempotency-key');
  if (key !== undefined && !/^[\x21-\x7e]{1,128}$/.test(key))
    problems.push('--idempotency-key must be 1 to 128 visible ASCII characters');
  if (problems.length) throw new UsageError(problems.join('; '), p.path);
  const ticket = flag(p, 'ticket');
  const reason = flag(p, 'reason');
  return {
    body: {
      runbook: p.positionals[0]!,
      ...(clusters.length ? { clusters } : {}),
      ...(selector ? { selector } : {}),
      params,
      ...(ticket !== undefined ? { ticket } : {}),
      ...(reason !== undefined ? { reason } : {}),
      ...(p.flags.has('dry-run') ? { dryRun: true } : {}),
      ...(canary !== undefined ? { canary } : {}),
      ...(concurrency !== undefined ? { concurrency } : {}),
      ...(offlineWait !== undefined ? { offlineWait } : {}),
    },
    headers: key !== undefined ? { 'idempotency-key': key } : {},
  };
}

function indent(text: string, by: string): string {
  return text
    .replace(/\n+$/, '')
    .split('\n')
    .map((l) => `${by}${l}`.trimEnd())
    .join('\n');
}

/** A changed line of a diff (not its `--- live` / `+++ requested` header). */
const changedLine = (l: string) => /^[-+]/.test(l) && !/^(---|\+\+\+)( |$)/.test(l);

/**
 * A diff cut down to its changed lines with `context` lines around each,
 * `...` where lines are left out: what `--wait` prints (`runs get` prints
 * the whole diff). A diff with no changed line is kept whole.
 */
export function diffHunks(diff: string, context = 3): string {
  const lines = diff.replace(/\n+$/, '').split('\n');
  const keep = new Set<number>();
  lines.forEach((l, i) => {
    if (!changedLine(l)) return;
    for (let j = Math.max(0, i - context); j <= Math.min(lines.length - 1, i + context); j++)
      keep.add(j);
  });
  if (!keep.size) return lines.join('\n');
  const out: string[] = [];
  lines.forEach((l, i) => {
    if (keep.has(i)) out.push(l);
    else if (keep.has(i - 1) || (i === 0 && !keep.has(0))) out.push('...');
  });
  return out.join('\n');
}

function stepLine(cluster: string, s: { index: number; name: string; action?: string }): string {
  const action = s.action && s.action !== s.name ? ` (${s.action})` : '';
  return `${cluster}: step ${s.index + 1} ${s.name}${action}`;
}

/** What one run is, in a line: `scale-deployment v1 in platform-demo on dev, ticket INC-42`. */
export function runHeadline(r: RunView): string {
  const clusters = r.targets.map((t) => t.cluster).join(', ');
  return (
    `${r.dryRun ? 'dry run of ' : ''}${r.runbook} v${r.version}` +
    (r.namespace ? ` in ${r.namespace}` : '') +
    (clusters ? ` on ${clusters}` : '') +
    (r.ticket ? `, ticket ${r.ticket}` : '')
  );
}

/**
 * Follows a run from one snapshot to the next and says what changed: the
 * run's status, each cluster's status, each step as it starts and finishes
 * (with its message and, once finished, its diff), and the preview of a run
 * waiting for approval. Each change is said once.
 */
export class Progress {
  private readonly seen = new Map<string, string>();

  /** The lines for what changed since the last snapshot. */
  update(r: RunView): string[] {
    const lines: string[] = [];
    const changed = (key: string, value: string) => {
      if (this.seen.get(key) === value) return false;
      this.seen.set(key, value);
      return true;
    };
    if (changed('run', r.status)) {
      const approval =
        r.status === 'awaiting-approval' && r.approval
          ? ` (approval ${r.approval.id}: kubegate request get ${r.approval.id})`
          : '';
      lines.push(`run ${r.id}: ${r.status}${approval}`);
    }
    for (const t of r.targets) {
      for (const pv of t.preview ?? []) {
        if (!changed(`preview ${t.cluster} ${pv.index}`, pv.status)) continue;
        lines.push(
          `${stepLine(t.cluster, pv)} would be ${pv.status}${pv.message ? `: ${pv.message}` : ''}`,
        );
        if (pv.diff) lines.push(indent(diffHunks(pv.diff), '    '));
      }
      // A cluster's own status first when it starts, last when it ends.
      const ended = (finalTarget as readonly string[]).includes(t.status);
      if (!ended && changed(`target ${t.cluster}`, t.status))
        lines.push(`${t.cluster}: ${t.status}`);
      for (const s of t.steps ?? []) {
        if (!changed(`step ${t.cluster} ${s.index}`, s.status)) continue;
        lines.push(`${stepLine(t.cluster, s)}: ${s.status}${s.message ? `: ${s.message}` : ''}`);
        if (s.status !== 'running' && s.diff) lines.push(indent(diffHunks(s.diff), '    '));
      }
      if (ended && changed(`target ${t.cluster}`, t.status))
        lines.push(`${t.cluster}: ${t.status}${t.message ? `: ${t.message}` : ''}`);
    }
    return lines;
  }
}

function seconds(from: string, to: string | null): string {
  if (!to) return '';
  const ms = Date.parse(to) - Date.parse(from);
  return Number.isFinite(ms) && ms >= 0 ? ` in ${(ms / 1000).toFixed(1)}s` : '';
}

/** The last line of `kubegate run --wait`: the outcome, per cluster when there are several or it failed. */
export function runSummary(r: RunView): string {
  const counts = new Map<string, string[]>();
  for (const t of r.targets) counts.set(t.status, [...(counts.get(t.status) ?? []), t.cluster]);
  const n = r.targets.length;
  const per =
    r.status === 'succeeded'
      ? `${n} cluster${n === 1 ? '' : 's'}`
      : [...counts].map(([status, cs]) => `${status} on ${cs.join(', ')}`).join('; ');
  return (
    `${r.dryRun ? 'dry run ' : 'run '}${r.id} ${r.status}` +
    (per ? ` (${per})` : '') +
    seconds(r.createdAt, r.finishedAt)
  );
}

async function follow(
  p: Invocation,
  e: Endpoint,
  first: RunView,
  intervalMs: number,
): Promise<number> {
  const progress = new Progress();
  let run = first;
  const poll = new Poller(e);
  for (;;) {
    for (const l of progress.update(run)) p.io.stdout.write(`${l}\n`);
    if (runFinished(run)) break;
    await sleep(intervalMs);
    run =
      (await poll.get<RunView>(
        `/api/v1/runs/${encodeURIComponent(run.id)}`,
        (why) => `lost track of run ${run.id} (${why}); it goes on: kubegate runs get ${run.id}`,
      )) ?? run;
  }
  p.io.stdout.write(`${runSummary(run)}\n`);
  return run.status === 'succeeded' ? 0 : 1;
}

export async function runCreate(p: Invocation): Promise<number> {
  const { body, headers } = runBody(p);
  const e = endpoint(p);
  const r = await call(e, 'POST', '/api/v1/runs', body, headers);
  const run = r.json as RunView;
  p.io.stdout.write(`${run.id}\n`);
  p.io.stderr.write(
    r.status === 200
      ? `run ${run.id} was made before with this Idempotency-Key: ${runHeadline(run)}; ${run.status}\n`
      : `run ${run.id}: ${runHeadline(run)}; ${run.status}\n`,
  );
  if (!p.flags.has('wait')) return 0;
  return follow(p, e, run, 1000);
}

// --- kubegate runs ---------------------------------------------------------------------

/** `dev=succeeded prod=failed`, or the run's own status when the list carries no clusters. */
function clusterStatuses(r: RunView): string {
  return r.targets.length ? r.targets.map((t) => `${t.cluster}=${t.status}`).join(' ') : '-';
}

export function runsTable(runs: readonly RunView[]): string {
  return table(
    ['ID', 'RUNBOOK', 'STATUS', 'CLUSTERS', 'REQUESTER', 'TICKET', 'CREATED'],
    runs.map((r) => [
      r.id,
      `${r.runbook} v${r.version}${r.dryRun ? ' (dry run)' : ''}`,
      r.status,
      clusterStatuses(r),
      r.requester.kind === 'user' ? r.requester.name : `${r.requester.kind}:${r.requester.name}`,
      r.ticket || '-',
      r.createdAt,
    ]),
  );
}

function resultText(result: unknown): string {
  return typeof result === 'string' ? result : toYaml(result).replace(/\n$/, '');
}

/** One run, whole, as a person reads it: who, what, each cluster's steps with messages, diffs and results. */
export function runText(r: RunView): string {
  const out: string[] = [];
  const field = (k: string, v: string) => out.push(`${`${k}:`.padEnd(12)}${v}`);
  field('run', r.id);
  field('runbook', `${r.runbook} v${r.version}${r.dryRun ? ' (dry run)' : ''}`);
  field('status', r.status);
  field('namespace', r.namespace || '-');
  const params = Object.entries(r.params ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  field('params', params.length ? params.map(([k, v]) => `${k}=${String(v)}`).join(' ') : '-');
  const groups = r.requester.groups?.length ? `, groups ${r.requester.groups.join(',')}` : '';
  field('requester', `${r.requester.name} (${r.requester.kind}${groups})`);
  field('ticket', r.ticket || '-');
  if (r.reason) field('reason', r.reason);
  if (r.targets.length > 1)
    field(
      'fleet',
      `canary ${r.canary ?? 0}, concurrency ${r.concurrency ?? '-'}, offline wait ${r.offlineWait ?? '-'}s`,
    );
  if (r.cancelReason) field('cancel', r.cancelReason);
  if (r.approval) field('approval', `${r.approval.id} ${r.approval.status}`);
  field('created', r.createdAt);
  field('finished', r.finishedAt ? `${r.finishedAt}${seconds(r.createdAt, r.finishedAt)}` : '-');
  for (const t of r.targets) {
    out.push('', `cluster ${t.cluster}: ${t.status}${t.message ? `: ${t.message}` : ''}`);
    for (const pv of t.preview ?? []) {
      out.push(
        `  preview step ${pv.index + 1} ${pv.name}: ${pv.status}${pv.message ? `: ${pv.message}` : ''}`,
      );
      if (pv.diff) out.push(indent(pv.diff, '      '));
    }
    for (const s of t.steps ?? []) {
      out.push(
        `  step ${s.index + 1} ${s.name} (${s.action}): ${s.status}${s.message ? `: ${s.message}` : ''}`,
      );
      if (s.diff) out.push('    diff:', indent(s.diff, '      '));
      if (s.result !== null && s.result !== undefined)
        out.push('    result:', indent(resultText(s.result), '      '));
    }
  }
  return out.join('\n') + '\n';
}

function wantJson(p: Invocation): boolean {
  const o = flag(p, 'output') ?? 'text';
  if (o !== 'text' && o !== 'json' && o !== 'yaml')
    throw new UsageError(`--output must be text, json or yaml (got ${JSON.stringify(o)})`, p.path);
  return o !== 'text';
}

function structured(p: Invocation, value: unknown): void {
  p.io.stdout.write(
    flag(p, 'output') === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value),
  );
}

export async function runsList(p: Invocation): Promise<void> {
  const q = new URLSearchParams();
  for (const k of ['runbook', 'status', 'ticket', 'requester', 'limit'])
    if (flag(p, k) !== undefined) q.set(k, flag(p, k)!);
  const qs = q.toString();
  const raw = wantJson(p);
  const r = (await call(endpoint(p), 'GET', `/api/v1/runs${qs ? `?${qs}` : ''}`)).json as {
    items: RunView[];
  };
  if (raw) structured(p, r.items);
  else if (r.items.length) p.io.stdout.write(runsTable(r.items));
  else p.io.stderr.write('no runs\n');
}

/** GET one object and print it: as text, or as JSON/YAML with --output. */
async function show<T>(p: Invocation, path: string, text: (v: T) => string): Promise<void> {
  const raw = wantJson(p);
  const v = (await call(endpoint(p), 'GET', path)).json as T;
  if (raw) structured(p, v);
  else p.io.stdout.write(text(v));
}

export async function runsGet(p: Invocation): Promise<void> {
  await show(p, `/api/v1/runs/${encodeURIComponent(p.positionals[0]!)}`, runText);
}

export async function runsCancel(p: Invocation): Promise<void> {
  const id = p.positionals[0]!;
  const reason = flag(p, 'reason');
  const run = (
    await call(
      endpoint(p),
      'POST',
      `/api/v1/runs/${encodeURIComponent(id)}/cancel`,
      reason !== undefined ? { reason } : {},
    )
  ).json as Partial<RunView>;
  p.io.stdout.write(`run ${run.id ?? id}: ${run.status ?? 'cancel asked for'}\n`);
}

// --- kubegate runbook -----------------------------------------------------------------------

/** A parameter's bounds and pattern in a few words. */
function constraints(s: ParamSpec): string {
  const parts: string[] = [];
  if (s.type === 'integer') {
    if (s.minimum !== undefined && s.maximum !== undefined)
      parts.push(`${s.minimum}..${s.maximum}`);
    else if (s.minimum !== undefined) parts.push(`>= ${s.minimum}`);
    else if (s.maximum !== undefined) parts.push(`<= ${s.maximum}`);
  }
  if (s.type === 'string') {
    if (s.enum) parts.push(`one of ${s.enum.join('|')}`);
    if (s.pattern)
      parts.push(`pattern ${s.pattern.length > 40 ? `${s.pattern.slice(0, 37)}...` : s.pattern}`);
    if (s.maxLength !== undefined) parts.push(`max length ${s.maxLength}`);
  }
  return parts.join(', ') || '-';
}

function targetsText(rb: RunbookView): string {
  const t = rb.targets;
  const where = t.clusters
    ? `clusters ${t.clusters.join(', ')}`
    : t.selector
      ? `clusters matching ${formatSelector(t.selector)}`
      : 'any cluster';
  const ns = t.namespace;
  const nsText =
    'fixed' in ns
      ? `namespace ${ns.fixed}`
      : 'param' in ns
        ? `namespace from parameter ${ns.param}${ns.allowed ? ` (one of ${ns.allowed.join(', ')})` : ''}`
        : 'cluster-scoped';
  return `${where}; ${nsText}`;
}

function stepTarget(s: Step): string {
  if ('target' in s) {
    const r = `${s.target.resource}${s.target.group ? `.${s.target.group}` : ''}`;
    return `${r}/${s.target.name}`;
  }
  if (s.action === 'apply' || s.action === 'job') {
    const m = s.manifest as { kind?: unknown; metadata?: { name?: unknown } };
    return `${String(m.kind ?? '?')}/${String(m.metadata?.name ?? '?')}`;
  }
  if (s.action === 'logs') return `pods/${s.pod}`;
  return '';
}

export function runbooksTable(items: readonly RunbookView[]): string {
  return table(
    ['NAME', 'VERSION', 'BUILTIN', 'DESCRIPTION'],
    items.map((r) => {
      const d = r.description.split('\n')[0]!;
      return [
        r.name,
        String(r.version),
        r.builtin ? 'yes' : 'no',
        d.length > 72 ? `${d.slice(0, 69)}...` : d,
      ];
    }),
  );
}

/** One runbook as a person reads it: what it does, its parameters (types, defaults, bounds), targets, steps. */
export function runbookText(rb: RunbookView): string {
  const out: string[] = [];
  const field = (k: string, v: string) => out.push(`${`${k}:`.padEnd(13)}${v}`);
  field('name', rb.name);
  field('version', `${rb.version}${rb.builtin ? ' (built in)' : ''}`);
  if (rb.updatedBy) field('updated', `${rb.updatedAt ?? ''} by ${rb.updatedBy}`.trim());
  field('description', rb.description);
  field('targets', targetsText(rb));
  out.push('parameters:');
  if (rb.parameters.length)
    out.push(
      indent(
        table(
          ['NAME', 'TYPE', 'REQUIRED', 'DEFAULT', 'BOUNDS', 'DESCRIPTION'],
          rb.parameters.map((s) => [
            s.name,
            s.type,
            s.required ? 'yes' : 'no',
            s.default === undefined ? '-' : String(s.default),
            constraints(s),
            s.description ?? '',
          ]),
        ),
        '  ',
      ),
    );
  else out.push('  (none)');
  out.push('steps:');
  rb.steps.forEach((s, i) => {
    const target = stepTarget(s);
    out.push(
      `  ${i + 1}. ${s.name} (${s.action}${target ? ` ${target}` : ''})${s.onFailure === 'continue' ? ', continues on failure' : ''}`,
    );
  });
  return out.join('\n') + '\n';
}

export async function runbookList(p: Invocation): Promise<void> {
  const raw = wantJson(p);
  const r = (await call(endpoint(p), 'GET', '/api/v1/runbooks')).json as { items: RunbookView[] };
  if (raw) structured(p, r.items);
  else p.io.stdout.write(runbooksTable(r.items));
}

export async function runbookGet(p: Invocation): Promise<void> {
  await show(p, `/api/v1/runbooks/${encodeURIComponent(p.positionals[0]!)}`, runbookText);
}

// --- kubegate admin runbook ------------------------------------------------------------------

/** What the API adds to a definition (`runbook get --output yaml`); apply leaves these out. */
const metadataFields = ['version', 'builtin', 'updatedBy', 'updatedAt'];

/** A definition read from a file (YAML or JSON; - for stdin), without the API's metadata fields. */
export function definitionFrom(text: string, file: string): Record<string, unknown> {
  return documentFrom(text, file, 'one runbook (a mapping with name, steps, …)', metadataFields);
}

/**
 * One mapping read from a file's text (YAML, so JSON too), without the
 * fields the API adds (`apply` sends back what `get` printed); `what` says
 * what the file must hold when it holds something else.
 */
export function documentFrom(
  text: string,
  file: string,
  what: string,
  apiFields: readonly string[],
): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new KgError('KG_ERR_BAD_REQUEST', `${file}: not YAML or JSON: ${(err as Error).message}`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc))
    throw new KgError('KG_ERR_BAD_REQUEST', `${file}: must hold ${what}`);
  return Object.fromEntries(
    Object.entries(doc as Record<string, unknown>).filter(([k]) => !apiFields.includes(k)),
  );
}

/** JSON with keys sorted at every level: two definitions compare equal whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** A validation failure's problems, one per line, as the store's KgError lists them. */
function problemLines(err: unknown): never {
  const problems = isKgError(err) ? err.details?.problems : undefined;
  if (Array.isArray(problems) && problems.length)
    throw new KgError(
      'KG_ERR_VALIDATION',
      `the runbook is invalid, ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((x) => `  - ${String(x)}`).join('\n')}`,
    );
  throw err;
}

export async function adminRunbookApply(p: Invocation): Promise<void> {
  const file = flag(p, 'file')!;
  const doc = definitionFrom(
    readFileSync(file === '-' ? 0 : file, 'utf8'),
    file === '-' ? 'stdin' : file,
  );
  await withPool(p, async (pool) => {
    const name = typeof doc.name === 'string' ? doc.name : undefined;
    let existing: RunbookRecord | undefined;
    if (name !== undefined)
      existing = await getRunbook(pool, name).catch((err: unknown) => {
        if (isKgError(err) && err.code === 'KG_ERR_NOT_FOUND') return undefined;
        throw err;
      });
    if (existing && !existing.builtin) {
      const { spec } = validateRunbook(doc);
      if (spec && canonical(spec) === canonical(existing.spec)) {
        p.io.stderr.write(`runbook "${existing.name}" unchanged (version ${existing.version})\n`);
        return;
      }
    }
    const r =
      existing && !existing.builtin
        ? await replaceRunbook(pool, existing.name, doc, cliActor()).catch(problemLines)
        : await createRunbook(pool, doc, cliActor()).catch(problemLines);
    p.io.stderr.write(
      `runbook "${r.name}" ${existing ? 'replaced' : 'created'} (version ${r.version})\n`,
    );
  });
}

export async function adminRunbookDelete(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  await withPool(p, (pool) => deleteRunbook(pool, name, cliActor()));
  p.io.stderr.write(`runbook "${name}" deleted\n`);
}

export async function adminRunbookList(p: Invocation): Promise<void> {
  const items = await withPool(p, (pool) => listRunbooks(pool));
  p.io.stdout.write(
    table(
      ['NAME', 'VERSION', 'BUILTIN', 'UPDATED', 'BY'],
      items.map((r) => [
        r.name,
        String(r.version),
        r.builtin ? 'yes' : 'no',
        r.updatedAt ?? '-',
        r.updatedBy ?? '-',
      ]),
    ),
  );
}
