/**
 * Admin · robots (CI/CD, ArgoCD): create one with groups (its first token
 * is shown once), rotate its token with an overlap, see its tokens, delete.
 */
import { get, request } from '../api.js';
import { field, h, replace } from '../dom.js';
import { splitList, when } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  actionButton,
  badge,
  deleteButton,
  load,
  loadTable,
  okNotice,
  onSubmit,
  statusArea,
  table,
  nameCell,
} from '../widgets.js';
import { tokenLifeColumns, type TokenRow } from './my-tokens.js';

interface Robot {
  name: string;
  groups: string[];
  description: string;
  active: boolean;
  createdBy: string;
  createdAt: string;
}

/** A token shown once, with a copy button; never stored by the console. */
function secret(what: string, token: string, expiresAt: string): HTMLElement {
  const pre = h('pre', { tabindex: '0', 'aria-label': what }, token);
  return okNotice(
    h('strong', {}, what),
    ' — copy it now; kubegate keeps only its hash. Expires ',
    when(expiresAt),
    '.',
    pre,
    h(
      'button',
      { type: 'button', class: 'quiet', onclick: () => void navigator.clipboard.writeText(token) },
      'Copy token',
    ),
  );
}

export async function adminRobots(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const detail = h('div', {});
  const name = h('input', { type: 'text', required: true });
  const groups = h('input', { type: 'text', placeholder: 'deployers, argocd' });
  const desc = h('input', { type: 'text' });
  const ttl = h('input', { type: 'text', placeholder: 'e.g. 30d' });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'robot-h' },
    h('h2', { id: 'robot-h' }, 'New robot'),
    field('Name', name),
    field('Groups', groups, 'comma separated; bind roles to these groups'),
    field('Description', desc),
    field('Token lifetime', ttl, 'optional; default set by the admin configuration'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create robot')),
  );

  const showTokens = async (r: Robot) => {
    await load(detail, async () => {
      const { items } = await get<{ items: TokenRow[] }>(
        `/api/v1/robots/${encodeURIComponent(r.name)}/tokens?include=inactive`,
      );
      return h(
        'section',
        { class: 'card' },
        h('h2', {}, `Tokens of ${r.name}`),
        table(
          `Tokens of ${r.name}`,
          [
            { title: 'Token', cell: (t) => h('code', {}, t.id) },
            ...tokenLifeColumns(status, 'Revoke this robot token now?', () => showTokens(r)),
          ],
          items,
          'This robot has no tokens.',
        ),
      );
    });
  };

  const refresh = () =>
    loadTable<Robot>(
      list,
      '/api/v1/robots',
      'Robots',
      [
        {
          title: 'Robot',
          cell: (r) => nameCell(r.name, r.description),
        },
        {
          title: 'Groups',
          cell: (r) =>
            r.groups.length ? r.groups.map((g) => badge(g)) : h('span', { class: 'muted' }, 'none'),
        },
        {
          title: 'Created',
          cell: (r) => [when(r.createdAt), h('div', { class: 'hint' }, `by ${r.createdBy}`)],
        },
        {
          title: 'Actions',
          cell: (r) =>
            h(
              'div',
              { class: 'actions' },
              actionButton('Tokens', () => showTokens(r), {
                status,
                class: 'quiet',
                name: `Tokens of ${r.name}`,
              }),
              actionButton(
                'Rotate token',
                async () => {
                  const x = await request<{
                    token: { token: string; expiresAt: string };
                    previousValidUntil: string;
                  }>('POST', `/api/v1/robots/${encodeURIComponent(r.name)}/rotate`, {});
                  status.show(
                    secret(`New token of ${r.name}`, x.body.token.token, x.body.token.expiresAt),
                  );
                },
                {
                  status,
                  class: 'quiet',
                  name: `Rotate the token of ${r.name}`,
                  confirm: `Rotate ${r.name}'s token? Older tokens keep working for 10 minutes.`,
                },
              ),
              deleteButton(
                `/api/v1/robots/${encodeURIComponent(r.name)}`,
                undefined,
                {
                  name: `Delete robot ${r.name}`,
                  confirm: `Delete robot ${r.name}? Its tokens stop working at once.`,
                  done: `Robot ${r.name} deleted and its tokens revoked.`,
                },
                status,
                async () => {
                  replace(detail);
                  await refresh();
                },
              ),
            ),
        },
      ],
      'No robots yet. Create one for CI/CD or ArgoCD above.',
    );

  onSubmit(form, status, async () => {
    const r = await request<{ robot: Robot; token: { token: string; expiresAt: string } }>(
      'POST',
      '/api/v1/robots',
      {
        name: name.value.trim(),
        groups: splitList(groups.value),
        description: desc.value,
        ...(ttl.value.trim() ? { ttl: ttl.value.trim() } : {}),
      },
    );
    form.reset();
    status.show(
      secret(`Token of robot ${r.body.robot.name}`, r.body.token.token, r.body.token.expiresAt),
    );
    await refresh();
  });
  replace(ctx.into, form, status.el, h('h2', {}, 'All robots'), list, detail);
  await refresh();
}
