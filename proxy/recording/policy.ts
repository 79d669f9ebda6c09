/**
 * Recording policies: which exec, attach and port-forward sessions are
 * recorded, and how strictly. A policy names clusters (by name, by label
 * selector, or every cluster when it names none) and namespaces (none: every
 * namespace), a mode and whether stdin is recorded:
 *
 * - `off`: not recorded;
 * - `best-effort`: recorded when the store can take it; otherwise the
 *   session runs and its audit event says `unrecorded`;
 * - `required`: a session whose recording cannot be opened is refused before
 *   the upgrade, and one whose recording fails while it runs is ended.
 *
 * Where several policies match, the strictest mode wins (so a narrower `off`
 * can never undo a fleet-wide `required`), and stdin is recorded when any
 * matching policy that records asks for it. No policy matching: the
 * configured default (`recordingDefaultMode`, best-effort unless told).
 */
import { KgError, invalid } from '../../common/errors.js';
import {
  selectorMatches,
  validateSelector,
  type LabelSelector,
} from '../../common/kube-grammar.js';
import type { ClusterRef } from '../authz/types.js';
import type { Pool } from 'pg';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import { isObject, unknownFields } from '../../common/json-object.js';

export const modes = ['off', 'best-effort', 'required'] as const;
export type Mode = (typeof modes)[number];

export interface RecordingPolicy {
  name: string;
  /** Clusters by name; with neither names nor selector, every cluster. */
  clusters: { names?: string[]; selector?: LabelSelector };
  namespaces: string[];
  mode: Mode;
  recordStdin: boolean;
  createdBy?: string;
  createdAt?: string;
}

export interface Decision {
  mode: Mode;
  stdin: boolean;
  /** The deciding policy's name; '' for the default. */
  policy: string;
}

const rank: Record<Mode, number> = { off: 0, 'best-effort': 1, required: 2 };
const policyName = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const dnsLabel = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const clusterName = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

export function policyApplies(p: RecordingPolicy, cluster: ClusterRef, namespace: string): boolean {
  const { names, selector } = p.clusters;
  if (names?.length || selector) {
    const byName = names?.includes(cluster.name) ?? false;
    const bySelector = selector ? selectorMatches(selector, cluster.labels) : false;
    if (!byName && !bySelector) return false;
  }
  return p.namespaces.length === 0 || p.namespaces.includes(namespace);
}

/** What applies to a session in `namespace` of `cluster`. */
export function decide(
  policies: readonly RecordingPolicy[],
  cluster: ClusterRef,
  namespace: string,
  fallback: Mode,
): Decision {
  const matching = policies.filter((p) => policyApplies(p, cluster, namespace));
  if (!matching.length) return { mode: fallback, stdin: false, policy: '' };
  const strictest = matching.reduce((a, b) => (rank[b.mode] > rank[a.mode] ? b : a));
  return {
    mode: strictest.mode,
    stdin: matching.some((p) => p.mode !== 'off' && p.recordStdin),
    policy: strictest.name,
  };
}

/**
 * A list of names, each matching `pattern`, at most 256, duplicates dropped;
 * undefined (and a problem noted) when `v` is not one.
 */
function nameList(
  v: unknown,
  pattern: RegExp,
  problem: string,
  problems: string[],
): string[] | undefined {
  if (
    Array.isArray(v) &&
    v.length <= 256 &&
    v.every((n): n is string => typeof n === 'string' && pattern.test(n))
  )
    return [...new Set(v)];
  problems.push(problem);
  return undefined;
}

/** Check an untrusted policy body; every problem at once (422). */
export function validatePolicy(raw: unknown): RecordingPolicy {
  const problems: string[] = [];
  if (!isObject(raw)) throw invalid('the recording policy', ['must be a JSON object']);
  unknownFields(raw, ['name', 'clusters', 'namespaces', 'mode', 'recordStdin'], '', problems);
  const { name, clusters: c, namespaces: ns, mode, recordStdin } = raw;
  if (typeof name !== 'string' || !policyName.test(name))
    problems.push('name: a DNS label (lower-case letters, digits and -, at most 63)');
  const clusters: RecordingPolicy['clusters'] = {};
  if (c !== undefined && !isObject(c))
    problems.push('clusters: an object with names and/or selector');
  else if (c !== undefined) {
    unknownFields(c, ['names', 'selector'], 'clusters', problems);
    if (c.names !== undefined)
      clusters.names = nameList(
        c.names,
        clusterName,
        'clusters.names: at most 256 cluster names',
        problems,
      );
    if (c.selector !== undefined)
      clusters.selector = validateSelector(c.selector, 'clusters.selector', problems);
  }
  const namespaces =
    ns === undefined
      ? []
      : nameList(ns, dnsLabel, 'namespaces: at most 256 namespace names', problems);
  if (!modes.includes(mode as Mode)) problems.push(`mode: one of ${modes.join(', ')}`);
  if (recordStdin !== undefined && typeof recordStdin !== 'boolean')
    problems.push('recordStdin: true or false');
  if (problems.length) throw invalid('the recording policy', problems);
  return {
    name: name as string,
    clusters,
    namespaces: namespaces!,
    mode: mode as Mode,
    recordStdin: recordStdin === true,
  };
}

