/**
 * Keeps every cluster's self-service namespaces as their profiles say. The
 * replica that holds a cluster's tunnel (and its lease in
 * namespace_reconcile_leases, so one replica at a time) sends the agent the
 * whole desired set whenever something is due: a namespace to create or
 * delete (checked every second, and at once when this replica made the
 * change), or a reconcile period gone by. What the agent answers moves each
 * namespace on: provisioning → ready (and the owner's binding is made, now
 * that the namespace exists for its just-in-time RoleBinding), retiring →
 * retired; objects it had to put back are drift, counted and audited.
 */
import type { Logger } from '../../common/log.js';
import { startPeriodic, type Periodic } from '../../common/periodic.js';
import type {
  NamespaceResult,
  NamespacesReply,
  NamespacesRequest,
} from '../../common/tunnel-protocol.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import type { Pool } from '../db/pool.js';
import { inTransaction, query } from '../db/query.js';
import { proxyMetrics } from '../metrics.js';
import type { Tunnel, TunnelRegistry } from '../tunnel/registry.js';
import { sendNamespaces } from './agent-call.js';
import { desiredNamespace } from './desired.js';
import type { NamespaceProfile } from './profile-spec.js';
import { bind, live, setStatus, type NamespaceRow } from './store.js';

export interface ReconcilerOptions {
  pool: Pool;
  registry: TunnelRegistry;
  replicaId: string;
  /** How often a ready namespace is checked against its profile (drift). */
  periodMs: number;
  log: Logger;
  /** The agent call; tests give a stand-in. */
  send?: (t: Tunnel, req: NamespacesRequest, timeoutMs: number) => Promise<NamespacesReply>;
}

/** Who the audit log says acted when the reconcile changes something. */
const actor = 'kubegate:namespaces';
/** An error the cluster will keep giving: the namespace fails at once instead of being retried. */
const lasting = /not managed by kubegate|is not a DNS label|is reserved/;
/** How long a namespace may stay in provisioning through passing errors before it fails. */
const provisioningGiveUpMs = 5 * 60_000;

type Row = NamespaceRow & { spec: NamespaceProfile };

export class NamespaceReconciler {
  private periodic: Periodic | undefined;
  private readonly leaseMs: number;
  private countedAt = 0;

  constructor(private readonly o: ReconcilerOptions) {
    this.leaseMs = Math.max(30_000, 3 * o.periodMs);
  }

  start(): void {
    this.periodic = startPeriodic('namespace reconcile', 1_000, () => this.pass(), this.o.log);
  }

  /** Something changed here: look now rather than at the next tick. */
  kick(): void {
    void this.periodic?.tick();
  }

  async stop(): Promise<void> {
    await this.periodic?.stop();
  }

  private async pass(): Promise<void> {
    await this.count();
    // Tunnels held by this replica (not routed through a peer).
    const local = [
      ...new Set(
        this.o.registry
          .tunnels()
          .filter((t) => !t.replica)
          .map((t) => t.cluster),
      ),
    ];
    if (!local.length) return;
    const due = await query<{ cluster: string }>(
      this.o.pool,
      `SELECT DISTINCT cluster FROM managed_namespaces
        WHERE cluster = ANY($1) AND (status IN ('provisioning', 'retiring')
          OR (status = 'ready' AND (reconciled_at IS NULL
              OR reconciled_at < now() - make_interval(secs => $2))))`,
      [local, this.o.periodMs / 1000],
    );
    for (const { cluster } of due) await this.reconcile(cluster);
  }

  private async count(): Promise<void> {
    if (Date.now() - this.countedAt < 10_000) return;
    this.countedAt = Date.now();
    proxyMetrics.observeNamespaces(
      await query<{ profile: string; status: string; n: number }>(
        this.o.pool,
        `SELECT profile, status, count(*)::int AS n FROM managed_namespaces
          WHERE ${live} GROUP BY profile, status`,
      ),
    );
  }

  private async lease(cluster: string): Promise<boolean> {
    const rows = await query(
      this.o.pool,
      `INSERT INTO namespace_reconcile_leases AS l (cluster, holder, until)
       VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (cluster) DO UPDATE SET holder = $2, until = EXCLUDED.until
        WHERE l.holder = $2 OR l.until < now()
       RETURNING holder`,
      [cluster, this.o.replicaId, this.leaseMs / 1000],
    );
    return rows.length > 0;
  }

