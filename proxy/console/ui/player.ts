/**
 * Playing a recording into a terminal emulator: play, pause, seek, speed
 * and an idle limit over the events of a `Cast` (cast.ts). The emulator is
 * behind `Screen` (xterm.js in the console), which parses what it is given
 * in order, later; resizes are queued behind the output written before them.
 *
 * Seeking forward writes the events in between at once; seeking back resets
 * the emulator (RIS) and writes from the start, in batches, never more than
 * a few MiB waiting in the emulator at a time (xterm.js refuses writes past
 * 50 MB queued), so a long recording seeks in about the time the emulator
 * needs to parse it.
 */
import { parseSize, timeline, type Cast } from './cast.js';

export interface Screen {
  /** Parse `data` (later, in order); `done` once it is. */
  write(data: string, done?: () => void): void;
  resize(cols: number, rows: number): void;
}

const batchChars = 1024 * 1024;
const maxPending = 4 * 1024 * 1024;
const tickMs = 33;
/** The emulator's full reset (RIS): screen, scrollback, modes. */
const fullReset = '\x1bc';

export class Player {
  readonly #cast: Cast;
  readonly #screen: Screen;
  #at: Float64Array;
  /** The first event not yet written. */
  #next = 0;
  #pos = 0;
  #playing = false;
  #speed = 1;
  #clockStart = 0;
  #posStart = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #pending = 0;
  #waiting: (() => void)[] = [];
  /** Writes happen one batch of events after another, never interleaved. */
  #work: Promise<void> = Promise.resolve();
  #tickQueued = false;
  /** Called after every change of state or position (at most every tick while playing). */
  onChange: () => void = () => undefined;

  constructor(cast: Cast, screen: Screen, idleCap: number | null) {
    this.#cast = cast;
    this.#screen = screen;
    this.#at = timeline(cast.events, idleCap);
  }

  get duration(): number {
    return this.#at.length ? this.#at[this.#at.length - 1]! : 0;
  }

  get position(): number {
    return this.#pos;
  }

  get playing(): boolean {
    return this.#playing;
  }

  get speed(): number {
    return this.#speed;
  }

  /** When event `i` plays on the current timeline. */
  timeOf(i: number): number {
    return this.#at[i] ?? 0;
  }

  play(): void {
    if (this.#playing) return;
    if (this.#pos >= this.duration) void this.seek(0);
    this.#playing = true;
    this.#restartClock();
    this.#schedule();
    this.onChange();
  }

  pause(): void {
    if (!this.#playing) return;
    this.#pos = Math.min(this.#clock(), this.duration);
    this.#playing = false;
    clearTimeout(this.#timer);
    this.#enqueue();
    this.onChange();
  }

  setSpeed(s: number): void {
    if (this.#playing) this.#pos = Math.min(this.#clock(), this.duration);
    this.#speed = s;
    this.#restartClock();
    this.onChange();
  }

  /** Cut pauses longer than `cap` seconds (null: as recorded); the same event stays on screen. */
  setIdleCap(cap: number | null): void {
    if (this.#playing) this.#pos = Math.min(this.#clock(), this.duration);
    const shown = this.#next;
    const before = shown > 0 ? this.#at[shown - 1]! : 0;
    const into = Math.max(0, this.#pos - before);
    this.#at = timeline(this.#cast.events, cap);
    const after = shown > 0 ? this.#at[shown - 1]! : 0;
    const nextAt = shown < this.#at.length ? this.#at[shown]! : after;
    this.#pos = Math.min(after + into, nextAt);
    this.#restartClock();
    this.onChange();
  }

  /** Show the terminal as it was at `t` seconds; resolves once written. */
  seek(t: number): Promise<void> {
    // Within a slider step of the end is the end (a float total is rarely a multiple of the step).
    const to = t >= this.duration - 0.05 ? this.duration : Math.max(0, t);
    this.#work = this.#work.then(async () => {
      if (this.#next > 0 && this.#at[this.#next - 1]! > to) {
        const { width, height } = this.#cast.header;
        await this.#write(fullReset);
        this.#screen.write('', () => this.#screen.resize(width, height));
        this.#next = 0;
      }
      await this.#applyUntil(to);
    });
    this.#pos = to;
    this.#restartClock();
    this.onChange();
    return this.settled();
  }

  /** Resolves once everything asked so far is on screen. */
  async settled(): Promise<void> {
    await this.#work;
    await new Promise<void>((r) => this.#screen.write('', r));
  }

  /** Stop for good (the page is leaving). */
  stop(): void {
    this.#playing = false;
    clearTimeout(this.#timer);
  }

  #clock(): number {
    return this.#posStart + ((performance.now() - this.#clockStart) / 1000) * this.#speed;
  }

  #restartClock(): void {
    this.#clockStart = performance.now();
    this.#posStart = this.#pos;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#tick(), tickMs);
  }

  #tick(): void {
    if (!this.#playing) return;
    this.#pos = Math.min(this.#clock(), this.duration);
    this.#enqueue();
    if (this.#pos < this.duration) {
      this.#schedule();
      this.onChange();
      return;
    }
    // The end is announced once the last output has reached the terminal.
    this.#playing = false;
    void this.#work
      .then(() => new Promise<void>((r) => this.#screen.write('', r)))
      .then(() => this.onChange());
  }

  /** Write up to the current position after the work queued before (one such write waiting at most). */
  #enqueue(): void {
    if (this.#tickQueued) return;
    this.#tickQueued = true;
    this.#work = this.#work.then(async () => {
      this.#tickQueued = false;
      await this.#applyUntil(this.#pos);
    });
  }

  async #applyUntil(pos: number): Promise<void> {
    const events = this.#cast.events;
    let out = '';
    while (this.#next < events.length && this.#at[this.#next]! <= pos) {
      const e = events[this.#next++]!;
      if (e.type === 'o') {
        out += e.data;
        if (out.length >= batchChars) {
          await this.#write(out);
          out = '';
        }
      } else if (e.type === 'r') {
        const size = parseSize(e.data);
        if (!size) continue;
        await this.#write(out);
        out = '';
        this.#screen.write('', () => this.#screen.resize(size.cols, size.rows));
      }
    }
    await this.#write(out);
  }

  async #write(data: string): Promise<void> {
    if (!data) return;
    this.#pending += data.length;
    this.#screen.write(data, () => {
      this.#pending -= data.length;
      if (this.#pending <= maxPending / 2) for (const w of this.#waiting.splice(0)) w();
    });
    if (this.#pending > maxPending) await new Promise<void>((r) => this.#waiting.push(r));
  }
}
