/**
 * `kubegate admin role …` and `kubegate admin binding …`: the RBAC admin
 * commands, over the same store (and so the same validation and change log)
 * as the REST API. Output for scripts goes to stdout (a created binding's id
 * on one line, tables, YAML); messages for people go to stderr.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { parseDuration } from '../../common/config.js';
import { KgError, isKgError } from '../../common/errors.js';
import { RbacStore, type BindingRecord, type Page } from '../rbac/rbac-store.js';
import { formatSelector, parseSelectorText } from '../../common/kube-grammar.js';
import { cliActor, flag, flagList, withPool, type Invocation } from './args.js';
import { table } from './table.js';

const actor = cliActor;

async function withStore<T>(p: Invocation, fn: (store: RbacStore) => Promise<T>): Promise<T> {
  try {
    return await withPool(p, (pool) => fn(new RbacStore(pool)));
  } catch (err) {
    throw readable(err);
  }
}

/** Validation problems one per line, so a person can read a long list. */
function readable(err: unknown): unknown {
  const problems = isKgError(err) ? err.details?.problems : undefined;
  if (!isKgError(err) || !Array.isArray(problems)) return err;
  const colon = err.message.indexOf(':');
  const head = colon > 0 ? err.message.slice(0, colon) : 'invalid';
  return new KgError(err.code, `${head}:\n  - ${problems.join('\n  - ')}`, {
    cause: err,
    details: err.details,
  });
}

async function all<T>(list: (cont?: string) => Promise<Page<T>>): Promise<T[]> {
  const out: T[] = [];
  let cont: string | undefined;
  do {
    const page = await list(cont);
    out.push(...page.items);
    cont = page.continue;
  } while (cont);
  return out;
}

