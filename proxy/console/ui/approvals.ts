/**
 * Approval requests as the console shows them, for the requester ("My
 * access requests") and for approvers (the inbox): the exact request — who,
 * cluster, verb, object — in words, its status, the votes so far against
 * the approvals needed, and a gated change's diff with each line marked as
 * removed, added or unchanged (in text too, not by colour alone).
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

export interface Approval {
  id: string;
  kind: 'access' | 'action';
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
  diff?: string | null;
}

export interface Policy {
  name: string;
  kind: 'access' | 'gate';
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

/** One line: what is asked. */
export function summary(a: Approval): Child {
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
      const cls =
        l.startsWith('+++') || l.startsWith('---')
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
