/**
 * Approval requests as the console shows them, for the requester ("My
 * access requests") and for approvers (the inbox): the exact request — who,
 * cluster, verb, object; or the runbook, clusters, namespace, parameters
 * and steps of a run — in words, its status, the votes so far against the
 * approvals needed, and a gated change's or a run's dry-run diff with each
 * line marked as removed, added or unchanged (in text too, not by colour
 * alone).
 */
import { h, type Child } from './dom.js';
import { when } from './format.js';
import { selectorText, type LabelSelector } from './selector.js';
import { badge } from './widgets.js';

export type Status = 'pending' | 'approved' | 'denied' | 'withdrawn' | 'expired' | 'executed';

/** The text fields of a gated request the console shows. */
type ActionText =
  | 'cluster'
  | 'method'
  | 'verb'
  | 'apiGroup'
  | 'resource'
  | 'subresource'
  | 'namespace'
  | 'name'
  | 'path'
  | 'query'
  | 'bodySha256';

/** A runbook step as it is listed before it runs: its place, name and action. */
export interface StepOutline {
  index: number;
  name: string;
  action: string;
}

/** A run's parameters: name → value. */
export type ParamValues = Record<string, string | number | boolean>;

export interface Approval {
  id: string;
  kind: 'access' | 'action' | 'run' | 'namespace';
  status: Status;
  requester: { name: string; kind: 'user' | 'robot'; groups: string[] };
  reason: string;
  createdAt: string;
  pendingUntil: string;
  decidedAt: string | null;
  policies: string[];
  decisions: {
    approver: string;
    approverKind: string;
    decision: 'approve' | 'deny';
    reason: string;
    at: string;
  }[];
  access?: {
    role: string;
    clusters: { names?: string[]; selector?: LabelSelector };
    namespaces: string[];
    durationSeconds: number;
    expiresAt?: string;
    bindingId: string | null;
  };
  action?: Record<ActionText, string> & {
    bodyBytes: number;
    executableUntil: string | null;
    executedAt: string | null;
  };
  /** A run waiting for approval (kind `run`): what would run, where, with what. */
  run?: {
    id: string;
    runbook: string;
    version: number;
    clusters: string[];
    namespace: string;
    params: ParamValues;
    ticket: string;
    dryRun: boolean;
    steps: StepOutline[];
    /** The run in the REST API. */
    link?: string;
  };
  /** A self-service namespace to create or delete (kind `namespace`). */
  namespace?: {
    action: 'create' | 'delete';
    namespace: string;
    clusters: string[];
    profile: string;
    owner: string;
  };
  /** A gated change's diff against the live object; a run's server-side dry run, one section per cluster. */
  diff?: string | null;
}

export interface Policy {
  name: string;
  kind: 'access' | 'gate' | 'runbook';
  description: string;
  approvers: { groups: string[]; count: number };
  clusters: { names?: string[]; selector?: LabelSelector };
  namespaces: string[];
  pendingFor: number;
  roles?: string[];
  requesterGroups?: string[];
  maxDuration?: number;
  resources?: string[];
  verbs?: string[];
  window?: number;
  version: number;
}

export function statusBadge(s: Status): HTMLElement {
  const kind =
    s === 'approved' || s === 'executed'
      ? 'ok'
      : s === 'pending'
        ? 'warn'
        : s === 'denied'
          ? 'bad'
          : '';
  return badge(s, kind);
}

/** 900 → "15 min", 28800 → "8 h". */
export function duration(sec: number): string {
  if (sec % 86400 === 0) return `${sec / 86400} d`;
  if (sec % 3600 === 0) return `${sec / 3600} h`;
  if (sec % 60 === 0) return `${sec / 60} min`;
  return `${sec} s`;
}

export function clustersText(c: { names?: string[]; selector?: LabelSelector }): string {
  return [
    ...(c.names?.length ? [c.names.join(', ')] : []),
    ...(c.selector ? [`clusters matching ${selectorText(c.selector)}`] : []),
  ].join(' and ');
}

