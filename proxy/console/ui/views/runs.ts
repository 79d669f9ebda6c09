/**
 * "Runs": the history of runbook runs (yours; admins see everyone's), with
 * filters by status and runbook, and one run's page: who asked, for which
 * ticket and why, its approval, and per cluster each step's status,
 * message, diff and result. While a run is queued, running or waiting for
 * approval its page asks for news every second, and says what changed in a
 * polite live region.
 */
import { get, query, request } from '../api.js';
import { field, h, replace, type Child } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import { diffView, paramsView, statusBadge, type ParamValues } from '../approvals.js';
import {
  actionButton,
  badge,
  errorNotice,
  loadTable,
  statusArea,
  type Column,
  changeCheck,
} from '../widgets.js';

/** Every run status, as the server names them (the filter's choices, in lifecycle order). */
export const runStatuses = [
  ...['awaiting-approval', 'queued', 'running'],
  ...['succeeded', 'failed', 'unknown', 'offline', 'cancelled', 'denied', 'expired'],
] as const;
export type RunStatus = (typeof runStatuses)[number];

/** A cluster of a run also waits as `preview` (the approvers' dry run) or `held` (behind the canaries). */
export type TargetStatus = RunStatus | 'preview' | 'held';

export type StepStatus = 'running' | 'succeeded' | 'failed' | 'skipped' | 'unknown';

/** A step as the approvers' dry run reports it. */
export interface PreviewStep {
  index: number;
  name: string;
  status: StepStatus;
  message: string;
  diff?: string | null;
}

/** A step of the run itself: also what it did, its result, and when. */
export interface RunStep extends PreviewStep {
  action: string;
  result: unknown;
  startedAt: string | null;
  finishedAt: string | null;
}

/** Times are null until reached. */
export interface RunTarget {
  cluster: string;
  status: TargetStatus;
  message: string;
  startedAt: string | null;
  finishedAt: string | null;
  steps?: RunStep[];
  /** The dry run made before approval, step by step. */
  preview?: PreviewStep[] | null;
}

/** What was asked for: which runbook, where, with which values, why. */
export interface RunAsk {
  runbook: string;
  version: number;
  params: ParamValues;
  namespace: string;
  ticket: string;
  reason?: string;
  dryRun: boolean;
  canary?: number;
  concurrency?: number;
}

/** A run: what was asked, by whom, and how it went. */
export interface Run extends RunAsk {
  id: string;
  requester: { name: string; kind: string; groups: string[] };
  approval?: { id: string; status: Parameters<typeof statusBadge>[0] } | null;
  status: RunStatus;
  cancelReason?: string | null;
  createdAt: string;
  finishedAt: string | null;
  targets?: RunTarget[];
}

/** Statuses after which nothing changes any more. */
const openStatuses: readonly RunStatus[] = ['awaiting-approval', 'queued', 'running'];

/** A status in words, its badge coloured as well (never by colour alone). */
export function runBadge(s: TargetStatus | StepStatus): HTMLElement {
  const kind =
    s === 'succeeded'
      ? 'ok'
      : s === 'failed' || s === 'unknown' || s === 'offline' || s === 'denied' || s === 'expired'
        ? 'bad'
        : s === 'cancelled' || s === 'skipped'
          ? ''
          : 'warn';
  return badge(s, kind);
}

function requesterText(r: Run['requester']): string {
  return `${r.name} (${r.kind})`;
}

/** A step's result (a read object, logs, a job's outcome) as readable text. */
function resultView(result: unknown, label: string): HTMLElement | null {
  if (result === null || result === undefined) return null;
  const text = typeof result === 'string' ? result : JSON.stringify(result, null, 2);
  return h('pre', { class: 'wrap', tabindex: '0', 'aria-label': label }, text);
}

function stepView(cluster: string, s: RunStep): HTMLElement {
  const title = `Step ${s.index + 1} on ${cluster}: ${s.name}`;
  return h(
    'li',
    { 'data-step': String(s.index) },
    h(
      'div',
      {},
      h('strong', {}, s.name),
      ` (${s.action}) `,
      runBadge(s.status),
      s.finishedAt
        ? h('span', { class: 'muted' }, ' finished ', when(s.finishedAt))
        : s.startedAt
          ? h('span', { class: 'muted' }, ' started ', when(s.startedAt))
          : '',
    ),
    s.message ? h('p', {}, s.message) : null,
    s.diff?.trim() ? diffView(s.diff, `Diff of ${title}`) : null,
    resultView(s.result, `Result of ${title}`),
  );
}