  private async reconcile(cluster: string): Promise<void> {
    const tunnel = this.o.registry.pick(cluster);
    if (!tunnel || !(await this.lease(cluster))) return;
    const rows = await query<Row>(
      this.o.pool,
      `SELECT m.*, p.spec FROM managed_namespaces m JOIN namespace_profiles p ON p.name = m.profile
        WHERE m.cluster = $1 AND m.status IN ('provisioning', 'ready', 'retiring')
        ORDER BY m.created_at LIMIT 500`,
      [cluster],
    );
    if (!rows.length) return;
    const req: NamespacesRequest = {
      namespaces: rows.map((r) =>
        desiredNamespace({
          name: r.name,
          profile: r.spec,
          owner: r.owner,
          retire: r.status === 'retiring',
        }),
      ),
    };
    const send = this.o.send ?? sendNamespaces;
    let reply: NamespacesReply;
    try {
      reply = await send(tunnel, req, 30_000);
    } catch (err) {
      this.o.log.warn(
        { cluster, err: (err as Error).message },
        'namespace reconcile: the agent did not answer',
      );
      for (const r of rows.filter((r) => r.status === 'provisioning'))
        await setStatus(this.o.pool, r.id, {
          message: `waiting for the cluster's agent: ${(err as Error).message}`,
        });
      return;
    }
    for (const [i, row] of rows.entries()) {
      const result = reply.results[i];
      if (!result || result.name !== row.name) continue;
      await this.settle(row, result).catch((err: Error) =>
        this.o.log.error(
          { cluster, namespace: row.name, err: err.message },
          'namespace reconcile: could not record the outcome',
        ),
      );
    }
  }

  /** Record what the agent did for one namespace, in one transaction with its audit. */
  private async settle(row: Row, r: NamespaceResult): Promise<void> {
    const fixes = [
      ...(row.status === 'ready' && r.namespaceChange !== 'unchanged'
        ? [{ kind: 'Namespace', name: row.name, change: r.namespaceChange }]
        : []),
      ...r.changes,
    ];
    await inTransaction(this.o.pool, async (c) => {
      // The row may have moved on since it was read (retired, transferred): act on what it is now.
      const [now] = await query<NamespaceRow>(
        c,
        'SELECT * FROM managed_namespaces WHERE id = $1 FOR UPDATE',
        [row.id],
      );
      if (!now || now.status !== row.status) return;
      const event = (verb: string, detail: unknown, code = 200) =>
        recordAdminEvent(c, {
          actor,
          verb,
          resource: 'namespaces',
          name: row.name,
          cluster: row.cluster,
          detail,
          code,
          annotations: { 'kubegate.dev/namespace-profile': row.profile },
        });
      const error = r.error ?? 'the cluster refused it';
      const move = (f: Parameters<typeof setStatus>[2]) =>
        setStatus(c, row.id, { reconciled: true, ...f });
      if (r.state === 'error') {
        const old = Date.now() - row.created_at.getTime() > provisioningGiveUpMs;
        if (row.status !== 'provisioning' || !(lasting.test(error) || old)) {
          await move({ message: error });
          return;
        }
        await query(c, 'DELETE FROM bindings WHERE managed_namespace = $1', [row.id]);
        await move({ status: 'failed', message: error, ended: true });
        await event('fail', { error }, 409);
      } else if (row.status === 'provisioning' && r.state === 'ready') {
        await move({ status: 'ready', message: 'ready', ready: true });
        const [has] = await query(
          c,
          `SELECT 1 FROM bindings WHERE managed_namespace = $1 AND managed_as = 'owner'`,
          [row.id],
        );
        const owner = {
          kind: row.owner_kind === 'robot' ? 'Robot' : 'User',
          name: row.owner,
        } as const;
        if (!has) await bind(c, row, owner, row.spec.ownerRole, 'owner', actor);
        await event('provision', { profile: row.profile, owner: row.owner, objects: r.changes });
      } else if (row.status === 'retiring' && r.state === 'gone') {
        await move({ status: 'retired', message: 'deleted', ended: true });
        await event('retire', { profile: row.profile });
      } else if (row.status === 'ready' && fixes.length) {
        const put = fixes.map((f) => `${f.kind} ${f.name} (${f.change})`).join(', ');
        await move({ drift: fixes.length, message: `put back ${put}` });
        await event('correct', { changes: fixes });
        for (const f of fixes) proxyMetrics.observeNamespaceCorrected(row.profile, f.kind);
        this.o.log.info(
          { cluster: row.cluster, namespace: row.name, changes: fixes },
          'namespace drift put back',
        );
      } else await move({});
    });
  }
}