/** The object a gated request touches, as kubectl would name it. */
function objectText(a: NonNullable<Approval['action']>): string {
  const group = a.apiGroup ? `.${a.apiGroup}` : '';
  const sub = a.subresource ? `/${a.subresource}` : '';
  return `${a.resource}${group}${sub}${a.name ? ` "${a.name}"` : ''}`;
}

/** Parameters as `name=value` items, strings quoted so spaces and empty values show. */
export function paramsView(params: ParamValues): Child {
  const entries = Object.entries(params);
  if (!entries.length) return h('span', { class: 'muted' }, 'none');
  return h(
    'ul',
    { class: 'plain' },
    entries.map(([k, v]) =>
      h('li', {}, h('code', {}, `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`)),
    ),
  );
}

/** A runbook's steps in order: "1. scale (scale)". */
export function stepsOutline(steps: StepOutline[]): HTMLElement {
  return h(
    'ol',
    {},
    [...steps]
      .sort((x, y) => x.index - y.index)
      .map((s) => h('li', {}, h('strong', {}, s.name), ` — ${s.action}`)),
  );
}

/** What a heading calls the request's kind. */
export function kindText(a: Approval): string {
  return a.kind === 'access'
    ? 'Access: '
    : a.kind === 'run'
      ? 'Runbook run: '
      : a.kind === 'namespace'
        ? 'Namespace: '
        : 'Gated change: ';
}

/** One line: what is asked. */
export function summary(a: Approval): Child {
  if (a.namespace) {
    const x = a.namespace;
    return [
      x.action,
      ' ',
      h('strong', {}, x.namespace),
      ` (profile ${x.profile}) on `,
      h('strong', {}, x.clusters.join(', ')),
    ];
  }
  if (a.run) {
    const x = a.run;
    return [
      h('strong', {}, x.runbook),
      x.dryRun ? ' (dry run)' : '',
      x.namespace ? ` in ${x.namespace}` : '',
      ' on ',
      h('strong', {}, x.clusters.join(', ')),
      x.ticket ? ` for ${x.ticket}` : '',
    ];
  }
  if (a.access) {
    const x = a.access;
    return [
      'role ',
      h('strong', {}, x.role),
      ' on ',
      h('strong', {}, clustersText(x.clusters)),
      x.namespaces.length ? ` in ${x.namespaces.join(', ')}` : ' cluster-wide',
      ` for ${duration(x.durationSeconds)}`,
    ];
  }
  const x = a.action!;
  return [
    h('strong', {}, x.verb),
    ' ',
    h('code', {}, objectText(x)),
    x.namespace ? ` in ${x.namespace}` : '',
    ' on ',
    h('strong', {}, x.cluster),
  ];
}

