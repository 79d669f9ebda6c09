/**
 * What the fleet kubeconfig contains for one identity: a context for every
 * enabled cluster at least one of its bindings reaches right now, named by
 * cluster, sorted. Read from the database (loadPolicy) rather than a
 * replica's snapshot: downloads are rare, and this way the file matches the
 * policy committed at the moment it was made.
 */
import type { Pool } from '../db/pool.js';
import { loadPolicy } from '../authz/policy-store.js';
import { bindingsFor } from '../authz/authorizer.js';
import type { Identity } from '../authz/types.js';

export async function clustersFor(pool: Pool, who: Identity, now = new Date()): Promise<string[]> {
  // loadPolicy on a pool maps a database outage to a 503 itself.
  const policy = await loadPolicy(pool);
  return [...policy.clusters.values()]
    .filter((c) => !c.disabled && bindingsFor(policy.snapshot, who, c, now).length > 0)
    .map((c) => c.name)
    .sort();
}

/**
 * `kubegate-<user>[-<cluster>].kubeconfig` with the user name reduced to characters that
 * are safe in a file name and inside a quoted Content-Disposition parameter
 * on every OS (no quotes, slashes, control characters or leading dots).
 */
export function kubeconfigFilename(user: string, cluster?: string): string {
  const safe = user
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._-]+/, '')
    .slice(0, 64);
  // Cluster names are DNS-1123 labels already: safe as they are.
  return `kubegate-${safe || 'user'}${cluster ? `-${cluster}` : ''}.kubeconfig`;
}
