/**
 * "Namespaces": self-service namespaces. The list shows the namespaces you
 * own or work in (admins may show everyone's) with their status, profile,
 * your role and drift; it follows namespaces still being made or retired.
 * The request form offers the profiles you may use and says what each one
 * gives (quota, limits, network policy, whether an approver must say yes),
 * offers only the profile's clusters, and shows the profile's name rule,
 * checked as you type; the server checks everything again.
 *
 * A namespace's page (`/console/namespaces/<cluster>/<name>`) shows its
 * facts and members, follows it while it changes, and lets its owners (and
 * admins) add members with a role the profile allows, remove them, hand the
 * namespace to another owner, and delete it.
 */
import { get, request } from '../api.js';
import { field, h, replace, uid, type Child } from '../dom.js';
import { when } from '../format.js';
import { selectorMatches, selectorText } from '../selector.js';
import type { Me, ViewContext } from '../view.js';
import type {
  NamespaceMember,
  NamespaceProfileView,
  NamespaceStatus,
  NamespaceView,
} from '../wire/namespaces.js';
import {
  actionButton,
  badge,
  errorNotice,
  load,
  okNotice,
  onSubmit,
  statusArea,
  table,
  type StatusArea,
  factList,
  changeCheck,
} from '../widgets.js';

export type { NamespaceStatus };
export type Member = NamespaceMember;
export type Namespace = NamespaceView;
export type Profile = NamespaceProfileView;

/** Statuses a namespace leaves by itself: pages follow it while it is in one. */
const changing: readonly NamespaceStatus[] = ['awaiting-approval', 'provisioning', 'retiring'];

export function statusChip(s: NamespaceStatus): HTMLElement {
  const kind =
    s === 'ready'
      ? 'ok'
      : s === 'failed' || s === 'denied'
        ? 'bad'
        : changing.includes(s)
          ? 'warn'
          : '';
  return badge(s, kind);
}

const apiPath = (cluster: string, name: string, ...rest: string[]) =>
  ['/api/v1/namespaces', cluster, name, ...rest]
    .map((s, i) => (i ? encodeURIComponent(s) : s))
    .join('/');
const pagePath = (n: Pick<Namespace, 'cluster' | 'name'>) =>
  `/console/namespaces/${encodeURIComponent(n.cluster)}/${encodeURIComponent(n.name)}`;

/** The namespace's message when it says more than its status ("ready" does not). */
const note = (n: Namespace) => (n.message && n.message !== n.status ? n.message : '');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// --- what a profile gives, and its name rule ----------------------------------------------

/** `pods 10, requests.cpu 4`, or "none". */
function amounts(r: Record<string, string> | undefined): string {
  const e = Object.entries(r ?? {});
  return e.length ? e.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

export function profileClustersText(c: Profile['clusters']): string {
  return (
    [
      c.names?.length ? c.names.join(', ') : '',
      c.selector ? `clusters matching ${selectorText(c.selector)}` : '',
    ]
      .filter(Boolean)
      .join(', and ') || 'no cluster'
  );
}

/** What every namespace of a profile gets, as facts. */
export function profileFacts(p: Profile): HTMLElement {
  const limits = p.limits ?? {};
  const limitText = [
    limits.defaultRequest ? `requests ${amounts(limits.defaultRequest)}` : '',
    limits.default ? `limits ${amounts(limits.default)}` : '',
    limits.max ? `at most ${amounts(limits.max)}` : '',
  ].filter(Boolean);
  const fact = (k: string, v: Child) => [h('dt', {}, k), h('dd', {}, v)];
  return h(
    'dl',
    { class: 'facts' },
    p.description ? fact('About', p.description) : null,
    fact('Clusters', profileClustersText(p.clusters)),
    fact('Quota', amounts(p.quota)),
    fact('Container defaults', limitText.length ? limitText.join('; ') : 'none'),
    fact(
      'Network policy',
      p.networkPolicy === 'default-deny'
        ? 'default deny: only traffic from within the namespace is let in'
        : 'none',
    ),
    fact(
      'Approval',
      p.approval
        ? `needed: ${p.approval.approvers.count} of ${p.approval.approvers.groups.join(', ')}${p.approval.onDelete ? ', to delete one too' : ''}`
        : 'not needed: ready in seconds',
    ),
    fact(
      'Roles',
      `owners get ${p.ownerRole ?? 'admin'}; members may get ${(p.memberRoles ?? ['edit', 'view']).join(', ')}`,
    ),
    p.perUserLimit !== undefined ? fact('Limit', `${p.perUserLimit} namespaces per person`) : null,
  );
}

/** The name rule in words: what the field's hint says. */
export function ruleText(naming: Profile['naming']): string {
  const max = Math.min(63, naming?.maxLength ?? 63);
  return [
    'Lowercase letters, digits and -, starting and ending with a letter or digit',
    naming?.prefix ? `starting with ${naming.prefix}` : '',
    naming?.pattern ? `matching ${naming.pattern}` : '',
    `at most ${max} characters`,
  ]
    .filter(Boolean)
    .join('; ')
    .concat('.');
}

/** Why a name breaks the rule (empty when it does not); the server checks the same again. */
export function nameProblems(name: string, naming: Profile['naming']): string[] {
  const max = Math.min(63, naming?.maxLength ?? 63);
  const problems: string[] = [];
  if (name.length > max) problems.push(`at most ${max} characters (this has ${name.length})`);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name))
    problems.push(
      'only lowercase letters, digits and -, starting and ending with a letter or digit',
    );
  if (/^(default|kube-.*|kubegate-.*|openshift.*)$/.test(name))
    problems.push('this name is kept for the cluster itself');
  if (naming?.prefix && !name.startsWith(naming.prefix))
    problems.push(`must start with ${naming.prefix}`);
  if (naming?.pattern) {
    let re: RegExp | undefined;
    try {
      re = new RegExp(`^(?:${naming.pattern})$`);
    } catch {
      re = undefined; // a pattern this browser cannot read: the server decides
    }
    if (re && !re.test(name)) problems.push(`must match ${naming.pattern}`);
  }
  return problems;
}

