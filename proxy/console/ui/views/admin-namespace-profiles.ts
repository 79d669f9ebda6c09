/**
 * Admin · namespace profiles: the templates self-service namespaces are
 * made from. A list with what each profile gives, and an editor that holds
 * a profile as JSON text (new from an example, or a stored one to change,
 * saved with If-Match so a profile changed meanwhile is refused, not
 * overwritten). The server checks a profile and lists every problem; the
 * page shows them as they come. (The CLI's `admin namespace-profile apply`
 * takes YAML too; the browser has no YAML reader, so here it is JSON.)
 */
import { request } from '../api.js';
import { field, h, replace } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  actionButton,
  badge,
  deleteButton,
  errorNotice,
  loadTable,
  okNotice,
  onSubmit,
  statusArea,
  nameCell,
} from '../widgets.js';
import { profileClustersText, type Profile } from './namespaces.js';

/** What a new profile starts from: every field, with values a development cluster might use. */
const example = {
  name: 'dev',
  description: 'Team namespaces on development clusters',
  clusters: { selector: { matchLabels: { env: 'dev' } } },
  naming: { prefix: 'team-', maxLength: 30 },
  quota: { pods: '20', 'requests.cpu': '4', 'requests.memory': '8Gi' },
  limits: {
    default: { cpu: '500m', memory: '512Mi' },
    defaultRequest: { cpu: '100m', memory: '128Mi' },
  },
  networkPolicy: 'default-deny',
  labels: { 'pod-security.kubernetes.io/enforce': 'baseline' },
  annotations: {},
  ownerRole: 'admin',
  memberRoles: ['edit', 'view'],
  perUserLimit: 5,
  approval: null,
};

/** The fields the server sets; the editor leaves them out. */
const readOnly = ['version', 'updatedBy', 'updatedAt', 'createdAt', 'inUse'];

function editable(p: Profile): string {
  const fields = Object.entries(p).filter(([k]) => !readOnly.includes(k));
  return JSON.stringify(Object.fromEntries(fields), null, 2);
}

export async function adminNamespaceProfiles(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const heading = h('h2', { id: 'prof-h' }, 'New namespace profile');
  const text = h('textarea', { rows: 24, spellcheck: 'false', autocomplete: 'off' });
  /** The profile being edited and the version it was read at; none for a new one. */
  let editing: { name: string; version: number | undefined } | undefined;

  const startNew = () => {
    editing = undefined;
    replace(heading, 'New namespace profile');
    text.value = JSON.stringify(example, null, 2);
  };
  const startEdit = async (name: string) => {
    const r = await request<Profile>(
      'GET',
      `/api/v1/namespace-profiles/${encodeURIComponent(name)}`,
    );
    const version = r.body.version ?? (r.etag ? Number(r.etag.replace(/"/g, '')) : undefined);
    editing = { name, version };
    replace(
      heading,
      'Edit namespace profile ',
      h('code', {}, name),
      version !== undefined ? ` (version ${version})` : '',
    );
    text.value = editable(r.body);
    text.focus();
  };

  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'prof-h' },
    heading,
    field(
      'Profile (JSON)',
      text,
      'name, description, clusters (names and/or selector), naming (prefix, pattern, maxLength), quota, limits (default, defaultRequest, max), networkPolicy (default-deny or none), labels, annotations, ownerRole, memberRoles, perUserLimit, approval ({approvers: {groups, count}, pendingFor, onDelete} or null)',
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit' }, 'Save profile'),
      h('button', { type: 'button', class: 'quiet', onclick: startNew }, 'Start a new one'),
    ),
  );

  const refresh = () =>
    loadTable<Profile>(
      list,
      '/api/v1/namespace-profiles',
      'Namespace profiles',
      [
        {
          title: 'Profile',
          cell: (p) => nameCell(p.name, p.description),
        },
        { title: 'Clusters', cell: (p) => profileClustersText(p.clusters) },
        {
          title: 'Gives',
          cell: (p) => [
            Object.entries(p.quota ?? {}).map(([k, v]) => badge(`${k} ${v}`)),
            p.networkPolicy === 'default-deny' ? badge('default-deny') : null,
            h(
              'div',
              { class: 'hint' },
              `owners ${p.ownerRole ?? 'admin'}; members ${(p.memberRoles ?? []).join(', ')}; ${p.perUserLimit ?? '-'} per person`,
            ),
          ],
        },
        {
          title: 'Approval',
          cell: (p) =>
            p.approval
              ? badge(
                  `${p.approval.approvers.count} of ${p.approval.approvers.groups.join(', ')}`,
                  'warn',
                )
              : 'none',
        },
        {
          title: 'Version',
          cell: (p) => [
            String(p.version ?? '-'),
            p.updatedBy
              ? h('div', { class: 'hint' }, `by ${p.updatedBy} `, when(p.updatedAt ?? null))
              : null,
          ],
        },
        {
          title: 'Actions',
          cell: (p) =>
            h(
              'div',
              { class: 'actions' },
              actionButton('Edit', () => startEdit(p.name), {
                status,
                name: `Edit profile ${p.name}`,
              }),
              deleteButton(
                `/api/v1/namespace-profiles/${encodeURIComponent(p.name)}`,
                undefined,
                {
                  name: `Delete profile ${p.name}`,
                  confirm: `Delete namespace profile ${p.name}?`,
                  done: `Profile ${p.name} deleted.`,
                },
                status,
                refresh,
              ),
            ),
        },
      ],
      'No namespace profiles: nobody can ask for a namespace yet.',
    );

  onSubmit(form, status, async () => {
    let body: unknown;
    try {
      body = JSON.parse(text.value);
    } catch (err) {
      throw new Error(`The profile is not JSON: ${(err as Error).message}`);
    }
    const name = (body as { name?: unknown } | null)?.name;
    const saved = editing
      ? await request<Profile>(
          'PUT',
          `/api/v1/namespace-profiles/${encodeURIComponent(editing.name)}`,
          body,
          editing.version !== undefined ? `"${editing.version}"` : undefined,
        )
      : await request<Profile>('POST', '/api/v1/namespace-profiles', body);
    status.show(
      okNotice(
        `Profile ${saved.body.name ?? String(name)} saved`,
        saved.body.version !== undefined ? ` (version ${saved.body.version})` : '',
        '.',
      ),
    );
    await startEdit(saved.body.name ?? String(name));
    await refresh();
  });

  startNew();
  replace(ctx.into, h('h2', {}, 'All profiles'), list, form, status.el);
  await refresh().catch((err: unknown) => replace(list, errorNotice(err)));
}
