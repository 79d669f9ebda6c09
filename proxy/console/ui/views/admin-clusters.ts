/**
 * Admin · clusters: register one (then copy or download its bootstrap YAML,
 * or use the Helm command), see which are online and their agent versions,
 * change labels, disable or delete.
 */
import { ApiError, request } from '../api.js';
import { field, h, replace, saveBlob } from '../dom.js';
import { relative, when } from '../format.js';
import type { ViewContext } from '../view.js';
import {
  actionButton,
  badge,
  labels as labelBadges,
  loadTable,
  okNotice,
  onSubmit,
  statusArea,
} from '../widgets.js';
import { healthBadge, type ClusterHealth } from './my-clusters.js';

const offline: ClusterHealth = {
  online: false,
  since: null,
  agentVersion: null,
  agentVersions: [],
};

interface Cluster {
  name: string;
  labels: Record<string, string>;
  description: string;
  disabled: boolean;
  version: number;
  createdAt: string;
  /** Fleet-wide, from the replica registry (absent right after registration). */
  health?: ClusterHealth;
}

interface Registered extends Cluster {
  bootstrapYaml: string;
  bootstrapExpiresAt: string;
  agentHelm?: { command: string; caFile: string; caPem: string };
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

/**
 * The labels and description of one cluster as a form: a row per label
 * (key, value), rows added and removed freely. Saving sends a JSON merge
 * patch — a removed label as `null` — with If-Match, so an edit made
 * meanwhile by someone else is refused (412) rather than overwritten.
 */
function labelForm(
  c: Cluster,
  status: ReturnType<typeof statusArea>,
  done: (saved: boolean) => Promise<void>,
): HTMLFormElement {
  const box = h('div', {});
  const rows: { el: HTMLElement; key: HTMLInputElement; value: HTMLInputElement }[] = [];
  const draw = () =>
    replace(box, rows.length ? rows.map((r) => r.el) : h('p', { class: 'muted' }, 'No labels.'));
  // Row numbers only grow, so a row's accessible name never repeats after removals.
  let made = 0;
  const add = (k = '', v = '') => {
    const n = ++made;
    const key = h('input', { type: 'text', 'aria-label': `Label key ${n}`, value: k });
    const value = h('input', { type: 'text', 'aria-label': `Label value ${n}`, value: v });
    const row = { el: h('div', { class: 'actions' }), key, value };
    const remove = h(
      'button',
      { type: 'button', class: 'quiet', 'aria-label': `Remove label ${n}` },
      'Remove',
    );
    remove.addEventListener('click', () => {
      rows.splice(rows.indexOf(row), 1);
      draw();
    });
    replace(row.el, key, ' = ', value, remove);
    rows.push(row);
    draw();
  };
  for (const [k, v] of Object.entries(c.labels)) add(k, v);
  if (!rows.length) add();
  const desc = h('input', { type: 'text', value: c.description, maxlength: 1000 });
  const cancel = h('button', { type: 'button', class: 'quiet' }, 'Cancel');
  cancel.addEventListener('click', () => void done(false));
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'labels-h' },
    h('h2', { id: 'labels-h', tabindex: '-1' }, `Labels of ${c.name}`),
    h(
      'fieldset',
      {},
      h('legend', {}, 'Labels'),
      box,
      h('button', { type: 'button', class: 'quiet', onclick: () => add() }, 'Add label'),
      h(
        'p',
        { class: 'hint' },
        'Bindings and approval policies that select clusters by label follow a change at once.',
      ),
    ),
    field('Description', desc),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save labels'), cancel),
  );
  onSubmit(form, status, async () => {
    const next: Record<string, string | null> = {};
    for (const r of rows) {
      const k = r.key.value.trim();
      if (k) next[k] = r.value.value.trim();
    }
    // Merge patch: a label that is gone must be named with null to be removed.
    for (const k of Object.keys(c.labels)) if (!(k in next)) next[k] = null;
    try {
      await request(
        'PATCH',
        `/api/v1/clusters/${encodeURIComponent(c.name)}`,
        { labels: next, description: desc.value },
        `"${c.version}"`,
      );
    } catch (err) {
      if (err instanceof ApiError && err.status === 412)
        throw new ApiError(
          412,
          `Someone changed ${c.name} since this list was loaded. Cancel, then edit it again.`,
        );
      throw err;
    }
    status.show(okNotice(`Labels of ${c.name} saved.`));
    await done(true);
  });
  return form;
}

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
  const editSlot = h('div', {});
  const editLabels = (c: Cluster) => {
    const form = labelForm(c, status, async (saved) => {
      replace(editSlot);
      if (saved) await refresh();
    });
    replace(editSlot, form);
    form.querySelector<HTMLElement>('h2')?.focus();
  };
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
    loadTable<Cluster>(
      list,
      '/api/v1/clusters?limit=500',
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
          cell: (c) => (c.disabled ? badge('disabled', 'warn') : healthBadge(c.health ?? offline)),
        },
        {
          title: 'Tunnels',
          cell: (c) =>
            (c.health?.replicas ?? []).map((r) =>
              h(
                'div',
                { class: 'hint' },
                `${r.replica}: ${r.tunnels} tunnel${r.tunnels === 1 ? '' : 's'}, since `,
                when(r.since),
                r.draining ? ' (draining)' : '',
              ),
            ),
        },
        { title: 'Labels', cell: (c) => labelBadges(c.labels) },
        {
          title: 'Actions',
          cell: (c) =>
            h(
              'div',
              { class: 'actions' },
              h(
                'button',
                {
                  type: 'button',
                  class: 'quiet',
                  'aria-label': `Edit labels of ${c.name}`,
                  onclick: () => editLabels(c),
                },
                'Edit labels',
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
              actionButton(
                'Revoke agent',
                async () => {
                  const r = await request<{ revokedCertificates: number; next: string }>(
                    'POST',
                    `/api/v1/clusters/${encodeURIComponent(c.name)}/revoke-agent`,
                  );
                  status.show(
                    okNotice(
                      `${c.name}: ${r.body.revokedCertificates} agent certificate(s) revoked; its tunnels are closed. To attach it again: ${r.body.next}`,
                    ),
                  );
                  await refresh();
                },
                {
                  status,
                  class: 'danger',
                  name: `Revoke the agent of ${c.name}`,
                  confirm: `Revoke the agent of ${c.name}? Its tunnels close at once on every replica, and it stays offline until it enrolls again with a new bootstrap token.`,
                },
              ),
            ),
        },
      ],
      'No clusters are registered yet. Register one above, then apply its bootstrap YAML on the cluster.',
    );

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
  replace(
    ctx.into,
    form,
    status.el,
    enrollSlot,
    editSlot,
    h('h2', {}, 'Registered clusters'),
    list,
  );
  await refresh();
}
