/**
 * The data the central authorizer decides on.
 * A PolicySnapshot is immutable once built: the authorizer indexes it once and
 * reuses the index for every request, so build a new snapshot for each change.
 */
import type { PolicyRule } from './policy-rule.js';
import type { LabelSelector } from '../../common/kube-grammar.js';

/** Who is asking, as authentication resolved it. Robots are machine identities. */
export interface Identity {
  user: string;
  groups: string[];
  kind: 'user' | 'robot';
}

/** The cluster a request is for, with its labels for selector bindings. */
export interface ClusterRef {
  name: string;
  labels: Record<string, string>;
}

/**
 * Gives subjects a role on clusters chosen by name or selector, cluster-wide
 * (`namespaces: []`, like a ClusterRoleBinding) or in the listed namespaces
 * (like one RoleBinding per namespace), optionally until `expiresAt`.
 */
export interface Binding {
  id: string;
  subjects: { kind: 'Group' | 'User' | 'Robot'; name: string }[];
  role: string;
  /** Both absent matches no cluster; an empty selector `{}` matches every cluster. */
  clusters: { names?: string[]; selector?: LabelSelector };
  /** Empty = cluster-wide. */
  namespaces: string[];
  expiresAt?: Date | null;
  reason?: string;
}

export interface Role {
  name: string;
  rules: PolicyRule[];
}

export interface PolicySnapshot {
  roles: ReadonlyMap<string, Role>;
  bindings: readonly Binding[];
  /**
   * Users an admin deactivated: no binding applies to them, so the proxy
   * denies them and their JIT accounts lose every grant (and are deleted).
   */
  deactivatedUsers?: ReadonlySet<string>;
}

export interface Decision {
  allowed: boolean;
  /** Why, for audit and logs (never shown as the 403 body; see forbiddenMessage). */
  reason: string;
  /** The binding that allowed the request. */
  bindingId?: string;
  /** The role of that binding. */
  role?: string;
}
