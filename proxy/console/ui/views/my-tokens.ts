/** "My tokens": every kubeconfig token I hold — when last used, when it ends — and revoke. */
import { request } from '../api.js';
import { h, replace } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  actionButton,
  badge,
  loadTable,
  okNotice,
  statusArea,
  type Column,
  type StatusArea,
} from '../widgets.js';
import { kubeconfigButton, ttlSelect } from './kubeconfig.js';

export interface TokenRow {
  id: string;
  description: string;
  createdBy: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string;
  state: 'active' | 'expired' | 'revoked';
}

export function stateBadge(s: TokenRow['state']): HTMLElement {
  return badge(s, s === 'active' ? 'ok' : s === 'revoked' ? 'bad' : 'warn');
}

/**
 * The columns every token list shows after the token's own: when it was
 * made, last used and ends, its state, and a Revoke button while it is
 * active (`confirm` asked first, `revoked` run after the server agreed).
 */
export function tokenLifeColumns(
  status: StatusArea,
  confirm: string,
  revoked: (t: TokenRow) => Promise<void>,
): Column<TokenRow>[] {
  return [
    { title: 'Created', cell: (t) => when(t.createdAt) },
    { title: 'Last used', cell: (t) => when(t.lastUsedAt) },
    { title: 'Expires', cell: (t) => when(t.expiresAt) },
    { title: 'State', cell: (t) => stateBadge(t.state) },
    {
      title: 'Actions',
      cell: (t) =>
        t.state === 'active'
          ? actionButton(
              'Revoke',
              async () => {
                await request('DELETE', `/api/v1/tokens/${encodeURIComponent(t.id)}`);
                await revoked(t);
              },
              { status, class: 'danger', name: `Revoke token ${t.id}`, confirm },
            )
          : '',
    },
  ];
}

export async function myTokens(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const ttl = ttlSelect('token-ttl');
  const all = h('input', { type: 'checkbox', id: 'show-all' });
  const list = h('div', {});
  const refresh = () =>
    loadTable<TokenRow>(
      list,
      `/api/v1/tokens${all.checked ? '?include=inactive' : ''}`,
      'Your tokens',
      [
        {
          title: 'Token',
          cell: (t) => [t.description || 'token', h('br'), h('code', { class: 'muted' }, t.id)],
        },
        ...tokenLifeColumns(
          status,
          'Revoke this token? Every kubeconfig that holds it stops working at once.',
          async (t) => {
            status.show(
              okNotice(`Token ${t.id} revoked: kubeconfigs holding it stop working now.`),
            );
            await refresh();
          },
        ),
      ],
      all.checked
        ? 'You have no tokens.'
        : 'You have no active tokens. Download a kubeconfig to get one.',
    );
  all.addEventListener('change', () => void refresh());
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      'Each kubeconfig you download holds its own token. Revoke one you no longer use, or that may have leaked.',
    ),
    h(
      'div',
      { class: 'actions' },
      h('label', { for: 'token-ttl', class: 'inline' }, 'Lifetime'),
      ttl,
      kubeconfigButton('New token (download kubeconfig)', status, {
        ttl: () => ttl.value,
        after: () => void refresh(),
      }),
      h('label', { class: 'inline', for: 'show-all' }, all, 'Show expired and revoked'),
    ),
    status.el,
    list,
  );
  await refresh();
}
