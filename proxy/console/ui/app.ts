/**
 * The console: one page at `/` and `/console/<view>`. This module signs the
 * page in (GET /api/v1/me gives who you are and the CSRF token), draws the
 * header and navigation, and shows the view for the current path; links
 * move between views without reloading (History API), and focus goes to
 * the new view's heading so keyboard and screen-reader users follow along.
 *
 * Views are loaded when first shown (`import()`), not with the shell: the
 * page preloads only what the shell needs, so the cold load stays small
 * however many views there are (the page-weight budget in
 * test/e2e/console-security.test.ts).
 */
import { get, setCsrfToken } from './api.js';
import { h, replace } from './dom.js';
import { errorNotice } from './widgets.js';
import type { Me, Render, View } from './view.js';

/**
 * A view; `pages` when paths below it are its pages too, and how many
 * segments deep: 1 for `/console/runs/<id>`, 2 for
 * `/console/namespaces/<cluster>/<name>`.
 */
type Routed = View & { pages?: 1 | 2 };

/**
 * Every view by path. The approvals inbox is in "You", not "Administration":
 * approvers are whoever the approval policies name (say, platform leads),
 * admins or not; the server decides what each person may see and decide.
 */
const views: Routed[] = [
  {
    path: '/',
    title: 'My clusters',
    section: 'you',
    load: () => import('./views/my-clusters.js').then((m) => m.myClusters),
  },
  {
    path: '/console/tokens',
    title: 'My tokens',
    section: 'you',
    load: () => import('./views/my-tokens.js').then((m) => m.myTokens),
  },
  {
    path: '/console/audit',
    title: 'My activity',
    section: 'you',
    load: () => import('./views/audit.js').then((m) => (ctx) => m.auditView(ctx, false)),
  },
  {
    path: '/console/requests',
    title: 'My access requests',
    section: 'you',
    load: () => import('./views/my-requests.js').then((m) => m.myRequests),
  },
  {
    path: '/console/runbooks',
    title: 'Runbooks',
    section: 'you',
    pages: 1,
    load: () => import('./views/runbooks.js').then((m) => m.runbooksView),
  },
  {
    path: '/console/runs',
    title: 'Runs',
    section: 'you',
    pages: 1,
    load: () => import('./views/runs.js').then((m) => m.runsView),
  },
  {
    path: '/console/terminal',
    title: 'Terminal',
    section: 'you',
    load: () => import('./views/terminal.js').then((m) => m.terminalView),
  },
  {
    // Everyone: members of a namespace see it here even when no profile lets them ask for one.
    path: '/console/namespaces',
    title: 'Namespaces',
    section: 'you',
    pages: 2,
    load: () => import('./views/namespaces.js').then((m) => m.namespacesView),
  },
  {
    path: '/console/approvals',
    title: 'Approvals',
    section: 'you',
    load: () => import('./views/approvals-inbox.js').then((m) => m.approvalsInbox),
  },
  {
    // Auditors are not admins: a page of "You", listed for whoever may watch recordings.
    path: '/console/recordings',
    title: 'Recordings',
    section: 'you',
    pages: 1,
    shownTo: (me) => me.recordingViewer === true,
    load: () => import('./views/recordings.js').then((m) => m.recordingsView),
  },
  {
    path: '/console/admin/clusters',
    title: 'Clusters',
    section: 'admin',
    load: () => import('./views/admin-clusters.js').then((m) => m.adminClusters),
  },
  {
    path: '/console/admin/roles',
    title: 'Roles',
    section: 'admin',
    load: () => import('./views/admin-roles.js').then((m) => m.adminRoles),
  },
  {
    path: '/console/admin/bindings',
    title: 'Bindings',
    section: 'admin',
    load: () => import('./views/admin-bindings.js').then((m) => m.adminBindings),
  },
  {
    path: '/console/admin/robots',
    title: 'Robots',
    section: 'admin',
    load: () => import('./views/admin-robots.js').then((m) => m.adminRobots),
  },
  {
    path: '/console/admin/users',
    title: 'Users',
    section: 'admin',
    load: () => import('./views/admin-users.js').then((m) => m.adminUsers),
  },
  {
    path: '/console/admin/approval-policies',
    title: 'Approval policies',
    section: 'admin',
    load: () => import('./views/admin-approval-policies.js').then((m) => m.adminApprovalPolicies),
  },
  {
    path: '/console/admin/approval-webhooks',
    title: 'Approval webhooks',
    section: 'admin',
    load: () => import('./views/admin-approval-webhooks.js').then((m) => m.adminApprovalWebhooks),
  },
  {
    path: '/console/admin/namespace-profiles',
    title: 'Namespace profiles',
    section: 'admin',
    load: () => import('./views/admin-namespace-profiles.js').then((m) => m.adminNamespaceProfiles),
  },
  {
    path: '/console/admin/audit',
    title: 'Audit log',
    section: 'admin',
    load: () => import('./views/audit.js').then((m) => (ctx) => m.auditView(ctx, true)),
  },
];

