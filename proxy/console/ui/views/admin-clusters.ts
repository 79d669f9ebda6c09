/**
 * Admin · clusters: register one (then copy or download its bootstrap YAML,
 * or use the Helm command), see which are online and their agent versions,
 * change labels, disable or delete.
 */
import { get, request } from '../api.js';
import { field, h, replace, saveBlob } from '../dom.js';
import { relative, when } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  actionButton,
  badge,
  labels as labelBadges,
  load,
  okNotice,
  onSubmit,
  statusArea,
  table,
} from '../widgets.js';
import { healthBadge, type ClusterHealth } from './my-clusters.js';

interface Cluster {
  name: string;
  labels: Record<string, string>;
  description: string;
  disabled: boolean;
  version: number;
  createdAt: string;
}

interface Registered extends Cluster {
  bootstrapYaml: string;
  bootstrapExpiresAt: string;
  agentHelm?: { command: string; caFile: string; caPem: string };
}

interface Tunnel {
  cluster: string;
  agentVersion: string;
  connectedAt: string;
  replica: string;
}

/** `env=prod, region=eu` → {env: 'prod', region: 'eu'}; the server validates keys and values. */
export function parseLabels(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s
    .split(/[,\n]+/)
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq < 0) out[part] = '';
    else out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

const labelText = (l: Record<string, string>) =>
  Object.entries(l)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

async function copy(text: string, status: ReturnType<typeof statusArea>, what: string) {
  await navigator.clipboard.writeText(text);
  status.show(okNotice(`${what} copied to the clipboard.`));
}

function enrollment(r: Registered, status: ReturnType<typeof statusArea>): HTMLElement {
  const yamlName = `${r.name}-bootstrap.yaml`;
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'enroll-h' },
    h('h2', { id: 'enroll-h', tabindex: '-1' }, `Attach cluster "${r.name}"`),
    h(
      'p',
      {},
      'Apply this on the cluster. It holds a one-time token that expires ',
      relative(Date.parse(r.bootstrapExpiresAt)),
      ' and is shown only now.',
    ),
    h(
      'div',
      { class: 'actions' },
      actionButton('Copy YAML', () => copy(r.bootstrapYaml, status, 'Bootstrap YAML'), { status }),
      actionButton(
        'Download YAML',
        async () => saveBlob(new Blob([r.bootstrapYaml], { type: 'application/yaml' }), yamlName),
        { status },
      ),
    ),
    h('p', {}, h('code', {}, `kubectl apply -f ${yamlName}`)),
    h('pre', { tabindex: '0', 'aria-label': 'Bootstrap YAML' }, r.bootstrapYaml),
    r.agentHelm
      ? [
          h('h3', {}, 'Or with Helm'),
          h(
            'pre',
            { class: 'wrap', tabindex: '0', 'aria-label': 'Helm command' },
            r.agentHelm.command,
          ),
          h(
            'div',
            { class: 'actions' },
            actionButton(
              'Copy Helm command',
              () => copy(r.agentHelm!.command, status, 'Helm command'),
              {
                status,
              },
            ),
            actionButton(
              `Download ${r.agentHelm.caFile}`,
              async () =>
                saveBlob(
                  new Blob([r.agentHelm!.caPem], { type: 'application/x-pem-file' }),
                  r.agentHelm!.caFile,
                ),
              { status },
            ),
          ),
        ]
      : null,
  );
}

export async function adminClusters(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const list = h('div', {});
  const enrollSlot = h('div', {});
  const name = h('input', {
    type: 'text',
    required: true,
    pattern: '[a-z0-9]([-a-z0-9]*[a-z0-9])?',
    maxlength: 63,
  });
  const lbl = h('input', { type: 'text', placeholder: 'env=prod, region=eu' });
  const desc = h('input', { type: 'text' });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'reg-h' },
    h('h2', { id: 'reg-h' }, 'Register a cluster'),
    field('Name', name, 'a DNS label: lowercase letters, digits and -'),
    field('Labels', lbl, 'key=value pairs, comma separated; bindings can select clusters by label'),
    field('Description', desc),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Register')),
  );

  const refresh = () =>
    load(list, async () => {
      const [clusters, tunnels] = await Promise.all([
        get<{ items: Cluster[] }>('/api/v1/clusters?limit=500'),
        get<{ items: Tunnel[] }>('/api/v1/console/tunnels'),
      ]);
      const healthOf = (n: string): ClusterHealth => {
        const t = tunnels.items.filter((x) => x.cluster === n);
        return { online: t.length > 0, tunnels: t };
      };
      return table(
        'Registered clusters',
        [
          {
            title: 'Cluster',
            cell: (c) => [
              h('code', {}, c.name),
              c.description ? h('div', { class: 'hint' }, c.description) : '',
            ],
          },
          {
            title: 'Health',
            cell: (c) => (c.disabled ? badge('disabled', 'warn') : healthBadge(healthOf(c.name))),
          },
          {
            title: 'Tunnels',
            cell: (c) =>
              healthOf(c.name).tunnels.map((t) =>
                h('div', { class: 'hint' }, `${t.replica}, since `, when(t.connectedAt)),
              ),
          },
          { title: 'Labels', cell: (c) => labelBadges(c.labels) },
          {
            title: 'Actions',
            cell: (c) =>
              h(
                'div',
                { class: 'actions' },
                actionButton(
                  'Edit labels',
                  async () => {
                    const next = window.prompt(
                      `Labels of ${c.name} (key=value, comma separated)`,
                      labelText(c.labels),
                    );
                    if (next === null) return;
                    await request(
                      'PATCH',
                      `/api/v1/clusters/${c.name}`,
                      { labels: parseLabels(next) },
                      `"${c.version}"`,
                    );
                    status.show(okNotice(`Labels of ${c.name} saved.`));
                    await refresh();
                  },
                  { status, class: 'quiet', name: `Edit labels of ${c.name}` },
                ),
                actionButton(
                  c.disabled ? 'Enable' : 'Disable',
                  async () => {
                    await request(
                      'PATCH',
                      `/api/v1/clusters/${c.name}`,
                      { disabled: !c.disabled },
                      `"${c.version}"`,
                    );
                    status.show(okNotice(`${c.name} ${c.disabled ? 'enabled' : 'disabled'}.`));
                    await refresh();
                  },
                  {
                    status,
                    class: c.disabled ? 'quiet' : 'danger',
                    name: `${c.disabled ? 'Enable' : 'Disable'} ${c.name}`,
                    confirm: c.disabled
                      ? undefined
                      : `Disable ${c.name}? Every request to it is refused until it is enabled again.`,
                  },
                ),
              ),
          },
        ],
        clusters.items,
        'No clusters are registered yet. Register one above, then apply its bootstrap YAML on the cluster.',
      );
    });

  onSubmit(form, status, async () => {
    const r = await request<Registered>('POST', '/api/v1/clusters', {
      name: name.value.trim(),
      labels: parseLabels(lbl.value),
      description: desc.value,
    });
    form.reset();
    replace(enrollSlot, enrollment(r.body, status));
    enrollSlot.querySelector<HTMLElement>('h2')?.focus();
    await refresh();
  });
  replace(ctx.into, form, status.el, enrollSlot, h('h2', {}, 'Registered clusters'), list);
  await refresh();
}
