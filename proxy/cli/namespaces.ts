/**
 * Self-service namespaces on the command line, through the proxy's REST API
 * as the person running it (the token of the fleet kubeconfig, or
 * KUBEGATE_SERVER + KUBEGATE_TOKEN): `kubegate namespace …` asks for a
 * namespace, follows it, lists and reads namespaces, manages members and
 * ownership, retires it; `kubegate admin namespace-profile …` manages the
 * profiles namespaces are made from. Profiles go through the API too, not
 * the database, so the server's checks and change log apply to them.
 *
 * What a command prints is built by the pure functions below
 * (namespaceTable, namespaceText, membersTable, profileTable, NamespaceProgress,
 * createdText, …), so the unit tests check the text without a proxy.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify as toYaml } from 'yaml';
import { formatSelector } from '../../common/kube-grammar.js';
import { KgError } from '../../common/errors.js';
import { flag, flagList, UsageError, type Invocation } from './args.js';
import { ApiError, call, endpoint, Poller, type Endpoint } from './rest.js';
import { table } from './table.js';
import { documentFrom } from './runbooks.js';
import type {
  NamespaceMember,
  NamespaceProfileView,
  NamespaceStatus,
  NamespaceView,
} from '../console/ui/wire/namespaces.js';

// --- shapes the API answers with ---------------------------------------------------

export type { NamespaceStatus, NamespaceView };
export type MemberView = NamespaceMember;
/** A profile as the API answers it, or as an admin writes it in a file (most fields optional). */
export type ProfileView = Pick<NamespaceProfileView, 'name' | 'clusters'> &
  Partial<Omit<NamespaceProfileView, 'name' | 'clusters' | 'approval'>> & {
    approval?:
      | (Omit<NonNullable<NamespaceProfileView['approval']>, 'pendingFor'> & {
          pendingFor?: number | string;
        })
      | null;
  };

/** A namespace stops changing by itself in these; --wait ends there. */
const settled: readonly NamespaceStatus[] = ['ready', 'failed', 'denied', 'retired'];

/** The namespace's message when it says more than its status ("ready" does not). */
const note = (n: NamespaceView) => (n.message && n.message !== n.status ? n.message : '');

const where = (n: Pick<NamespaceView, 'cluster' | 'name'>) => `${n.cluster}/${n.name}`;

/** `/api/v1/namespaces/dev/team-a`, each part encoded. */
export function namespacePath(cluster: string, name: string, ...rest: string[]): string {
  return ['/api/v1/namespaces', cluster, name, ...rest]
    .map((s, i) => (i ? encodeURIComponent(s) : s))
    .join('/');
}

function target(p: Invocation): { cluster: string; name: string } {
  return { cluster: flag(p, 'cluster')!, name: p.positionals[0]! };
}

function wantStructured(p: Invocation, allowed: readonly string[] = ['text', 'json', 'yaml']) {
  const o = flag(p, 'output') ?? allowed[0]!;
  if (!allowed.includes(o))
    throw new UsageError(
      `--output must be ${allowed.slice(0, -1).join(', ')} or ${allowed[allowed.length - 1]} (got ${JSON.stringify(o)})`,
      p.path,
    );
  return o === 'text' ? undefined : (o as 'json' | 'yaml');
}

function structured(p: Invocation, as: 'json' | 'yaml', value: unknown): void {
  p.io.stdout.write(as === 'json' ? `${JSON.stringify(value, null, 2)}\n` : toYaml(value));
}

// --- kubegate namespace create --------------------------------------------------------

/** The body of POST /api/v1/namespaces for a `namespace create` command line. */
export function createBody(p: Invocation): {
  name: string;
  profile: string;
  clusters: string[];
  reason?: string;
} {
  const clusters = flagList(p, 'cluster');
  if (!clusters.length)
    throw new UsageError('--cluster NAME is required (repeat for more)', p.path);
  const reason = flag(p, 'reason');
  return {
    name: p.positionals[0]!,
    profile: flag(p, 'profile')!,
    clusters: [...new Set(clusters)],
    ...(reason !== undefined ? { reason } : {}),
  };
}

/** One namespace's status in a line: `dev/team-a: provisioning (creating the quota)`. */
export function statusLine(n: NamespaceView): string {
  const approval =
    n.status === 'awaiting-approval' && n.approvalId ? ` (approval ${n.approvalId})` : '';
  return `${where(n)}: ${n.status}${approval}${note(n) ? ` — ${note(n)}` : ''}`;
}