function viewFor(path: string): View | undefined {
  const p = path === '/console' || path === '/console/' ? '/' : path.replace(/\/$/, '') || '/';
  return views.find(
    (v) => v.path === p || (v.pages !== undefined && depthBelow(v.path, p) === v.pages),
  );
}

/** How many segments `p` lies below `base` (`/console/runs/x` below `/console/runs`: 1); 0 when it is not below, or a segment is empty. */
function depthBelow(base: string, p: string): number {
  if (!p.startsWith(`${base}/`)) return 0;
  const segments = p.slice(base.length + 1).split('/');
  return segments.every(Boolean) ? segments.length : 0;
}

function signOut(me: Me): HTMLFormElement {
  return h(
    'form',
    { method: 'post', action: '/auth/logout' },
    h('input', { type: 'hidden', name: 'csrf', value: me.csrfToken ?? '' }),
    h('button', { type: 'submit', class: 'quiet' }, 'Sign out'),
  );
}

function nav(me: Me, current: View | undefined): HTMLElement {
  const link = (v: View) =>
    h(
      'li',
      {},
      h('a', { href: v.path, 'aria-current': v === current ? 'page' : undefined }, v.title),
    );
  const section = (id: View['section'], title: string) =>
    h(
      'div',
      {},
      h('h2', { id: `nav-${id}` }, title),
      h(
        'ul',
        { 'aria-labelledby': `nav-${id}` },
        views.filter((v) => v.section === id && (v.shownTo?.(me) ?? true)).map(link),
      ),
    );
  return h(
    'nav',
    { class: 'side', 'aria-label': 'Console' },
    section('you', 'You'),
    me.admin ? section('admin', 'Administration') : null,
  );
}

async function start(): Promise<void> {
  const root = document.getElementById('console');
  if (!root) return;
  let me: Me;
  try {
    me = await get<Me>('/api/v1/me');
  } catch (err) {
    root.prepend(errorNotice(err));
    return;
  }
  setCsrfToken(me.csrfToken ?? '');
  const main = h('main', { id: 'main', tabindex: '-1' });
  const navSlot = h('div', {});
  const shell = h(
    'div',
    {},
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    h(
      'header',
      { class: 'top' },
      h('a', { class: 'brand', href: '/' }, 'kubegate'),
      h(
        'span',
        { class: 'who' },
        'Signed in as ',
        h('strong', {}, me.user?.name || me.name),
        ` (${me.name})`,
        me.admin ? ' · admin' : '',
      ),
      signOut(me),
    ),
    h('div', { class: 'layout' }, navSlot, main),
  );
  replace(root, shell);

  let first = true;
  const show = async () => {
    const view = viewFor(location.pathname);
    replace(navSlot, nav(me, view));
    const heading = h('h1', { tabindex: '-1' }, view?.title ?? 'Not found');
    document.title = `${view?.title ?? 'Not found'} · kubegate`;
    const body = h('div', {});
    replace(main, heading, body);
    if (!first) heading.focus();
    first = false;
    if (!view) {
      replace(
        body,
        h('p', {}, 'There is no such page. ', h('a', { href: '/' }, 'Go to your clusters.')),
      );
      return;
    }
    if (view.section === 'admin' && !me.admin) {
      replace(body, errorNotice(new Error('This page is for kubegate admins only.')));
      return;
    }
    replace(body, h('p', { class: 'muted', role: 'status' }, 'Loading…'));
    let render: Render;
    try {
      render = await view.load();
    } catch {
      // A module of an older build is gone after an upgrade: a reload fetches the new one.
      replace(
        body,
        errorNotice(
          new Error(
            'This page could not be loaded; kubegate may have been updated. Reload the page.',
          ),
        ),
      );
      return;
    }
    await render({ me, into: body, navigate });
  };
  const navigate = (path: string) => {
    history.pushState(null, '', path);
    void show();
  };
  // Same-origin links to console views move without a reload.
  document.addEventListener('click', (ev) => {
    const a = (ev.target as Element | null)?.closest?.('a');
    if (!a || a.hasAttribute('download') || a.target || ev.defaultPrevented) return;
    if (a.getAttribute('href')?.startsWith('#')) return; // in-page (the skip link)
    if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !viewFor(url.pathname)) return;
    ev.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => void show());
  await show();
}

void start();
