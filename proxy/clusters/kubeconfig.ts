/**
 * The fleet kubeconfig: one context per cluster, `server:
 * <publicUrl>/k8s/<cluster>`, the proxy CA when private, one token user.
 * Plain kubectl, helm and ArgoCD read it; no exec plugin.
 */
import { stringify } from 'yaml';

export interface KubeconfigInput {
  publicUrl: string;
  clusters: string[];
  user: string;
  token: string;
  caPem?: string;
}

export function renderKubeconfig(input: KubeconfigInput): string {
  const base = input.publicUrl.replace(/\/+$/, '');
  const userName = `kubegate-${input.user}`;
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: input.clusters.map((name) => ({
      name,
      cluster: {
        server: `${base}/k8s/${name}`,
        ...(input.caPem
          ? { 'certificate-authority-data': Buffer.from(input.caPem).toString('base64') }
          : {}),
      },
    })),
    users: [{ name: userName, user: { token: input.token } }],
    contexts: input.clusters.map((name) => ({ name, context: { cluster: name, user: userName } })),
    'current-context': input.clusters[0] ?? '',
  };
  return stringify(doc, { lineWidth: 0 });
}
