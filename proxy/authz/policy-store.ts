/**
 * The live policy: every replica holds clusters, roles and bindings in
 * memory and reloads them when PostgreSQL announces a change (LISTEN
 * kubegate_policy), so an admin's edit is enforced everywhere within a
 * second. The same connection carries token revocations (kubegate_tokens).
 *
 * Fail closed: a replica that cannot confirm it is current — the listening
 * connection has not answered a heartbeat within `staleAfterMs` — refuses
 * to authorize (503 + Retry-After) until it has reconnected and reloaded.
 */
import pg from 'pg';
import type { Pool } from '../db/pool.js';
import type { Logger } from '../../common/log.js';
import { KgError } from '../../common/errors.js';
import type { DbHealth } from '../db/health.js';
import {
  inTransaction,
  inTransactionOn,
  type Queryable,
  type TransactionOptions,
} from '../db/query.js';
import { builtinRoles } from './builtin-roles.js';
import type { ClusterRef, PolicySnapshot, Role } from './types.js';
import type { PolicyRule } from './policy-rule.js';
import type { BindingPolicyRow } from '../rbac/records.js';
import { Rerun } from '../../common/rerun.js';

export interface PolicyCluster extends ClusterRef {
  disabled: boolean;
}

export interface PolicyState {
  snapshot: PolicySnapshot;
  clusters: ReadonlyMap<string, PolicyCluster>;
  loadedAt: Date;
}

export interface PolicyStoreOptions {
  pool: Pool;
  databaseUrl: string;
  /** Refuse to authorize when the policy could not be confirmed for this long. */
  staleAfterMs: number;
  /** Heartbeat on the listening connection. */
  heartbeatMs?: number;
  /** Fed by the heartbeat: a heartbeat overdue marks the database suspect. */
  health?: DbHealth;
  log: Logger;
}

/** Every query of one load sees the same snapshot, and a load never writes. */
const snapshotRead: TransactionOptions = { isolation: 'repeatable read', readOnly: true };

/**
 * Load the whole policy in one consistent read: a REPEATABLE READ, READ ONLY
 * transaction, so a binding is never read without the role or cluster it
 * names having been read at the same moment. On a pool, an outage becomes a
 * 503 (db/query.ts); on the policy listener's own connection, errors come
 * back as pg gave them (PolicyStore logs them and fails closed once stale).
 */
export async function loadPolicy(db: Pool | Queryable): Promise<PolicyState> {
  return db instanceof pg.Pool
    ? inTransaction(db, readPolicy, snapshotRead)
    : inTransactionOn(db, readPolicy, snapshotRead);
}

/** The four reads, one after another: a connection runs one query at a time. */
async function readPolicy(db: Queryable): Promise<PolicyState> {
  const clusters = await db.query<{
    name: string;
    labels: Record<string, string>;
    disabled: boolean;
  }>('SELECT name, labels, disabled FROM clusters');
  const roles = await db.query<{ name: string; rules: PolicyRule[] }>(
    'SELECT name, rules FROM roles',
  );
  const bindings = await db.query<BindingPolicyRow>(
    'SELECT id, subjects, role, cluster_names, cluster_selector, namespaces, expires_at, reason FROM bindings',
  );
  const inactive = await db.query<{ username: string }>(
    'SELECT username FROM users WHERE NOT active',
  );
  const roleMap = new Map<string, Role>();
  for (const r of builtinRoles) roleMap.set(r.name, { name: r.name, rules: r.rules });
  for (const r of roles.rows)
    if (!roleMap.has(r.name)) roleMap.set(r.name, { name: r.name, rules: r.rules });
  return {
    snapshot: {
      roles: roleMap,
      bindings: bindings.rows.map((b) => ({
        id: b.id,
        subjects: b.subjects,
        role: b.role,
        clusters: {
          ...(b.cluster_names.length ? { names: b.cluster_names } : {}),
          ...(b.cluster_selector ? { selector: b.cluster_selector } : {}),
        },
        namespaces: b.namespaces,
        expiresAt: b.expires_at,
        reason: b.reason,
      })),
      deactivatedUsers: new Set(inactive.rows.map((u) => u.username)),
    },
    clusters: new Map(
      clusters.rows.map((c) => [c.name, { name: c.name, labels: c.labels, disabled: c.disabled }]),
    ),
    loadedAt: new Date(),
  };
}

