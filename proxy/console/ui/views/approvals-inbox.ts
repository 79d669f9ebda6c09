/**
 * The approvals inbox: every pending access request, gated change and
 * runbook run the signed-in person may decide (the server's
 * `view=approvable`: never their own, only under policies naming one of
 * their groups). Each shows the exact request — who, cluster, verb, object;
 * for a run the runbook, clusters, namespace, parameters, ticket and steps —
 * a gated change's diff against the live object or a run's dry-run diff,
 * the votes so far, and Approve / Deny with a reason. Admins also see every
 * request, decided or not.
 */
import { get, request } from '../api.js';
import { h, replace, uid } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  details,
  diffView,
  kindText,
  progress,
  statusBadge,
  summary,
  type Approval,
  type Policy,
} from '../approvals.js';
import { errorNotice, load, loadTable, okNotice, statusArea } from '../widgets.js';

function decisionText(a: Approval, decision: 'approve' | 'deny'): string {
  if (decision === 'deny') return 'Denied: nothing is granted, and the requester sees your reason.';
  if (a.status === 'pending')
    return 'Your approval is in; the policy needs another approver before anything is granted.';
  if (a.kind === 'access') return 'Approved: the access works now and ends on time by itself.';
  if (a.kind === 'run') return 'Approved: the run starts now, as the runbook.';
  if (a.kind === 'namespace')
    return a.namespace?.action === 'delete'
      ? 'Approved: the namespace and its access are being deleted.'
      : 'Approved: the namespace is being created; its owner gets it when it is ready.';
  return 'Approved: the identical request may now run once.';
}

/** One request to decide, as a card. */
function card(a: Approval, policies: Policy[], done: (msg: string) => Promise<void>): HTMLElement {
  const headingId = uid('req');
  const status = statusArea();
  const reason = h('textarea', { rows: 2, maxlength: 1000, id: uid('why') });
  const decide = (decision: 'approve' | 'deny') => async () => {
    if (decision === 'deny' && !reason.value.trim()) {
      status.show(errorNotice(new Error('Say why you deny it: the requester sees your reason.')));
      reason.focus();
      return;
    }
    const buttons = [...el.querySelectorAll('button')];
    buttons.forEach((b) => (b.disabled = true));
    try {
      const r = await request<Approval>('POST', `/api/v1/approvals/${a.id}/${decision}`, {
        reason: reason.value,
      });
      await done(decisionText(r.body, decision));
    } catch (err) {
      status.show(errorNotice(err));
      buttons.forEach((b) => (b.disabled = false));
    }
  };
  const el = h(
    'article',
    { class: 'card request', 'aria-labelledby': headingId, 'data-approval': a.id },
    h('h2', { id: headingId }, kindText(a), summary(a)),
    h('p', {}, statusBadge(a.status), ` asked by ${a.requester.name} `, when(a.createdAt)),
    details(a),
    a.kind === 'action'
      ? [
          h('h3', {}, 'The change, against the live object'),
          !a.diff
            ? h('p', { class: 'muted' }, 'No diff could be computed for this request.')
            : !/^[-+ ](?!-- |\+\+ )/m.test(a.diff)
              ? h(
                  'p',
                  { class: 'muted' },
                  'Nothing to compare: neither the live object nor the result has any content (for example, deleting an object that does not exist).',
                )
              : diffView(a.diff, `Diff of the change requested by ${a.requester.name}`),
        ]
      : a.kind === 'run'
        ? [
            h('h3', {}, 'What the run would change (a dry run on each cluster)'),
            a.diff?.trim()
              ? diffView(a.diff, `Dry-run diff of the run requested by ${a.requester.name}`)
              : h(
                  'p',
                  { class: 'muted' },
                  'No diff: the dry run changed nothing, or could not be made.',
                ),
          ]
        : null,
    progress(a, policies),
    h('label', { for: reason.id }, 'Reason for your decision'),
    reason,
    h(
      'p',
      { class: 'hint' },
      'Optional to approve, required to deny; kept in the audit log with your decision.',
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', onclick: decide('approve') }, 'Approve'),
      h('button', { type: 'button', class: 'danger', onclick: decide('deny') }, 'Deny'),
    ),
    status.el,
  );
  return el;
}

export async function approvalsInbox(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const inbox = h('div', {});
  const all = h('div', {});
  let policies: Policy[] = [];
  const refresh = async () => {
    await load(inbox, async () => {
      const [mine, ps] = await Promise.all([
        get<{ items: Approval[] }>('/api/v1/approvals?view=approvable'),
        get<{ items: Policy[] }>('/api/v1/approval-policies'),
      ]);
      policies = ps.items;
      if (!mine.items.length)
        return h(
          'div',
          { class: 'empty', role: 'status' },
          'Nothing waits for your decision. Requests you may approve appear here.',
        );
      return mine.items.map((a) =>
        card(a, policies, async (msg) => {
          status.show(okNotice(msg));
          await refresh();
        }),
      );
    });
    if (ctx.me.admin)
      await loadTable<Approval>(
        all,
        '/api/v1/approvals?view=all',
        'Every approval request',
        [
          { title: 'Asked', cell: (a) => when(a.createdAt) },
          { title: 'By', cell: (a) => a.requester.name },
          { title: 'What', cell: (a) => summary(a) },
          { title: 'Status', cell: (a) => [statusBadge(a.status), progress(a, policies)] },
          { title: 'Reason', cell: (a) => a.reason },
        ],
        'No approval requests yet.',
      );
  };
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      'Access requests, gated changes and runbook runs waiting for you. You never decide your own; some policies need two approvers.',
    ),
    status.el,
    inbox,
    ctx.me.admin ? [h('h2', {}, 'All requests'), all] : null,
  );
  await refresh();
}
