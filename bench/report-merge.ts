/**
 * A partial run (KG_BENCH_ROWS) must not throw away the rows it did not
 * measure: the new report's rows and limit lines replace those of the same
 * ids in the existing docs/benchmarks.md, everything else (other rows, the
 * machine of the full run, profiles) stays, and the header says which rows
 * were re-measured when.
 */
import { existsSync, readFileSync } from 'node:fs';

const rowId = (line: string) => /^\| (P\d+[^ |]*|X-[^ |]+) \|/.exec(line)?.[1];
const limitId = (line: string) => /^- (P\d+[^:]*|X-[^:]+):/.exec(line)?.[1];
const order = (id: string) => {
  const m = /^P(\d+)(.*)$/.exec(id);
  return m ? Number(m[1]) * 10 + (m[2] ? 1 : 0) : 999;
};

function section(text: string, title: string): { start: number; end: number } {
  const start = text.indexOf(`\n## ${title}\n`);
  if (start < 0) return { start: -1, end: -1 };
  const next = text.indexOf('\n## ', start + 1);
  return { start, end: next < 0 ? text.length : next };
}

/** The section's lines with its id'd lines (table rows or limit bullets) merged, new ones winning by id. */
function mergeLines(
  oldText: string,
  newText: string,
  title: string,
  idOf: typeof rowId,
  ran: readonly string[],
): string {
  const o = section(oldText, title);
  const n = section(newText, title);
  const oldLines = oldText.slice(o.start, o.end).split('\n');
  const newLines = n.start < 0 ? [] : newText.slice(n.start, n.end).split('\n');
  const fresh = new Map<string, string>();
  for (const l of newLines) if (idOf(l)) fresh.set(idOf(l)!, l);
  // A re-measured row's old line goes even when the new run has none (a limit now met).
  const kept = oldLines.filter((l) => idOf(l) !== undefined && !ran.includes(idOf(l)!));
  const merged = [...kept, ...fresh.values()].sort((a, b) => order(idOf(a)!) - order(idOf(b)!));
  // Where the id'd lines go: where the first one was, else after the table
  // header (Results) or the heading's blank line (limits).
  let at = oldLines.findIndex((l) => idOf(l) !== undefined);
  if (at < 0) {
    const header = oldLines.findIndex((l) => l.startsWith('|---'));
    at = header >= 0 ? header + 1 : 3;
  }
  const frame = oldLines.map((l, i) => ({ l, i })).filter(({ l }) => idOf(l) === undefined);
  const before = frame.filter(({ i }) => i < at).map(({ l }) => l);
  const after = frame
    .filter(({ i }) => i >= at)
    .map(({ l }) => l)
    .filter((l) => !(merged.length && l === 'Every measured goal is met.'));
  return [...before, ...merged, ...after].join('\n');
}

export function mergeReport(file: string, fresh: string, ran: string[], when: string): string {
  if (!existsSync(file)) return fresh;
  const old = readFileSync(file, 'utf8');
  if (section(old, 'Results').start < 0) return fresh;
  let out = old;
  for (const [title, idOf] of [
    ['Results', rowId],
    ['Goals not met: what limits them', limitId],
  ] as const) {
    const s = section(out, title);
    if (s.start < 0) continue;
    out = out.slice(0, s.start) + mergeLines(out, fresh, title, idOf, ran) + out.slice(s.end);
  }
  const note = `Rows ${ran.join(', ')} re-measured on ${when} UTC (KG_BENCH_ROWS); the others are from the run above.`;
  out = out.replace(/\nRows [^\n]* re-measured on [^\n]*\n/, '\n');
  return out.replace('\n## Machine\n', `\n${note}\n\n## Machine\n`);
}
