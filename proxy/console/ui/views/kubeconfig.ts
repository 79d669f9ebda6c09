/** Downloading a kubeconfig (fleet-wide or one cluster): it mints a fresh token each time. */
import { download, query } from '../api.js';
import { h, saveBlob } from '../dom.js';
import { relative } from '../format.js';
import { actionButton, okNotice, type statusArea } from '../widgets.js';

export const ttlChoices: [string, string][] = [
  ['', 'default lifetime'],
  ['1h', '1 hour'],
  ['8h', '8 hours'],
  ['24h', '1 day'],
  ['7d', '7 days'],
];

export function ttlSelect(id: string): HTMLSelectElement {
  return h(
    'select',
    { id },
    ttlChoices.map(([v, t]) => h('option', { value: v }, t)),
  );
}

/** A button that downloads the kubeconfig for `cluster` (all when undefined). */
export function kubeconfigButton(
  label: string,
  status: ReturnType<typeof statusArea>,
  opts: { cluster?: string; ttl?: () => string; name?: string; after?: () => void } = {},
): HTMLButtonElement {
  return actionButton(
    label,
    async () => {
      const f = await download(
        `/api/v1/kubeconfig${query({ cluster: opts.cluster, ttl: opts.ttl?.() })}`,
      );
      saveBlob(f.blob, f.filename);
      const exp = f.headers.get('x-kubegate-token-expires');
      status.show(
        okNotice(
          `Saved ${f.filename}`,
          exp ? ` — its token expires ${relative(Date.parse(exp))}.` : '.',
          ' Use it with ',
          h('code', {}, `kubectl --kubeconfig ${f.filename} get ns`),
        ),
      );
      opts.after?.();
    },
    { status, name: opts.name },
  );
}