// --- the request form ------------------------------------------------------------------------

interface KnownCluster {
  name: string;
  labels: Record<string, string>;
}

/** Clusters whose labels the page can see: all of them for admins, those you reach for others. */
async function knownClusters(me: Me): Promise<KnownCluster[]> {
  try {
    const url = me.admin ? '/api/v1/clusters?limit=500' : '/api/v1/console/clusters';
    return (await get<{ items: KnownCluster[] }>(url)).items;
  } catch {
    return []; // the profile's names are still offered; the server decides
  }
}

/** The clusters of a profile this page can name: its listed ones, and known ones its selector matches. */
function profileClusters(p: Profile, known: KnownCluster[]): string[] {
  const names = new Set(p.clusters.names ?? []);
  const sel = p.clusters.selector;
  if (sel) for (const c of known) if (selectorMatches(sel, c.labels)) names.add(c.name);
  return [...names].sort();
}

function requestForm(
  ctx: ViewContext,
  profiles: Profile[],
  known: KnownCluster[],
  status: StatusArea,
  after: () => Promise<void>,
): HTMLElement {
  const profile = h(
    'select',
    { required: true },
    profiles.map((p) => h('option', { value: p.name }, p.name)),
  );
  const gives = h('div', {});
  const name = h('input', {
    type: 'text',
    required: true,
    maxlength: 63,
    autocomplete: 'off',
    spellcheck: 'false',
  });
  // Drawn with the first profile's rule; drawProfile() keeps it to the chosen one.
  const nameField = field('Name', name, ruleText(profiles[0]?.naming));
  const nameHint = nameField.querySelector<HTMLElement>('.hint')!;
  const nameCheck = h('p', { class: 'hint', id: uid('rule'), 'aria-live': 'polite' });
  name.setAttribute('aria-describedby', `${nameHint.id} ${nameCheck.id}`);
  nameField.append(nameCheck);
  const clusters = h('fieldset', {});
  const other = h('input', { type: 'text', autocomplete: 'off', placeholder: 'prod-eu, prod-us' });
  const otherField = field(
    'Other clusters',
    other,
    "comma separated: clusters of this profile's selector this page does not list",
  );
  const reason = h('textarea', { rows: 2, maxlength: 1000 });
  let boxes: HTMLInputElement[] = [];

  const chosen = () => profiles.find((p) => p.name === profile.value)!;
  const check = () => {
    const problems = name.value ? nameProblems(name.value, chosen().naming) : [];
    replace(
      nameCheck,
      problems.length
        ? `Not yet: ${problems.join('; ')}.`
        : name.value
          ? 'The name fits the rule.'
          : '',
    );
    if (problems.length) name.setAttribute('aria-invalid', 'true');
    else name.removeAttribute('aria-invalid');
  };
  const drawProfile = () => {
    const p = chosen();
    replace(gives, h('h3', {}, `What ${p.name} gives`), profileFacts(p));
    replace(nameHint, ruleText(p.naming));
    const names = profileClusters(p, known);
    boxes = names.map((c) =>
      h('input', { type: 'checkbox', id: uid('c'), value: c, checked: names.length === 1 }),
    );
    replace(
      clusters,
      h('legend', {}, 'Clusters (at least one)'),
      names.length
        ? h(
            'ul',
            { class: 'plain' },
            boxes.map((b) => h('li', {}, h('label', { class: 'inline', for: b.id }, b, b.value))),
          )
        : h(
            'p',
            { class: 'muted' },
            'This page knows no cluster of this profile: name them below.',
          ),
    );
    otherField.hidden = !p.clusters.selector;
    check();
  };
  profile.addEventListener('change', drawProfile);
  name.addEventListener('input', check);

  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'ns-new-h' },
    h('h2', { id: 'ns-new-h' }, 'Ask for a namespace'),
    field('Profile', profile, 'the template the namespace is made from'),
    gives,
    nameField,
    clusters,
    otherField,
    field('Reason', reason, 'optional: why; approvers see it'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Ask for the namespace')),
  );
  drawProfile();

  onSubmit(form, status, async () => {
    const picked = [
      ...boxes.filter((b) => b.checked).map((b) => b.value),
      ...(otherField.hidden ? [] : other.value.split(/[\s,]+/).filter(Boolean)),
    ];
    const body = {
      name: name.value.trim(),
      profile: profile.value,
      clusters: [...new Set(picked)],
      ...(reason.value.trim() ? { reason: reason.value.trim() } : {}),
    };
    const r = await request<{ items: Namespace[]; approvalId?: string }>(
      'POST',
      '/api/v1/namespaces',
      body,
    );
    const items = r.body.items;
    if (items.length === 1) {
      ctx.navigate(pagePath(items[0]!));
      return;
    }
    status.show(
      okNotice(
        r.body.approvalId
          ? `Asked: the namespace waits for an approver (approval ${r.body.approvalId}). `
          : 'Asked. ',
        items.map((n) =>
          h(
            'span',
            {},
            h('a', { href: pagePath(n) }, `${n.name} on ${n.cluster}`),
            ' ',
            statusChip(n.status),
            ' ',
          ),
        ),
      ),
    );
    form.reset();
    drawProfile();
    await after();
  });
  return form;
}

