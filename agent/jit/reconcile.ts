/**
 * The Kubernetes objects of JIT accounts: per subject a ServiceAccount in the
 * agent's namespace, content-addressed ClusterRoles from the central role
 * rules, and a ClusterRoleBinding (cluster-wide grants) or RoleBindings
 * (namespaced grants, only in namespaces that exist). The cluster's own RBAC
 * thus enforces the same rules again. Only objects carrying kubegate's
 * managed-by label are ever listed for change or deletion. When to do any of
 * this (first request, grant change, idle) is decided by the account manager.
 */
import * as k8s from '@kubernetes/client-node';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { TunnelGrant, TunnelRule } from '../../common/tunnel-protocol.js';
import type { SubjectKind } from '../../common/identity-key.js';
import { statusCode } from '../kube-client.js';
import {
  bindingName,
  clusterRoleName,
  lastUsedAnnotation,
  managedBy,
  roleHash,
  roleLabel,
  subjectLabels,
  userAnnotation,
  userLabel,
} from './names.js';
import { toKubeRules, withinCeiling, type KubeRule } from './rules.js';

/** Only objects carrying this label are ever listed for change or deletion. */
const managed = 'app.kubernetes.io/managed-by=kubegate';

const ignore =
  (...codes: number[]) =>
  (err: unknown) => {
    if (!codes.includes(statusCode(err) ?? -1)) throw err;
  };

/** One subject's account: who, the label value of its objects, the ServiceAccount's name. */
export interface AccountRef {
  kind: SubjectKind;
  user: string;
  /** userKey(kind, user): the label value of its account and bindings. */
  key: string;
  account: string;
}

export interface JitObjectsDeps {
  core: k8s.CoreV1Api;
  rbac: k8s.RbacAuthorizationV1Api;
  namespace: string;
  /** Optional: grants beyond these rules are refused. */
  ceiling?: KubeRule[];
  log: Logger;
  /** Running totals, shared with the account manager. */
  stats: { created: number; reconcileErrors: number };
}

export class JitObjects {
  constructor(private readonly deps: JitObjectsDeps) {}

  /**
   * Make the cluster hold exactly `grants` for the account: create its
   * ServiceAccount, roles and bindings where missing, delete bindings it no
   * longer has. `roleRules` looks up the rules of a role as pushed by the
   * proxy (read as each grant comes, so roles that arrive meanwhile count).
   * Apiserver failures become a KG_ERR_UPSTREAM naming the user.
   */
  async reconcile(
    a: AccountRef,
    grants: TunnelGrant[],
    roleRules: (role: string) => readonly TunnelRule[] | undefined,
  ): Promise<void> {
    const { core, rbac, namespace } = this.deps;
    const labels = subjectLabels(a.kind, a.user);
    try {
      // 1. the ServiceAccount
      await core
        .createNamespacedServiceAccount({
          namespace,
          body: {
            metadata: {
              name: a.account,
              namespace,
              labels,
              annotations: {
                [userAnnotation]: a.user,
                [lastUsedAnnotation]: new Date().toISOString(),
              },
            },
            automountServiceAccountToken: false,
          },
        })
        .then(() => {
          this.deps.stats.created++;
          this.deps.log.info({ user: a.user, account: a.account }, 'JIT account created');
        }, ignore(409));

      // 2. content-addressed ClusterRoles, 3. the bindings we want
      const wantCrb = new Set<string>();
      const wantRb = new Set<string>(); // `${ns}/${name}`
      const namespaceExists = new Map<string, boolean>();
      for (const g of grants) {
        const rules = roleRules(g.role);
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
        const name = bindingName(a.kind, a.user, g.role);
        const subjects = [{ kind: 'ServiceAccount', name: a.account, namespace }];
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
      const selector = `${managed},${userLabel}=${a.key}`;
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
    } catch (err) {
      this.deps.stats.reconcileErrors++;
      if (err instanceof KgError) throw err;
      this.deps.log.warn({ user: a.user, status: statusCode(err) }, 'JIT reconcile failed');
      throw new KgError(
        'KG_ERR_UPSTREAM',
        `kubegate agent could not prepare the cluster identity for "${a.user}" (apiserver status ${statusCode(err) ?? 'none'}); check the agent's RBAC`,
        { cause: err },
      );
    }
  }

  /** Record last use on the ServiceAccount, so idle clean-up survives agent restarts. Best effort. */
  recordLastUse(account: string, at: number): void {
    this.deps.core
      .patchNamespacedServiceAccount(
        {
          name: account,
          namespace: this.deps.namespace,
          body: {
            metadata: { annotations: { [lastUsedAnnotation]: new Date(at).toISOString() } },
          },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      )
      .catch((err: unknown) =>
        this.deps.log.debug({ status: statusCode(err) }, 'could not record last use'),
      );
  }

  /** Delete the bindings labelled with `key`, then the ServiceAccount `account`. */
  async removeAccount(key: string, account: string): Promise<void> {
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

  /** The kubegate-managed JIT ServiceAccounts in the agent's namespace. */
  async accounts(): Promise<k8s.V1ServiceAccount[]> {
    const { core, namespace } = this.deps;
    const sas = await core.listNamespacedServiceAccount({
      namespace,
      labelSelector: `${managed},${userLabel}`,
    });
    return sas.items;
  }

  /**
   * Delete bindings whose account is gone (`liveKeys` are the label values of
   * the accounts kept; e.g. the agent stopped mid-reconcile), then ClusterRoles
   * no binding uses any more (a minute old at least, so a reconcile in flight
   * keeps its role).
   */
  async sweepOrphans(liveKeys: ReadonlySet<string>, now: number): Promise<void> {
    const { rbac } = this.deps;
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
    for (const r of (await rbac.listClusterRole({ labelSelector: `${managed},${roleLabel}` }))
      .items) {
      const age = now - new Date(r.metadata?.creationTimestamp ?? now).getTime();
      if (!used.has(r.metadata!.name!) && age > 60_000)
        await rbac.deleteClusterRole({ name: r.metadata!.name! }).catch(ignore(404));
    }
  }

  /** The managed accounts and their bindings, read in one go (for the admin report). */
  async inventory(): Promise<{
    accounts: k8s.V1ServiceAccount[];
    clusterBindings: k8s.V1ClusterRoleBinding[];
    roleBindings: k8s.V1RoleBinding[];
  }> {
    const { core, rbac, namespace } = this.deps;
    const sel = `${managed},${userLabel}`;
    const [sas, crbs, rbs] = await Promise.all([
      core.listNamespacedServiceAccount({ namespace, labelSelector: sel }),
      rbac.listClusterRoleBinding({ labelSelector: sel }),
      rbac.listRoleBindingForAllNamespaces({ labelSelector: sel }),
    ]);
    return { accounts: sas.items, clusterBindings: crbs.items, roleBindings: rbs.items };
  }
}