/** What `namespace create` says without --wait: each namespace's status, then what to do next. */
export function createdText(
  items: readonly NamespaceView[],
  approvalId: string | undefined,
): string {
  const lines = items.map(statusLine);
  const first = items[0];
  if (approvalId)
    lines.push(
      `waiting for approval ${approvalId}; approvers were notified. Follow it: kubegate request get ${approvalId}`,
    );
  if (first && items.some((n) => !settled.includes(n.status)))
    lines.push(
      `follow it: kubegate namespace get ${first.name} --cluster ${first.cluster} (or ask again with --wait)`,
    );
  if (first && items.every((n) => n.status === 'ready'))
    lines.push(`ready: kubectl --context ${first.cluster} -n ${first.name} get all`);
  return lines.join('\n') + '\n';
}

/** Says each namespace's status once per change, as --wait sees it. */
export class NamespaceProgress {
  private readonly seen = new Map<string, string>();

  update(n: NamespaceView): string[] {
    const line = statusLine(n);
    if (this.seen.get(where(n)) === line) return [];
    this.seen.set(where(n), line);
    return [line];
  }
}

async function follow(
  p: Invocation,
  e: Endpoint,
  first: readonly NamespaceView[],
  intervalMs: number,
): Promise<number> {
  const progress = new NamespaceProgress();
  const current = new Map(first.map((n) => [where(n), n]));
  const poll = new Poller(e);
  for (;;) {
    for (const n of current.values())
      for (const l of progress.update(n)) p.io.stdout.write(`${l}\n`);
    const open = [...current.values()].filter((n) => !settled.includes(n.status));
    if (!open.length) break;
    await sleep(intervalMs);
    for (const n of open) {
      const now = await poll.get<NamespaceView>(
        namespacePath(n.cluster, n.name),
        (why) =>
          `lost track of ${where(n)} (${why}); see: kubegate namespace get ${n.name} --cluster ${n.cluster}`,
      );
      if (now) current.set(where(n), now);
    }
  }
  const all = [...current.values()];
  const ready = all.filter((n) => n.status === 'ready');
  p.io.stdout.write(
    ready.length === all.length
      ? `ready: ${all.map(where).join(', ')}\n`
      : `not ready: ${all
          .filter((n) => n.status !== 'ready')
          .map((n) => `${where(n)} ${n.status}`)
          .join(', ')}\n`,
  );
  return ready.length === all.length ? 0 : 1;
}

export async function namespaceCreate(p: Invocation): Promise<number> {
  const body = createBody(p);
  const e = endpoint(p);
  const r = (await call(e, 'POST', '/api/v1/namespaces', body)).json as {
    items: NamespaceView[];
    approvalId?: string;
  };
  if (!p.flags.has('wait')) {
    p.io.stdout.write(createdText(r.items, r.approvalId));
    return 0;
  }
  if (r.approvalId)
    p.io.stdout.write(
      `waiting for approval ${r.approvalId} (kubegate request get ${r.approvalId})\n`,
    );
  return follow(p, e, r.items, 1000);
}

// --- list, get, delete ------------------------------------------------------------------

export function namespaceTable(items: readonly NamespaceView[]): string {
  return table(
    ['CLUSTER', 'NAME', 'PROFILE', 'STATUS', 'OWNER', 'ROLE', 'DRIFT', 'CREATED'],
    items.map((n) => [
      n.cluster,
      n.name,
      n.profile,
      n.status,
      n.owner,
      n.yourRole ?? '-',
      String(n.drift),
      n.createdAt,
    ]),
  );
}

export function membersTable(items: readonly MemberView[]): string {
  return table(
    ['KIND', 'NAME', 'ROLE', 'OWNER'],
    items.map((m) => [m.kind, m.name, m.role, m.owner ? 'yes' : '']),
  );
}

function indent(text: string): string {
  return text
    .replace(/\n+$/, '')
    .split('\n')
    .map((l) => `  ${l}`.trimEnd())
    .join('\n');
}

