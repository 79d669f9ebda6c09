/**
 * What the agent needs to build just-in-time accounts: the user's effective
 * grants on the cluster with every request (a small header of
 * content-addressed role names), the role definitions pushed to each tunnel
 * when it comes up and on every policy change, and — after a change — fresh
 * grants for every user the agent holds an account for, so a revoked grant
 * loses its RoleBinding at once, not at the user's next request.
 */
import { createHash } from 'node:crypto';
import * as http2 from 'node:http2';
import type { Logger } from '../../common/log.js';
import {
  encodeGrants,
  grantsPath,
  jitUsersPath,
  rolesPath,
  type GrantUpdate,
  type TunnelGrant,
  type TunnelRoles,
} from '../../common/tunnel-protocol.js';
import { bindingsFor } from '../authz/authorizer.js';
import { identityKey, type SubjectKind } from '../../common/identity-key.js';
import type { PolicyState } from '../authz/policy-store.js';
import type { ClusterRef, Identity, PolicySnapshot } from '../authz/types.js';
import type { Tunnel, TunnelRegistry } from '../tunnel/registry.js';
import { controlRequest } from '../tunnel/control-request.js';

interface Catalog {
  refs: Map<string, string>;
  roles: TunnelRoles;
  header: Map<string, { value: string; until: number }>;
}

const catalogs = new WeakMap<PolicySnapshot, Catalog>();

/** Role name → `name@hash` of its rules, and the rules by that key; once per snapshot. */
function catalogOf(snap: PolicySnapshot): Catalog {
  let c = catalogs.get(snap);
  if (!c) {
    c = { refs: new Map(), roles: {}, header: new Map() };
    for (const role of snap.roles.values()) {
      const hash = createHash('sha256')
        .update(JSON.stringify(role.rules))
        .digest('hex')
        .slice(0, 12);
      const ref = `${role.name}@${hash}`;
      c.refs.set(role.name, ref);
      c.roles[ref] = role.rules;
    }
    catalogs.set(snap, c);
  }
  return c;
}

/** The effective grants of `who` on `cluster` now: one entry per role, namespaces merged. */
export function grantsFor(
  snap: PolicySnapshot,
  who: Identity,
  cluster: ClusterRef,
  now: Date,
): TunnelGrant[] {
  const { refs } = catalogOf(snap);
  const byRole = new Map<string, Set<string> | 'cluster'>();
  for (const b of bindingsFor(snap, who, cluster, now)) {
    const ref = refs.get(b.role);
    if (!ref) continue;
    const prev = byRole.get(ref);
    if (b.namespaces.length === 0) byRole.set(ref, 'cluster');
    else if (prev !== 'cluster') byRole.set(ref, new Set([...(prev ?? []), ...b.namespaces]));
  }
  return [...byRole.entries()]
    .map(([role, ns]) => ({ role, namespaces: ns === 'cluster' ? [] : [...ns].sort() }))
    .sort((a, b) => a.role.localeCompare(b.role));
}

/** The `kg-grants` header for a request; cached per snapshot for a second (bindings can expire). */
export function grantsHeader(
  snap: PolicySnapshot,
  who: Identity,
  cluster: ClusterRef,
  now: Date,
): string {
  const c = catalogOf(snap);
  const key = `${cluster.name}\0${identityKey(who.kind, who.user)}\0${who.groups.join('\0')}`;
  const hit = c.header.get(key);
  const t = now.getTime();
  if (hit && hit.until > t) return hit.value;
  const value = encodeGrants(grantsFor(snap, who, cluster, now));
  if (c.header.size > 10_000) c.header.clear();
  c.header.set(key, { value, until: t + 1000 });
  return value;
}

async function control(
  session: http2.ClientHttp2Session,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const answer = await controlRequest(
    session,
    { ':method': method, ':path': path, 'content-type': 'application/json' },
    {
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      timeoutMs: 15_000,
      what: `${method} ${path}`,
    },
  );
  const text = answer.body.toString('utf8');
  if (answer.status !== 200)
    throw new Error(`agent answered ${answer.status} to ${path}: ${text.slice(0, 200)}`);
  return JSON.parse(text) as unknown;
}

/**
 * Ask the agent of `cluster` a control question over one of this replica's
 * tunnels; undefined when this replica holds none.
 */
export async function askAgent(
  registry: TunnelRegistry,
  cluster: string,
  path: string,
): Promise<unknown> {
  const t = registry.pick(cluster);
  return t ? control(t.session, 'GET', path) : undefined;
}

export class GrantSync {
  constructor(
    private readonly registry: TunnelRegistry,
    private readonly current: () => PolicyState | undefined,
    private readonly log: Logger,
  ) {}

  /** Before a tunnel takes requests: the agent learns every role definition. */
  async tunnelReady(t: Tunnel): Promise<void> {
    const state = this.current();
    if (state) await control(t.session, 'POST', rolesPath, catalogOf(state.snapshot).roles);
  }

  /** After a policy change: new roles to every tunnel, fresh grants for every JIT user. */
  async policyChanged(state: PolicyState): Promise<void> {
    const roles = catalogOf(state.snapshot).roles;
    const byCluster = new Map<string, Tunnel[]>();
    for (const t of this.registry.tunnels())
      byCluster.set(t.cluster, [...(byCluster.get(t.cluster) ?? []), t]);
    const now = new Date();
    await Promise.all(
      [...byCluster.entries()].map(async ([name, tunnels]) => {
        try {
          await Promise.all(tunnels.map((t) => control(t.session, 'POST', rolesPath, roles)));
          const cluster = state.clusters.get(name);
          const held = (await control(tunnels[0]!.session, 'GET', jitUsersPath)) as {
            user: string;
            groups: string[];
            kind?: SubjectKind;
          }[];
          // A runbook's account follows its runs (proxy/runbooks/runner.ts), not bindings.
          const users = held.filter(
            (u): u is typeof u & { kind?: 'user' | 'robot' } => u.kind !== 'runbook',
          );
          if (!users.length) return;
          const updates: GrantUpdate[] = users.map((u) => {
            const who: Identity = { user: u.user, groups: u.groups, kind: u.kind ?? 'user' };
            return {
              ...u,
              grants:
                cluster && !cluster.disabled ? grantsFor(state.snapshot, who, cluster, now) : [],
            };
          });
          await control(tunnels[0]!.session, 'POST', grantsPath, updates);
        } catch (err) {
          this.log.warn(
            { cluster: name, err: (err as Error).message },
            'grant sync to agent failed',
          );
        }
      }),
    );
  }
}
