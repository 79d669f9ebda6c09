/**
 * "My access requests": ask for a role on clusters (by name or label
 * selector) and namespaces, for a while, with a reason; see what the
 * approval policies allow before asking (roles, longest duration, who
 * approves); follow each request — and each of my gated changes — to its
 * decision, and withdraw one still open.
 */
import { get, request } from '../api.js';
import { field, h, replace, uid } from '../dom.js';
import { splitList, when } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  clustersText,
  details,
  duration,
  kindText,
  progress,
  statusBadge,
  summary,
  type Approval,
  type Policy,
} from '../approvals.js';
import { selectorEditor } from '../selector.js';
import {
  actionButton,
  load,
  loadTable,
  okNotice,
  onSubmit,
  statusArea,
  table,
} from '../widgets.js';

/** The access policies someone in `groups` may ask under (no requesterGroups = anyone). */
function askable(policies: Policy[], groups: string[]): Policy[] {
  return policies.filter(
    (p) =>
      p.kind === 'access' &&
      (!p.requesterGroups?.length || p.requesterGroups.some((g) => groups.includes(g))),
  );
}

function policyTable(policies: Policy[]): HTMLElement {
  return table(
    'Approval policies you can ask under',
    [
      {
        title: 'Policy',
        cell: (p) => [h('strong', {}, p.name), h('div', { class: 'hint' }, p.description)],
      },
      { title: 'Roles', cell: (p) => (p.roles ?? []).join(', ') },
      { title: 'Clusters', cell: (p) => clustersText(p.clusters) },
      {
        title: 'Namespaces',
        cell: (p) => (p.namespaces.length ? p.namespaces.join(', ') : 'any, or cluster-wide'),
      },
      { title: 'Longest', cell: (p) => duration(p.maxDuration ?? 0) },
      {
        title: 'Approved by',
        cell: (p) =>
          `${p.approvers.count === 1 ? 'one member' : `${p.approvers.count} members`} of ${p.approvers.groups.join(', ')}`,
      },
    ],
    policies,
    'No approval policy lets you ask for access yet: ask a kubegate admin for one, or for a binding.',
  );
}

export async function myRequests(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const policySlot = h('div', {});
  const roleList = h('datalist', { id: uid('roles') });
  const role = h('input', { type: 'text', required: true, list: roleList.id, autocomplete: 'off' });
  const names = h('input', { type: 'text', placeholder: 'prod-eu, prod-us' });
  const selector = selectorEditor('Clusters by label');
  const namespaces = h('input', { type: 'text', placeholder: 'empty = cluster-wide' });
  const dur = h('input', {
    type: 'text',
    required: true,
    value: '1h',
    pattern: '\\d+[smhd]',
    placeholder: '15m, 1h, 8h',
  });
  const reason = h('textarea', { required: true, maxlength: 1000, rows: 3 });
  const durHint = h('p', { class: 'hint', id: uid('dur') }, 'such as 15m, 1h or 8h');
  dur.setAttribute('aria-describedby', durHint.id);
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'ask-h' },
    h('h2', { id: 'ask-h' }, 'Ask for access'),
    field('Role', role, 'the role you need; the policies below say which can be asked for'),
    roleList,
    h(
      'fieldset',
      {},
      h('legend', {}, 'Clusters'),
      field('Cluster names', names, 'comma separated; or choose clusters by label below'),
      selector.el,
    ),
    field('Namespaces', namespaces, 'comma separated; leave empty for cluster-wide'),
    field('Duration', dur),
    durHint,
    field('Reason', reason, 'shown to the approvers and kept in the audit log'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Send request')),
  );

  let policies: Policy[] = [];
  const refresh = () =>
    loadTable<Approval>(
      list,
      '/api/v1/approvals?view=mine',
      'My requests',
      [
        { title: 'Asked', cell: (a) => when(a.createdAt) },
        {
          title: 'What',
          cell: (a) => [
            h('div', {}, kindText(a), summary(a)),
            a.run
              ? h('div', {}, h('a', { href: `/console/runs/${a.run.id}` }, 'Follow the run'))
              : null,
            h('details', {}, h('summary', {}, 'Details'), details(a)),
          ],
        },
        { title: 'Status', cell: (a) => [statusBadge(a.status), progress(a, policies)] },
        { title: 'Reason', cell: (a) => a.reason },
        {
          title: 'Actions',
          cell: (a) =>
            a.status === 'pending' || (a.kind === 'action' && a.status === 'approved')
              ? actionButton(
                  'Withdraw',
                  async () => {
                    await request('POST', `/api/v1/approvals/${a.id}/withdraw`, {});
                    status.show(okNotice('Request withdrawn.'));
                    await refresh();
                  },
                  {
                    status,
                    class: 'danger',
                    name: `Withdraw request ${a.id}`,
                    confirm: 'Withdraw this request? Approvers no longer see it.',
                  },
                )
              : '',
        },
      ],
      'You have not asked for anything yet.',
    );

  onSubmit(form, status, async () => {
    const sel = selector.read();
    const clusterNames = splitList(names.value);
    const r = await request<Approval>('POST', '/api/v1/approvals', {
      role: role.value.trim(),
      clusters: {
        ...(clusterNames.length ? { names: clusterNames } : {}),
        ...(sel ? { selector: sel } : {}),
      },
      namespaces: splitList(namespaces.value),
      duration: dur.value.trim(),
      reason: reason.value,
    });
    status.show(
      okNotice(
        'Request sent: ',
        summary(r.body),
        '. Approvers see it in their Approvals inbox; once approved, your kubeconfig works for it at once.',
      ),
    );
    form.reset();
    dur.value = '1h'; // reset() empties what was set as a property
    selector.set(undefined);
    await refresh();
  });

  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      'Ask for elevated access when you need it, for as long as you need it. An approver decides; approved access ends on time by itself.',
    ),
    form,
    status.el,
    h('h2', {}, 'What you can ask for'),
    policySlot,
    h('h2', {}, 'My requests'),
    list,
  );
  await load(policySlot, async () => {
    const all = await get<{ items: Policy[] }>('/api/v1/approval-policies');
    policies = all.items;
    const mine = askable(policies, ctx.me.groups);
    const roles = [...new Set(mine.flatMap((p) => p.roles ?? []))].filter((r) => r !== '*');
    replace(
      roleList,
      roles.map((r) => h('option', { value: r })),
    );
    const longest = Math.max(0, ...mine.map((p) => p.maxDuration ?? 0));
    if (longest)
      replace(durHint, `such as 15m, 1h or 8h; at most ${duration(longest)} under any policy`);
    return policyTable(mine);
  });
  await refresh();
}
