/** Admin · users: who signed in, their groups; deactivate (ends every token and session) or revoke tokens. */
import { request } from '../api.js';
import { h, replace } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import { actionButton, badge, loadTable, okNotice, statusArea } from '../widgets.js';

interface User {
  id: string;
  username: string;
  email: string;
  name: string;
  groups: string[];
  active: boolean;
  lastLoginAt: string | null;
  deactivatedBy: string;
}

export async function adminUsers(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const self = ctx.me.name;
  const refresh = () =>
    loadTable<User>(
      list,
      '/api/v1/users',
      'Users',
      [
        {
          title: 'User',
          cell: (u) => [
            h('strong', {}, u.name || u.username),
            h('div', { class: 'hint' }, u.username),
          ],
        },
        {
          title: 'Groups',
          cell: (u) =>
            u.groups.length ? u.groups.map((g) => badge(g)) : h('span', { class: 'muted' }, 'none'),
        },
        { title: 'Last sign-in', cell: (u) => when(u.lastLoginAt) },
        {
          title: 'State',
          cell: (u) =>
            u.active
              ? badge('active', 'ok')
              : [badge('deactivated', 'bad'), h('div', { class: 'hint' }, `by ${u.deactivatedBy}`)],
        },
        {
          title: 'Actions',
          cell: (u) =>
            h(
              'div',
              { class: 'actions' },
              actionButton(
                'Revoke tokens',
                async () => {
                  const r = await request<{ revoked: number }>(
                    'DELETE',
                    `/api/v1/users/${encodeURIComponent(u.id)}/tokens`,
                  );
                  status.show(okNotice(`${r.body.revoked} token(s) of ${u.username} revoked.`));
                },
                {
                  status,
                  class: 'quiet',
                  name: `Revoke the tokens of ${u.username}`,
                  confirm: `Revoke every token of ${u.username}?`,
                },
              ),
              u.username === self
                ? ''
                : actionButton(
                    u.active ? 'Deactivate' : 'Activate',
                    async () => {
                      await request(
                        'POST',
                        `/api/v1/users/${encodeURIComponent(u.id)}/${u.active ? 'deactivate' : 'activate'}`,
                      );
                      status.show(
                        okNotice(
                          `${u.username} ${u.active ? 'deactivated: tokens and sessions ended' : 'activated'}.`,
                        ),
                      );
                      await refresh();
                    },
                    {
                      status,
                      class: u.active ? 'danger' : 'quiet',
                      name: `${u.active ? 'Deactivate' : 'Activate'} ${u.username}`,
                      confirm: u.active
                        ? `Deactivate ${u.username}? Their tokens and sessions end at once.`
                        : undefined,
                    },
                  ),
            ),
        },
      ],
      'Nobody has signed in yet. Users appear here after their first single sign-on.',
    );
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      'People appear after their first sign-in; groups come from the identity provider.',
    ),
    status.el,
    list,
  );
  await refresh();
}
