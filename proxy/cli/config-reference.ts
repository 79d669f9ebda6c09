/**
 * The configuration reference (docs/configuration.md), generated from the
 * config schemas so it cannot drift: every field, its environment variable,
 * its key in the KUBEGATE_CONFIG JSON file, its type, its default and its
 * one-sentence doc. A test fails while the checked-in file is stale.
 */
import { loadConfig, type FieldSpec, type Schema } from '../../common/config.js';
import { proxyDefaults, proxySchema } from '../config.js';
import { agentSchema, loadAgentConfig } from '../../agent/config.js';

interface Section {
  title: string;
  intro: string;
  schema: Schema;
  /** Resolved default per key (undefined: no default). */
  defaults: Record<string, unknown>;
  /** Defaults that are computed at start-up rather than fixed. */
  computed: Record<string, string>;
}

const typeText: Record<FieldSpec['type'], string> = {
  string: 'string',
  int: 'integer',
  bool: 'boolean (`true`/`false`)',
  duration: 'duration (`500ms`, `30s`, `15m`, `8h`, `7d`)',
  list: 'comma-separated list (a JSON array in the file)',
  url: 'absolute URL',
};

/** Milliseconds back to the largest exact unit, as a person would write it. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function formatDefault(spec: FieldSpec, value: unknown): string {
  if (value === undefined) return '';
  if (spec.type === 'duration' && typeof value === 'number') return formatDuration(value);
  if (Array.isArray(value)) return value.join(',');
  return String(value);
}

/**
 * The defaults a program really applies: load the config with a placeholder
 * for each required field and nothing else set, then read back the rest.
 */
function resolveDefaults(
  schema: Schema,
  load: (env: NodeJS.ProcessEnv) => Record<string, unknown>,
): Record<string, unknown> {
  const env: NodeJS.ProcessEnv = {};
  for (const spec of Object.values(schema)) {
    if (spec.required) env[spec.env] = spec.type === 'url' ? 'https://placeholder.invalid' : 'x';
  }
  const loaded = load(env);
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema)) {
    if (!spec.required) out[key] = loaded[key];
  }
  return out;
}

function fieldMarkdown(key: string, spec: FieldSpec, section: Section): string {
  const facts = [`key \`${key}\``, typeText[spec.type]];
  if (spec.required) facts.push('**required**');
  const computed = section.computed[key];
  const dflt = formatDefault(spec, section.defaults[key]);
  if (computed) facts.push(`default: ${computed}`);
  else if (dflt !== '') facts.push(`default: \`${dflt}\``);
  if (spec.secret) facts.push('secret: never logged, keep it in a Kubernetes Secret');
  return `### \`${spec.env}\`\n\n${spec.doc}\n\n${facts.join(' · ')}\n`;
}

function sections(): Section[] {
  return [
    {
      title: 'Proxy (`kubegate proxy`, `kubegate migrate`, `kubegate admin`)',
      intro:
        'Set by the Helm chart helm/kubegate from its values; anything not covered by a dedicated value goes in `config:` by environment variable name.',
      schema: proxySchema,
      defaults: resolveDefaults(
        proxySchema,
        (env) => loadConfig(proxySchema, proxyDefaults, env) as Record<string, unknown>,
      ),
      computed: { replicaId: 'the host name plus a random suffix (the chart uses the pod name)' },
    },
    {
      title: 'Agent (`kubegate agent`)',
      intro:
        'Set by the bootstrap YAML and the helm/kubegate-agent chart (the same manifests); in a pod the apiserver address, CA and token come from the in-cluster service account.',
      schema: agentSchema,
      defaults: resolveDefaults(
        agentSchema,
        (env) => loadAgentConfig(env) as unknown as Record<string, unknown>,
      ),
      computed: {
        apiserverUrl:
          'the in-cluster address from `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`',
      },
    },
  ];
}

/** The whole reference page, Markdown, ready for Prettier. */
export function configReference(): string {
  const parts = [
    '# Configuration reference\n',
    '<!-- Generated from proxy/config.ts and agent/config.ts by `make docs` (kubegate config-reference); do not edit. -->\n',
    'Each program reads one schema, validated once at start-up with every problem reported together. A setting comes from, in order of precedence: the environment variable, then the key in the JSON file named by `KUBEGATE_CONFIG`, then the default. Durations accept `ms`, `s`, `m`, `h` and `d`; a bare number is milliseconds.\n',
  ];
  for (const s of sections()) {
    parts.push(`## ${s.title}\n`, `${s.intro}\n`);
    for (const [key, spec] of Object.entries(s.schema)) parts.push(fieldMarkdown(key, spec, s));
  }
  return parts.join('\n');
}
