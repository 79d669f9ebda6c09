/**
 * Label selectors in forms (bindings, access requests, approval policies):
 * one row per requirement — key, operator, values — which is the whole of
 * metav1.LabelSelector: `=` rows become `matchLabels`, In / NotIn / Exists /
 * DoesNotExist rows become `matchExpressions`. "Every cluster" is the empty
 * selector `{}`. The server validates keys and values and lists problems.
 */
import { h, replace } from './dom.js';
import { splitList } from './format.js';

export type Operator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: Operator; values?: string[] }[];
}

/** `env=prod, region in (eu,us), !legacy, tier` — how kubectl writes selectors. */
export function selectorText(sel: LabelSelector | undefined | null): string {
  if (!sel) return '';
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel.matchExpressions ?? []) {
    const vals = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${vals})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${vals})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else parts.push(`!${e.key}`);
  }
  return parts.length ? parts.join(', ') : 'every cluster';
}

/** Whether labels match a selector, with metav1.LabelSelector's rules (to grey out or offer clusters). */
export function selectorMatches(sel: LabelSelector, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(sel.matchLabels ?? {}))
    if (!Object.hasOwn(labels, k) || labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const vals = e.values ?? [];
    if (e.operator === 'In' && !(has && vals.includes(labels[e.key]!))) return false;
    if (e.operator === 'NotIn' && has && vals.includes(labels[e.key]!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}

type RowOp = '=' | Operator;
const ops: [RowOp, string][] = [
  ['=', 'equals'],
  ['In', 'is one of'],
  ['NotIn', 'is none of'],
  ['Exists', 'is set'],
  ['DoesNotExist', 'is not set'],
];

interface Row {
  el: HTMLElement;
  key: HTMLInputElement;
  op: HTMLSelectElement;
  values: HTMLInputElement;
}

export interface SelectorEditor {
  el: HTMLElement;
  /** The selector, `{}` for every cluster, undefined when nothing is filled in. */
  read(): LabelSelector | undefined;
  set(sel: LabelSelector | undefined): void;
}

/** A fieldset of selector rows; `changed` runs on every edit (for previews). */
export function selectorEditor(
  legend: string,
  changed: () => void = () => undefined,
): SelectorEditor {
  const box = h('div', {});
  const every = h('input', { type: 'checkbox' });
  let rows: Row[] = [];
  const draw = () =>
    replace(
      box,
      rows.map((r) => r.el),
    );
  const sync = (r: Row) => {
    const needsValues = r.op.value === '=' || r.op.value === 'In' || r.op.value === 'NotIn';
    r.values.disabled = !needsValues || every.checked;
    r.values.placeholder =
      r.op.value === '=' ? 'value' : needsValues ? 'values, comma separated' : '(no value)';
  };
  // Row numbers only grow, so a row's accessible name never repeats after removals.
  let made = 0;
  const add = (key = '', op: RowOp = '=', values = '') => {
    const n = ++made;
    const r: Row = {
      el: h('div', { class: 'actions selector-row' }),
      key: h('input', { type: 'text', 'aria-label': `${legend}: label key ${n}`, value: key }),
      op: h(
        'select',
        { 'aria-label': `${legend}: operator ${n}` },
        ops.map(([v, label]) => h('option', { value: v }, label)),
      ),
      values: h('input', { type: 'text', 'aria-label': `${legend}: values ${n}`, value: values }),
    };
    r.op.value = op;
    r.op.addEventListener('change', () => sync(r));
    sync(r);
    const remove = h(
      'button',
      { type: 'button', class: 'quiet', 'aria-label': `${legend}: remove requirement ${n}` },
      'Remove',
    );
    remove.addEventListener('click', () => {
      rows = rows.filter((x) => x !== r);
      draw();
      changed();
    });
    replace(r.el, r.key, r.op, r.values, remove);
    rows.push(r);
    draw();
  };
  every.addEventListener('change', () => {
    for (const r of rows) {
      r.key.disabled = every.checked;
      r.op.disabled = every.checked;
      sync(r);
    }
  });
  const addButton = h('button', { type: 'button', class: 'quiet' }, 'Add requirement');
  addButton.addEventListener('click', () => add());
  const everyId = `${legend.replace(/\W+/g, '-').toLowerCase()}-every`;
  every.id = everyId;
  const el = h(
    'fieldset',
    { class: 'selector' },
    h('legend', {}, legend),
    h('div', {}, every, ' ', h('label', { for: everyId, class: 'inline' }, 'Every cluster')),
    box,
    addButton,
    h(
      'p',
      { class: 'hint' },
      'Every requirement must match. "is one of" and "is none of" take values separated by commas.',
    ),
  );
  el.addEventListener('input', changed);
  el.addEventListener('change', changed);
  add();

  return {
    el,
    read() {
      if (every.checked) return {};
      const matchLabels: Record<string, string> = {};
      const matchExpressions: NonNullable<LabelSelector['matchExpressions']> = [];
      for (const r of rows) {
        const key = r.key.value.trim();
        if (!key) continue;
        const op = r.op.value as RowOp;
        if (op === '=') matchLabels[key] = r.values.value.trim();
        else if (op === 'In' || op === 'NotIn')
          matchExpressions.push({ key, operator: op, values: splitList(r.values.value) });
        else matchExpressions.push({ key, operator: op });
      }
      if (!Object.keys(matchLabels).length && !matchExpressions.length) return undefined;
      return {
        ...(Object.keys(matchLabels).length ? { matchLabels } : {}),
        ...(matchExpressions.length ? { matchExpressions } : {}),
      };
    },
    set(sel) {
      rows = [];
      made = 0;
      every.checked = false;
      if (sel && !sel.matchLabels && !sel.matchExpressions?.length) every.checked = true;
      for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) add(k, '=', v);
      for (const e of sel?.matchExpressions ?? [])
        add(e.key, e.operator, (e.values ?? []).join(', '));
      if (!rows.length) add();
      every.dispatchEvent(new Event('change'));
    },
  };
}
