/**
 * One recorded session: the tap the upgrade path calls with every byte that
 * passes (proxy/forward/upgrade.ts), turned into asciicast v2 and written out
 * in chunks.
 *
 * The rules (issue #21): a byte passed in is never changed, held back or
 * copied beyond the frame being read; nothing here throws into the data path
 * (every entry point catches, and a protocol the tap cannot follow makes the
 * recording incomplete); memory is bounded. When more than `holdBytes` wait
 * for the store, `behind()` asks the upgrade path to stop reading from the
 * cluster until the store has caught up: a store slower than the session
 * slows the session down (as a slow client does) rather than losing its
 * recording or holding it in memory. Only a store that makes no progress for
 * `stallMs`, or bytes past `maxPendingBytes` (which pausing the cluster side
 * cannot stop: stdin), give the recording up (best effort) or end the session
 * (required, through `onFailure`).
 *
 * Output: the asciicast header, then records (events.ts) of stdout, stderr,
 * stdin when the policy records it, and terminal resizes (`COLSxROWS`),
 * which become asciicast v2 events when the recording is read. Port-forward
 * sessions keep the header and byte counts only.
 */
import { recordHeader, recordHeaderBytes, recordKind, type RecordKind } from './events.js';
import { channel, isBase64Protocol, WebSocketChannels } from './ws-channels.js';
import { SpdyStreams } from './spdy-streams.js';
import type { RecordingEnd, RecordingMeta, RecordingWriter, SessionKind } from './storage.js';

/** What the upgrade path calls (proxy/forward/upgrade.ts). Never throws. */
export interface UpgradeTap {
  /** The upgrade switched: the protocol (websocket, spdy/3.1) and the negotiated subprotocol. */
  switched(protocol: string, subprotocol: string | undefined): void;
  /** Bytes from the client towards the cluster, as passed on. */
  fromClient(chunk: Buffer): void;
  /** Bytes from the cluster towards the client, as passed on. */
  fromCluster(chunk: Buffer): void;
  /** The connection is over; `status` is the upstream's answer (101 when switched). */
  end(status: number): void;
  /**
   * Called after each chunk from the cluster: a promise when the store is
   * behind, and the caller should read no more from the cluster until it
   * settles (it always does: caught up, failed or ended); otherwise undefined.
   */
  behind?(): Promise<void> | undefined;
}

export interface SessionOptions {
  kind: SessionKind;
  stdin: boolean;
  /** required: a failure ends the session (onFailure); best effort: the recording is marked incomplete. */
  required: boolean;
  /** Chunk size: a chunk is written once this many bytes wait (default 1 MiB)… */
  chunkBytes?: number;
  /** …or this often, whichever first (default 1 s). */
  flushMs?: number;
  /** Bytes waiting for the store past which `behind()` holds the cluster side (default 4 MiB). */
  holdBytes?: number;
  /** A store that completes no write for this long while holding the session fails it (default 10 s). */
  stallMs?: number;
  /** Most bytes waiting for the store before the recording is given up (default 16 MiB). */
  maxPendingBytes?: number;
  /** The session must end: a required recording failed. */
  onFailure(reason: string): void;
  /** Logs a failure (message only). */
  log(reason: string): void;
  now?: () => number;
}

/** The asciicast v2 header line for a session. */
export function castHeader(meta: RecordingMeta): Buffer {
  const where = `${meta.cluster}/${meta.namespace}/${meta.pod}${meta.container ? `/${meta.container}` : ''}`;
  const header = {
    version: 2,
    width: 80,
    height: 24,
    timestamp: Math.floor(meta.startedAt.getTime() / 1000),
    ...(meta.command.length ? { command: meta.command.join(' ') } : {}),
    title: `${meta.kind} ${where} by ${meta.user}`,
    env: { TERM: 'xterm-256color' },
  };
  return Buffer.from(JSON.stringify(header) + '\n');
}

const resizeLimit = 1024;
/** Bytes of one stream arriving within this many milliseconds are one event. */
const runMs = 10;
/** …up to this many bytes. */
const runBytes = 64 * 1024;

export class RecordingSession implements UpgradeTap {
  bytesIn = 0;
  bytesOut = 0;
  private readonly started: number;
  private readonly now: () => number;
  private readonly chunkBytes: number;
  private readonly maxPending: number;
  private readonly holdBytes: number;
  private readonly stallMs: number;
  /** Bytes of the write in flight. */
  private writingBytes = 0;
  private hold?: { settled: Promise<void>; release: () => void; stall: NodeJS.Timeout };
  /** Record headers and payloads waiting for the store, joined into one chunk per write. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private writing = 0;
  private seq = 0;
  private failed: string | undefined;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private client?: { feed(b: Buffer): void };
  private cluster?: { feed(b: Buffer): void };
  private run: { kind: RecordKind; at: number; parts: Buffer[]; bytes: number } | undefined;
  private resize: Buffer[] = [];
  private resizeBytes = 0;
  private idle?: () => void;
  /** Settles when the recording is closed in the store. */
  readonly closed: Promise<void>;
  private closeNow!: () => void;