/** The role file: a YAML (or JSON) list of rules, or `{description?, rules}`; a ClusterRole works too. */
function readRoleFile(path: string): { description?: unknown; rules: unknown } {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path === '-' ? 0 : path, 'utf8'));
  } catch (err) {
    throw new KgError('KG_ERR_BAD_REQUEST', `--file ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (Array.isArray(doc)) return { rules: doc };
  if (typeof doc === 'object' && doc !== null) {
    // apiVersion, kind and metadata of a pasted ClusterRole carry nothing we use.
    const rest = Object.fromEntries(
      Object.entries(doc).filter(([k]) => !['apiVersion', 'kind', 'metadata'].includes(k)),
    );
    const extra = Object.keys(rest).filter((k) => k !== 'rules' && k !== 'description');
    if (extra.length === 0 && 'rules' in rest) return rest as { rules: unknown };
    if (extra.length > 0) {
      throw new KgError(
        'KG_ERR_BAD_REQUEST',
        `--file ${path}: unknown key(s) ${extra.join(', ')}; expected a list of rules or {description, rules}`,
      );
    }
  }
  throw new KgError(
    'KG_ERR_BAD_REQUEST',
    `--file ${path}: expected a list of policy rules or a mapping with "rules"`,
  );
}

export async function roleList(p: Invocation): Promise<void> {
  const roles = await withStore(p, (s) => all((c) => s.listRoles({ limit: 500, continue: c })));
  p.io.stdout.write(
    table(
      ['NAME', 'BUILTIN', 'RULES', 'VERSION', 'DESCRIPTION'],
      roles.map((r) => [
        r.name,
        r.builtin ? 'yes' : 'no',
        String(r.rules.length),
        r.builtin ? '-' : String(r.version),
        r.description.length > 60 ? r.description.slice(0, 59) + '…' : r.description,
      ]),
    ),
  );
}

/** `get`: the object the first argument names, as YAML; KG_ERR_NOT_FOUND when there is none. */
async function printOne(
  p: Invocation,
  what: 'role' | 'binding',
  get: (store: RbacStore, key: string) => Promise<object | undefined>,
): Promise<void> {
  const key = p.positionals[0]!;
  const found = await withStore(p, (s) => get(s, key));
  if (!found) throw new KgError('KG_ERR_NOT_FOUND', `${what} "${key}" does not exist`);
  p.io.stdout.write(toYaml(found, { lineWidth: 0, aliasDuplicateObjects: false }));
}

export async function roleGet(p: Invocation): Promise<void> {
  await printOne(p, 'role', (s, name) => s.getRole(name));
}

export async function roleCreate(p: Invocation): Promise<void> {
  const n = p.positionals[0]!;
  const file = readRoleFile(flag(p, 'file')!);
  const description = flag(p, 'description') ?? file.description;
  const r = await withStore(p, (s) =>
    s.createRole({ name: n, description, rules: file.rules }, actor()),
  );
  p.io.stdout.write(r.name + '\n');
  p.io.stderr.write(`role "${r.name}" created with ${r.rules.length} rule(s)\n`);
}

export async function roleDelete(p: Invocation): Promise<void> {
  const n = p.positionals[0]!;
  await withStore(p, (s) => s.deleteRole(n, { actor: actor() }));
  p.io.stderr.write(`role "${n}" deleted\n`);
}

/** `--expires 2h` (from now) or an RFC 3339 time, passed on for the store to validate. */
function expiresOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?(s|m|h|d)$/.test(text)) {
    return new Date(Date.now() + parseDuration(text)!).toISOString();
  }
  return text;
}

function bindingSpec(p: Invocation): Record<string, unknown> {
  const subjects = [
    ...flagList(p, 'group').map((name) => ({ kind: 'Group', name })),
    ...flagList(p, 'user').map((name) => ({ kind: 'User', name })),
    ...flagList(p, 'robot').map((name) => ({ kind: 'Robot', name })),
  ];
  const clusters: Record<string, unknown> = {};
  const names = flagList(p, 'cluster');
  if (names.length > 0) clusters.names = names;
  // Not split on commas: a selector's commas are its own syntax.
  const selectors = p.flags.get('selector') ?? [];
  if (selectors.length > 0) clusters.selector = parseSelectorText(selectors.join(','));
  return {
    subjects,
    role: flag(p, 'role'),
    clusters,
    namespaces: flagList(p, 'namespace'),
    expiresAt: expiresOf(flag(p, 'expires')),
    reason: flag(p, 'reason'),
  };
}

function clustersText(b: BindingRecord): string {
  const parts: string[] = [];
  if (b.clusters.names) parts.push(b.clusters.names.join(','));
  if (b.clusters.selector) {
    parts.push(`selector ${formatSelector(b.clusters.selector) || '{} (every cluster)'}`);
  }
  return parts.join('; ') || '-';
}

export async function bindingList(p: Invocation): Promise<void> {
  const filter = {
    subject: flag(p, 'subject'),
    role: flag(p, 'role'),
    cluster: flag(p, 'cluster'),
  };
  const items = await withStore(p, (s) =>
    all((c) => s.listBindings({ ...filter, limit: 500, continue: c })),
  );
  p.io.stdout.write(
    table(
      ['ID', 'ROLE', 'SUBJECTS', 'CLUSTERS', 'NAMESPACES', 'EXPIRES', 'REASON'],
      items.map((b) => [
        b.id,
        b.role,
        b.subjects.map((s) => `${s.kind}:${s.name}`).join(','),
        clustersText(b),
        b.namespaces.join(',') || '*',
        b.expiresAt ? b.expiresAt.toISOString() : 'never',
        b.reason,
      ]),
    ),
  );
}

export async function bindingGet(p: Invocation): Promise<void> {
  await printOne(p, 'binding', (s, id) => s.getBinding(id));
}

export async function bindingCreate(p: Invocation): Promise<void> {
  const b = await withStore(p, (s) => s.createBinding(bindingSpec(p), actor()));
  p.io.stdout.write(b.id + '\n');
  p.io.stderr.write(`binding ${b.id} created: role "${b.role}" on ${clustersText(b)}\n`);
}

export async function bindingDelete(p: Invocation): Promise<void> {
  const i = p.positionals[0]!;
  await withStore(p, (s) => s.deleteBinding(i, { actor: actor() }));
  p.io.stderr.write(`binding ${i} deleted\n`);
}
