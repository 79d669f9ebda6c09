/** "My clusters": what I can reach, whether it is online, my access on each, and kubeconfigs. */
import { h, replace } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import { badge, labels, loadTable, statusArea } from '../widgets.js';
import { kubeconfigButton, ttlSelect } from './kubeconfig.js';

/**
 * Fleet-wide health, the same block on /api/v1/console/clusters and
 * /api/v1/clusters: any replica answers the same. `replicas` is for admins.
 */
export interface ClusterHealth {
  online: boolean;
  since: string | null;
  agentVersion: string | null;
  agentVersions: string[];
  replicas?: { replica: string; tunnels: number; since: string; draining: boolean }[];
}

interface MyCluster {
  name: string;
  health: ClusterHealth;
  labels: Record<string, string>;
  access: { binding: string; role: string; namespaces: string[]; expiresAt: string | null }[];
}

export function healthBadge(c: ClusterHealth): HTMLElement {
  if (!c.online) return badge('offline', 'bad');
  return h(
    'span',
    {},
    badge('online', 'ok'),
    h('span', { class: 'muted' }, ` agent ${c.agentVersions.join(', ')}`),
    c.since ? h('span', { class: 'muted' }, ', since ', when(c.since)) : '',
  );
}

export async function myClusters(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const ttl = ttlSelect('fleet-ttl');
  const list = h('div', {});
  replace(
    ctx.into,
    h('p', { class: 'lead' }, 'The clusters your bindings reach right now, through kubegate.'),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'fleet-h' },
      h('h2', { id: 'fleet-h' }, 'Fleet kubeconfig'),
      h(
        'p',
        {},
        'One file with a context per cluster and a fresh token. Works with plain kubectl, helm and ArgoCD — no plugin.',
      ),
      h(
        'div',
        { class: 'actions' },
        h('label', { for: 'fleet-ttl', class: 'inline' }, 'Token lifetime'),
        ttl,
        kubeconfigButton('Download fleet kubeconfig', status, { ttl: () => ttl.value }),
      ),
      status.el,
    ),
    h('h2', {}, 'Clusters'),
    list,
  );
  await loadTable<MyCluster>(
    list,
    '/api/v1/console/clusters',
    'Clusters you can reach',
    [
      { title: 'Cluster', cell: (c) => h('code', {}, c.name) },
      { title: 'Health', cell: (c) => healthBadge(c.health) },
      { title: 'Labels', cell: (c) => labels(c.labels) },
      {
        title: 'Your access',
        cell: (c) =>
          h(
            'ul',
            { class: 'plain' },
            c.access.map((a) =>
              h(
                'li',
                {},
                h('strong', {}, a.role),
                a.namespaces.length ? ` in ${a.namespaces.join(', ')}` : ' cluster-wide',
                a.expiresAt ? h('span', { class: 'muted' }, ' until ', when(a.expiresAt)) : '',
              ),
            ),
          ),
      },
      {
        title: 'Kubeconfig',
        cell: (c) =>
          kubeconfigButton('Download', status, {
            cluster: c.name,
            ttl: () => ttl.value,
            name: `Download kubeconfig for ${c.name}`,
          }),
      },
    ],
    [
      h('strong', {}, 'You cannot reach any cluster yet.'),
      h('br'),
      'Ask a kubegate admin for a binding for you or one of your groups: ',
      ctx.me.groups.length ? ctx.me.groups.join(', ') : '(you are in no groups)',
      '.',
    ],
  );
}