  constructor(
    private readonly writer: RecordingWriter,
    private readonly opts: SessionOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.started = this.now();
    this.chunkBytes = opts.chunkBytes ?? 1024 * 1024;
    this.maxPending = opts.maxPendingBytes ?? 16 * 1024 * 1024;
    this.holdBytes = opts.holdBytes ?? 4 * 1024 * 1024;
    this.stallMs = opts.stallMs ?? 10_000;
    this.closed = new Promise((r) => (this.closeNow = r));
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? 1000);
    this.timer.unref();
  }

  get id(): string {
    return this.writer.id;
  }

  /** Why the recording is incomplete, if it is. */
  get failure(): string | undefined {
    return this.failed;
  }

  switched(protocol: string, subprotocol: string | undefined): void {
    this.guard(() => {
      if (this.opts.kind === 'portforward') return;
      if (protocol.toLowerCase() === 'websocket') {
        const base64 = isBase64Protocol(subprotocol ?? '');
        this.cluster = new WebSocketChannels(base64, {
          data: (ch, b) => {
            if (ch === channel.stdout) this.text(recordKind.stdout, b);
            else if (ch === channel.stderr) this.text(recordKind.stderr, b);
          },
          end: () => {},
        });
        this.client = new WebSocketChannels(base64, {
          data: (ch, b) => {
            if (ch === channel.stdin && this.opts.stdin) this.text(recordKind.stdin, b);
            else if (ch === channel.resize) this.resizePiece(b);
          },
          end: (ch) => {
            if (ch === channel.resize) this.resizeDone();
          },
        });
        return;
      }
      // SPDY: the client opens every stream and names its type.
      const types = new Map<number, string>();
      const typeOf = (id: number) => types.get(id) ?? '';
      this.client = new SpdyStreams({
        opened: (id, h) => void types.set(id, h.get('streamtype') ?? ''),
        data: (id, b) => {
          const t = typeOf(id);
          if (t === 'stdin' && this.opts.stdin) this.text(recordKind.stdin, b);
          else if (t === 'resize') this.resizeLines(b);
        },
      });
      this.cluster = new SpdyStreams({
        opened: () => {},
        data: (id, b) => {
          const t = typeOf(id);
          if (t === 'stdout') this.text(recordKind.stdout, b);
          else if (t === 'stderr') this.text(recordKind.stderr, b);
        },
      });
    });
  }

  behind(): Promise<void> | undefined {
    if (this.hold) return this.hold.settled;
    if (this.failed || this.ended || this.pendingBytes + this.writingBytes < this.holdBytes)
      return undefined;
    let release!: () => void;
    const settled = new Promise<void>((r) => (release = r));
    const stall = setTimeout(
      () =>
        this.fail(
          `the recording store completed no write for ${this.stallMs / 1000} s; the recording was given up`,
        ),
      this.stallMs,
    );
    stall.unref();
    this.hold = { settled, release, stall };
    return settled;
  }

  /** Let the cluster side go on: the store caught up, or the recording is over. */
  private releaseHold(): void {
    const h = this.hold;
    if (!h) return;
    this.hold = undefined;
    clearTimeout(h.stall);
    h.release();
  }

  fromClient(chunk: Buffer): void {
    this.bytesIn += chunk.length;
    if (this.client && !this.failed) this.guard(() => this.client!.feed(chunk));
  }

  fromCluster(chunk: Buffer): void {
    this.bytesOut += chunk.length;
    if (this.cluster && !this.failed) this.guard(() => this.cluster!.feed(chunk));
  }

  end(status: number): void {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    this.releaseHold();
    this.endRun();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      const end: RecordingEnd = {
        status: status !== 101 ? 'unrecorded' : this.failed ? 'incomplete' : 'complete',
        reason:
          status === 101
            ? (this.failed ?? '')
            : status
              ? `no session: the cluster answered the upgrade ${status}`
              : 'no session: the upgrade failed before the cluster answered',
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
        endedAt: new Date(this.now()),
      };
      this.writer.close(end).then(this.closeNow, (err: unknown) => {
        this.opts.log(`closing the recording failed: ${(err as Error).message}`);
        this.closeNow();
      });
    };
    this.flush();
    if (this.writing === 0) finish();
    else this.idle = finish;
  }

  /** Run a step of the tap; whatever it throws makes the recording incomplete. */
  private guard(step: () => void): void {
    try {
      step();
    } catch (err) {
      this.fail(`the session's frames could not be followed: ${(err as Error).message}`);
    }
  }

  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = reason;
    this.run = undefined;
    this.pending = [];
    this.pendingBytes = 0;
    this.releaseHold();
    this.client = this.cluster = undefined;
    this.opts.log(reason);
    if (this.opts.required && !this.ended) {
      try {
        this.opts.onFailure(reason);
      } catch (err) {
        this.opts.log(`ending the session failed: ${(err as Error).message}`);
      }
    }
  }

  /**
   * Output (or input) joins the run of its stream: bytes arriving within
   * `runMs` of the run's first become one event, up to a chunk's worth. A
   * fast stream is decoded and escaped in large pieces instead of one per
   * frame or TLS record; a person typing still gets an event per keystroke.
   */
  private text(kind: RecordKind, bytes: Buffer): void {
    if (this.failed) return;
    // A record holds at most runBytes (a reader of the store refuses far larger ones as damage).
    for (; bytes.length > runBytes; bytes = bytes.subarray(runBytes))
      this.text(kind, bytes.subarray(0, runBytes));
    const at = this.now();
    if (this.run && (this.run.kind !== kind || at - this.run.at > runMs)) this.endRun();
    this.run ??= { kind, at, parts: [], bytes: 0 };
    this.run.parts.push(bytes);
    this.run.bytes += bytes.length;
    if (this.run.bytes >= runBytes) this.endRun();
  }

  private endRun(): void {
    const r = this.run;
    if (!r) return;
    this.run = undefined;
    this.record(r.kind, r.at, r.parts, r.bytes);
  }

  private resizePiece(b: Buffer): void {
    if (this.resizeBytes + b.length > resizeLimit) return; // an oversized message is not a resize
    this.resize.push(b);
    this.resizeBytes += b.length;
  }

  private resizeDone(): void {
    const text = Buffer.concat(this.resize).toString('utf8');
    const over = this.resizeBytes > resizeLimit;
    this.resize = [];
    this.resizeBytes = 0;
    if (!over) this.resizeJson(text);
  }

  /** SPDY's resize stream: one JSON object per line. */
  private resizeLines(b: Buffer): void {
    let at = 0;
    for (let nl = b.indexOf(0x0a); nl >= 0; nl = b.indexOf(0x0a, at)) {
      this.resizePiece(b.subarray(at, nl));
      at = nl + 1;
      this.resizeDone();
    }
    if (at < b.length) this.resizePiece(b.subarray(at));
  }

  private resizeJson(text: string): void {
    let size: unknown;
    try {
      size = JSON.parse(text);
    } catch {
      return;
    }
    const s = size as { Width?: unknown; Height?: unknown };
    const w = Number(s?.Width);
    const h = Number(s?.Height);
    if (Number.isInteger(w) && Number.isInteger(h) && w >= 0 && h >= 0 && w < 65536 && h < 65536)
      this.record(recordKind.resize, this.now(), [Buffer.from(`${w}x${h}`)]);
  }

  /** One event: its record header and bytes wait for the next chunk (the bytes are not copied). */
  private record(kind: RecordKind, at: number, parts: Buffer[], bytes = parts[0]!.length): void {
    if (this.failed) return;
    if (kind === recordKind.resize) this.endRun(); // what came before the resize is written before it
    this.pending.push(recordHeader(kind, at - this.started, bytes), ...parts);
    this.pendingBytes += recordHeaderBytes + bytes;
    if (this.pendingBytes > this.maxPending) {
      this.fail(
        `the recording store fell behind by more than ${this.maxPending} bytes; the recording was given up`,
      );
      return;
    }
    if (this.pendingBytes >= this.chunkBytes) this.flush();
  }

  /** Write what waits as the next chunk, one write at a time. */
  private flush(): void {
    if (!this.writing) this.guard(() => this.endRun());
    if (this.writing || this.pendingBytes === 0 || this.failed) return;
    const data = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = 1;
    this.writingBytes = data.length;
    let write: Promise<void>;
    try {
      write = this.writer.append(++this.seq, data);
    } catch (err) {
      write = Promise.reject(err as Error); // a store that throws at once fails the same way
    }
    write.then(
      () => {
        this.writing = 0;
        this.writingBytes = 0;
        if (this.hold) {
          // Progress: the stall clock starts again; below half the mark, the cluster side goes on.
          this.hold.stall.refresh();
          if (this.pendingBytes < this.holdBytes / 2) this.releaseHold();
        }
        if (this.ended || this.pendingBytes >= this.chunkBytes) this.flush();
        if (this.writing === 0 && this.idle) this.idle();
      },
      (err: unknown) => {
        this.writing = 0;
        this.writingBytes = 0;
        this.fail(`the recording store failed: ${(err as Error).message}`);
        if (this.idle) this.idle();
      },
    );
  }
}
