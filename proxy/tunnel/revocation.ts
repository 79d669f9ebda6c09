/**
 * Tunnels end with the right to hold them. A replica closes every tunnel of
 * a cluster it holds
 *  - when an admin revokes the cluster's agent: the revocation is announced
 *    on `kubegate_agent_revoked` at commit (proxy/clusters/revoke.ts), so
 *    every replica closes them within a notification's delivery;
 *  - when the cluster is disabled or deleted: the clusters table's trigger
 *    announces it on `kubegate_policy`, and the reloaded policy says so;
 *  - and, after every policy reload (also the one after the listening
 *    connection was lost, when a notification may have been missed), each
 *    open tunnel's certificate is checked again in the database: a tunnel
 *    whose certificate was revoked by an admin, expired, or whose cluster is
 *    gone or disabled is closed.
 * Closing is a destroy: open streams (watches, exec) end at once; the agent
 * redials and is refused by the serial check (listener.ts).
 */
import type { Logger } from '../../common/log.js';
import type { PolicyStore } from '../authz/policy-store.js';
import { certKey, type ClusterStore } from '../clusters/cluster-store.js';
import type { TunnelRegistry } from './registry.js';

export function closeTunnelsOnRevocation(deps: {
  policy: Pick<PolicyStore, 'onAgentRevoked' | 'onChange'>;
  registry: TunnelRegistry;
  clusters: Pick<ClusterStore, 'tunnelCertsAllowed'>;
  log: Logger;
}): void {
  const { registry, log } = deps;
  const close = (cluster: string, why: string) => {
    const closed = registry.closeCluster(cluster);
    if (closed.length) log.info({ cluster, tunnels: closed.length, why }, 'tunnels closed');
  };
  deps.policy.onAgentRevoked((cluster) => close(cluster, 'agent revoked'));
  let checking = false;
  let again = false;
  const recheck = async (): Promise<void> => {
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    try {
      const open = registry.tunnels();
      if (!open.length) return;
      const ok = await deps.clusters.tunnelCertsAllowed(
        open.map((t) => ({ cluster: t.cluster, serial: t.certSerial })),
      );
      for (const t of open) {
        if (ok.has(certKey(t.cluster, t.certSerial)) || t.session.destroyed) continue;
        log.info(
          { cluster: t.cluster, tunnel: t.id, serial: t.certSerial },
          'tunnel closed: its certificate was revoked or its cluster is gone or disabled',
        );
        t.session.destroy();
      }
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        'could not re-check the certificates of open tunnels',
      );
    } finally {
      checking = false;
      if (again) {
        again = false;
        void recheck();
      }
    }
  };
  deps.policy.onChange((state) => {
    for (const cluster of new Set(registry.tunnels().map((t) => t.cluster))) {
      const c = state.clusters.get(cluster);
      if (!c) close(cluster, 'cluster deleted');
      else if (c.disabled) close(cluster, 'cluster disabled');
    }
    void recheck();
  });
}
