/**
 * The audit log: my own recent events (everyone), or a search over every
 * event with filters and an NDJSON export (admins). The server decides what
 * a caller may see; this view only asks.
 */
import { query } from '../api.js';
import { field, h, replace } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import { badge, pagedSearch, statusArea, table } from '../widgets.js';

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user: { username: string };
  objectRef?: {
    resource?: string;
    subresource?: string;
    namespace?: string;
    name?: string;
    apiGroup?: string;
  };
  responseStatus?: { code: number };
  stageTimestamp: string;
  source: 'kube' | 'admin' | 'runbook';
  cluster: string;
  decision: 'allow' | 'deny' | 'error';
  reason: string;
}

const mine = ['since', 'cluster', 'verb', 'decision'];
/** An admin's filters: when, who, where, what, and how it ended. */
const every = [
  'since',
  ...['user', 'group'],
  ...['cluster', 'namespace'],
  ...['resource', 'verb'],
  ...['decision', 'code', 'source'],
];
const titles: Record<string, string> = {
  since: 'Since',
  user: 'User',
  group: 'Group',
  cluster: 'Cluster',
  namespace: 'Namespace',
  resource: 'Resource',
  verb: 'Verb',
  decision: 'Decision',
  code: 'Status code',
  source: 'Source',
};
const hints: Record<string, string> = {
  since: 'a duration such as 1h or 7d, or an RFC 3339 time',
  resource: 'e.g. pods, deployments.apps, pods/exec',
  code: 'an HTTP status (403) or a class (4xx)',
};

function control(name: string): HTMLInputElement | HTMLSelectElement {
  if (name === 'decision')
    return h(
      'select',
      { name },
      ['', 'allow', 'deny', 'error'].map((v) => h('option', { value: v }, v || 'any')),
    );
  if (name === 'source')
    return h(
      'select',
      { name },
      ['', 'kube', 'admin', 'runbook'].map((v) => h('option', { value: v }, v || 'any')),
    );
  return h('input', {
    type: 'text',
    name,
    value: name === 'since' ? '24h' : '',
    autocomplete: 'off',
  });
}

function what(e: AuditEvent): string {
  const o = e.objectRef;
  if (!o?.resource) return e.requestURI;
  const res = `${o.resource}${o.subresource ? '/' + o.subresource : ''}${o.apiGroup ? '.' + o.apiGroup : ''}`;
  return `${res}${o.namespace ? ` in ${o.namespace}` : ''}${o.name ? ` ${o.name}` : ''}`;
}

export async function auditView(ctx: ViewContext, admin: boolean): Promise<void> {
  const names = admin ? every : mine;
  const controls = new Map(names.map((n) => [n, control(n)] as const));
  const status = statusArea();
  const results = h('div', { 'aria-live': 'polite' });
  const exportLink = h(
    'a',
    { class: 'button quiet', download: 'kubegate-audit.ndjson' },
    'Export NDJSON',
  );
  const form = h(
    'form',
    { class: 'card', role: 'search', 'aria-label': 'Filter audit events' },
    h(
      'div',
      { class: 'grid' },
      [...controls].map(([n, c]) => field(titles[n] ?? n, c, hints[n])),
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit' }, 'Search'),
      admin ? exportLink : null,
    ),
  );
  const filters = () =>
    Object.fromEntries([...controls].map(([n, c]) => [n, c.value.trim() || undefined]));
  const updateExport = () => (exportLink.href = `/api/v1/audit/export${query(filters())}`);

  const search = pagedSearch<AuditEvent>(results, { path: '/api/v1/audit', filters }, (all) =>
    table(
      'Audit events',
      [
        { title: 'When', cell: (e) => when(e.stageTimestamp) },
        ...(admin ? [{ title: 'Who', cell: (e: AuditEvent) => e.user.username }] : []),
        {
          title: 'Cluster',
          cell: (e) => (e.source === 'admin' ? badge('admin action') : h('code', {}, e.cluster)),
        },
        { title: 'Verb', cell: (e) => e.verb },
        { title: 'What', cell: (e) => h('span', { class: 'mono' }, what(e)) },
        {
          title: 'Outcome',
          cell: (e) => [
            badge(e.decision, e.decision === 'allow' ? 'ok' : 'bad'),
            e.responseStatus ? ` ${e.responseStatus.code}` : '',
            e.decision !== 'allow' && e.reason ? h('div', { class: 'hint' }, e.reason) : '',
          ],
        },
      ],
      all,
      'No events match these filters. Widen the time range (since) or clear a filter.',
    ),
  );
  const run = () => {
    updateExport();
    status.clear();
    return search();
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    void run();
  });
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      admin
        ? 'Every request through kubegate and every admin action, newest first.'
        : 'Your own requests through kubegate, newest first.',
    ),
    form,
    status.el,
    results,
  );
  await run();
}
