/**
 * `kubegate admin role …` and `kubegate admin binding …`: the RBAC admin
 * commands, over the same store (and so the same validation and change log)
 * as the REST API. Output for scripts goes to stdout (a created binding's id
 * on one line, tables, YAML); messages for people go to stderr.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { loadConfig, parseDuration } from '../../common/config.js';
import { KgError, isKgError } from '../../common/errors.js';
import { proxySchema } from '../config.js';
import { createPool } from '../db/pool.js';
import { RbacStore, type BindingRecord, type Page } from '../rbac/rbac-store.js';
import { formatSelector, parseSelectorText } from '../../common/kube-grammar.js';
import { cliActor, flag, flagList, parseArgs, type Parsed } from './args.js';

/** Appended to `kubegate --help`. */
export const rbacUsage = `  kubegate admin role list                    list built-in and custom roles
  kubegate admin role get NAME                print a role as YAML
  kubegate admin role create NAME --file rules.yaml [--description TEXT]
                                              create a custom role (YAML: a list of rules, or {description, rules})
  kubegate admin role delete NAME             delete a custom role (refused while bindings use it)
  kubegate admin binding list [--subject NAME] [--role ROLE] [--cluster NAME]
                                              list bindings
  kubegate admin binding get ID               print a binding as YAML
  kubegate admin binding create (--group G | --user U | --robot R)... --role ROLE
        [--cluster NAME]... [--selector 'env=prod,tier in (a,b)'] [--namespace NS]...
        [--expires 2h|RFC3339] [--reason TEXT]
                                              create a binding; prints its id
  kubegate admin binding delete ID            delete a binding
`;

const actor = cliActor;

async function withStore<T>(fn: (store: RbacStore) => Promise<T>): Promise<T> {
  const { databaseUrl } = loadConfig({ databaseUrl: proxySchema.databaseUrl }, {});
  const pool = createPool({ url: databaseUrl, max: 2, applicationName: 'kubegate-cli' });
  try {
    return await fn(new RbacStore(pool));
  } catch (err) {
    throw readable(err);
  } finally {
    await pool.end();
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

function only(p: Parsed, allowed: string[], usageLine: string): void {
  const unknown = [...p.flags.keys()].filter((f) => !allowed.includes(f));
  if (unknown.length > 0) {
    throw new KgError(
      'KG_ERR_BAD_REQUEST',
      `unknown flag(s) ${unknown.map((f) => `--${f}`).join(', ')}; usage: ${usageLine}`,
    );
  }
}

/** Left-aligned columns, two spaces apart, header first. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [header, ...rows].map(line).join('\n') + '\n';
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

function need(value: string | undefined, what: string): string {
  if (!value) throw new KgError('KG_ERR_BAD_REQUEST', `${what} is required`);
  return value;
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

async function role(p: Parsed, verb: string | undefined, name: string | undefined) {
  switch (verb) {
    case 'list': {
      only(p, [], 'kubegate admin role list');
      const roles = await withStore((s) => all((c) => s.listRoles({ limit: 500, continue: c })));
      process.stdout.write(
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
      return;
    }
    case 'get': {
      only(p, [], 'kubegate admin role get NAME');
      const n = need(name, 'the role NAME');
      const r = await withStore((s) => s.getRole(n));
      if (!r) throw new KgError('KG_ERR_NOT_FOUND', `role "${n}" does not exist`);
      process.stdout.write(toYaml(r, { lineWidth: 0, aliasDuplicateObjects: false }));
      return;
    }
    case 'create': {
      only(p, ['file', 'description'], 'kubegate admin role create NAME --file rules.yaml');
      const n = need(name, 'the role NAME');
      const file = readRoleFile(need(flag(p, 'file'), '--file rules.yaml'));
      const description = flag(p, 'description') ?? file.description;
      const r = await withStore((s) =>
        s.createRole({ name: n, description, rules: file.rules }, actor()),
      );
      process.stdout.write(r.name + '\n');
      process.stderr.write(`role "${r.name}" created with ${r.rules.length} rule(s)\n`);
      return;
    }
    case 'delete': {
      only(p, [], 'kubegate admin role delete NAME');
      const n = need(name, 'the role NAME');
      await withStore((s) => s.deleteRole(n, { actor: actor() }));
      process.stderr.write(`role "${n}" deleted\n`);
      return;
    }
    default:
      throw new KgError('KG_ERR_BAD_REQUEST', `unknown role command; usage:\n${rbacUsage}`);
  }
}

/** `--expires 2h` (from now) or an RFC 3339 time, passed on for the store to validate. */
function expiresOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (/^\d+(\.\d+)?(s|m|h|d)$/.test(text)) {
    return new Date(Date.now() + parseDuration(text)!).toISOString();
  }
  return text;
}

function bindingSpec(p: Parsed): Record<string, unknown> {
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

async function binding(p: Parsed, verb: string | undefined, id: string | undefined) {
  switch (verb) {
    case 'list': {
      only(p, ['subject', 'role', 'cluster'], 'kubegate admin binding list [--subject NAME]');
      const filter = {
        subject: flag(p, 'subject'),
        role: flag(p, 'role'),
        cluster: flag(p, 'cluster'),
      };
      const items = await withStore((s) =>
        all((c) => s.listBindings({ ...filter, limit: 500, continue: c })),
      );
      process.stdout.write(
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
      return;
    }
    case 'get': {
      only(p, [], 'kubegate admin binding get ID');
      const i = need(id, 'the binding ID');
      const b = await withStore((s) => s.getBinding(i));
      if (!b) throw new KgError('KG_ERR_NOT_FOUND', `binding "${i}" does not exist`);
      process.stdout.write(toYaml(b, { lineWidth: 0, aliasDuplicateObjects: false }));
      return;
    }
    case 'create': {
      const flags = ['group', 'user', 'robot', 'role', 'cluster', 'selector', 'namespace'];
      only(p, [...flags, 'expires', 'reason'], 'see kubegate --help');
      if (id !== undefined) {
        throw new KgError(
          'KG_ERR_BAD_REQUEST',
          `unexpected argument "${id}" (did you mean --role ${id}?)`,
        );
      }
      const b = await withStore((s) => s.createBinding(bindingSpec(p), actor()));
      process.stdout.write(b.id + '\n');
      process.stderr.write(`binding ${b.id} created: role "${b.role}" on ${clustersText(b)}\n`);
      return;
    }
    case 'delete': {
      only(p, [], 'kubegate admin binding delete ID');
      const i = need(id, 'the binding ID');
      await withStore((s) => s.deleteBinding(i, { actor: actor() }));
      process.stderr.write(`binding ${i} deleted\n`);
      return;
    }
    default:
      throw new KgError('KG_ERR_BAD_REQUEST', `unknown binding command; usage:\n${rbacUsage}`);
  }
}

/**
 * Run `kubegate admin role|binding …`; `args` starts at `role` or `binding`.
 * Throws KgError for the caller to print; needs DATABASE_URL.
 */
export async function adminRbac(args: string[]): Promise<void> {
  const p = parseArgs(args);
  const [area, verb, name, ...extra] = p.positionals;
  if (extra.length > 0) {
    throw new KgError('KG_ERR_BAD_REQUEST', `unexpected argument(s): ${extra.join(' ')}`);
  }
  if (area === 'role') return role(p, verb, name);
  if (area === 'binding') return binding(p, verb, name);
  throw new KgError('KG_ERR_BAD_REQUEST', `unknown admin command; usage:\n${rbacUsage}`);
}