// --- the list -------------------------------------------------------------------------------

function listTable(items: Namespace[], everyone: boolean, me: Me): HTMLElement {
  return table<Namespace>(
    everyone ? 'Every managed namespace' : 'My namespaces',
    [
      { title: 'Namespace', cell: (n) => h('a', { href: pagePath(n) }, n.name) },
      { title: 'Cluster', cell: (n) => n.cluster },
      { title: 'Profile', cell: (n) => n.profile },
      {
        title: 'Status',
        cell: (n) => [statusChip(n.status), note(n) ? h('div', { class: 'hint' }, note(n)) : null],
      },
      {
        title: 'My role',
        cell: (n) => n.yourRole ?? (n.owner === me.name ? 'owner' : '-'),
      },
      { title: 'Owner', cell: (n) => n.owner },
      { title: 'Drift', cell: (n) => (n.drift ? badge(`${n.drift} corrected`, 'warn') : '0') },
      { title: 'Created', cell: (n) => when(n.createdAt) },
    ],
    items,
    everyone ? 'No managed namespaces yet.' : 'You own no namespace and are a member of none yet.',
  );
}

async function listView(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const formSlot = h('div', {});
  const everyone = h('input', { type: 'checkbox', id: uid('all') });
  const toolbar = ctx.me.admin
    ? h(
        'div',
        { class: 'actions' },
        h('label', { class: 'inline', for: everyone.id }, everyone, "Everyone's namespaces"),
      )
    : null;
  let items: Namespace[] = [];
  const refresh = async () => {
    try {
      items = (
        await get<{ items: Namespace[] }>(
          `/api/v1/namespaces${everyone.checked ? '?all=true' : ''}`,
        )
      ).items;
      replace(list, listTable(items, everyone.checked, ctx.me));
    } catch (err) {
      replace(list, errorNotice(err));
    }
  };
  everyone.addEventListener('change', () => void refresh());
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      'Namespaces kubegate made for you from a profile the platform team keeps: quota, limits and network policy included. Owners decide who works in them.',
    ),
    toolbar,
    list,
    formSlot,
    status.el,
  );
  replace(list, h('p', { class: 'muted', role: 'status' }, 'Loading…'));
  await refresh();
  if (ctx.me.namespaceProfiles === 0)
    replace(
      formSlot,
      h(
        'p',
        { class: 'muted' },
        'No namespace profile lets you ask for a namespace: ask a kubegate admin.',
      ),
    );
  else
    await load(formSlot, async () => {
      const [profiles, known] = await Promise.all([
        get<{ items: Profile[] }>('/api/v1/namespace-profiles'),
        knownClusters(ctx.me),
      ]);
      return profiles.items.length
        ? requestForm(ctx, profiles.items, known, status, refresh)
        : h(
            'p',
            { class: 'muted' },
            'No namespace profile lets you ask for a namespace: ask a kubegate admin.',
          );
    });
  // Follow namespaces being made or retired while the list is shown.
  while (ctx.into.isConnected) {
    await sleep(2000);
    if (!ctx.into.isConnected || !items.some((n) => changing.includes(n.status))) continue;
    await refresh();
  }
}

