/**
 * The result table: one row per goal, with the goal beside the measured
 * ratio and the absolute figures, printed to the terminal and written as
 * Markdown to docs/benchmarks.md.
 */
export type Verdict = 'met' | 'not met' | 'pending' | 'skipped' | 'error' | 'info';

export interface Row {
  /** P1 … P11, with a suffix for variants (P1-real). */
  id: string;
  what: string;
  /** Which upstream served it: the bench upstream, the real test cluster, or none. */
  upstream: string;
  goal: string;
  /** The compared figure: a ratio or a difference, median (min–max) over rounds. */
  result: string;
  /** The absolute figures behind it. */
  absolute: string;
  verdict: Verdict;
  /** For a goal not met: what limits it, measured. */
  limit?: string;
}

const columns: [keyof Row, string][] = [
  ['id', '#'],
  ['what', 'what'],
  ['upstream', 'upstream'],
  ['goal', 'goal'],
  ['result', 'result (median, min–max over rounds)'],
  ['absolute', 'absolute (medians)'],
  ['verdict', 'verdict'],
];

export function renderText(rows: Row[]): string {
  const cells = rows.map((r) => columns.map(([k]) => String(r[k] ?? '')));
  const heads = columns.map(([, h]) => h);
  const width = heads.map((h, i) =>
    Math.min(60, Math.max(h.length, ...cells.map((c) => c[i]!.length))),
  );
  const line = (c: string[]) => c.map((x, i) => x.padEnd(width[i]!)).join(' | ');
  return [line(heads), width.map((w) => '-'.repeat(w)).join('-+-'), ...cells.map(line)].join('\n');
}

const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(rows: Row[]): string {
  return [
    `| ${columns.map(([, h]) => h).join(' | ')} |`,
    `|${columns.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${columns.map(([k]) => esc(String(r[k] ?? ''))).join(' | ')} |`),
  ].join('\n');
}

/** A row that could not run yet, saying what is missing. */
export function pendingRow(id: string, what: string, goal: string, missing: string): Row {
  return {
    id,
    what,
    upstream: '—',
    goal,
    result: `pending: ${missing}`,
    absolute: '—',
    verdict: 'pending',
  };
}