function targetView(t: RunTarget): HTMLElement {
  const id = `cluster-${t.cluster}`;
  const steps = [...(t.steps ?? [])].sort((a, b) => a.index - b.index);
  const preview = t.preview ?? [];
  return h(
    'section',
    { class: 'card', 'aria-labelledby': id, 'data-cluster': t.cluster },
    h('h2', { id }, 'Cluster ', h('strong', {}, t.cluster), ' ', runBadge(t.status)),
    t.message ? h('p', {}, t.message) : null,
    steps.length
      ? h(
          'ol',
          { class: 'steps' },
          steps.map((s) => stepView(t.cluster, s)),
        )
      : h('p', { class: 'muted' }, 'No step has started here yet.'),
    preview.length
      ? h(
          'details',
          {},
          h('summary', {}, 'The dry run made before approval'),
          h(
            'ol',
            {},
            [...preview]
              .sort((a, b) => a.index - b.index)
              .map((p) =>
                h(
                  'li',
                  {},
                  h('strong', {}, p.name),
                  ' ',
                  runBadge(p.status),
                  p.message ? h('p', {}, p.message) : null,
                  p.diff?.trim()
                    ? diffView(p.diff, `Dry-run diff of step ${p.index + 1} on ${t.cluster}`)
                    : null,
                ),
              ),
          ),
        )
      : null,
  );
}

function runFacts(r: Run, me: ViewContext['me']): HTMLElement {
  const rows: [string, Child][] = [
    ['Status', runBadge(r.status)],
    [
      'Runbook',
      [h('a', { href: `/console/runbooks/${r.runbook}` }, r.runbook), ` version ${r.version}`],
    ],
    ['Dry run', r.dryRun ? 'yes: every step ran with dryRun=All, nothing changed' : 'no'],
    ['Namespace', r.namespace || '(cluster-scoped)'],
    ['Parameters', paramsView(r.params)],
    [
      'Requested by',
      [
        requesterText(r.requester),
        r.requester.groups.length
          ? h('span', { class: 'muted' }, ` · groups ${r.requester.groups.join(', ')}`)
          : '',
      ],
    ],
    ['Ticket', r.ticket || h('span', { class: 'muted' }, 'none given')],
    ['Reason', r.reason || h('span', { class: 'muted' }, 'none given')],
  ];
  if (r.cancelReason !== undefined && r.cancelReason !== null)
    rows.push(['Cancelled', r.cancelReason || h('span', { class: 'muted' }, 'none given')]);
  if (r.approval)
    rows.push([
      'Approval',
      [
        statusBadge(r.approval.status),
        ' ',
        // The requester follows it in their requests; approvers decide in the inbox.
        h(
          'a',
          {
            href:
              r.requester.name === me.name && r.requester.kind === me.kind
                ? '/console/requests'
                : '/console/approvals',
          },
          `approval request ${r.approval.id}`,
        ),
      ],
    ]);
  rows.push(['Asked', when(r.createdAt)], ['Finished', when(r.finishedAt, 'not yet')]);
  return h(
    'dl',
    { class: 'facts' },
    rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

/** Cancelling: a reason and a button, for a run that has not ended. */
function cancelForm(id: string, cancelled: (r: Run) => void): HTMLElement {
  const status = statusArea();
  const reason = h('input', { type: 'text', maxlength: 1000, autocomplete: 'off' });
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'cancel-h' },
    h('h2', { id: 'cancel-h' }, 'Cancel this run'),
    h(
      'p',
      { class: 'hint' },
      'Clusters that have not started never start; a running one stops before its next step.',
    ),
    field('Why cancel', reason, 'optional; kept with the run'),
    h(
      'div',
      { class: 'actions' },
      actionButton(
        'Cancel run',
        async () => {
          const r = await request<Run>('POST', `/api/v1/runs/${encodeURIComponent(id)}/cancel`, {
            ...(reason.value.trim() ? { reason: reason.value.trim() } : {}),
          });
          cancelled(r.body);
        },
        {
          status,
          class: 'danger',
          confirm: 'Cancel this run? Steps not yet started will not run.',
        },
      ),
    ),
    status.el,
  );
}

