/**
 * The few building blocks every view uses: a table with a real empty state,
 * notices for errors and results (announced to screen readers), badges, and
 * a button that shows it is busy and reports its own failure.
 */
import { ApiError, get, query, request } from './api.js';

/** Rows a paged search asks for at a time. */
const pageSize = 50;
import { h, replace, type Child } from './dom.js';

export interface Column<T> {
  title: string;
  cell: (row: T) => Child;
}

export function table<T>(
  caption: string,
  columns: Column<T>[],
  rows: T[],
  empty: Child,
): HTMLElement {
  if (rows.length === 0) return h('div', { class: 'empty', role: 'status' }, empty);
  return h(
    'table',
    {},
    h('caption', { class: 'visually-hidden' }, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        columns.map((c) => h('th', { scope: 'col' }, c.title)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.map((r) =>
        h(
          'tr',
          {},
          columns.map((c) => h('td', {}, c.cell(r))),
        ),
      ),
    ),
  );
}

/**
 * A list from the API (`{ items: [...] }` at `url`) drawn as a table in
 * `into`: loading placeholder first, the server's error in its place.
 */
export function loadTable<T>(
  into: HTMLElement,
  url: string,
  caption: string,
  columns: Column<T>[],
  empty: Child,
): Promise<void> {
  return load(into, async () => {
    const { items } = await get<{ items: T[] }>(url);
    return table(caption, columns, items, empty);
  });
}

export function badge(label: string, kind: '' | 'ok' | 'bad' | 'warn' = ''): HTMLElement {
  return h('span', { class: `badge ${kind}`.trim() }, label);
}

/**
 * For a page that polls: a check that is true when a value differs from the
 * last one it saw (as JSON), so the page redraws only what changed and never
 * under someone's cursor for nothing.
 */
export function changeCheck(): (v: unknown) => boolean {
  let last = '';
  return (v) => {
    const text = JSON.stringify(v);
    if (text === last) return false;
    last = text;
    return true;
  };
}

/** A description list of facts: [term, value] pairs; null entries are left out. */
export function factList(rows: ([string, Child] | null)[]): HTMLElement {
  return h(
    'dl',
    { class: 'facts' },
    rows.flatMap((r) => (r ? [h('dt', {}, r[0]), h('dd', {}, r[1])] : [])),
  );
}

/** A table's first cell: the name in bold, badges beside it, the description under it. */
export function nameCell(name: string, description?: string, ...badges: HTMLElement[]): Child {
  return [
    h('strong', {}, name),
    ...badges.flatMap((b) => [' ', b]),
    description ? h('div', { class: 'hint' }, description) : null,
  ];
}

export function labels(l: Record<string, string>): Child {
  const entries = Object.entries(l);
  if (entries.length === 0) return h('span', { class: 'muted' }, 'none');
  return entries.map(([k, v]) => badge(`${k}=${v}`));
}

/** An error as a notice: the server's message, and its list of problems when it sent one. */
export function errorNotice(err: unknown): HTMLElement {
  const msg = err instanceof Error ? err.message : String(err);
  const problems = err instanceof ApiError ? err.problems : [];
  return h(
    'div',
    { class: 'notice error', role: 'alert' },
    msg,
    problems.length > 0
      ? h(
          'ul',
          {},
          problems.map((p) => h('li', {}, p)),
        )
      : null,
  );
}

export function okNotice(...children: Child[]): HTMLElement {
  return h('div', { class: 'notice ok', role: 'status' }, ...children);
}

/** A region that shows the outcome of the last action (errors, confirmations). */
export interface StatusArea {
  el: HTMLElement;
  show(...c: Child[]): void;
  clear(): void;
}

export function statusArea(): StatusArea {
  const el = h('div', { 'aria-live': 'polite' });
  return { el, show: (...c) => replace(el, ...c), clear: () => replace(el) };
}

/**
 * A search whose results come in pages: a new search shows "Searching…",
 * each page is added to those shown, and "Load more" fetches the next while
 * the server says there is one. Returns the search (call it with no
 * argument for a new one); `filters` are read at each call.
 */
export function pagedSearch<T>(
  into: HTMLElement,
  search: { path: string; filters: () => Record<string, string | undefined> },
  render: (all: T[]) => Child,
  failed: (err: unknown) => void = (err) => replace(into, errorNotice(err)),
): (cont?: string, shown?: T[]) => Promise<void> {
  const run = async (cont?: string, shown: T[] = []): Promise<void> => {
    if (!cont) replace(into, h('p', { class: 'muted', role: 'status' }, 'Searching…'));
    let page: { items: T[]; continue?: string };
    try {
      page = await get(
        `${search.path}${query({ ...search.filters(), limit: String(pageSize), continue: cont })}`,
      );
    } catch (err) {
      failed(err);
      return;
    }
    const all = shown.concat(page.items);
    replace(
      into,
      render(all),
      loadMore(page.continue, (next) => void run(next, all)),
    );
  };
  return run;
}

/** "Load more" under a paged list, when the server said there is more (`next`). */
export function loadMore(next: string | undefined, load: (next: string) => void): Child {
  if (!next) return null;
  return h(
    'p',
    {},
    h('button', { type: 'button', class: 'quiet', onclick: () => load(next) }, 'Load more'),
  );
}

/**
 * A button that runs `action`, disabled while it runs; a failure is shown
 * in `status` (or thrown to the console when there is none).
 */
export function actionButton(
  label: string,
  action: () => Promise<void>,
  opts: {
    status?: StatusArea;
    class?: string;
    confirm?: string;
    name?: string;
  } = {},
): HTMLButtonElement {
  const b = h(
    'button',
    {
      type: 'button',
      class: opts.class,
      'aria-label': opts.name,
    },
    label,
  );
  b.addEventListener('click', () => {
    if (opts.confirm && !window.confirm(opts.confirm)) return;
    b.disabled = true;
    b.setAttribute('aria-busy', 'true');
    opts.status?.clear();
    action()
      .catch((err: unknown) => {
        if (opts.status) opts.status.show(errorNotice(err));
        else console.error(err);
      })
      .finally(() => {
        b.disabled = false;
        b.removeAttribute('aria-busy');
      });
  });
  return b;
}

/**
 * A row's Delete button: asks `confirm`, sends DELETE to `path` (If-Match
 * the row's `version` when it has one), shows `done` in `status`, then runs
 * `after` (the list's refresh).
 */
export function deleteButton(
  path: string,
  version: number | undefined,
  text: { name: string; confirm: string; done: string },
  status: StatusArea,
  after: () => Promise<void>,
): HTMLButtonElement {
  return actionButton(
    'Delete',
    async () => {
      await request('DELETE', path, undefined, version === undefined ? undefined : `"${version}"`);
      status.show(okNotice(text.done));
      await after();
    },
    { status, class: 'danger', name: text.name, confirm: text.confirm },
  );
}

/**
 * Rows of a form that are added and removed one by one (a binding's
 * subjects, a role's rules), shown in order in `el`. `make` builds a row
 * and gets the function that takes that row out again; `removed` runs after
 * a row was taken out. `clear` empties the list without redrawing: the next
 * `add` draws.
 */
export function editableRows<R extends { el: HTMLElement }, A extends unknown[]>(
  make: (remove: () => void, ...args: A) => R,
  removed?: () => void,
): { el: HTMLElement; rows(): readonly R[]; add(...args: A): void; clear(): void } {
  const el = h('div', {});
  let rows: R[] = [];
  const draw = () =>
    replace(
      el,
      rows.map((r) => r.el),
    );
  return {
    el,
    rows: () => rows,
    add: (...args) => {
      const row = make(
        () => {
          rows = rows.filter((x) => x !== row);
          draw();
          removed?.();
        },
        ...args,
      );
      rows.push(row);
      draw();
    },
    clear: () => {
      rows = [];
    },
  };
}

/** A submit handler for a form: no page reload, busy while running, errors shown. */
export function onSubmit(
  form: HTMLFormElement,
  status: StatusArea,
  action: () => Promise<void>,
): void {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const submit = form.querySelector<HTMLButtonElement>('button[type=submit]');
    if (submit) submit.disabled = true;
    status.clear();
    action()
      .catch((err: unknown) => status.show(errorNotice(err)))
      .finally(() => {
        if (submit) submit.disabled = false;
      });
  });
}

/** A loading placeholder, then the view's content or its error. */
export async function load(into: HTMLElement, build: () => Promise<Child>): Promise<void> {
  replace(into, h('p', { class: 'muted', role: 'status' }, 'Loading…'));
  try {
    replace(into, await build());
  } catch (err) {
    replace(into, errorNotice(err));
  }
}
