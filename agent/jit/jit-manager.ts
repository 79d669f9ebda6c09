/**
 * Just-in-time service accounts, per subject: when to reconcile the
 * account's objects (reconcile.ts) and fetch its token (credentials.ts) — on
 * the first request, whenever the grants change, and at most a minute apart
 * while in use — with one chain per subject so concurrent requests and
 * removals do not interleave; last use tracked, idle accounts deleted.
 */
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type {
  GrantUpdate,
  JitAccountView,
  JitAccountsReport,
  TunnelGrant,
  TunnelRoles,
} from '../../common/tunnel-protocol.js';
import { statusCode } from '../kube-client.js';
import {
  kindLabel,
  lastUsedAnnotation,
  serviceAccountName,
  userAnnotation,
  userKey,
  userLabel,
} from './names.js';
import { identityKey, isSubjectKind, type SubjectKind } from '../../common/identity-key.js';
import type { KubeRule } from './rules.js';
import { JitObjects, type AccountRef } from './reconcile.js';
import { TokenIssuer, type Credential, type TokenSlot } from './credentials.js';

export interface JitDeps {
  core: k8s.CoreV1Api;
  rbac: k8s.RbacAuthorizationV1Api;
  namespace: string;
  idleMs: number;
  /** TokenRequest lifetime; the apiserver's minimum is 600 s. */
  tokenSeconds: number;
  /** Optional: grants beyond these rules are refused. */
  ceiling?: KubeRule[];
  log: Logger;
}

interface UserState extends AccountRef, TokenSlot {
  groups: string[];
  digest: string;
  reconciledAt: number;
  /** Last request served, in memory (every request). */
  lastUsed: number;
  /** When last use was last written to the ServiceAccount (throttled). */
  lastUsedWritten: number;
  chain: Promise<unknown>;
}

/**
 * Digests of grant lists already seen: forward.ts hands the same decoded
 * array for the same `kg-grants` value, so a user's requests hash once.
 */
const digests = new WeakMap<TunnelGrant[], string>();

export function digestOf(grants: TunnelGrant[]): string {
  const known = digests.get(grants);
  if (known !== undefined) return known;
  const d = canonicalDigest(grants);
  digests.set(grants, d);
  return d;
}

function canonicalDigest(grants: TunnelGrant[]): string {
  const canon = grants
    .map((g) => `${g.role}|${[...g.namespaces].sort().join(',')}`)
    .sort()
    .join(';');
  return createHash('sha256').update(canon).digest('hex');
}

/** A subject with a live account here. */
export interface KnownUser {
  user: string;
  groups: string[];
  kind: SubjectKind;
}

/**
 * What the rest of the agent uses of just-in-time accounts: the manager
 * itself, or in a worker of several (jit-ipc.ts) the primary's manager
 * reached over IPC.
 */
export interface JitAccess {
  setRoles(roles: TunnelRoles): void;
  knownUsers(): KnownUser[] | Promise<KnownUser[]>;
  credentialFor(
    user: string,
    groups: string[],
    grants: TunnelGrant[],
    kind?: SubjectKind,
  ): Promise<Credential>;
  applyUpdate(u: GrantUpdate): Promise<void>;
  invalidate(kind: SubjectKind, user: string): void;
  describe(): Promise<JitAccountsReport>;
}

export interface JitStats {
  accounts: number;
  created: number;
  deleted: number;
  tokenRequests: number;
  reconcileErrors: number;
}

export class JitManager implements JitAccess {
  private roles: TunnelRoles = {};
  /** By identityKey(kind, user): a robot and a user of one name are two entries. */
  private readonly users = new Map<string, UserState>();
  private cleanupTimer: NodeJS.Timeout | undefined;
  readonly stats: JitStats = {
    accounts: 0,
    created: 0,
    deleted: 0,
    tokenRequests: 0,
    reconcileErrors: 0,
  };

  private readonly objects: JitObjects;
  private readonly tokens: TokenIssuer;

  constructor(private readonly deps: JitDeps) {
    this.objects = new JitObjects({ ...deps, stats: this.stats });
    this.tokens = new TokenIssuer({ ...deps, stats: this.stats });
  }

  setRoles(roles: TunnelRoles): void {
    this.roles = { ...this.roles, ...roles };
  }

  /** Users with a live account on this agent (the proxy asks after policy changes). */
  knownUsers(): KnownUser[] {
    return [...this.users.values()]
      .filter((u) => u.digest !== '')
      .map((u) => ({ user: u.user, groups: u.groups, kind: u.kind }));
  }

