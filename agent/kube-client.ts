/**
 * The agent's own access to its apiserver, through @kubernetes/client-node,
 * authenticated with its ServiceAccount token file (re-read as it rotates).
 */
import * as k8s from '@kubernetes/client-node';

export interface KubeAccess {
  server: string;
  caFile: string;
  tokenFile: string;
}

export function kubeConfigFor(a: KubeAccess): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: a.server, caFile: a.caFile, skipTLSVerify: false }],
    users: [
      { name: 'agent', authProvider: { name: 'tokenFile', config: { tokenFile: a.tokenFile } } },
    ],
    contexts: [{ name: 'local', cluster: 'local', user: 'agent' }],
    currentContext: 'local',
  });
  return kc;
}

export function statusCode(err: unknown): number | undefined {
  return typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    typeof (err as { code: unknown }).code === 'number'
    ? (err as { code: number }).code
    : undefined;
}