/** One namespace as a person reads it, with its members. */
export function namespaceText(n: NamespaceView): string {
  const out: string[] = [];
  const field = (k: string, v: string) => out.push(`${`${k}:`.padEnd(14)}${v}`);
  field('namespace', n.name);
  field('cluster', n.cluster);
  field('profile', n.profile);
  field('status', n.status + (n.approvalId ? ` (approval ${n.approvalId})` : ''));
  if (n.retireApprovalId) field('deletion', `waits for approval ${n.retireApprovalId}`);
  if (note(n)) field('message', note(n));
  field('owner', n.owner);
  field('your role', (n.yourRole ?? 'none') + (n.mayManage ? ' (you may manage it)' : ''));
  field('requested by', n.requestedBy);
  field('created', n.createdAt);
  if (n.readyAt) field('ready', n.readyAt);
  field('drift', n.drift ? `${n.drift} correction${n.drift === 1 ? '' : 's'}` : 'none');
  if (n.members) {
    out.push('members:');
    out.push(n.members.length ? indent(membersTable(n.members)) : '  (none)');
  }
  return out.join('\n') + '\n';
}

export async function namespaceList(p: Invocation): Promise<void> {
  const as = wantStructured(p);
  const q = new URLSearchParams();
  const cluster = flag(p, 'cluster');
  if (cluster !== undefined) q.set('cluster', cluster);
  if (p.flags.has('all')) q.set('all', 'true');
  const qs = q.toString();
  const r = (await call(endpoint(p), 'GET', `/api/v1/namespaces${qs ? `?${qs}` : ''}`)).json as {
    items: NamespaceView[];
  };
  if (as) structured(p, as, r.items);
  else if (r.items.length) p.io.stdout.write(namespaceTable(r.items));
  else p.io.stderr.write('no namespaces\n');
}

export async function namespaceGet(p: Invocation): Promise<void> {
  const as = wantStructured(p);
  const { cluster, name } = target(p);
  const n = (await call(endpoint(p), 'GET', namespacePath(cluster, name))).json as NamespaceView;
  if (as) structured(p, as, n);
  else p.io.stdout.write(namespaceText(n));
}

export async function namespaceDelete(p: Invocation): Promise<void> {
  const { cluster, name } = target(p);
  const n = (await call(endpoint(p), 'DELETE', namespacePath(cluster, name))).json as NamespaceView;
  p.io.stdout.write(`${statusLine(n)}\n`);
  if (n.retireApprovalId)
    p.io.stderr.write(
      `the deletion waits for approval ${n.retireApprovalId}: kubegate request get ${n.retireApprovalId}\n`,
    );
}

// --- members and ownership --------------------------------------------------------------

/** `--user U` or `--group G`, exactly one: the member's kind and name. */
export function memberOf(p: Invocation): { kind: 'User' | 'Group'; name: string } {
  const user = flag(p, 'user');
  const group = flag(p, 'group');
  if ((user === undefined) === (group === undefined))
    throw new UsageError('name the member with exactly one of --user U or --group G', p.path);
  return user !== undefined ? { kind: 'User', name: user } : { kind: 'Group', name: group! };
}

export async function namespaceMembers(p: Invocation): Promise<void> {
  const as = wantStructured(p);
  const { cluster, name } = target(p);
  const r = (await call(endpoint(p), 'GET', namespacePath(cluster, name, 'members'))).json as {
    items: MemberView[];
  };
  if (as) structured(p, as, r.items);
  else p.io.stdout.write(membersTable(r.items));
}

export async function namespaceAddMember(p: Invocation): Promise<void> {
  const { cluster, name } = target(p);
  const m = memberOf(p);
  const r = (
    await call(endpoint(p), 'PUT', namespacePath(cluster, name, 'members', m.kind, m.name), {
      role: flag(p, 'role')!,
    })
  ).json as Partial<MemberView>;
  p.io.stdout.write(`${m.kind} ${m.name} is ${r.role ?? flag(p, 'role')} in ${cluster}/${name}\n`);
}

export async function namespaceRemoveMember(p: Invocation): Promise<void> {
  const { cluster, name } = target(p);
  const m = memberOf(p);
  await call(endpoint(p), 'DELETE', namespacePath(cluster, name, 'members', m.kind, m.name));
  p.io.stdout.write(`${m.kind} ${m.name} removed from ${cluster}/${name}\n`);
}

