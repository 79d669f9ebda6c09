/**
 * Just-in-time service accounts. Per user: a ServiceAccount in the agent's namespace,
 * content-addressed ClusterRoles from the central role rules, and a
 * ClusterRoleBinding (cluster-wide grants) or RoleBindings (namespaced
 * grants, only in namespaces that exist) — then a short-lived TokenRequest
 * token kept in memory only. The cluster's own RBAC thus enforces the same
 * rules again. Reconcile happens on the first request, whenever the grants
 * change, and at most a minute apart while in use; idle accounts are deleted.
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
  bindingName,
  clusterRoleName,
  kindLabel,
  lastUsedAnnotation,
  managedBy,
  roleHash,
  roleLabel,
  serviceAccountName,
  subjectLabels,
  userAnnotation,
  userKey,
  userLabel,
} from './names.js';
import { identityKey, type SubjectKind } from '../../common/identity-key.js';
import { toKubeRules, withinCeiling, type KubeRule } from './rules.js';

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

interface UserState {
  user: string;
  groups: string[];
  kind: SubjectKind;
  /** userKey(kind, user): the label value of its account and bindings. */
  key: string;
  account: string;
  digest: string;
  reconciledAt: number;
  token?: string;
  tokenRefreshAt: number;
  tokenExpiresAt: number;
  /** Last request served, in memory (every request). */
  lastUsed: number;
  /** When last use was last written to the ServiceAccount (throttled). */
  lastUsedWritten: number;
  chain: Promise<unknown>;
}

export interface Credential {
  token: string;
  /** `system:serviceaccount:<ns>:<name>`, for audit. */
  username: string;
}

/** Only objects carrying this label are ever listed for change or deletion. */
const managed = 'app.kubernetes.io/managed-by=kubegate';

const ignore =
  (...codes: number[]) =>
  (err: unknown) => {
    if (!codes.includes(statusCode(err) ?? -1)) throw err;
  };

function digestOf(grants: TunnelGrant[]): string {
  const canon = grants
    .map((g) => `${g.role}|${[...g.namespaces].sort().join(',')}`)
    .sort()
    .join(';');
  return createHash('sha256').update(canon).digest('hex');
}

export interface JitStats {
  accounts: number;
  created: number;
  deleted: number;
  tokenRequests: number;
  reconcileErrors: number;
}

export class JitManager {
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

  constructor(private readonly deps: JitDeps) {}

  setRoles(roles: TunnelRoles): void {
    this.roles = { ...this.roles, ...roles };
  }

  /** Users with a live account on this agent (the proxy asks after policy changes). */
  knownUsers(): { user: string; groups: string[]; kind: 'user' | 'robot' }[] {
    return [...this.users.values()]
      .filter((u) => u.digest !== '')
      .map((u) => ({ user: u.user, groups: u.groups, kind: u.kind }));
  }

