/**
 * Admin · approval policies: who approves which access requests (`access`),
 * and which Kubernetes changes wait for an approver even when RBAC allows
 * them (`gate`). Create, list, delete (with If-Match). The server checks a
 * policy with every problem at once; the page lists them as they come.
 */
import { request } from '../api.js';
import { field, h, replace } from '../dom.js';
import { splitList } from '../format.js';
import type { ViewContext } from '../view.js';
import { clustersText, duration, type Policy } from '../approvals.js';
import { selectorEditor } from '../selector.js';
import {
  badge,
  deleteButton,
  loadTable,
  okNotice,
  onSubmit,
  statusArea,
  nameCell,
} from '../widgets.js';

export async function adminApprovalPolicies(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const kind = h(
    'select',
    {},
    h('option', { value: 'access' }, 'access — who approves access requests'),
    h('option', { value: 'gate' }, 'gate — changes that wait for approval'),
  );
  const name = h('input', { type: 'text', required: true, maxlength: 63 });
  const desc = h('input', { type: 'text', maxlength: 1000 });
  const approvers = h('input', { type: 'text', required: true, placeholder: 'platform-leads' });
  const count = h('input', { type: 'number', min: 1, max: 10, value: 1 });
  const names = h('input', { type: 'text', placeholder: 'prod-eu' });
  const selector = selectorEditor('Policy clusters by label');
  const namespaces = h('input', { type: 'text', placeholder: 'empty = any namespace' });
  const pendingFor = h('input', { type: 'text', placeholder: '24h (default)' });
  // access
  const roles = h('input', { type: 'text', placeholder: 'edit, admin (or *)' });
  const requesterGroups = h('input', { type: 'text', placeholder: 'empty = anyone signed in' });
  const maxDuration = h('input', { type: 'text', placeholder: '8h (default)' });
  // gate
  const resources = h('input', {
    type: 'text',
    placeholder: 'ingresses.networking.k8s.io, pods/exec',
  });
  const verbs = h('input', {
    type: 'text',
    placeholder: 'create, update, patch, delete, deletecollection (default)',
  });
  const window = h('input', { type: 'text', placeholder: '15m (default)' });

  const accessFields = h(
    'fieldset',
    {},
    h('legend', {}, 'Access requests'),
    field('Roles', roles, 'roles that may be asked for, comma separated; * for any'),
    field('Who may ask', requesterGroups, 'groups, comma separated; empty = anyone signed in'),
    field('Longest grant', maxDuration, 'a duration such as 1h or 8h'),
  );
  const gateFields = h(
    'fieldset',
    { hidden: true },
    h('legend', {}, 'Gated changes'),
    field('Resources', resources, 'resource[.group][/subresource], comma separated; * for any'),
    field('Verbs', verbs, 'comma separated; empty = every changing verb'),
    field('Window', window, 'how long an approved change may be sent (once)'),
  );
  kind.addEventListener('change', () => {
    accessFields.hidden = kind.value !== 'access';
    gateFields.hidden = kind.value !== 'gate';
  });

  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'pol-h' },
    h('h2', { id: 'pol-h' }, 'New approval policy'),
    field('Kind', kind),
    field('Name', name, 'lowercase letters, digits, - and .'),
    field('Description', desc),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Approvers'),
      field(
        'Approver groups',
        approvers,
        'comma separated; nobody ever approves their own request',
      ),
      field('Approvals needed', count, '2 or more: that many different approvers'),
    ),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Where'),
      field('Policy cluster names', names, 'comma separated; and/or by label below'),
      selector.el,
      field('Policy namespaces', namespaces, 'comma separated'),
    ),
    accessFields,
    gateFields,
    field('Unanswered for', pendingFor, 'a request nobody decides expires after this'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create policy')),
  );

  const refresh = () =>
    loadTable<Policy>(
      list,
      '/api/v1/approval-policies',
      'Approval policies',
      [
        {
          title: 'Policy',
          cell: (p) => nameCell(p.name, p.description, badge(p.kind)),
        },
        {
          title: 'Covers',
          cell: (p) =>
            p.kind === 'access'
              ? `roles ${(p.roles ?? []).join(', ')}, at most ${duration(p.maxDuration ?? 0)}`
              : `${(p.verbs ?? []).join(', ')} on ${(p.resources ?? []).join(', ')}; runs once within ${duration(p.window ?? 0)}`,
        },
        {
          title: 'Where',
          cell: (p) => [
            clustersText(p.clusters),
            h(
              'div',
              { class: 'hint' },
              p.namespaces.length ? `namespaces ${p.namespaces.join(', ')}` : 'any namespace',
            ),
          ],
        },
        {
          title: 'Approvers',
          cell: (p) => `${p.approvers.count} of ${p.approvers.groups.join(', ')}`,
        },
        {
          title: 'Actions',
          cell: (p) =>
            deleteButton(
              `/api/v1/approval-policies/${encodeURIComponent(p.name)}`,
              p.version,
              {
                name: `Delete policy ${p.name}`,
                confirm: `Delete approval policy ${p.name}?`,
                done: `Policy ${p.name} deleted; open requests under it alone can no longer be approved.`,
              },
              status,
              refresh,
            ),
        },
      ],
      'No approval policies: nobody can ask for access, and no change waits for approval.',
    );

  onSubmit(form, status, async () => {
    const list = (i: HTMLInputElement) => splitList(i.value);
    const opt = (k: string, v: string) => (v.trim() ? { [k]: v.trim() } : {});
    const sel = selector.read();
    const common = {
      name: name.value.trim(),
      kind: kind.value,
      description: desc.value,
      approvers: { groups: list(approvers), count: Number(count.value) },
      clusters: {
        ...(list(names).length ? { names: list(names) } : {}),
        ...(sel ? { selector: sel } : {}),
      },
      namespaces: list(namespaces),
      ...opt('pendingFor', pendingFor.value),
    };
    const body =
      kind.value === 'access'
        ? {
            ...common,
            roles: list(roles),
            requesterGroups: list(requesterGroups),
            ...opt('maxDuration', maxDuration.value),
          }
        : {
            ...common,
            resources: list(resources),
            ...(list(verbs).length ? { verbs: list(verbs) } : {}),
            ...opt('window', window.value),
          };
    await request('POST', '/api/v1/approval-policies', body);
    status.show(
      okNotice(`Policy ${common.name} created; it applies on every replica within seconds.`),
    );
    form.reset();
    count.value = '1'; // reset() empties what was set as a property
    selector.set(undefined);
    kind.dispatchEvent(new Event('change'));
    await refresh();
  });

  replace(ctx.into, form, status.el, h('h2', {}, 'All policies'), list);
  await refresh();
}