// --- one namespace ----------------------------------------------------------------------------

function facts(n: Namespace): HTMLElement {
  return factList([
    ['Cluster', n.cluster],
    ['Profile', n.profile],
    ['Owner', n.owner],
    ['Your role', n.yourRole ?? 'none'],
    ['Requested by', [n.requestedBy, ' ', when(n.createdAt)]],
    n.readyAt ? ['Ready', when(n.readyAt)] : null,
    n.approvalId
      ? [
          'Approval',
          [
            h('code', {}, n.approvalId),
            ' (',
            h('a', { href: '/console/requests' }, 'my requests'),
            ')',
          ],
        ]
      : null,
    n.retireApprovalId
      ? ['Deletion', ['waits for approval ', h('code', {}, n.retireApprovalId)]]
      : null,
    [
      'Drift',
      n.drift
        ? `${n.drift} change${n.drift === 1 ? '' : 's'} made by hand were put back as the profile says`
        : 'none',
    ],
  ]);
}

async function namespacePage(ctx: ViewContext, cluster: string, name: string): Promise<void> {
  const url = apiPath(cluster, name);
  const status = statusArea();
  const live = h('p', { role: 'status', 'aria-live': 'polite' });
  const problem = h('div', {});
  const factsSlot = h('div', {});
  const membersSlot = h('div', {});
  const manage = h('div', {});
  replace(
    ctx.into,
    h('p', {}, h('a', { href: '/console/namespaces' }, 'All namespaces')),
    h('h2', {}, h('code', {}, name), ' on ', cluster),
    live,
    problem,
    factsSlot,
    h('h2', { id: 'ns-members-h' }, 'Members'),
    membersSlot,
    manage,
    status.el,
  );
  document.title = `${name} · Namespaces · kubegate`;
  let roles: string[] | undefined;
  const isNew = changeCheck();
  let shown = '';
  let current: Namespace | undefined;

  const draw = (n: Namespace) => {
    replace(problem);
    if (!isNew(n)) return;
    current = n;
    replace(
      live,
      'Status: ',
      statusChip(n.status),
      note(n) ? ` ${note(n)}` : '',
      changing.includes(n.status) ? ' — this page updates by itself.' : '',
    );
    replace(factsSlot, facts(n));
    replace(membersSlot, membersTable(n));
    // The forms are drawn when what they may do changes, never while someone types in them.
    const may = `${n.mayManage}|${n.status === 'retired' || n.status === 'retiring'}`;
    if (may !== shown) {
      shown = may;
      replace(
        manage,
        n.mayManage && n.status !== 'retired' && n.status !== 'retiring' ? manageForms(n) : null,
      );
    }
  };
  const refresh = async () => draw(await get<Namespace>(url));

  const membersTable = (n: Namespace) =>
    table<Member>(
      `Members of ${n.name}`,
      [
        { title: 'Member', cell: (m) => [badge(m.kind), ' ', m.name] },
        { title: 'Role', cell: (m) => [m.role, m.owner ? [' ', badge('owner', 'ok')] : null] },
        {
          title: 'Actions',
          cell: (m) =>
            n.mayManage && !m.owner && n.status !== 'retired'
              ? actionButton(
                  'Remove',
                  async () => {
                    await request('DELETE', apiPath(cluster, name, 'members', m.kind, m.name));
                    status.show(
                      okNotice(`${m.kind} ${m.name} removed: their access ends within a second.`),
                    );
                    await refresh();
                  },
                  {
                    status,
                    class: 'danger',
                    name: `Remove ${m.kind} ${m.name}`,
                    confirm: `Remove ${m.kind} ${m.name} from ${name} on ${cluster}?`,
                  },
                )
              : '',
        },
      ],
      n.members ?? [],
      'No members.',
    );

  const manageForms = (n: Namespace): HTMLElement => {
    const kind = h(
      'select',
      {},
      h('option', { value: 'User' }, 'User'),
      h('option', { value: 'Group' }, 'Group'),
    );
    const who = h('input', {
      type: 'text',
      required: true,
      autocomplete: 'off',
      spellcheck: 'false',
    });
    const role = roles
      ? h(
          'select',
          { required: true },
          roles.map((r) => h('option', { value: r }, r)),
        )
      : h('input', { type: 'text', required: true, placeholder: 'edit' });
    const add = h(
      'form',
      { class: 'card', 'aria-labelledby': 'ns-add-h' },
      h('h2', { id: 'ns-add-h' }, 'Add a member'),
      field('Kind', kind),
      field(
        'User or group',
        who,
        'a user by their name as kubegate knows it (their email), or a group',
      ),
      field(
        'Role',
        role,
        roles
          ? `the roles profile ${n.profile} lets owners hand out; never more than you hold`
          : 'a role the profile lets owners hand out',
      ),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add member')),
    );
    onSubmit(add, status, async () => {
      const m = (
        await request<Member>(
          'PUT',
          apiPath(cluster, name, 'members', kind.value, who.value.trim()),
          {
            role: role.value,
          },
        )
      ).body;
      status.show(
        okNotice(
          `${m.kind} ${m.name} is ${m.role} in ${name}: they can work there within a second.`,
        ),
      );
      who.value = '';
      await refresh();
    });
    const newOwner = h('input', {
      type: 'text',
      required: true,
      autocomplete: 'off',
      spellcheck: 'false',
    });
    const transfer = h(
      'form',
      { class: 'card', 'aria-labelledby': 'ns-owner-h' },
      h('h2', { id: 'ns-owner-h' }, 'Hand over ownership'),
      field('New owner', newOwner, 'a user; you keep no role unless they add you'),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Transfer ownership')),
    );
    onSubmit(transfer, status, async () => {
      const to = newOwner.value.trim();
      if (!window.confirm(`Make ${to} the owner of ${name} on ${cluster}?`)) return;
      await request('POST', apiPath(cluster, name, 'owner'), { user: to });
      status.show(okNotice(`${to} owns ${name} now.`));
      newOwner.value = '';
      await refresh();
    });
    const del = actionButton(
      'Delete namespace',
      async () => {
        const r = (await request<Namespace>('DELETE', url)).body;
        status.show(
          okNotice(
            r.retireApprovalId
              ? `The deletion waits for an approver (approval ${r.retireApprovalId}).`
              : `${name} is being deleted, with everything in it and every binding it gave.`,
          ),
        );
        await refresh();
        void follow();
      },
      {
        status,
        class: 'danger',
        confirm: `Delete namespace ${name} on ${cluster}? Everything in it is deleted, and every binding it gave goes with it.`,
      },
    );
    return h(
      'div',
      {},
      add,
      transfer,
      h(
        'section',
        { class: 'card', 'aria-labelledby': 'ns-del-h' },
        h('h2', { id: 'ns-del-h' }, 'Delete'),
        h('p', {}, 'Deletes the namespace on the cluster and everything in it.'),
        h('div', { class: 'actions' }, del),
      ),
    );
  };

  let following = false;
  /** Every second while the namespace can still change, until the page shows another view. */
  const follow = async () => {
    if (following) return;
    following = true;
    try {
      while (current && changing.includes(current.status)) {
        await sleep(1000);
        if (!ctx.into.isConnected) return;
        try {
          await refresh();
        } catch (err) {
          if (!ctx.into.isConnected) return;
          replace(problem, errorNotice(err));
        }
      }
    } finally {
      following = false;
    }
  };

  let first: Namespace;
  try {
    first = await get<Namespace>(url);
  } catch (err) {
    replace(factsSlot, errorNotice(err));
    return;
  }
  if (first.mayManage)
    roles = await get<Profile>(`/api/v1/namespace-profiles/${encodeURIComponent(first.profile)}`)
      .then((p) => p.memberRoles ?? ['edit', 'view'])
      .catch(() => undefined); // a profile this person may not read: they type the role
  draw(first);
  await follow();
}

export async function namespacesView(ctx: ViewContext): Promise<void> {
  const m = /^\/console\/namespaces\/([^/]+)\/([^/]+)\/?$/.exec(location.pathname);
  if (m) return namespacePage(ctx, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!));
  return listView(ctx);
}