/** One run's page; polls while the run can still change, until the person leaves the page. */
async function runPage(ctx: ViewContext, id: string): Promise<void> {
  const url = `/api/v1/runs/${encodeURIComponent(id)}`;
  const live = h('p', { role: 'status', 'aria-live': 'polite' });
  const problem = h('div', {});
  const body = h('div', {});
  const controls = h('div', {});
  const heading = h('h2', {}, 'Run ', h('code', {}, id));
  replace(
    ctx.into,
    h('p', {}, h('a', { href: '/console/runs' }, 'All runs')),
    heading,
    live,
    problem,
    body,
    controls,
  );
  const isNew = changeCheck();
  let current: RunStatus | undefined;
  const draw = (r: Run) => {
    replace(problem);
    if (!isNew(r)) return;
    replace(
      heading,
      'Run of ',
      h('strong', {}, r.runbook),
      r.dryRun ? ' (dry run)' : '',
      ' on ',
      (r.targets ?? []).map((t) => t.cluster).join(', '),
    );
    if (r.status !== current) {
      const open = openStatuses.includes(r.status);
      replace(live, `Status: ${r.status}`, open ? ' — this page updates by itself.' : '');
      // The cancel form is drawn when the run opens or ends, never while someone types in it.
      replace(controls, open ? cancelForm(id, draw) : null);
      current = r.status;
    }
    replace(body, runFacts(r, ctx.me), (r.targets ?? []).map(targetView));
  };
  try {
    draw(await get<Run>(url));
  } catch (err) {
    replace(body, errorNotice(err));
    return;
  }
  // Every second while it can still change; stop once the page shows another view.
  while (current && openStatuses.includes(current)) {
    await new Promise((r) => setTimeout(r, 1000));
    if (!ctx.into.isConnected) return;
    try {
      draw(await get<Run>(url));
    } catch (err) {
      if (!ctx.into.isConnected) return;
      replace(problem, errorNotice(err));
    }
  }
}

/** The history, with filters that reload the table in place (and in the address). */
async function runHistory(ctx: ViewContext): Promise<void> {
  const here = new URLSearchParams(location.search);
  const status = h(
    'select',
    { id: 'runs-status' },
    h('option', { value: '' }, 'any status'),
    runStatuses.map((s) => h('option', { value: s }, s)),
  );
  status.value = runStatuses.includes(here.get('status') as RunStatus) ? here.get('status')! : '';
  const runbook = h('select', { id: 'runs-runbook' }, h('option', { value: '' }, 'any runbook'));
  const list = h('div', {});
  const columns: Column<Run>[] = [
    {
      title: 'Runbook',
      cell: (r) => [
        h('a', { href: `/console/runs/${r.id}` }, r.runbook),
        r.dryRun ? ' (dry run)' : '',
      ],
    },
    { title: 'Status', cell: (r) => runBadge(r.status) },
    {
      title: 'Clusters',
      cell: (r) =>
        r.targets?.length
          ? r.targets.map((t) => t.cluster).join(', ')
          : h('span', { class: 'muted' }, 'see the run'),
    },
    { title: 'Requester', cell: (r) => requesterText(r.requester) },
    { title: 'Ticket', cell: (r) => r.ticket || h('span', { class: 'muted' }, 'none') },
    { title: 'When', cell: (r) => when(r.createdAt) },
  ];
  const refresh = () => {
    const q = query({ status: status.value, runbook: runbook.value });
    keepInAddress(q);
    return loadTable<Run>(
      list,
      `/api/v1/runs${query({ status: status.value, runbook: runbook.value, limit: '100' })}`,
      'Runs',
      columns,
      status.value || runbook.value
        ? 'No run matches these filters.'
        : ['No runs yet. ', h('a', { href: '/console/runbooks' }, 'Run a runbook.')],
    );
  };
  status.addEventListener('change', () => void refresh());
  runbook.addEventListener('change', () => void refresh());
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      ctx.me.admin
        ? 'Every runbook run, newest first.'
        : 'The runbook runs you asked for, newest first.',
    ),
    h(
      'div',
      { class: 'actions', role: 'group', 'aria-label': 'Filter runs' },
      field('Status', status),
      field('Runbook', runbook),
    ),
    list,
  );
  try {
    const { items } = await get<{ items: { name: string }[] }>('/api/v1/runbooks');
    for (const rb of items) runbook.append(h('option', { value: rb.name }, rb.name));
  } catch {
    // The filter still works without the list of names: only "any runbook" is offered.
  }
  const wanted = here.get('runbook');
  if (wanted) {
    if (![...runbook.options].some((o) => o.value === wanted))
      runbook.append(h('option', { value: wanted }, wanted));
    runbook.value = wanted;
  }
  await refresh();
}

/** Keep the filters in the address, so a reload or a shared link shows the same list. */
function keepInAddress(q: string): void {
  history.replaceState(null, '', `/console/runs${q}`);
}

export async function runsView(ctx: ViewContext): Promise<void> {
  const id = /^\/console\/runs\/([^/]+)\/?$/.exec(location.pathname)?.[1];
  if (id) return runPage(ctx, decodeURIComponent(id));
  return runHistory(ctx);
}
