/**
 * A recording (asciicast v2) as the console's player reads it, without the
 * DOM: read line by line from the bytes as they arrive (never the whole
 * file as one string), the header checked and the terminal size kept within
 * bounds, a line that is not an event skipped and counted, event times that
 * go back held at the last; the timeline with long pauses cut to an idle
 * limit; and the output as plain text (escape sequences left out) for
 * finding a word and the moment it was shown.
 *
 * Whatever a recording holds is data: the player writes output to the
 * terminal emulator and nothing else reads it.
 */

export interface CastHeader {
  /** Columns and rows, within `sizeLimits`. */
  width: number;
  height: number;
  /** The recording's own idle limit, when it names one (seconds). */
  idleTimeLimit: number | null;
}

export interface CastEvent {
  /** Seconds from the start; never less than the event before. */
  t: number;
  /** `o` output, `i` input, `r` resize ("COLSxROWS"); others are kept and not shown. */
  type: string;
  data: string;
}

export interface Cast {
  header: CastHeader;
  events: CastEvent[];
  /** Lines that were not events (not JSON, not `[time, type, text]`). */
  skipped: number;
  /** The recording was larger than the player reads: only its start is here. */
  truncated: boolean;
  /** Bytes read. */
  bytes: number;
}

/** Terminal sizes the player accepts; a recording asking for more is shown at the bound. */
export const sizeLimits = { cols: { min: 2, max: 500 }, rows: { min: 1, max: 200 } } as const;

/** How much of a recording the player reads (the download has no limit). */
export const maxCastBytes = 64 * 1024 * 1024;

export class CastError extends Error {}

function bounded(n: number, lim: { min: number; max: number }): number {
  return Math.min(lim.max, Math.max(lim.min, Math.floor(n)));
}

/** "COLSxROWS" of a resize event, within bounds; undefined when it is not a size. */
export function parseSize(s: string): { cols: number; rows: number } | undefined {
  const m = /^(\d{1,6})x(\d{1,6})$/.exec(s);
  // 0x0 is what a client without a terminal size reports: no size, not a tiny one.
  if (!m || Number(m[1]) === 0 || Number(m[2]) === 0) return undefined;
  return {
    cols: bounded(Number(m[1]), sizeLimits.cols),
    rows: bounded(Number(m[2]), sizeLimits.rows),
  };
}

function headerOf(line: string): CastHeader {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new CastError('This is not an asciicast recording: its first line is not JSON.');
  }
  const o = (typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {}) as Record<
    string,
    unknown
  >;
  if (o.version !== 2)
    throw new CastError(
      'This is not an asciicast v2 recording: its first line does not say version 2.',
    );
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x > 0 ? x : null);
  const w = num(o.width);
  const hgt = num(o.height);
  if (w === null || hgt === null)
    throw new CastError('This recording does not say the terminal size (width and height).');
  return {
    width: bounded(w, sizeLimits.cols),
    height: bounded(hgt, sizeLimits.rows),
    idleTimeLimit: num(o.idle_time_limit),
  };
}

/**
 * Reads a recording from its bytes as they arrive: `push` each piece (false
 * once `maxCastBytes` is reached: stop reading), then `finish`.
 */
export class CastReader {
  readonly #decoder = new TextDecoder('utf-8');
  #partial: string[] = [];
  #header: CastHeader | undefined;
  #events: CastEvent[] = [];
  #skipped = 0;
  #last = 0;
  #bytes = 0;
  #truncated = false;

  get bytes(): number {
    return this.#bytes;
  }

  push(bytes: Uint8Array): boolean {
    if (this.#truncated) return false;
    let piece = bytes;
    if (this.#bytes + bytes.length > maxCastBytes) {
      piece = bytes.subarray(0, maxCastBytes - this.#bytes);
      this.#truncated = true;
    }
    this.#bytes += piece.length;
    this.#text(this.#decoder.decode(piece, { stream: true }));
    return !this.#truncated;
  }

  finish(): Cast {
    // A cut recording ends mid-line: that last piece is not an event.
    if (!this.#truncated) {
      this.#text(this.#decoder.decode());
      this.#line(this.#partial.join(''));
    }
    this.#partial = [];
    if (!this.#header) throw new CastError('This recording is empty: it has no header.');
    return {
      header: this.#header,
      events: this.#events,
      skipped: this.#skipped,
      truncated: this.#truncated,
      bytes: this.#bytes,
    };
  }

  #text(s: string): void {
    let from = 0;
    for (let nl = s.indexOf('\n'); nl !== -1; nl = s.indexOf('\n', from)) {
      this.#partial.push(s.slice(from, nl));
      this.#line(this.#partial.join(''));
      this.#partial = [];
      from = nl + 1;
    }
    if (from < s.length) this.#partial.push(s.slice(from));
  }

  #line(raw: string): void {
    const line = raw.trim();
    if (!line) return;
    if (!this.#header) {
      this.#header = headerOf(line);
      return;
    }
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      this.#skipped++;
      return;
    }
    if (
      !Array.isArray(v) ||
      v.length < 3 ||
      typeof v[0] !== 'number' ||
      !Number.isFinite(v[0]) ||
      v[0] < 0 ||
      typeof v[1] !== 'string' ||
      typeof v[2] !== 'string'
    ) {
      this.#skipped++;
      return;
    }
    this.#last = Math.max(this.#last, v[0]);
    this.#events.push({ t: this.#last, type: v[1], data: v[2] });
  }
}

