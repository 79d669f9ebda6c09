/**
 * The serial check of accepted tunnels, batched. Each accept still asks the
 * database whether its certificate is known, unexpired and unrevoked, and
 * the answer is read by a query that starts after the accept asked: a
 * certificate revoked before its tunnel's handshake finished is refused,
 * exactly as with one query per tunnel. What changes is that the checks
 * arriving while a query runs share the next one. During a reconnect burst
 * (bench P11: 2,250 agents on one replica) one query per tunnel took up to
 * 32 of the replica's 10 pooled connections, which the policy check and the
 * audit log need; now it takes one, whatever the burst.
 */
import { certKey, type ClusterStore } from '../clusters/cluster-store.js';

/** Certificates checked in one query at most. */
const maxBatch = 500;

interface Pending {
  cluster: string;
  serial: string;
  resolve: (valid: boolean) => void;
  reject: (err: Error) => void;
}

export class SerialCheck {
  private pending: Pending[] = [];
  private running = false;

  constructor(private readonly clusters: Pick<ClusterStore, 'agentCertsValid'>) {}

  /** True when the certificate was issued by us for this cluster, is unexpired and not revoked. */
  valid(cluster: string, serial: string): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.pending.push({ cluster, serial, resolve, reject });
      if (!this.running) this.run();
    });
  }

  /** One query at a time; whoever asked meanwhile goes in the next one. */
  private run(): void {
    const batch = this.pending.splice(0, maxBatch);
    if (!batch.length) {
      this.running = false;
      return;
    }
    this.running = true;
    this.clusters.agentCertsValid(batch).then(
      (ok) => {
        for (const p of batch) p.resolve(ok.has(certKey(p.cluster, p.serial)));
        this.run();
      },
      (err: unknown) => {
        for (const p of batch) p.reject(err as Error);
        this.run();
      },
    );
  }
}