interface PolicyRow {
  name: string;
  cluster_names: string[];
  selector: LabelSelector | null;
  namespaces: string[];
  mode: Mode;
  record_stdin: boolean;
  created_by: string;
  created_at: Date;
}

function fromRow(r: PolicyRow): RecordingPolicy {
  const clusters: RecordingPolicy['clusters'] = {};
  if (r.cluster_names.length) clusters.names = r.cluster_names;
  if (r.selector) clusters.selector = r.selector;
  return {
    name: r.name,
    clusters,
    namespaces: r.namespaces,
    mode: r.mode,
    recordStdin: r.record_stdin,
    createdBy: r.created_by,
    createdAt: r.created_at.toISOString(),
  };
}

export async function listPolicies(db: Queryable): Promise<RecordingPolicy[]> {
  const rows = await query<PolicyRow>(db, `SELECT * FROM recording_policies ORDER BY name`);
  return rows.map(fromRow);
}

/** Who changes the policies, as their admin audit events name them. */
export interface ChangedBy {
  actor: string;
  sourceIp: string;
  userAgent: string;
}

/**
 * Create a policy, with its admin audit event in the same transaction (a
 * change is never stored unaudited); a name in use is a conflict.
 */
export function createPolicy(
  pool: Pool,
  p: RecordingPolicy,
  by: ChangedBy,
): Promise<RecordingPolicy> {
  return inTransaction(pool, async (c) => {
    const [created] = await query<PolicyRow>(
      c,
      `INSERT INTO recording_policies (name, cluster_names, selector, namespaces, mode, record_stdin, created_by)
         VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7)
         ON CONFLICT (name) DO NOTHING RETURNING *`,
      [
        p.name,
        p.clusters.names ?? [],
        p.clusters.selector ? JSON.stringify(p.clusters.selector) : null,
        p.namespaces,
        p.mode,
        p.recordStdin,
        by.actor,
      ],
    );
    if (!created)
      throw new KgError('KG_ERR_CONFLICT', `recording policy "${p.name}" already exists`);
    await recordAdminEvent(c, { ...by, verb: 'create', resource, name: p.name, detail: p });
    return fromRow(created);
  });
}

/** Delete a policy, with its admin audit event in the same transaction. */
export async function deletePolicy(pool: Pool, name: string, by: ChangedBy): Promise<void> {
  await inTransaction(pool, async (c) => {
    const gone = await query(c, `DELETE FROM recording_policies WHERE name = $1 RETURNING name`, [
      name,
    ]);
    if (!gone.length) throw new KgError('KG_ERR_NOT_FOUND', `recording policy "${name}" not found`);
    await recordAdminEvent(c, { ...by, verb: 'delete', resource, name });
  });
}

/** The policies' name in admin audit events. */
const resource = 'recordingpolicies';

/**
 * The policies as last read, re-read when older than `maxAgeMs` (a change
 * made on another replica applies there within that time; one made here, at
 * once). When they cannot be read, the last known ones serve; with none ever
 * read, this rejects and the caller treats recording as impossible.
 */
export class PolicyCache {
  private policies: RecordingPolicy[] | undefined;
  private readAt = 0;
  private loading: Promise<RecordingPolicy[]> | undefined;

  constructor(
    private readonly db: Queryable,
    private readonly maxAgeMs = 2000,
  ) {}

  invalidate(): void {
    this.readAt = 0;
  }

  async current(): Promise<RecordingPolicy[]> {
    if (this.policies && Date.now() - this.readAt < this.maxAgeMs) return this.policies;
    this.loading ??= listPolicies(this.db)
      .then((p) => {
        this.policies = p;
        this.readAt = Date.now();
        return p;
      })
      .finally(() => (this.loading = undefined));
    try {
      return await this.loading;
    } catch (err) {
      if (this.policies) return this.policies;
      throw err;
    }
  }
}
