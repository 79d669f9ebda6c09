/**
 * Self-service namespaces, the agent's half: make each namespace the proxy
 * lists exist with its labels and annotations and hold exactly its objects
 * (quotas, limit ranges, network policies), or retire it. The agent only
 * ever touches namespaces labelled as kubegate's (managed-by kubegate and
 * kubegate.dev/managed-namespace) and, inside them, objects named
 * `kubegate-…`; in JIT mode an admission policy holds it to that as well
 * (proxy/clusters/bootstrap-yaml.ts agentAdmissionPolicy).
 *
 * How drift is found and undone, checked against a real apiserver
 * (test/integration/namespaces-agent.test.ts):
 *  - the Namespace takes a server-side apply (field manager `kubegate`,
 *    forced): other writers keep their own labels, ours are set back, and a
 *    label the profile dropped goes;
 *  - each object is replaced whole (PUT). A server-side apply would leave
 *    fields someone else added — an `ingress` rule allowing everything on a
 *    default-deny policy that has none, an extra quota line — because no
 *    field of ours conflicts with them. A PUT that changes nothing writes
 *    nothing (the resourceVersion stays), so every pass may send it.
 * What changed is judged on the object's labels, annotations and spec before
 * and after, not on its resourceVersion: the quota controller writes a
 * ResourceQuota's status at any time.
 */
import type { Logger } from '../../common/log.js';
import {
  managedByLabel,
  managedNamespaceLabel,
  managedObjectKinds,
  managedObjectPrefix,
  type ManagedObject,
  type ManagedObjectKind,
  type NamespaceDesired,
  type NamespaceObjectChange,
  type NamespaceResult,
  type NamespacesReply,
} from '../../common/tunnel-protocol.js';
import { agentMetrics } from '../metrics.js';
import { namespaceNameProblem, type CheckedEntry } from './body.js';
import { statusMessage, type KubeAnswer, type KubeCall } from './kube-json.js';

export interface NamespaceReconcilerDeps {
  kube: KubeCall;
  /** The namespace the agent runs in: never managed. */
  agentNamespace: string;
  log: Logger;
  /** Namespaces reconciled at once (default 4). */
  concurrency?: number;
  /**
   * The whole message is answered within this (default 25 s, inside the
   * proxy's 30 s): an entry not finished by then is reported as an error and
   * is reconciled again on the next pass.
   */
  deadlineMs?: number;
}

const fieldManager = 'kubegate';
const writeQuery = `fieldManager=${fieldManager}&fieldValidation=Strict`;

interface KubeMeta {
  name?: string;
  uid?: string;
  resourceVersion?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface KubeObject {
  kind?: string;
  metadata?: KubeMeta;
  spec?: unknown;
}

/** An apiserver answer other than the ones expected: the entry fails with its message. */
class KubeRefused extends Error {}

function expect(a: KubeAnswer, what: string, ...ok: number[]): KubeObject {
  if (!ok.includes(a.status)) throw new KubeRefused(`${what}: ${statusMessage(a)}`);
  return (a.body ?? {}) as KubeObject;
}

/** The same JSON text for the same value, whatever the order of object keys. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(
          Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : x,
  );
}

/** What kubegate sets on an object: a change to anything else (status) is not drift. */
const content = (o: KubeObject) =>
  canonical({
    labels: o.metadata?.labels ?? {},
    annotations: o.metadata?.annotations ?? {},
    spec: o.spec ?? null,
  });

const isManaged = (o: KubeObject) =>
  o.metadata?.labels?.[managedByLabel] === 'kubegate' &&
  o.metadata.labels[managedNamespaceLabel] === 'true';

const nsPath = (name: string) => `/api/v1/namespaces/${encodeURIComponent(name)}`;

function collectionPath(kind: ManagedObjectKind, ns: string): string {
  const prefix =
    managedObjectKinds[kind] === 'v1' ? '/api/v1' : `/apis/${managedObjectKinds[kind]}`;
  const resource = {
    ResourceQuota: 'resourcequotas',
    LimitRange: 'limitranges',
    NetworkPolicy: 'networkpolicies',
  }[kind];
  return `${prefix}/namespaces/${encodeURIComponent(ns)}/${resource}`;
}

const kinds = Object.keys(managedObjectKinds) as ManagedObjectKind[];

const failed = (name: string, error: string): NamespaceResult => ({
  name,
  state: 'error',
  namespaceChange: 'unchanged',
  changes: [],
  error,
});

export class NamespaceReconciler {
  constructor(private readonly deps: NamespaceReconcilerDeps) {}

