/**
 * Admin · bindings, the heart of kubegate: who (groups, users, robots) gets
 * which role on which clusters (by name or label selector), in which
 * namespaces, until when. While the form is filled in, the server says
 * which clusters and namespaces the draft would reach — before saving.
 * "Edit" loads a binding into the same form; saving replaces it (PUT with
 * If-Match, so a binding changed meanwhile by someone else is not
 * overwritten: the server answers 412 and the page says to reload).
 */
import { ApiError, get, request } from '../api.js';
import { field, h, replace, uid } from '../dom.js';
import { splitList, when } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  actionButton,
  badge,
  deleteButton,
  editableRows,
  errorNotice,
  loadTable,
  okNotice,
  onSubmit,
  statusArea,
} from '../widgets.js';
import { selectorEditor, selectorText, type LabelSelector } from '../selector.js';

type SubjectKind = 'Group' | 'User' | 'Robot';

/** An ISO time as a datetime-local input's value (the browser's local time, to the minute). */
function localInput(iso: string): string {
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

interface Binding {
  id: string;
  subjects: { kind: SubjectKind; name: string }[];
  role: string;
  clusters: {
    names?: string[];
    selector?: LabelSelector;
  };
  namespaces: string[];
  expiresAt: string | null;
  reason: string;
  version: number;
  createdBy: string;
}

interface Reach {
  problems: string[];
  clusters: { name: string; disabled: boolean; online: boolean }[];
  unregistered?: string[];
  namespaces: string[];
  clusterWide?: boolean;
}

function subjectRow(remove: () => void, initial?: Binding['subjects'][number]) {
  const kind = h(
    'select',
    { 'aria-label': 'Subject kind' },
    ['Group', 'User', 'Robot'].map((k) => h('option', { value: k }, k)),
  );
  const name = h('input', {
    type: 'text',
    'aria-label': 'Subject name',
    placeholder: 'e.g. developers or alice@example.com',
    value: initial?.name,
  });
  if (initial) kind.value = initial.kind;
  const el = h(
    'div',
    { class: 'actions' },
    kind,
    name,
    h(
      'button',
      { type: 'button', class: 'quiet', onclick: remove, 'aria-label': 'Remove this subject' },
      'Remove',
    ),
  );
  return {
    el,
    kind,
    name,
    read: () => ({ kind: kind.value as SubjectKind, name: name.value.trim() }),
  };
}

export async function adminBindings(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const preview = h('div', { 'aria-live': 'polite', id: uid('reach') });

  // --- the form ----------------------------------------------------------
  const subjects = editableRows(
    (remove, initial?: Binding['subjects'][number]) => subjectRow(remove, initial),
    () => schedule(),
  );
  subjects.add();
  const role = h('select', { required: true });
  const names = h('input', { type: 'text', placeholder: 'dev, staging' });
  const selector = selectorEditor('Label selector', () => schedule());
  const namespaces = h('input', { type: 'text', placeholder: 'empty = cluster-wide' });
  const expires = h('input', { type: 'datetime-local' });
  const reason = h('input', { type: 'text', maxlength: 1000 });

  const draft = () => {
    const sel = selector.read();
    const clusterNames = splitList(names.value);
    return {
      subjects: subjects
        .rows()
        .map((s) => s.read())
        .filter((s) => s.name !== ''),
      role: role.value,
      clusters: {
        ...(clusterNames.length ? { names: clusterNames } : {}),
        ...(sel ? { selector: sel } : {}),
      },
      namespaces: splitList(namespaces.value),
      ...(expires.value ? { expiresAt: new Date(expires.value).toISOString() } : {}),
      ...(reason.value.trim() ? { reason: reason.value.trim() } : {}),
    };
  };

  let seq = 0;
  const showReach = async () => {
    const mine = ++seq;
    let r: Reach;
    try {
      r = (await request<Reach>('POST', '/api/v1/console/binding-reach', draft())).body;
    } catch (err) {
      if (mine === seq) replace(preview, errorNotice(err));
      return;
    }
    if (mine !== seq) return; // a newer draft is already being previewed
    if (r.problems.length) {
      replace(
        preview,
        h(
          'div',
          { class: 'notice' },
          'Not yet valid:',
          h(
            'ul',
            {},
            r.problems.map((p) => h('li', {}, p)),
          ),
        ),
      );
      return;
    }
    replace(
      preview,
      h(
        'div',
        { class: 'notice ok', 'data-testid': 'reach' },
        r.clusters.length
          ? [
              `Reaches ${r.clusters.length} cluster${r.clusters.length === 1 ? '' : 's'}: `,
              r.clusters.map((c) => [
                h('code', {}, c.name),
                c.disabled ? ' (disabled)' : c.online ? '' : ' (offline)',
                ' ',
              ]),
            ]
          : 'Reaches no registered cluster today.',
        h('br'),
        r.clusterWide
          ? 'Cluster-wide (every namespace).'
          : `In namespaces: ${r.namespaces.join(', ')}.`,
        r.unregistered?.length
          ? [h('br'), `Not registered (yet): ${r.unregistered.join(', ')}.`]
          : null,
      ),
    );
  };
  let timer: number | undefined;
  const schedule = () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => void showReach(), 250);
  };

  /** The binding being edited (its id and the version it was read at), or none for a new one. */
  let editing: Binding | undefined;
  const formTitle = h('h2', { id: 'bind-h', tabindex: '-1' }, 'New binding');
  const submit = h('button', { type: 'submit' }, 'Save binding');
  const cancel = h('button', { type: 'button', class: 'quiet', hidden: true }, 'Cancel editing');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'bind-h', 'aria-describedby': preview.id },
    formTitle,
    h(
      'fieldset',
      {},
      h('legend', {}, 'Subjects'),
      subjects.el,
      h('button', { type: 'button', class: 'quiet', onclick: () => subjects.add() }, 'Add subject'),
    ),
    field('Role', role),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Clusters'),
      field('Cluster names', names, 'comma separated'),
      selector.el,
    ),
    field('Namespaces', namespaces, 'comma separated; leave empty for cluster-wide'),
    field('Expires', expires, 'optional; your local time'),
    field('Reason', reason, 'optional; shown in the change log'),
    h('h3', {}, 'Preview'),
    preview,
    h('div', { class: 'actions' }, submit, cancel),
  );
  /** Back to an empty "New binding" form. */
  const resetForm = () => {
    editing = undefined;
    form.reset();
    selector.set(undefined);
    subjects.clear();
    subjects.add();
    formTitle.textContent = 'New binding';
    submit.textContent = 'Save binding';
    cancel.hidden = true;
    replace(preview);
  };
  cancel.addEventListener('click', resetForm);
  /**
   * Load a binding into the form, read afresh (the list may be older), so
   * saving sends If-Match with the version the form was filled from.
   */
  const edit = async (listed: Binding) => {
    const b = (await request<Binding>('GET', `/api/v1/bindings/${encodeURIComponent(listed.id)}`))
      .body;
    editing = b;
    subjects.clear();
    b.subjects.forEach((x) => subjects.add(x));
    role.value = b.role;
    names.value = (b.clusters.names ?? []).join(', ');
    selector.set(b.clusters.selector);
    namespaces.value = b.namespaces.join(', ');
    expires.value = b.expiresAt ? localInput(b.expiresAt) : '';
    reason.value = b.reason;
    formTitle.textContent = `Edit binding of ${b.role} for ${b.subjects.map((x) => x.name).join(', ')}`;
    submit.textContent = 'Save changes';
    cancel.hidden = false;
    status.clear();
    formTitle.focus();
    schedule();
  };
  form.addEventListener('input', schedule);
  form.addEventListener('change', schedule);

  const refresh = () =>
    loadTable<Binding>(
      list,
      '/api/v1/bindings?limit=500',
      'Bindings',
      [
        {
          title: 'Subjects',
          cell: (b) => b.subjects.map((s) => h('div', {}, badge(s.kind), s.name)),
        },
        { title: 'Role', cell: (b) => h('strong', {}, b.role) },
        {
          title: 'Clusters',
          cell: (b) => [
            b.clusters.names?.length ? h('div', {}, 'names: ', b.clusters.names.join(', ')) : '',
            b.clusters.selector
              ? h('div', {}, 'selector: ', selectorText(b.clusters.selector))
              : '',
          ],
        },
        {
          title: 'Namespaces',
          cell: (b) => (b.namespaces.length ? b.namespaces.join(', ') : 'cluster-wide'),
        },
        { title: 'Expires', cell: (b) => when(b.expiresAt, 'never') },
        {
          title: 'Reason',
          cell: (b) => [b.reason, h('div', { class: 'hint' }, `by ${b.createdBy}`)],
        },
        {
          title: 'Actions',
          cell: (b) => [
            actionButton('Edit', () => edit(b), {
              status,
              class: 'quiet',
              name: `Edit binding of ${b.role} for ${b.subjects.map((s) => s.name).join(', ')}`,
            }),
            deleteButton(
              `/api/v1/bindings/${encodeURIComponent(b.id)}`,
              b.version,
              {
                name: `Delete binding of ${b.role} for ${b.subjects.map((s) => s.name).join(', ')}`,
                confirm:
                  'Delete this binding? Access it gives ends at once, open sessions included.',
                done: 'Binding deleted: the access it gave ends on every replica within a second.',
              },
              status,
              refresh,
            ),
          ],
        },
      ],
      'No bindings yet: nobody can reach any cluster. Create one above.',
    );

  onSubmit(form, status, async () => {
    if (editing) {
      const b = editing;
      try {
        await request(
          'PUT',
          `/api/v1/bindings/${encodeURIComponent(b.id)}`,
          draft(),
          `"${b.version}"`,
        );
      } catch (err) {
        // The list is stale too: show what is stored now.
        if (err instanceof ApiError && (err.status === 412 || err.status === 404)) void refresh();
        if (err instanceof ApiError && err.status === 412)
          throw new ApiError(
            412,
            'Someone changed this binding since you opened it. Cancel editing and edit it again to see the current version.',
          );
        throw err;
      }
      status.show(okNotice('Binding changed: it takes effect on every replica within a second.'));
    } else {
      await request('POST', '/api/v1/bindings', draft());
      status.show(okNotice('Binding saved: it takes effect on every replica within a second.'));
    }
    resetForm();
    await refresh();
  });

  replace(ctx.into, form, status.el, h('h2', {}, 'All bindings'), list);
  const roles = await get<{ items: { name: string; builtin: boolean }[] }>(
    '/api/v1/roles?limit=500',
  ).catch(() => ({ items: [] }));
  replace(
    role,
    roles.items.map((r) =>
      h('option', { value: r.name }, `${r.name}${r.builtin ? ' (built-in)' : ''}`),
    ),
  );
  await refresh();
}
