/**
 * The live tunnels this replica holds, by cluster. A request picks the tunnel
 * with the fewest open streams, so load spreads across an agent's tunnels.
 */
import type { ClientHttp2Session } from 'node:http2';

export interface Tunnel {
  id: string;
  cluster: string;
  agentId: string;
  agentVersion: string;
  certSerial: string;
  connectedAt: Date;
  session: ClientHttp2Session;
  /** Streams currently open on this tunnel. */
  active: number;
  /** Set when the streams go through a peer replica (proxy/ha/peer-router.ts), not to an agent here. */
  replica?: string;
}

export class TunnelRegistry {
  private readonly byCluster = new Map<string, Tunnel[]>();
  /** When (performance.now()) each cluster last had its tunnels closed by `closeCluster`. */
  private readonly closedAt = new Map<string, number>();

  add(t: Tunnel): void {
    const list = this.byCluster.get(t.cluster) ?? [];
    list.push(t);
    this.byCluster.set(t.cluster, list);
  }

  remove(t: Tunnel): void {
    const list = this.byCluster.get(t.cluster);
    if (!list) return;
    const rest = list.filter((x) => x !== t);
    if (rest.length) this.byCluster.set(t.cluster, rest);
    else this.byCluster.delete(t.cluster);
  }

  /** The least-loaded usable tunnel for a cluster, or undefined. */
  pick(cluster: string): Tunnel | undefined {
    const list = this.byCluster.get(cluster);
    if (!list) return undefined;
    let best: Tunnel | undefined;
    for (const t of list) {
      // `closed` is also set when the agent sent GOAWAY (it is moving to another replica).
      if (t.session.closed || t.session.destroyed) continue;
      if (!best || t.active < best.active) best = t;
    }
    return best;
  }

  tunnels(cluster?: string): Tunnel[] {
    if (cluster) return [...(this.byCluster.get(cluster) ?? [])];
    return [...this.byCluster.values()].flat();
  }

  /**
   * Close (destroy) every tunnel of `cluster` held here: its agent was
   * revoked or the cluster disabled or deleted. Open streams end at once;
   * `closedSince` lets a tunnel still being accepted notice it too.
   */
  closeCluster(cluster: string): Tunnel[] {
    this.closedAt.set(cluster, performance.now());
    const list = this.tunnels(cluster);
    for (const t of list) t.session.destroy();
    return list;
  }

  /** Whether `closeCluster(cluster)` ran at or after `since` (performance.now()). */
  closedSince(cluster: string, since: number): boolean {
    return (this.closedAt.get(cluster) ?? -Infinity) >= since;
  }

  closeAll(): void {
    for (const t of this.tunnels()) t.session.destroy();
  }
}