  /** One result per entry, in order; a failing entry never fails another. */
  async reconcile(entries: readonly CheckedEntry[]): Promise<NamespacesReply> {
    const deadlineMs = this.deps.deadlineMs ?? 25_000;
    const deadline = Date.now() + deadlineMs;
    const results: NamespaceResult[] = new Array<NamespaceResult>(entries.length);
    let next = 0;
    const worker = async () => {
      while (next < entries.length) {
        const i = next++;
        const e = entries[i]!;
        const left = deadline - Date.now();
        if (e.problem !== undefined) results[i] = failed(e.name, e.problem);
        else if (left <= 0)
          results[i] = failed(
            e.name,
            `namespace "${e.name}" was not reached within ${deadlineMs / 1000} s; it is reconciled on the next pass`,
          );
        else results[i] = await this.bounded(e.desired, left, deadlineMs);
      }
    };
    const n = Math.max(1, Math.min(this.deps.concurrency ?? 4, entries.length));
    await Promise.all(Array.from({ length: n }, worker));
    return { results };
  }

  /** `one`, answered as an error if it has not finished within `ms` (it goes on in the background). */
  private bounded(d: NamespaceDesired, ms: number, total: number): Promise<NamespaceResult> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<NamespaceResult>((resolve) => {
      timer = setTimeout(
        () =>
          resolve(
            failed(
              d.name,
              `namespace "${d.name}" was not finished within ${total / 1000} s; it is reconciled on the next pass`,
            ),
          ),
        ms,
      );
    });
    return Promise.race([this.one(d), late]).finally(() => clearTimeout(timer));
  }

  /** One namespace; every failure becomes its error result. */
  async one(d: NamespaceDesired): Promise<NamespaceResult> {
    const refused = namespaceNameProblem(d.name, this.deps.agentNamespace);
    if (refused) return failed(d.name, refused);
    try {
      const r = d.retire ? await this.retire(d.name) : await this.keep(d);
      if (r.namespaceChange !== 'created')
        for (const c of r.changes) agentMetrics.observeNamespaceCorrection(c.kind);
      if (r.namespaceChange !== 'unchanged' || r.changes.length > 0)
        this.deps.log.info(
          {
            namespace: d.name,
            state: r.state,
            namespaceChange: r.namespaceChange,
            changes: r.changes,
          },
          'managed namespace reconciled',
        );
      return r;
    } catch (err) {
      const why = err instanceof KubeRefused ? err.message : `apiserver: ${(err as Error).message}`;
      this.deps.log.warn({ namespace: d.name, err: why }, 'managed namespace not reconciled');
      return failed(d.name, `namespace "${d.name}" could not be reconciled: ${why}`);
    }
  }

  private async get(path: string, what: string): Promise<KubeObject | undefined> {
    const a = await this.deps.kube({ method: 'GET', path });
    return a.status === 404 ? undefined : expect(a, what, 200);
  }

  private async keep(d: NamespaceDesired): Promise<NamespaceResult> {
    const { kube } = this.deps;
    const live = await this.get(nsPath(d.name), `reading namespace "${d.name}"`);
    const metadata = {
      name: d.name,
      labels: { ...d.labels, [managedByLabel]: 'kubegate', [managedNamespaceLabel]: 'true' },
      annotations: d.annotations,
    };
    let namespaceChange: NamespaceResult['namespaceChange'];
    if (!live) {
      // Created, not applied: an apply would take over a namespace someone
      // created meanwhile; a create fails on it instead (409). (The next
      // pass's apply then writes once, taking over the fields the create set;
      // its content is the same, so it reports no change.)
      expect(
        await kube({
          method: 'POST',
          path: `/api/v1/namespaces?${writeQuery}`,
          body: { apiVersion: 'v1', kind: 'Namespace', metadata },
        }),
        `creating namespace "${d.name}"`,
        201,
      );
      namespaceChange = 'created';
    } else {
      if (!isManaged(live))
        return failed(d.name, `namespace "${d.name}" exists and is not managed by kubegate`);
      if (live.metadata?.deletionTimestamp)
        return failed(d.name, `namespace "${d.name}" is being deleted`);
      // The resourceVersion read is a precondition: relabelled since, the apply fails (409).
      const after = expect(
        await kube({
          method: 'PATCH',
          path: `${nsPath(d.name)}?${writeQuery}&force=true`,
          contentType: 'application/apply-patch+yaml',
          body: {
            apiVersion: 'v1',
            kind: 'Namespace',
            metadata: { ...metadata, resourceVersion: live.metadata?.resourceVersion },
          },
        }),
        `applying namespace "${d.name}"`,
        200,
      );
      namespaceChange = content(after) === content(live) ? 'unchanged' : 'updated';
    }
    const changes = await this.objects(d.name, d.objects);
    return { name: d.name, state: 'ready', namespaceChange, changes };
  }