export class PolicyStore {
  private state: PolicyState | undefined;
  private confirmedAt = 0;
  private client: pg.Client | undefined;
  private stopped = false;
  private busy = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly reloads = new Rerun(
    () => this.reload(),
    (err) => this.opts.log.warn({ err: (err as Error).message }, 'policy reload failed'),
  );
  /** The last load queued: loads on the connection run one after another (see reload). */
  private loads: Promise<void> = Promise.resolve();
  private readonly tokenListeners: ((hash: string) => void)[] = [];
  private readonly changeListeners: ((s: PolicyState) => void)[] = [];
  private readonly agentRevokedListeners: ((cluster: string) => void)[] = [];

  constructor(private readonly opts: PolicyStoreOptions) {}

  /** Connect, load, listen. Resolves once a first snapshot is loaded. */
  async start(): Promise<void> {
    await this.connect();
    this.heartbeat = setInterval(() => void this.beat(), this.opts.heartbeatMs ?? 250);
    this.heartbeat.unref();
  }

  /** The current policy, or a 503 if this replica cannot vouch for it. */
  current(): PolicyState {
    if (!this.state || Date.now() - this.confirmedAt > this.opts.staleAfterMs) {
      throw new KgError(
        'KG_ERR_UNAVAILABLE',
        'kubegate cannot confirm its access policy is current (database unreachable); refusing to authorize. Retry shortly',
        { retryAfter: 2 },
      );
    }
    return this.state;
  }

  /** The last loaded policy even if stale (for read-only views that say so). */
  lastKnown(): PolicyState | undefined {
    return this.state;
  }

  onTokenRevoked(fn: (hash: string) => void): void {
    this.tokenListeners.push(fn);
  }

  /** An admin revoked a cluster's agent (proxy/clusters/revoke.ts): close its tunnels. */
  onAgentRevoked(fn: (cluster: string) => void): void {
    this.agentRevokedListeners.push(fn);
  }

  onChange(fn: (s: PolicyState) => void): void {
    this.changeListeners.push(fn);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    await this.client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.opts.databaseUrl,
      connectionTimeoutMillis: 3000,
      query_timeout: 3000,
      application_name: 'kubegate-policy',
    });
    client.on('error', (err) => {
      this.opts.log.warn({ err: err.message }, 'policy connection lost');
      if (this.client === client) this.client = undefined;
    });
    client.on('end', () => {
      if (this.client === client) this.client = undefined;
    });
    client.on('notification', (n) => {
      if (n.channel === 'kubegate_tokens' && n.payload)
        for (const fn of this.tokenListeners) fn(n.payload);
      else if (n.channel === 'kubegate_policy') this.scheduleReload();
      else if (n.channel === 'kubegate_agent_revoked' && n.payload)
        for (const fn of this.agentRevokedListeners) fn(n.payload);
    });
    try {
      await client.connect();
      await client.query('LISTEN kubegate_policy');
      await client.query('LISTEN kubegate_tokens');
      await client.query('LISTEN kubegate_agent_revoked');
      this.client = client;
      // Listen first, then load: a change between the two is then never missed.
      await this.reload();
    } catch (err) {
      if (this.client === client) this.client = undefined;
      void client.end().catch(() => undefined);
      throw err;
    }
  }

  private scheduleReload(): void {
    this.reloads.request();
  }

  /**
   * Load a snapshot and install it. A load is a transaction on the listening
   * connection, so two must never overlap there (they would share one
   * transaction): the load after connecting and one a notification asks for
   * wait for each other, and install their snapshots in order.
   */
  private reload(): Promise<void> {
    const load = this.loads.then(() => this.loadNow());
    this.loads = load.catch(() => undefined);
    return load;
  }

  private async loadNow(): Promise<void> {
    const client = this.client;
    if (!client) throw new Error('no policy connection');
    const started = Date.now();
    const state = await loadPolicy(client);
    this.state = state;
    this.confirmedAt = started;
    for (const fn of this.changeListeners) fn(state);
  }

  private async beat(): Promise<void> {
    if (this.stopped || this.busy) return;
    this.busy = true;
    try {
      await this.beatOnce();
    } finally {
      this.busy = false;
    }
  }

  private async beatOnce(): Promise<void> {
    const health = this.opts.health;
    if (!this.client) {
      health?.probeSent();
      try {
        await this.connect();
        health?.answered();
        this.opts.log.info('policy connection restored; snapshot reloaded');
      } catch {
        // still down; current() keeps failing closed once stale
        health?.failed();
      }
      return;
    }
    const sent = Date.now();
    health?.probeSent(sent);
    try {
      // Notifications queued before this round trip are delivered before its answer.
      await this.client.query('SELECT 1');
      health?.answered();
      if (!this.reloads.busy) this.confirmedAt = sent;
    } catch {
      health?.failed();
      const c = this.client;
      this.client = undefined;
      // Not awaited: ending a connection to a hung server waits for the server.
      void c?.end().catch(() => undefined);
    }
  }
}