/** The exact request, field by field (a description list). */
export function details(a: Approval): HTMLElement {
  const rows: [string, Child][] = [
    [
      'Requested by',
      [
        `${a.requester.name} (${a.requester.kind})`,
        a.requester.groups.length
          ? h('span', { class: 'muted' }, ` · groups ${a.requester.groups.join(', ')}`)
          : '',
      ],
    ],
  ];
  if (a.access) {
    const x = a.access;
    rows.push(
      ['Role', h('strong', {}, x.role)],
      ['Clusters', clustersText(x.clusters)],
      ['Namespaces', x.namespaces.length ? x.namespaces.join(', ') : 'cluster-wide'],
      ['Duration', duration(x.durationSeconds)],
    );
    if (x.expiresAt) rows.push(['Access ends', when(x.expiresAt)]);
  } else if (a.run) {
    const x = a.run;
    rows.push(
      ['Runbook', [h('strong', {}, x.runbook), ` version ${x.version}`]],
      ['Clusters', h('strong', {}, x.clusters.join(', '))],
      ['Namespace', x.namespace || '(cluster-scoped)'],
      ['Parameters', paramsView(x.params)],
      ['Ticket', x.ticket || h('span', { class: 'muted' }, 'none given')],
      ['Dry run', x.dryRun ? 'yes: every step runs with dryRun=All, nothing changes' : 'no'],
      ['Steps', stepsOutline(x.steps)],
      ['Run', h('code', {}, x.id)],
    );
  } else if (a.namespace) {
    const x = a.namespace;
    rows.push(
      ['Asks to', x.action === 'create' ? 'create a namespace' : 'delete a namespace'],
      ['Namespace', h('strong', {}, x.namespace)],
      ['Profile', x.profile],
      ['Clusters', h('strong', {}, x.clusters.join(', '))],
      ['Owner', x.owner],
    );
  } else if (a.action) {
    const x = a.action;
    rows.push(
      ['Cluster', h('strong', {}, x.cluster)],
      ['Verb', h('strong', {}, x.verb)],
      ['Object', h('code', {}, objectText(x))],
      ['Namespace', x.namespace || '(cluster-scoped)'],
      ['Request', h('code', {}, `${x.method} ${x.path}${x.query ? `?${x.query}` : ''}`)],
      ['Body', `${x.bodyBytes} bytes, sha256 ${x.bodySha256.slice(0, 16)}…`],
    );
    if (x.executableUntil && a.status === 'approved')
      rows.push(['May run once until', when(x.executableUntil)]);
    if (x.executedAt) rows.push(['Ran', when(x.executedAt)]);
  }
  rows.push(
    ['Reason', a.reason || h('span', { class: 'muted' }, 'none given')],
    ['Asked', when(a.createdAt)],
  );
  if (a.status === 'pending') rows.push(['Expires unanswered', when(a.pendingUntil)]);
  return h(
    'dl',
    { class: 'facts' },
    rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]),
  );
}

/**
 * Approvals so far against those needed. Any one governing policy being
 * satisfied is enough, so the fewest approvals any of them asks for is
 * what is needed (when the caller can read the policies).
 */
export function progress(a: Approval, policies: Policy[]): Child {
  const yes = new Set(a.decisions.filter((d) => d.decision === 'approve').map((d) => d.approver));
  const counts = policies.filter((p) => a.policies.includes(p.name)).map((p) => p.approvers.count);
  const needed = counts.length ? Math.min(...counts) : undefined;
  const votes = a.decisions.map((d) =>
    h(
      'li',
      {},
      badge(
        d.decision === 'approve' ? 'approved' : 'denied',
        d.decision === 'approve' ? 'ok' : 'bad',
      ),
      `${d.approver} `,
      when(d.at),
      d.reason ? `: “${d.reason}”` : '',
    ),
  );
  return [
    needed !== undefined
      ? h(
          'p',
          { class: 'progress' },
          `${yes.size} of ${needed} approval${needed === 1 ? '' : 's'}`,
          a.status === 'pending' && yes.size > 0 && yes.size < needed
            ? ` — waiting for ${needed - yes.size} more (a different approver)`
            : '',
        )
      : null,
    votes.length ? h('ul', { class: 'plain votes' }, votes) : null,
  ];
}

/** A unified diff as lines marked removed / added, readable without colour. */
export function diffView(diff: string, label: string): HTMLElement {
  const lines = diff.replace(/\n$/, '').split('\n');
  return h(
    'pre',
    { class: 'diff', tabindex: '0', 'aria-label': label },
    lines.map((l) => {
      // `# cluster …` / `## step …` head the sections of a run's dry-run diff.
      const cls =
        l.startsWith('+++') || l.startsWith('---') || l.startsWith('#')
          ? 'head'
          : l.startsWith('+')
            ? 'add'
            : l.startsWith('-')
              ? 'del'
              : '';
      return h('span', { class: cls ? `line ${cls}` : 'line' }, `${l}\n`);
    }),
  );
}