  /** Make the namespace hold exactly `want` among kubegate's objects of the three kinds. */
  private async objects(
    ns: string,
    want: readonly ManagedObject[],
  ): Promise<NamespaceObjectChange[]> {
    const { kube } = this.deps;
    const changes: NamespaceObjectChange[] = [];
    const live = new Map<string, KubeObject>();
    for (const kind of kinds) {
      const list = expect(
        await kube({ method: 'GET', path: collectionPath(kind, ns) }),
        `listing ${kind}s in "${ns}"`,
        200,
      ) as { items?: KubeObject[] };
      for (const o of list.items ?? []) live.set(`${kind}/${o.metadata?.name}`, o);
    }
    const wanted = new Set<string>();
    for (const o of want) {
      const id = `${o.kind}/${o.metadata.name}`;
      wanted.add(id);
      const body = {
        apiVersion: o.apiVersion,
        kind: o.kind,
        metadata: {
          name: o.metadata.name,
          namespace: ns,
          labels: { ...o.metadata.labels, [managedByLabel]: 'kubegate' },
          annotations: o.metadata.annotations ?? {},
        },
        spec: o.spec,
      };
      const what = `${o.kind} "${o.metadata.name}" in "${ns}"`;
      const before = live.get(id);
      if (!before) {
        const a = await kube({
          method: 'POST',
          path: `${collectionPath(o.kind, ns)}?${writeQuery}`,
          body,
        });
        if (a.status !== 409) {
          expect(a, `creating ${what}`, 201);
          changes.push({ kind: o.kind, name: o.metadata.name, change: 'created' });
          continue;
        }
        // Created meanwhile: replaced below like any existing one.
      }
      const after = expect(
        await kube({
          method: 'PUT',
          path: `${collectionPath(o.kind, ns)}/${encodeURIComponent(o.metadata.name)}?${writeQuery}`,
          body,
        }),
        `replacing ${what}`,
        200,
      );
      if (!before || content(before) !== content(after))
        changes.push({ kind: o.kind, name: o.metadata.name, change: 'updated' });
    }
    // Ours (labelled and named so) but no longer wanted: the profile dropped it.
    for (const [id, o] of live) {
      const name = o.metadata?.name ?? '';
      if (
        wanted.has(id) ||
        !name.startsWith(managedObjectPrefix) ||
        o.metadata?.labels?.[managedByLabel] !== 'kubegate'
      )
        continue;
      const kind = id.slice(0, id.indexOf('/')) as ManagedObjectKind;
      expect(
        await kube({
          method: 'DELETE',
          path: `${collectionPath(kind, ns)}/${encodeURIComponent(name)}`,
        }),
        `deleting ${kind} "${name}" in "${ns}"`,
        200,
        202,
        404,
      );
      changes.push({ kind, name, change: 'deleted' });
    }
    return changes;
  }

  private async retire(name: string): Promise<NamespaceResult> {
    const live = await this.get(nsPath(name), `reading namespace "${name}"`);
    const result = (
      state: 'retiring' | 'gone',
      namespaceChange: 'updated' | 'unchanged',
    ): NamespaceResult => ({ name, state, namespaceChange, changes: [] });
    if (!live) return result('gone', 'unchanged');
    if (!isManaged(live))
      return failed(name, `namespace "${name}" exists and is not managed by kubegate`);
    if (live.metadata?.deletionTimestamp) return result('retiring', 'unchanged');
    // Preconditions: the namespace checked above, not one relabelled or recreated since.
    const a = await this.deps.kube({
      method: 'DELETE',
      path: nsPath(name),
      body: {
        apiVersion: 'v1',
        kind: 'DeleteOptions',
        preconditions: { uid: live.metadata?.uid, resourceVersion: live.metadata?.resourceVersion },
      },
    });
    if (a.status === 404) return result('gone', 'unchanged');
    expect(a, `deleting namespace "${name}"`, 200, 202);
    return result('retiring', 'updated');
  }
}