  /** The credential to forward `user`'s request with, reconciling first if needed. */
  async credentialFor(
    user: string,
    groups: string[],
    grants: TunnelGrant[],
    kind: SubjectKind = 'user',
  ): Promise<Credential> {
    if (grants.length === 0)
      throw new KgError(
        'KG_ERR_FORBIDDEN',
        `kubegate agent: user "${user}" has no grants on this cluster`,
      );
    const st = this.state(user, groups, kind);
    const digest = digestOf(grants);
    const stale = st.digest !== digest || Date.now() - st.reconciledAt > 60_000;
    if (stale || !this.tokens.fresh(st))
      await this.serial(st, () => this.prepare(st, grants, digest));
    this.touch(st);
    return {
      token: st.token!,
      username: `system:serviceaccount:${this.deps.namespace}:${st.account}`,
    };
  }

  /** A pushed grant change: update bindings now; no grants → delete the account. */
  async applyUpdate(u: GrantUpdate): Promise<void> {
    const st = this.users.get(identityKey(u.kind ?? 'user', u.user));
    if (!st) return; // no account here: the next request reconciles
    st.groups = u.groups;
    const digest = digestOf(u.grants);
    if (u.grants.length === 0) {
      await this.serial(st, () => this.removeUser(st.kind, st.user, 'grants revoked'));
      return;
    }
    if (digest !== st.digest) await this.serial(st, () => this.reconcile(st, u.grants, digest));
  }

  /** The apiserver refused the account's token (deleted or expired): rebuild on the next request. */
  invalidate(kind: SubjectKind, user: string): void {
    const st = this.users.get(identityKey(kind, user));
    if (!st) return;
    st.digest = '';
    this.tokens.forget(st);
  }

  private state(user: string, groups: string[], kind: SubjectKind): UserState {
    const id = identityKey(kind, user);
    let st = this.users.get(id);
    if (!st) {
      st = {
        user,
        groups,
        kind,
        key: userKey(kind, user),
        account: serviceAccountName(kind, user),
        digest: '',
        reconciledAt: 0,
        tokenRefreshAt: 0,
        tokenExpiresAt: 0,
        lastUsed: 0,
        lastUsedWritten: 0,
        chain: Promise.resolve(),
      };
      this.users.set(id, st);
    }
    st.groups = groups;
    return st;
  }

  /** Run `fn` after any reconcile already under way for this user: concurrent first requests create things once. */
  private serial<T>(st: UserState, fn: () => Promise<T>): Promise<T> {
    const next = st.chain.then(fn, fn);
    st.chain = next.catch(() => undefined);
    return next;
  }

  private async reconcile(st: UserState, grants: TunnelGrant[], digest: string): Promise<void> {
    if (st.digest === digest && Date.now() - st.reconciledAt <= 60_000) return; // done by a racing request
    await this.objects.reconcile(st, grants, (role) => this.roles[role]);
    st.digest = digest;
    st.reconciledAt = Date.now();
    this.stats.accounts = this.users.size;
  }

  /**
   * Reconcile (if needed) and fetch a token in one step of the user's chain,
   * so a removal queued on the chain cannot fall between the two. An account
   * deleted behind our back (idle clean-up on another agent, an admin) makes
   * the TokenRequest 404: rebuild once and ask again.
   */
  private async prepare(st: UserState, grants: TunnelGrant[], digest: string): Promise<void> {
    await this.reconcile(st, grants, digest);
    try {
      await this.tokens.refresh(st.account, st);
    } catch (err) {
      if (statusCode(err) !== 404) throw this.tokens.error(st.user, err);
      this.deps.log.info(
        { user: st.user, account: st.account },
        'JIT account vanished; rebuilding',
      );
      st.digest = '';
      await this.reconcile(st, grants, digest);
      await this.tokens
        .refresh(st.account, st)
        .catch((e: unknown) => Promise.reject(this.tokens.error(st.user, e)));
    }
  }

  private touch(st: UserState): void {
    const now = Date.now();
    st.lastUsed = now;
    // Written at most once a minute (a quarter of the idle time when that is shorter), so
    // another agent or a restarted one sees the account in use long before it looks idle.
    if (now - st.lastUsedWritten < Math.min(60_000, this.deps.idleMs / 4)) return;
    st.lastUsedWritten = now;
    // Last use lives on the ServiceAccount, so idle clean-up survives agent restarts.
    this.objects.recordLastUse(st.account, now);
  }

  /** Delete a subject's account and bindings (idle, revoked or deactivated). */
  async removeUser(kind: SubjectKind, user: string, why: string): Promise<void> {
    // Keep the entry (a request may be queued behind this removal on the same
    // chain); forget what it held, so the next request reconciles from scratch.
    const st = this.users.get(identityKey(kind, user));
    if (st) {
      st.digest = '';
      this.tokens.forget(st);
      st.reconciledAt = 0;
    }
    await this.objects.removeAccount(userKey(kind, user), serviceAccountName(kind, user));
    this.stats.deleted++;
    this.stats.accounts = [...this.users.values()].filter((u) => u.digest !== '').length;
    this.deps.log.info({ user, why, kind }, 'JIT account deleted');
  }

