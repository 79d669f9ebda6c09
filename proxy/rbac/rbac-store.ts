/**
 * The RBAC admin store: roles, bindings, clusters and the admin change log,
 * shared by the REST API and the CLI. Every method that changes something
 * validates untrusted input (every problem at once, KG_ERR_VALIDATION with
 * `problems`), honours optimistic concurrency when given the version the
 * caller read (KG_ERR_PRECONDITION_FAILED), and writes exactly one
 * admin_changes row in the same transaction as the change. The policy
 * tables' triggers NOTIFY the replicas, which reload within a second.
 *
 * The work is done per concept in roles.ts, bindings.ts, clusters.ts and
 * changes.ts; this class binds them to one pool.
 */
import type { Identity } from '../authz/types.js';
import type { Pool } from '../db/pool.js';
import * as bindings from './bindings.js';
import * as changes from './changes.js';
import * as clusters from './clusters.js';
import type {
  BindingRecord,
  ChangeRecord,
  ClusterRecord,
  Page,
  PageRequest,
  RoleRecord,
} from './records.js';
import * as roles from './roles.js';
import type { ChangeOptions } from './changes.js';

export type { BindingFilter } from './bindings.js';
export type { ChangeFilter, ChangeOptions } from './changes.js';
export type { RegisteredCluster } from './clusters.js';
export type * from './records.js';

export class RbacStore {
  constructor(private readonly pool: Pool) {}

  // Roles -------------------------------------------------------------------

  /** Built-ins and custom roles, by name. */
  listRoles(page: PageRequest = {}): Promise<Page<RoleRecord>> {
    return roles.listRoles(this.pool, page);
  }

  getRole(name: string): Promise<RoleRecord | undefined> {
    return roles.getRole(this.pool, name);
  }

  /** `spec`: `{name, description?, rules}`, untrusted. 409 if the name is taken. */
  createRole(spec: unknown, actor: string): Promise<RoleRecord> {
    return roles.createRole(this.pool, spec, actor);
  }

  /** `spec`: `{description?, rules}`; built-ins are read-only (409). */
  updateRole(name: string, spec: unknown, opts: ChangeOptions): Promise<RoleRecord> {
    return roles.updateRole(this.pool, name, spec, opts);
  }

  /** Refused (409, naming them) while bindings use the role. */
  deleteRole(name: string, opts: ChangeOptions): Promise<void> {
    return roles.deleteRole(this.pool, name, opts);
  }

  // Bindings ----------------------------------------------------------------

  /** Ordered by creation; filters combine with AND. */
  listBindings(filter: bindings.BindingFilter = {}): Promise<Page<BindingRecord>> {
    return bindings.listBindings(this.pool, filter);
  }

  getBinding(id: string): Promise<BindingRecord | undefined> {
    return bindings.getBinding(this.pool, id);
  }

  /** `spec`: `{subjects, role, clusters, namespaces?, expiresAt?, reason?}`, untrusted. */
  createBinding(spec: unknown, actor: string): Promise<BindingRecord> {
    return bindings.createBinding(this.pool, spec, actor);
  }

  updateBinding(id: string, spec: unknown, opts: ChangeOptions): Promise<BindingRecord> {
    return bindings.updateBinding(this.pool, id, spec, opts);
  }

  deleteBinding(id: string, opts: ChangeOptions): Promise<void> {
    return bindings.deleteBinding(this.pool, id, opts);
  }

  /** The bindings in effect for an identity on a registered cluster at `now`. */
  previewBindings(who: Identity, cluster: string, now = new Date()): Promise<BindingRecord[]> {
    return bindings.previewBindings(this.pool, who, cluster, now);
  }

  // Clusters ----------------------------------------------------------------

  listClusters(page: PageRequest = {}): Promise<Page<ClusterRecord>> {
    return clusters.listClusters(this.pool, page);
  }

  getCluster(name: string): Promise<ClusterRecord | undefined> {
    return clusters.getCluster(this.pool, name);
  }

  /** `spec`: `{name, labels?, description?}`; also mints the one-time bootstrap token. */
  createCluster(
    spec: unknown,
    actor: string,
    bootstrapTtlMs: number,
  ): Promise<clusters.RegisteredCluster> {
    return clusters.createCluster(this.pool, spec, actor, bootstrapTtlMs);
  }

  /** `patch`: JSON merge patch of `{labels, description, disabled}`. */
  updateCluster(name: string, patch: unknown, opts: ChangeOptions): Promise<ClusterRecord> {
    return clusters.updateCluster(this.pool, name, patch, opts);
  }

  /** Refused (409) while bindings name the cluster. */
  deleteCluster(name: string, opts: ChangeOptions): Promise<void> {
    return clusters.deleteCluster(this.pool, name, opts);
  }

  // Change log --------------------------------------------------------------

  /** Newest first. */
  listChanges(filter: changes.ChangeFilter = {}): Promise<Page<ChangeRecord>> {
    return changes.listChanges(this.pool, filter);
  }
}
