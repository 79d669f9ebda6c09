/**
 * "Runbooks": the runbooks kubegate offers (the built-in catalogue and the
 * ones admins wrote), and for one runbook a form made from its parameter
 * declarations — text or a list of choices for strings, a number with its
 * bounds for integers, a checkbox for booleans; required ones say so,
 * defaults are filled in, descriptions shown — with the clusters to run on,
 * a ticket, a reason and "Dry run". The server checks everything again and
 * lists every problem next to the form.
 *
 * Each submission carries an Idempotency-Key: the same key for the same
 * filled-in form (a double click, a retry after a lost answer is the same
 * run), a new one as soon as anything in the form changes.
 */
import { ApiError, get, request } from '../api.js';
import { field, h, replace, uid, type Child } from '../dom.js';
import { when } from '../format.js';
import { selectorMatches, selectorText, type LabelSelector } from '../selector.js';
import { stepsOutline, type ParamValues } from '../approvals.js';
import type { ViewContext } from '../view.js';
import { healthBadge, type ClusterHealth } from './my-clusters.js';
import { load, loadTable, onSubmit, statusArea } from '../widgets.js';
import type { Run } from './runs.js';

export type ParamSpec = { name: string; description?: string; required?: boolean } & (
  | { type: 'string'; default?: string; pattern?: string; enum?: string[]; maxLength?: number }
  | { type: 'integer'; default?: number; minimum?: number; maximum?: number }
  | { type: 'boolean'; default?: boolean }
);

type NamespaceRule = { fixed: string } | { param: string; allowed?: string[] } | { none: true };

export interface Runbook {
  name: string;
  description: string;
  parameters: ParamSpec[];
  targets: { clusters?: string[]; selector?: LabelSelector; namespace: NamespaceRule };
  steps: { name: string; action: string; onFailure?: 'stop' | 'continue' }[];
  version: number;
  builtin: boolean;
  updatedBy?: string;
  updatedAt?: string;
}

interface MyCluster {
  name: string;
  labels: Record<string, string>;
  health: ClusterHealth;
}

function targeted(rb: Runbook, c: MyCluster): boolean {
  const t = rb.targets;
  if (t.clusters && !t.clusters.includes(c.name)) return false;
  if (t.selector && !selectorMatches(t.selector, c.labels)) return false;
  return true;
}

function kindCell(rb: Runbook): Child {
  return rb.builtin
    ? 'built-in'
    : [
        `version ${rb.version}`,
        rb.updatedBy
          ? h('div', { class: 'hint' }, `by ${rb.updatedBy} `, when(rb.updatedAt ?? null))
          : null,
      ];
}

function namespaceText(rule: NamespaceRule): string {
  if ('fixed' in rule) return `always ${rule.fixed}`;
  if ('param' in rule)
    return `from the parameter ${rule.param}${rule.allowed ? ` (one of ${rule.allowed.join(', ')})` : ''}`;
  return 'none (cluster-scoped objects)';
}

/** What the server will check, in words, under the parameter: "The Deployment to scale. A whole number from 0 to 100." */
function hintFor(p: ParamSpec): string {
  const rules: string[] = [];
  if (p.type === 'string') {
    if (p.pattern && !p.enum) rules.push(`must match ${p.pattern}`);
    if (p.maxLength) rules.push(`at most ${p.maxLength} characters`);
  } else if (p.type === 'integer') {
    const { minimum: lo, maximum: hi } = p;
    if (lo !== undefined && hi !== undefined) rules.push(`a whole number from ${lo} to ${hi}`);
    else if (lo !== undefined) rules.push(`a whole number, at least ${lo}`);
    else if (hi !== undefined) rules.push(`a whole number, at most ${hi}`);
    else rules.push('a whole number');
  }
  if (p.default !== undefined) rules.push(`default ${String(p.default)}`);
  const sentence = (t: string) => (/[.!?]$/.test(t) ? t : `${t}.`);
  const ruleText = rules.join('; ');
  return [
    p.description ? sentence(p.description.trim()) : '',
    ruleText ? sentence(ruleText[0]!.toUpperCase() + ruleText.slice(1)) : '',
  ]
    .filter(Boolean)
    .join(' ');
}

/** One parameter's control and how to read its value (undefined: leave it out). */
interface ParamInput {
  el: HTMLElement;
  /** The control itself (marked invalid when the server names this parameter). */
  control: HTMLElement;
  read(): string | number | boolean | undefined;
}