  /** Delete idle accounts, orphaned bindings and unused ClusterRoles. Only kubegate-labelled objects are touched. */
  async cleanup(now = Date.now()): Promise<void> {
    const liveKeys = new Set<string>();
    for (const sa of await this.objects.accounts()) {
      const kindValue = sa.metadata?.labels?.[kindLabel];
      if (!isSubjectKind(kindValue)) {
        // Legacy (named before the kind was part of the identity, or tampered
        // with): never used again, so deleted now with its bindings; the next
        // request of its owner builds the account under the new name.
        await this.objects.removeAccount(sa.metadata!.labels![userLabel]!, sa.metadata!.name!);
        this.stats.deleted++;
        this.deps.log.info(
          { account: sa.metadata!.name, user: sa.metadata?.annotations?.[userAnnotation] },
          'legacy JIT account deleted (its name did not carry the subject kind)',
        );
        continue;
      }
      const kind: SubjectKind = kindValue;
      const user = sa.metadata?.annotations?.[userAnnotation];
      const id = user === undefined ? undefined : identityKey(kind, user);
      const last = Date.parse(sa.metadata?.annotations?.[lastUsedAnnotation] ?? '');
      const inMemory = id ? this.users.get(id) : undefined;
      // In-memory last use is exact; the annotation is only written now and then.
      const lastUse = Math.max(Number.isNaN(last) ? 0 : last, inMemory?.lastUsed ?? 0);
      if (user && id && now - lastUse > this.deps.idleMs) {
        const st = this.users.get(id);
        await (st
          ? this.serial(st, () => this.removeUser(kind, user, 'idle'))
          : this.removeUser(kind, user, 'idle'));
        if (this.users.get(id)?.digest === '') this.users.delete(id);
      } else if (sa.metadata?.labels?.[userLabel]) liveKeys.add(sa.metadata.labels[userLabel]);
    }
    // Bindings whose account is gone, and ClusterRoles no binding uses any more.
    await this.objects.sweepOrphans(liveKeys, now);
  }

  /**
   * What this agent holds on its cluster now, read from the cluster itself
   * (labelled objects only) plus what it knows in memory: for the admin API.
   */
  async describe(): Promise<JitAccountsReport> {
    const { namespace } = this.deps;
    const inv = await this.objects.inventory();
    const bindings = new Map<string, JitAccountView['bindings']>();
    const add = (key: string | undefined, b: JitAccountView['bindings'][number]) => {
      if (!key) return;
      bindings.set(key, [...(bindings.get(key) ?? []), b]);
    };
    for (const b of inv.clusterBindings)
      add(b.metadata?.labels?.[userLabel], {
        kind: 'ClusterRoleBinding',
        name: b.metadata!.name!,
        clusterRole: b.roleRef.name,
      });
    for (const b of inv.roleBindings)
      add(b.metadata?.labels?.[userLabel], {
        kind: 'RoleBinding',
        namespace: b.metadata!.namespace!,
        name: b.metadata!.name!,
        clusterRole: b.roleRef.name,
      });
    const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : undefined);
    const accounts = inv.accounts.map((sa): JitAccountView => {
      const user = sa.metadata?.annotations?.[userAnnotation];
      const kindValue = sa.metadata?.labels?.[kindLabel];
      const kind = isSubjectKind(kindValue) ? kindValue : undefined;
      const st = user && kind ? this.users.get(identityKey(kind, user)) : undefined;
      const last = Math.max(
        Date.parse(sa.metadata?.annotations?.[lastUsedAnnotation] ?? '') || 0,
        st?.lastUsed ?? 0,
      );
      return {
        user,
        kind,
        serviceAccount: `system:serviceaccount:${namespace}:${sa.metadata!.name!}`,
        createdAt: sa.metadata?.creationTimestamp
          ? new Date(sa.metadata.creationTimestamp).toISOString()
          : undefined,
        lastUsedAt: iso(last),
        idleExpiresAt: iso(last > 0 ? last + this.deps.idleMs : 0),
        tokenExpiresAt: st?.token ? iso(st.tokenExpiresAt) : undefined,
        bindings: (bindings.get(sa.metadata?.labels?.[userLabel] ?? '') ?? []).sort((a, b) =>
          `${a.namespace ?? ''}/${a.name}`.localeCompare(`${b.namespace ?? ''}/${b.name}`),
        ),
      };
    });
    accounts.sort((a, b) => (a.user ?? a.serviceAccount).localeCompare(b.user ?? b.serviceAccount));
    return {
      mode: 'jit',
      namespace,
      idleSeconds: Math.round(this.deps.idleMs / 1000),
      accounts,
      stats: { ...this.stats },
    };
  }

  startCleanup(everyMs: number): void {
    const run = () =>
      this.cleanup().catch((err: unknown) =>
        this.deps.log.warn(
          { status: statusCode(err), err: (err as Error).message },
          'JIT clean-up failed',
        ),
      );
    void run();
    this.cleanupTimer = setInterval(run, everyMs);
    this.cleanupTimer.unref();
  }

  stop(): void {
    clearInterval(this.cleanupTimer);
  }
}
