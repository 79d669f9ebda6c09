/**
 * What the RBAC admin surface returns: the `Role` and `Binding` shapes the
 * authorizer decides on (authz/types.ts) and the `Cluster` of cluster-store,
 * each with the metadata an admin needs — `version` for optimistic
 * concurrency, who created it and when. Dates serialise as RFC 3339 in JSON.
 */
import type { Binding, Role } from '../authz/types.js';
import type { LabelSelector } from '../../common/kube-grammar.js';
import { toCluster, type Cluster, type ClusterRow } from '../clusters/cluster-store.js';
import type { PolicyRule } from '../authz/policy-rule.js';

export interface RoleRecord extends Role {
  description: string;
  /** Built-ins (view, edit, admin, cluster-admin) live in code and are read-only. */
  builtin: boolean;
  /** 0 for built-ins, which are never stored. */
  version: number;
  createdBy: string;
  createdAt: Date | null;
  updatedAt: Date | null;
}

export interface BindingRecord extends Binding {
  expiresAt: Date | null;
  reason: string;
  version: number;
  createdBy: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface ClusterRecord extends Cluster {
  updatedAt: Date;
}

/** One row of the admin change log: who changed what, and how it looked before and after. */
export interface ChangeRecord {
  id: string;
  at: Date;
  actor: string;
  action: 'create' | 'update' | 'delete';
  /** One of loggedKinds (identity changes share the log); a string so new kinds still read. */
  kind: string;
  name: string;
  before: unknown;
  after: unknown;
}

/** What the RBAC store's changes are about. */
export type ChangeKind = 'role' | 'binding' | 'cluster';

/** Every kind in the shared admin change log (rbac/changes.ts): RBAC's, and identity's. */
export const loggedKinds = ['role', 'binding', 'cluster', 'user', 'robot', 'token'] as const;
export type LoggedKind = (typeof loggedKinds)[number];

/** A page of a list; `continue` is present when there is more, and opaque. */
export interface Page<T> {
  items: T[];
  continue?: string;
}

export interface PageRequest {
  /** 1..500; the API enforces the bound, the store clamps. */
  limit?: number;
  continue?: string;
}

export const defaultLimit = 100;
export const maxLimit = 500;

/** A page size within 1..maxLimit; the default when not a whole number. */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isInteger(limit)) return defaultLimit;
  return Math.min(Math.max(limit, 1), maxLimit);
}

// ---------------------------------------------------------------------------
// Rows as pg returns them, and their mapping.

export interface RoleRow {
  name: string;
  description: string;
  rules: PolicyRule[];
  version: number;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

/** A stored (custom) role row as a record. */
export const toRole = (r: RoleRow): RoleRecord => ({
  name: r.name,
  description: r.description,
  rules: r.rules,
  builtin: false,
  version: r.version,
  createdBy: r.created_by,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/** The columns of a bindings row that the authorizer decides on. */
export interface BindingPolicyRow {
  id: string;
  subjects: Binding['subjects'];
  role: string;
  cluster_names: string[];
  cluster_selector: LabelSelector | null;
  namespaces: string[];
  expires_at: Date | null;
  reason: string;
}

export interface BindingRow extends BindingPolicyRow {
  version: number;
  created_by: string;
  created_at: Date;
  updated_at: Date;
  /** created_at as PostgreSQL prints it, microseconds included: the exact cursor position. */
  cursor_at: string;
}

/** A bindings row as the authorizer's Binding plus metadata. */
export function toBinding(r: BindingRow): BindingRecord {
  // Absent, not empty, when unused: "both absent matches no cluster" (authz/types.ts).
  const clusters: Binding['clusters'] = {};
  if (r.cluster_names.length > 0) clusters.names = r.cluster_names;
  if (r.cluster_selector !== null) clusters.selector = r.cluster_selector;
  return {
    id: r.id,
    subjects: r.subjects,
    role: r.role,
    clusters,
    namespaces: r.namespaces,
    expiresAt: r.expires_at,
    reason: r.reason,
    version: r.version,
    createdBy: r.created_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A clusters row as cluster-store's Cluster plus updatedAt. */
export const toClusterRecord = (r: ClusterRow): ClusterRecord => ({
  ...toCluster(r),
  updatedAt: r.updated_at,
});
