/**
 * Who may watch which session recordings.
 *
 * - Fleet-wide: members of an admin group and of the recording viewer groups
 *   (`recordingViewerGroups`, default `kubegate-auditors`).
 * - Per cluster and namespace, through the central RBAC like everything
 *   else: a role with verb `list` (search) and `get` (one recording, its
 *   download and playback) on resource `recordings` in API group
 *   `kubegate.dev`, bound on the cluster (and namespaces) the sessions ran
 *   in. A role granting `*` on every API group (cluster-admin) covers it too.
 *
 * Anyone else sees no recording, not even of their own sessions: a
 * recording can hold what others typed beside them.
 */
import { authorize, bindingsFor } from '../authz/authorizer.js';
import type { PolicyState } from '../authz/policy-store.js';
import type { RequestInfo } from '../authz/request-info.js';

export interface Viewer {
  user: string;
  kind: 'user' | 'robot';
  groups: readonly string[];
  admin: boolean;
}

type Verb = 'get' | 'list';

/** The RBAC request watching a recording stands for. */
function watchInfo(verb: Verb, namespace: string, id: string): RequestInfo {
  const ns = namespace ? `namespaces/${namespace}/` : '';
  return {
    isResourceRequest: true,
    path: `/apis/kubegate.dev/v1/${ns}recordings${id ? `/${id}` : ''}`,
    verb,
    apiPrefix: 'apis',
    apiGroup: 'kubegate.dev',
    apiVersion: 'v1',
    namespace,
    resource: 'recordings',
    subresource: '',
    name: id,
    parts: id ? ['recordings', id] : ['recordings'],
  };
}

/** A namespace no binding names: allowed there means allowed in every namespace. */
const anyNamespace = 'kubegate-any-namespace-probe';

export class RecordingAccess {
  private readonly viewerGroups: ReadonlySet<string>;

  constructor(
    viewerGroups: readonly string[],
    private readonly policy?: () => PolicyState,
  ) {
    this.viewerGroups = new Set(viewerGroups);
  }

  /** Admins and the recording viewer groups watch every recording. */
  fleetWide(v: Viewer): boolean {
    return v.admin || v.groups.some((g) => this.viewerGroups.has(g));
  }

  /** Whether `v` may `verb` a recording of a session in `namespace` of `cluster`. */
  may(v: Viewer, verb: Verb, cluster: string, namespace: string, id = ''): boolean {
    if (this.fleetWide(v)) return true;
    const state = this.policy?.();
    const ref = state?.clusters.get(cluster);
    if (!state || !ref) return false;
    const who = { user: v.user, kind: v.kind, groups: [...v.groups] };
    return authorize(state.snapshot, who, watchInfo(verb, namespace, id), ref, new Date()).allowed;
  }

  /**
   * The clusters where `v` may search some recordings (RBAC), or 'all' for a
   * fleet-wide viewer; [] when none.
   */
  searchable(v: Viewer): string[] | 'all' {
    if (this.fleetWide(v)) return 'all';
    const state = this.policy?.();
    if (!state) return [];
    const now = new Date();
    const who = { user: v.user, kind: v.kind, groups: [...v.groups] };
    const out: string[] = [];
    for (const ref of state.clusters.values()) {
      const namespaces = new Set<string>();
      for (const b of bindingsFor(state.snapshot, who, ref, now))
        for (const ns of b.namespaces.length ? b.namespaces : [anyNamespace]) namespaces.add(ns);
      if ([...namespaces].some((ns) => this.may(v, 'list', ref.name, ns))) out.push(ref.name);
    }
    return out.sort();
  }

  /** Whether `v` may watch any recording at all (the console's Recordings entry). */
  anywhere(v: Viewer): boolean {
    const s = this.searchable(v);
    return s === 'all' || s.length > 0;
  }
}