/**
 * When each event plays (seconds), with every pause longer than `idleCap`
 * cut to it (null: as recorded).
 */
export function timeline(events: readonly CastEvent[], idleCap: number | null): Float64Array {
  const at = new Float64Array(events.length);
  let prev = 0;
  let acc = 0;
  for (let i = 0; i < events.length; i++) {
    const gap = events[i]!.t - prev;
    acc += idleCap !== null && gap > idleCap ? idleCap : gap;
    at[i] = acc;
    prev = events[i]!.t;
  }
  return at;
}

/** The output as text with escape sequences and control characters left out. */
export interface TextIndex {
  text: string;
  /** Ascending offsets in `text` where each output event's text starts… */
  starts: number[];
  /** …and that event's index in the recording. */
  events: number[];
}

const enum S {
  Ground,
  Esc,
  EscIntermediate,
  Csi,
  Str,
  StrEsc,
}

/**
 * The text a reader sees in the output, in order (sequences split across
 * events are followed: the state carries over). Line feeds stay; carriage
 * returns, bells, backspaces and other controls go; so do CSI, OSC, DCS,
 * SOS, PM and APC sequences and two- and three-character escapes.
 */
export function textIndex(events: readonly CastEvent[]): TextIndex {
  const parts: string[] = [];
  const starts: number[] = [];
  const idx: number[] = [];
  let length = 0;
  let state = S.Ground;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.type !== 'o') continue;
    let out = '';
    let run = -1; // start of a run of plain characters in e.data
    const d = e.data;
    for (let k = 0; k < d.length; k++) {
      const c = d.charCodeAt(k);
      if (state === S.Ground) {
        if (c >= 0x20 && c !== 0x7f && (c < 0x80 || c > 0x9f)) {
          if (run < 0) run = k;
          continue;
        }
        if (run >= 0) {
          out += d.slice(run, k);
          run = -1;
        }
        if (c === 0x0a) out += '\n';
        else if (c === 0x09) out += ' ';
        else if (c === 0x1b) state = S.Esc;
        else if (c === 0x9b) state = S.Csi;
        else if (c === 0x9d || c === 0x90 || c === 0x98 || c === 0x9e || c === 0x9f) state = S.Str;
        continue;
      }
      if (state === S.Esc) {
        if (c === 0x5b) state = S.Csi;
        else if (c === 0x5d || c === 0x50 || c === 0x58 || c === 0x5e || c === 0x5f) state = S.Str;
        else if (c >= 0x20 && c <= 0x2f) state = S.EscIntermediate;
        else if (c === 0x1b) state = S.Esc;
        else state = S.Ground;
      } else if (state === S.EscIntermediate) {
        if (c >= 0x30 && c <= 0x7e) state = S.Ground;
        else if (c === 0x1b) state = S.Esc;
        else if (c < 0x20 || c > 0x2f) state = S.Ground;
      } else if (state === S.Csi) {
        if (c >= 0x40 && c <= 0x7e) state = S.Ground;
        else if (c === 0x1b) state = S.Esc;
        else if (c === 0x18 || c === 0x1a) state = S.Ground;
      } else if (state === S.Str) {
        if (c === 0x07 || c === 0x9c || c === 0x18 || c === 0x1a) state = S.Ground;
        else if (c === 0x1b) state = S.StrEsc;
      } else {
        // ESC inside a string: ESC \ ends it; anything else starts a new sequence.
        state = c === 0x5c ? S.Ground : S.Esc;
        if (state === S.Esc) k--;
      }
    }
    if (run >= 0) out += d.slice(run);
    if (!out) continue;
    starts.push(length);
    idx.push(i);
    parts.push(out);
    length += out.length;
  }
  return { text: parts.join(''), starts, events: idx };
}

export interface Match {
  /** Offsets in the text index. */
  start: number;
  end: number;
  /** The event that showed the match's last character. */
  event: number;
}

/** Where `query` appears in the output (case-insensitive), at most `max` places. */
export function findAll(index: TextIndex, query: string, max = 1000): Match[] {
  if (!query) return [];
  const re = new RegExp(query.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'giu');
  const found: Match[] = [];
  for (const m of index.text.matchAll(re)) {
    const start = m.index;
    const end = start + m[0].length;
    found.push({ start, end, event: eventAt(index, end - 1) });
    if (found.length >= max) break;
  }
  return found;
}

/** The output event whose text holds offset `at`. */
function eventAt(index: TextIndex, at: number): number {
  let lo = 0;
  let hi = index.starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (index.starts[mid]! <= at) lo = mid;
    else hi = mid - 1;
  }
  return index.events[lo] ?? 0;
}

/** `m:ss.d` (or `h:mm:ss.d`) for a position in seconds. */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds * 10) / 10);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = (s % 60).toFixed(1).padStart(4, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${rest}` : `${m}:${rest}`;
}
