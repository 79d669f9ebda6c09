/**
 * What a managed namespace looks like on its cluster, from its profile: the
 * Namespace's labels and annotations, and the objects every namespace of the
 * profile gets. The agent applies exactly this and reports anything that was
 * not so (agent/namespaces/). Pure.
 */
import type { ManagedObject, NamespaceDesired } from '../../common/tunnel-protocol.js';
import type { NamespaceProfile } from './profile-spec.js';

export interface DesiredInput {
  name: string;
  profile: NamespaceProfile;
  owner: string;
  retire?: boolean;
}

/** Names of the objects kubegate keeps in every managed namespace. */
const objectNames = {
  quota: 'kubegate-quota',
  limits: 'kubegate-limits',
  denyIngress: 'kubegate-default-deny',
  sameNamespace: 'kubegate-allow-same-namespace',
} as const;

export function desiredNamespace(n: DesiredInput): NamespaceDesired {
  const p = n.profile;
  const labels = { ...p.labels, 'kubegate.dev/namespace-profile': p.name };
  const objects: ManagedObject[] = [];
  if (Object.keys(p.quota).length)
    objects.push({
      apiVersion: 'v1',
      kind: 'ResourceQuota',
      metadata: { name: objectNames.quota },
      spec: { hard: { ...p.quota } },
    });
  if (p.limits.default || p.limits.defaultRequest || p.limits.max)
    objects.push({
      apiVersion: 'v1',
      kind: 'LimitRange',
      metadata: { name: objectNames.limits },
      spec: { limits: [{ type: 'Container', ...p.limits }] },
    });
  if (p.networkPolicy === 'default-deny') {
    // Nothing outside the namespace reaches its pods; pods inside reach each other.
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: objectNames.denyIngress },
      spec: { podSelector: {}, policyTypes: ['Ingress'] },
    });
    objects.push({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: objectNames.sameNamespace },
      spec: {
        podSelector: {},
        policyTypes: ['Ingress'],
        ingress: [{ from: [{ podSelector: {} }] }],
      },
    });
  }
  return {
    name: n.name,
    labels,
    annotations: { ...p.annotations, 'kubegate.dev/owner': n.owner },
    objects,
    ...(n.retire ? { retire: true } : {}),
  };
}
