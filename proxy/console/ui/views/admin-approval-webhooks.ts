/**
 * Admin · approval webhooks: where kubegate POSTs new requests and
 * decisions (generic JSON or Slack-compatible), signed with HMAC-SHA256.
 * The signing secret is shown once, when the webhook is created; kubegate
 * keeps it sealed and never shows it again.
 */
import { request } from '../api.js';
import { field, h, replace } from '../dom.js';
import { when } from '../format.js';
import type { ViewContext } from '../view.js';
import { badge, deleteButton, loadTable, okNotice, onSubmit, statusArea } from '../widgets.js';

interface Webhook {
  id: string;
  url: string;
  format: 'json' | 'slack';
  description: string;
  createdBy: string;
  createdAt: string;
}

export async function adminApprovalWebhooks(ctx: ViewContext): Promise<void> {
  const status = statusArea();
  const secretSlot = h('div', {});
  const list = h('div', {});
  const url = h('input', {
    type: 'url',
    required: true,
    placeholder: 'https://hooks.example.com/kubegate',
  });
  const format = h(
    'select',
    {},
    h('option', { value: 'json' }, 'JSON (generic)'),
    h('option', { value: 'slack' }, 'Slack incoming webhook'),
  );
  const desc = h('input', { type: 'text', maxlength: 1000 });
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'hook-h' },
    h('h2', { id: 'hook-h' }, 'New webhook'),
    field('URL', url),
    field('Format', format),
    field('Description', desc),
    h('p', { class: 'hint' }, 'kubegate generates the signing secret and shows it once.'),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add webhook')),
  );

  const refresh = () =>
    loadTable<Webhook>(
      list,
      '/api/v1/approval-webhooks',
      'Approval webhooks',
      [
        {
          title: 'URL',
          cell: (w) => [h('code', {}, w.url), h('div', { class: 'hint' }, w.description)],
        },
        { title: 'Format', cell: (w) => badge(w.format) },
        {
          title: 'Added',
          cell: (w) => [when(w.createdAt), h('div', { class: 'hint' }, `by ${w.createdBy}`)],
        },
        {
          title: 'Actions',
          cell: (w) =>
            deleteButton(
              `/api/v1/approval-webhooks/${encodeURIComponent(w.id)}`,
              undefined,
              {
                name: `Delete webhook ${w.url}`,
                confirm: `Delete the webhook to ${w.url}?`,
                done: 'Webhook deleted: no more deliveries to it.',
              },
              status,
              refresh,
            ),
        },
      ],
      'No webhooks: approvers learn of new requests only in the console and the CLI.',
    );

  onSubmit(form, status, async () => {
    const r = await request<Webhook & { secret: string }>('POST', '/api/v1/approval-webhooks', {
      url: url.value.trim(),
      format: format.value,
      description: desc.value,
    });
    const secret = r.body.secret;
    replace(
      secretSlot,
      okNotice(
        h('strong', {}, `Signing secret of ${r.body.url}`),
        ' — copy it to the receiver now; it is not shown again. Verify X-Kubegate-Signature (HMAC-SHA256 over v1:<timestamp>:<body>) with it.',
        h('pre', { tabindex: '0', 'aria-label': 'Webhook signing secret' }, secret),
        h(
          'button',
          {
            type: 'button',
            class: 'quiet',
            onclick: () => void navigator.clipboard.writeText(secret),
          },
          'Copy secret',
        ),
      ),
    );
    form.reset();
    await refresh();
  });

  replace(ctx.into, form, status.el, secretSlot, h('h2', {}, 'All webhooks'), list);
  await refresh();
}
