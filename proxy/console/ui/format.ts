/** Times as people read them: "3 min ago", "in 7 h", with the exact time on hover. */
export function when(iso: string | null | undefined, never = 'never'): HTMLElement | string {
  if (!iso) return never;
  const t = Date.parse(iso);
  const el = document.createElement('time');
  el.dateTime = iso;
  el.title = new Date(t).toLocaleString();
  el.textContent = relative(t);
  return el;
}

export function relative(t: number, now = Date.now()): string {
  const d = t - now;
  const a = Math.abs(d);
  const [n, unit] =
    a < 60_000
      ? [Math.round(a / 1000), 's']
      : a < 3_600_000
        ? [Math.round(a / 60_000), 'min']
        : a < 86_400_000
          ? [Math.round(a / 3_600_000), 'h']
          : [Math.round(a / 86_400_000), 'd'];
  if (a < 5_000) return 'just now';
  return d < 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

/** Comma- or whitespace-separated text → a clean list. */
export function splitList(s: string): string[] {
  return s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}