  /** The credential to forward `user`'s request with, reconciling first if needed. */
  async credentialFor(
    user: string,
    groups: string[],
    grants: TunnelGrant[],
    kind: 'user' | 'robot' = 'user',
  ): Promise<Credential> {
    if (grants.length === 0)
      throw new KgError(
        'KG_ERR_FORBIDDEN',
        `kubegate agent: user "${user}" has no grants on this cluster`,
      );
    const st = this.state(user, groups, kind);
    const digest = digestOf(grants);
    const stale = st.digest !== digest || Date.now() - st.reconciledAt > 60_000;
    if (stale || !st.token || Date.now() >= st.tokenRefreshAt)
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
    st.token = undefined;
    st.tokenRefreshAt = 0;
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
    const { core, rbac, namespace } = this.deps;
    const key = st.key;
    const labels = subjectLabels(st.kind, st.user);
    try {
      // 1. the ServiceAccount
      await core
        .createNamespacedServiceAccount({
          namespace,
          body: {
            metadata: {
              name: st.account,
              namespace,
              labels,
              annotations: {
                [userAnnotation]: st.user,
                [lastUsedAnnotation]: new Date().toISOString(),
              },
            },
            automountServiceAccountToken: false,
          },
        })
        .then(() => {
          this.stats.created++;
          this.deps.log.info({ user: st.user, account: st.account }, 'JIT account created');
        }, ignore(409));

      // 2. content-addressed ClusterRoles, 3. the bindings we want
      const wantCrb = new Set<string>();
      const wantRb = new Set<string>(); // `${ns}/${name}`
      const namespaceExists = new Map<string, boolean>();
      for (const g of grants) {
        const rules = this.roles[g.role];
        if (!rules)
          throw new KgError(
            'KG_ERR_UNAVAILABLE',
            `kubegate agent has not received role ${g.role} yet; retry`,
            { retryAfter: 1 },
          );
        const kubeRules = toKubeRules(rules);
        if (this.deps.ceiling && !withinCeiling(kubeRules, this.deps.ceiling)) {
          throw new KgError(
            'KG_ERR_FORBIDDEN',
            `kubegate agent refuses role ${g.role.split('@')[0]}: it grants more than this cluster's ceiling allows; ask an admin to narrow the binding`,
          );
        }
        const roleName = clusterRoleName(g.role);
        await rbac
          .createClusterRole({
            body: {
              metadata: { name: roleName, labels: { ...managedBy, [roleLabel]: roleHash(g.role) } },
              rules: kubeRules,
            },
          })
          .catch(ignore(409));
        const name = bindingName(st.kind, st.user, g.role);
        const subjects = [{ kind: 'ServiceAccount', name: st.account, namespace }];
        const roleRef = {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: roleName,
        };
        if (g.namespaces.length === 0) {
          wantCrb.add(name);
          await rbac
            .createClusterRoleBinding({ body: { metadata: { name, labels }, roleRef, subjects } })
            .catch(ignore(409));
          continue;
        }
        for (const ns of g.namespaces) {
          if (!namespaceExists.has(ns)) {
            // Never create namespaces: a grant in a namespace that does not exist waits for it.
            const exists = await core.readNamespace({ name: ns }).then(
              () => true,
              (err: unknown) => (statusCode(err) === 404 ? false : Promise.reject(err)),
            );
            namespaceExists.set(ns, exists);
          }
          if (!namespaceExists.get(ns)) continue;
          wantRb.add(`${ns}/${name}`);
          await rbac
            .createNamespacedRoleBinding({
              namespace: ns,
              body: { metadata: { name, namespace: ns, labels }, roleRef, subjects },
            })
            .catch(ignore(409));
        }
      }

      // 4. remove what the user no longer has
      const selector = `${managed},${userLabel}=${key}`;
      const crbs = await rbac.listClusterRoleBinding({ labelSelector: selector });
      for (const b of crbs.items) {
        if (!wantCrb.has(b.metadata!.name!))
          await rbac.deleteClusterRoleBinding({ name: b.metadata!.name! }).catch(ignore(404));
      }
      const rbs = await rbac.listRoleBindingForAllNamespaces({ labelSelector: selector });
      for (const b of rbs.items) {
        const id = `${b.metadata!.namespace}/${b.metadata!.name}`;
        if (!wantRb.has(id))
          await rbac
            .deleteNamespacedRoleBinding({
              name: b.metadata!.name!,
              namespace: b.metadata!.namespace!,
            })
            .catch(ignore(404));
      }
      st.digest = digest;
      st.reconciledAt = Date.now();
      this.stats.accounts = this.users.size;
    } catch (err) {
      this.stats.reconcileErrors++;
      if (err instanceof KgError) throw err;
      this.deps.log.warn({ user: st.user, status: statusCode(err) }, 'JIT reconcile failed');
      throw new KgError(
        'KG_ERR_UPSTREAM',
        `kubegate agent could not prepare the cluster identity for "${st.user}" (apiserver status ${statusCode(err) ?? 'none'}); check the agent's RBAC`,
        { cause: err },
      );
    }
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
      await this.refreshToken(st);
    } catch (err) {
      if (statusCode(err) !== 404) throw this.tokenError(st, err);
      this.deps.log.info(
        { user: st.user, account: st.account },
        'JIT account vanished; rebuilding',
      );
      st.digest = '';
      await this.reconcile(st, grants, digest);
      await this.refreshToken(st).catch((e: unknown) => Promise.reject(this.tokenError(st, e)));
    }
  }

  private tokenError(st: UserState, err: unknown): KgError {
    if (err instanceof KgError) return err;
    this.stats.reconcileErrors++;
    this.deps.log.warn({ user: st.user, status: statusCode(err) }, 'JIT TokenRequest failed');
    return new KgError(
      'KG_ERR_UPSTREAM',
      `kubegate agent could not get a token for the cluster identity of "${st.user}" (apiserver status ${statusCode(err) ?? 'none'}); retry, or check the agent's RBAC`,
      { cause: err },
    );
  }

  private async refreshToken(st: UserState): Promise<void> {
    if (st.token && Date.now() < st.tokenRefreshAt) return;
    const tr = await this.deps.core.createNamespacedServiceAccountToken({
      name: st.account,
      namespace: this.deps.namespace,
      body: { spec: { audiences: [], expirationSeconds: this.deps.tokenSeconds } },
    });
    this.stats.tokenRequests++;
    const token = tr.status?.token;
    if (!token) throw new KgError('KG_ERR_UPSTREAM', 'TokenRequest returned no token');
    const expires = tr.status?.expirationTimestamp
      ? new Date(tr.status.expirationTimestamp).getTime()
      : Date.now() + this.deps.tokenSeconds * 1000;
    st.token = token;
    st.tokenExpiresAt = expires;
    // Refresh with a fifth of the lifetime left, well before the apiserver would refuse it.
    st.tokenRefreshAt = Date.now() + ((expires - Date.now()) * 4) / 5;
  }

  private touch(st: UserState): void {
    const now = Date.now();
    st.lastUsed = now;
    // Written at most once a minute (a quarter of the idle time when that is shorter), so
    // another agent or a restarted one sees the account in use long before it looks idle.
    if (now - st.lastUsedWritten < Math.min(60_000, this.deps.idleMs / 4)) return;
    st.lastUsedWritten = now;
    // Last use lives on the ServiceAccount, so idle clean-up survives agent restarts.
    this.deps.core
      .patchNamespacedServiceAccount(
        {
          name: st.account,
          namespace: this.deps.namespace,
          body: {
            metadata: { annotations: { [lastUsedAnnotation]: new Date(now).toISOString() } },
          },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
      .catch((err: unknown) =>
        this.deps.log.debug({ status: statusCode(err) }, 'could not record last use'),
      );
  }

  /** Delete a subject's account and bindings (idle, revoked or deactivated). */
  async removeUser(kind: SubjectKind, user: string, why: string): Promise<void> {
    // Keep the entry (a request may be queued behind this removal on the same
    // chain); forget what it held, so the next request reconciles from scratch.
    const st = this.users.get(identityKey(kind, user));
    if (st) {
      st.digest = '';
      st.token = undefined;
      st.tokenRefreshAt = 0;
      st.reconciledAt = 0;
    }
    await this.removeAccount(userKey(kind, user), serviceAccountName(kind, user));
    this.stats.deleted++;
    this.stats.accounts = [...this.users.values()].filter((u) => u.digest !== '').length;
    this.deps.log.info({ user, why, kind }, 'JIT account deleted');
  }

  /** Delete the bindings labelled with `key`, then the ServiceAccount `account`. */
  private async removeAccount(key: string, account: string): Promise<void> {
    const { core, rbac, namespace } = this.deps;
    const selector = `${managed},${userLabel}=${key}`;
    for (const b of (await rbac.listClusterRoleBinding({ labelSelector: selector })).items) {
      await rbac.deleteClusterRoleBinding({ name: b.metadata!.name! }).catch(ignore(404));
    }
    for (const b of (await rbac.listRoleBindingForAllNamespaces({ labelSelector: selector }))
      .items) {
      await rbac
        .deleteNamespacedRoleBinding({ name: b.metadata!.name!, namespace: b.metadata!.namespace! })
        .catch(ignore(404));
    }
    await core.deleteNamespacedServiceAccount({ name: account, namespace }).catch(ignore(404));
  }

  /** Delete idle accounts, orphaned bindings and unused ClusterRoles. Only kubegate-labelled objects are touched. */
  async cleanup(now = Date.now()): Promise<void> {
    const { core, rbac, namespace } = this.deps;
    const sas = await core.listNamespacedServiceAccount({
      namespace,
      labelSelector: `${managed},${userLabel}`,
    });
    const liveKeys = new Set<string>();
    for (const sa of sas.items) {
      const kindValue = sa.metadata?.labels?.[kindLabel];
      if (kindValue !== 'user' && kindValue !== 'robot') {
        // Legacy (named before the kind was part of the identity, or tampered
        // with): never used again, so deleted now with its bindings; the next
        // request of its owner builds the account under the new name.
        await this.removeAccount(sa.metadata!.labels![userLabel]!, sa.metadata!.name!);
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
    // Bindings whose account is gone (e.g. the agent stopped mid-reconcile).
    const crbs = await rbac.listClusterRoleBinding({ labelSelector: `${managed},${userLabel}` });
    const rbs = await rbac.listRoleBindingForAllNamespaces({
      labelSelector: `${managed},${userLabel}`,
    });
    const used = new Set<string>();
    for (const b of crbs.items) {
      if (!liveKeys.has(b.metadata!.labels![userLabel]!))
        await rbac.deleteClusterRoleBinding({ name: b.metadata!.name! }).catch(ignore(404));
      else used.add(b.roleRef.name);
    }
    for (const b of rbs.items) {
      if (!liveKeys.has(b.metadata!.labels![userLabel]!))
        await rbac
          .deleteNamespacedRoleBinding({
            name: b.metadata!.name!,
            namespace: b.metadata!.namespace!,
          })
          .catch(ignore(404));
      else used.add(b.roleRef.name);
    }
    // ClusterRoles no binding uses any more (a minute old at least, so a reconcile in flight keeps its role).
    for (const r of (await rbac.listClusterRole({ labelSelector: `${managed},${roleLabel}` }))
      .items) {
      const age = now - new Date(r.metadata?.creationTimestamp ?? now).getTime();
      if (!used.has(r.metadata!.name!) && age > 60_000)
        await rbac.deleteClusterRole({ name: r.metadata!.name! }).catch(ignore(404));
    }
  }

  /**
   * What this agent holds on its cluster now, read from the cluster itself
   * (labelled objects only) plus what it knows in memory: for the admin API.
   */
  async describe(): Promise<JitAccountsReport> {
    const { core, rbac, namespace } = this.deps;
    const sel = `${managed},${userLabel}`;
    const [sas, crbs, rbs] = await Promise.all([
      core.listNamespacedServiceAccount({ namespace, labelSelector: sel }),
      rbac.listClusterRoleBinding({ labelSelector: sel }),
      rbac.listRoleBindingForAllNamespaces({ labelSelector: sel }),
    ]);
    const bindings = new Map<string, JitAccountView['bindings']>();
    const add = (key: string | undefined, b: JitAccountView['bindings'][number]) => {
      if (!key) return;
      bindings.set(key, [...(bindings.get(key) ?? []), b]);
    };
    for (const b of crbs.items)
      add(b.metadata?.labels?.[userLabel], {
        kind: 'ClusterRoleBinding',
        name: b.metadata!.name!,
        clusterRole: b.roleRef.name,
      });
    for (const b of rbs.items)
      add(b.metadata?.labels?.[userLabel], {
        kind: 'RoleBinding',
        namespace: b.metadata!.namespace!,
        name: b.metadata!.name!,
        clusterRole: b.roleRef.name,
      });
    const iso = (ms: number) => (ms > 0 ? new Date(ms).toISOString() : undefined);
    const accounts = sas.items.map((sa): JitAccountView => {
      const user = sa.metadata?.annotations?.[userAnnotation];
      const kindValue = sa.metadata?.labels?.[kindLabel];
      const kind = kindValue === 'robot' || kindValue === 'user' ? kindValue : undefined;
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