function paramInput(p: ParamSpec, allowed: string[] | undefined): ParamInput {
  const label = `${p.name}${p.required ? ' (required)' : ' (optional)'}`;
  const hint = hintFor(p);
  if (p.type === 'boolean') {
    const box = h('input', { type: 'checkbox', id: uid('p'), checked: p.default === true });
    const hintEl = hint ? h('p', { class: 'hint', id: `${box.id}-hint` }, hint) : null;
    if (hintEl) box.setAttribute('aria-describedby', hintEl.id);
    return {
      el: h('div', {}, h('label', { class: 'inline', for: box.id }, box, label), hintEl),
      control: box,
      read: () => box.checked,
    };
  }
  if (p.type === 'integer') {
    const n = h('input', {
      type: 'number',
      step: 1,
      min: p.minimum,
      max: p.maximum,
      required: p.required === true,
      value: p.default,
      inputmode: 'numeric',
      'data-param': p.name,
    });
    return {
      el: field(label, n, hint),
      control: n,
      read: () => (n.value.trim() === '' ? undefined : Number(n.value)),
    };
  }
  const choices = p.enum ?? allowed;
  if (choices) {
    const s = h(
      'select',
      { required: p.required === true, 'data-param': p.name },
      h('option', { value: '' }, p.required ? 'choose one' : '(not set)'),
      choices.map((c) => h('option', { value: c }, c)),
    );
    s.value = p.default ?? '';
    return { el: field(label, s, hint), control: s, read: () => s.value || undefined };
  }
  const t = h('input', {
    type: 'text',
    required: p.required === true,
    value: p.default,
    autocomplete: 'off',
    spellcheck: 'false',
    'data-param': p.name,
  });
  // The pattern is shown and checked by the server (which lists every problem
  // at once): browsers read `pattern` with other rules than the server does.
  return {
    el: field(label, t, hint),
    control: t,
    read: () => (t.value === '' ? undefined : t.value),
  };
}

/** The clusters to run on: those the person reaches; the ones the runbook does not target are shown, disabled. */
function clusterPicker(rb: Runbook, clusters: MyCluster[]): { el: HTMLElement; read(): string[] } {
  const boxes: HTMLInputElement[] = [];
  const eligible = clusters.filter((c) => targeted(rb, c));
  const rows = clusters.map((c) => {
    const ok = targeted(rb, c);
    const box = h('input', {
      type: 'checkbox',
      id: uid('c'),
      value: c.name,
      disabled: !ok,
      checked: ok && eligible.length === 1,
    });
    if (ok) boxes.push(box);
    return h(
      'li',
      {},
      h('label', { class: 'inline', for: box.id }, box, c.name),
      healthBadge(c.health),
      ok ? '' : h('span', { class: 'muted' }, ' — this runbook does not target it'),
    );
  });
  const scope = [
    rb.targets.clusters ? `only ${rb.targets.clusters.join(', ')}` : '',
    rb.targets.selector ? `clusters matching ${selectorText(rb.targets.selector)}` : '',
  ]
    .filter(Boolean)
    .join(' and ');
  return {
    el: h(
      'fieldset',
      {},
      h('legend', {}, 'Clusters (at least one)'),
      clusters.length
        ? h('ul', { class: 'plain' }, rows)
        : h('p', { class: 'muted' }, 'You reach no cluster yet: ask an admin for a binding.'),
      scope ? h('p', { class: 'hint' }, `This runbook runs on ${scope}.`) : null,
    ),
    read: () => boxes.filter((b) => b.checked).map((b) => b.value),
  };
}

function newKey(): string {
  return crypto.randomUUID();
}

