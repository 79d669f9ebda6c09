/**
 * Admin · roles: the built-ins (read-only, rules shown) and custom roles
 * written as Kubernetes PolicyRules. The form checks the obvious locally;
 * the server validates everything and its problems are shown as a list.
 */
import { request } from '../api.js';
import { field, h, replace } from '../dom.js';
import { splitList } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  badge,
  deleteButton,
  editableRows,
  loadTable,
  okNotice,
  onSubmit,
  statusArea,
  nameCell,
} from '../widgets.js';

interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Role {
  name: string;
  description: string;
  builtin: boolean;
  version: number;
  rules: PolicyRule[];
}

const ruleFields: [keyof PolicyRule, string, string][] = [
  ['apiGroups', 'API groups', '"" is the core group; e.g. "", apps'],
  ['resources', 'Resources', 'e.g. pods, pods/log, deployments'],
  ['verbs', 'Verbs', 'e.g. get, list, watch'],
  ['resourceNames', 'Resource names', 'optional: only these objects'],
  ['nonResourceURLs', 'Non-resource URLs', 'optional: e.g. /healthz'],
];

function ruleText(r: PolicyRule): string {
  return ruleFields
    .filter(([k]) => r[k]?.length)
    .map(([k]) => `${k}: ${r[k]!.map((v) => (v === '' ? '""' : v)).join(', ')}`)
    .join(' · ');
}

/** One editable rule; `read` returns it (an empty `""` entry means the core API group). */
function ruleEditor(n: number, remove: () => void) {
  const inputs = new Map(
    ruleFields.map(([k]) => [k, h('input', { type: 'text', autocomplete: 'off' })] as const),
  );
  const el = h(
    'fieldset',
    {},
    h('legend', {}, `Rule ${n}`),
    h(
      'div',
      { class: 'grid' },
      ruleFields.map(([k, label, hint]) => field(label, inputs.get(k)!, hint)),
    ),
    h('button', { type: 'button', class: 'quiet', onclick: remove }, `Remove rule ${n}`),
  );
  const read = (): PolicyRule => {
    const r: PolicyRule = { verbs: [] };
    for (const [k] of ruleFields) {
      const v = splitList(inputs.get(k)!.value).map((x) => (x === '""' ? '' : x));
      if (v.length) r[k] = v;
    }
    return r;
  };
  return { el, read };
}

export async function adminRoles(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const name = h('input', { type: 'text', required: true });
  const desc = h('input', { type: 'text' });
  // A new rule is numbered after the rules already there.
  const ruleRows = editableRows((remove, n: number) => ruleEditor(n, remove));
  const addRule = () => ruleRows.add(ruleRows.rows().length + 1);
  addRule();
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'role-h' },
    h('h2', { id: 'role-h' }, 'New custom role'),
    field('Name', name, 'lowercase letters, digits and -; not a built-in name'),
    field('Description', desc),
    ruleRows.el,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'quiet', onclick: addRule }, 'Add rule'),
      h('button', { type: 'submit' }, 'Create role'),
    ),
  );

  const refresh = () =>
    loadTable<Role>(
      list,
      '/api/v1/roles?limit=500',
      'Roles',
      [
        {
          title: 'Role',
          cell: (r) => nameCell(r.name, '', r.builtin ? badge('built-in') : badge('custom', 'ok')),
        },
        { title: 'Description', cell: (r) => r.description },
        {
          title: 'Rules',
          cell: (r) =>
            h(
              'details',
              {},
              h('summary', {}, `${r.rules.length} rule${r.rules.length === 1 ? '' : 's'}`),
              h(
                'ul',
                {},
                r.rules.map((x) => h('li', { class: 'mono' }, ruleText(x))),
              ),
            ),
        },
        {
          title: 'Actions',
          cell: (r) =>
            r.builtin
              ? ''
              : deleteButton(
                  `/api/v1/roles/${encodeURIComponent(r.name)}`,
                  r.version,
                  {
                    name: `Delete role ${r.name}`,
                    confirm: `Delete role ${r.name}?`,
                    done: `Role ${r.name} deleted.`,
                  },
                  status,
                  refresh,
                ),
        },
      ],
      'No roles.',
    );

  onSubmit(form, status, async () => {
    const rules = ruleRows.rows().map((e) => e.read());
    const local = rules.flatMap((r, i) => [
      ...(r.verbs.length ? [] : [`rule ${i + 1}: give at least one verb`]),
      ...(r.resources?.length || r.nonResourceURLs?.length
        ? []
        : [`rule ${i + 1}: give resources (with API groups) or non-resource URLs`]),
    ]);
    if (rules.length === 0) local.push('a role needs at least one rule');
    if (local.length) {
      status.show(
        h(
          'div',
          { class: 'notice error', role: 'alert' },
          'Please fix:',
          h(
            'ul',
            {},
            local.map((p) => h('li', {}, p)),
          ),
        ),
      );
      return;
    }
    await request('POST', '/api/v1/roles', {
      name: name.value.trim(),
      description: desc.value,
      rules,
    });
    status.show(okNotice(`Role ${name.value.trim()} created.`));
    form.reset();
    ruleRows.clear();
    addRule();
    await refresh();
  });
  replace(ctx.into, form, status.el, h('h2', {}, 'All roles'), list);
  await refresh();
}