export async function namespaceTransfer(p: Invocation): Promise<void> {
  const { cluster, name } = target(p);
  const to = flag(p, 'to')!;
  const n = (await call(endpoint(p), 'POST', namespacePath(cluster, name, 'owner'), { user: to }))
    .json as Partial<NamespaceView>;
  p.io.stdout.write(`${cluster}/${name}: owner is now ${n.owner ?? to}\n`);
}

// --- kubegate admin namespace-profile ---------------------------------------------------

const profilePath = (name: string) => `/api/v1/namespace-profiles/${encodeURIComponent(name)}`;

/** Where a profile applies, in a few words. */
export function clustersText(c: ProfileView['clusters']): string {
  const parts = [
    c.names?.length ? c.names.join(',') : '',
    c.selector ? formatSelector(c.selector) || '(every cluster)' : '',
  ].filter(Boolean);
  return parts.join(' + ') || '-';
}

export function profileTable(items: readonly ProfileView[]): string {
  return table(
    ['NAME', 'CLUSTERS', 'APPROVAL', 'PER-USER', 'VERSION', 'DESCRIPTION'],
    items.map((pr) => {
      const d = (pr.description ?? '').split('\n')[0]!;
      return [
        pr.name,
        clustersText(pr.clusters),
        pr.approval
          ? `${pr.approval.approvers.count} of ${pr.approval.approvers.groups.join(',')}`
          : 'no',
        pr.perUserLimit === undefined ? '-' : String(pr.perUserLimit),
        pr.version === undefined ? '-' : String(pr.version),
        d.length > 60 ? `${d.slice(0, 57)}...` : d,
      ];
    }),
  );
}

/** The fields the API adds to a profile; `apply` leaves them out of what it sends. */
const readOnly = ['version', 'updatedBy', 'updatedAt', 'createdAt', 'inUse'];

/** A profile read from a file (YAML or JSON; - for stdin), without the read-only fields. */
export function profileFrom(
  text: string,
  file: string,
): Record<string, unknown> & { name: string } {
  const fields = documentFrom(
    text,
    file,
    'one namespace profile (a mapping with name, clusters, …)',
    readOnly,
  );
  if (typeof fields.name !== 'string' || !fields.name)
    throw new KgError('KG_ERR_BAD_REQUEST', `${file}: the profile needs a name`);
  return fields as Record<string, unknown> & { name: string };
}

export async function profileList(p: Invocation): Promise<void> {
  const as = wantStructured(p);
  const r = (await call(endpoint(p), 'GET', '/api/v1/namespace-profiles')).json as {
    items: ProfileView[];
  };
  if (as) structured(p, as, r.items);
  else if (r.items.length) p.io.stdout.write(profileTable(r.items));
  else p.io.stderr.write('no namespace profiles\n');
}

export async function profileGet(p: Invocation): Promise<void> {
  const as = wantStructured(p, ['yaml', 'json']) ?? 'yaml';
  structured(p, as, (await call(endpoint(p), 'GET', profilePath(p.positionals[0]!))).json);
}

export async function profileApply(p: Invocation): Promise<void> {
  const file = flag(p, 'file')!;
  const doc = profileFrom(
    readFileSync(file === '-' ? 0 : file, 'utf8'),
    file === '-' ? 'stdin' : file,
  );
  const e = endpoint(p);
  // The version read goes back as If-Match: a profile changed meanwhile is refused, not overwritten.
  const current = await call(e, 'GET', profilePath(doc.name)).then(
    (r) => r.json as Partial<ProfileView>,
    (err: unknown) => {
      if (err instanceof ApiError && err.statusCode === 404) return undefined;
      throw err;
    },
  );
  const exists = current !== undefined;
  const r = exists
    ? await call(
        e,
        'PUT',
        profilePath(doc.name),
        doc,
        current.version !== undefined ? { 'if-match': `"${current.version}"` } : {},
      )
    : await call(e, 'POST', '/api/v1/namespace-profiles', doc);
  const saved = r.json as Partial<ProfileView>;
  p.io.stderr.write(
    `namespace profile "${doc.name}" ${exists ? 'replaced' : 'created'}${saved.version !== undefined ? ` (version ${saved.version})` : ''}\n`,
  );
}

export async function profileDelete(p: Invocation): Promise<void> {
  const name = p.positionals[0]!;
  await call(endpoint(p), 'DELETE', profilePath(name));
  p.io.stderr.write(`namespace profile "${name}" deleted\n`);
}