async function runbookPage(ctx: ViewContext, name: string): Promise<HTMLElement> {
  const [rb, reach] = await Promise.all([
    get<Runbook>(`/api/v1/runbooks/${encodeURIComponent(name)}`),
    get<{ items: MyCluster[] }>('/api/v1/console/clusters'),
  ]);
  document.title = `${rb.name} · Runbooks · kubegate`;
  const status = statusArea();
  const rule = rb.targets.namespace;
  const inputs = rb.parameters.map((p) => ({
    p,
    input: paramInput(p, 'param' in rule && rule.param === p.name ? rule.allowed : undefined),
  }));
  const picker = clusterPicker(rb, reach.items);
  const ticket = h('input', {
    type: 'text',
    autocomplete: 'off',
    placeholder: 'INC-42',
    maxlength: 128,
  });
  const reason = h('textarea', { rows: 2, maxlength: 1000 });
  const dryRun = h('input', { type: 'checkbox', id: uid('dry') });
  const dryHint = h(
    'p',
    { class: 'hint', id: `${dryRun.id}-hint` },
    'Every step runs with dryRun=All: you see the diffs, nothing changes.',
  );
  dryRun.setAttribute('aria-describedby', dryHint.id);
  const headingId = uid('run');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, `Run ${rb.name}`),
    inputs.length
      ? h(
          'fieldset',
          {},
          h('legend', {}, 'Parameters'),
          inputs.map((i) => i.input.el),
        )
      : h('p', { class: 'muted' }, 'This runbook takes no parameters.'),
    picker.el,
    field(
      'Ticket',
      ticket,
      'optional: the reference of the ticket this is for, such as INC-42; kept with the run',
    ),
    field('Reason', reason, 'optional: why; shown to approvers and kept with the run'),
    h('div', {}, h('label', { class: 'inline', for: dryRun.id }, dryRun, 'Dry run'), dryHint),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Run')),
  );
  let key = newKey();
  // Anything edited makes it another request: a new key.
  form.addEventListener('input', () => (key = newKey()));
  form.addEventListener('change', () => (key = newKey()));
  onSubmit(form, status, async () => {
    const params: ParamValues = {};
    for (const { p, input } of inputs) {
      const v = input.read();
      if (v !== undefined) params[p.name] = v;
    }
    const body: Record<string, unknown> = {
      runbook: rb.name,
      clusters: picker.read(),
      params,
      dryRun: dryRun.checked,
    };
    if (ticket.value.trim()) body.ticket = ticket.value.trim();
    if (reason.value.trim()) body.reason = reason.value.trim();
    for (const { input } of inputs) input.control.removeAttribute('aria-invalid');
    ticket.removeAttribute('aria-invalid');
    try {
      const r = await request<Run>('POST', '/api/v1/runs', body, undefined, {
        'idempotency-key': key,
      });
      ctx.navigate(`/console/runs/${r.body.id}`);
    } catch (err) {
      // The fields the problems name are marked invalid; the list itself shows below the form.
      const named = err instanceof ApiError ? err.problems : [];
      for (const { p, input } of inputs)
        if (named.some((x) => x.startsWith(`params: parameters.${p.name}:`)))
          input.control.setAttribute('aria-invalid', 'true');
      if (named.some((x) => x.startsWith('ticket:'))) ticket.setAttribute('aria-invalid', 'true');
      throw err;
    }
  });

  return h(
    'div',
    {},
    h('p', {}, h('a', { href: '/console/runbooks' }, 'All runbooks')),
    h(
      'section',
      { 'aria-labelledby': 'rb-h' },
      h('h2', { id: 'rb-h' }, rb.name),
      h('p', {}, rb.description),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Version'),
        h('dd', {}, kindCell(rb)),
        h('dt', {}, 'Namespace'),
        h('dd', {}, namespaceText(rule)),
        h('dt', {}, 'Steps'),
        h(
          'dd',
          {},
          stepsOutline(rb.steps.map((s, index) => ({ index, name: s.name, action: s.action }))),
        ),
      ),
    ),
    form,
    status.el,
    h(
      'p',
      {},
      h(
        'a',
        { href: `/console/runs?runbook=${encodeURIComponent(rb.name)}` },
        'Runs of this runbook',
      ),
    ),
  );
}

export async function runbooksView(ctx: ViewContext): Promise<void> {
  const name = /^\/console\/runbooks\/([^/]+)\/?$/.exec(location.pathname)?.[1];
  if (name) return load(ctx.into, () => runbookPage(ctx, decodeURIComponent(name)));
  const list = h('div', {});
  replace(
    ctx.into,
    h(
      'p',
      { class: 'lead' },
      'Operations kubegate carries out for you, as the runbook itself, under its own narrow permissions. Choose one to fill in its parameters and run it.',
    ),
    list,
  );
  await loadTable<Runbook>(
    list,
    '/api/v1/runbooks',
    'Runbooks',
    [
      {
        title: 'Runbook',
        cell: (rb) => h('a', { href: `/console/runbooks/${encodeURIComponent(rb.name)}` }, rb.name),
      },
      { title: 'Description', cell: (rb) => rb.description },
      { title: 'Version', cell: kindCell },
    ],
    'No runbooks yet.',
  );
}
