/**
 * One recorded session: the tap the upgrade path calls with every byte that
 * passes (proxy/forward/upgrade.ts), turned into asciicast v2 and written out
 * in chunks.
 *
 * The rules (issue #21): a byte passed in is never changed, held back or
 * copied beyond the frame being read; nothing here throws into the data path
 * (every entry point catches, and a protocol the tap cannot follow makes the
 * recording incomplete); memory is bounded: lines wait for the store only up
 * to `maxPendingBytes`, after which the recording is given up (best effort)
 * or the session ended (required, through `onFailure`).
 *
 * Output: a header line, then `[seconds, "o", text]` for stdout and stderr,
 * `[seconds, "i", text]` for stdin when the policy records it, and
 * `[seconds, "r", "COLSxROWS"]` for terminal resizes. Port-forward sessions
 * keep the header and byte counts only.
 */
import { TextDecoder } from 'node:util';
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
}

export interface SessionOptions {
  kind: SessionKind;
  stdin: boolean;
  /** required: a failure ends the session (onFailure); best effort: the recording is marked incomplete. */
  required: boolean;
  /** Chunk size: a chunk is written once this many bytes wait (default 64 KiB)… */
  chunkBytes?: number;
  /** …or this often, whichever first (default 1 s). */
  flushMs?: number;
  /** Most bytes waiting for the store before the recording is given up (default 8 MiB). */
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

export class RecordingSession implements UpgradeTap {
  bytesIn = 0;
  bytesOut = 0;
  private readonly started: number;
  private readonly now: () => number;
  private readonly chunkBytes: number;
  private readonly maxPending: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private writing = 0;
  private seq = 0;
  private failed: string | undefined;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private client?: { feed(b: Buffer): void };
  private cluster?: { feed(b: Buffer): void };
  private readonly decoders = new Map<number, TextDecoder>();
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
    this.chunkBytes = opts.chunkBytes ?? 64 * 1024;
    this.maxPending = opts.maxPendingBytes ?? 8 * 1024 * 1024;
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
            if (ch === channel.stdout || ch === channel.stderr) this.text(ch, 'o', b);
          },
          end: () => {},
        });
        this.client = new WebSocketChannels(base64, {
          data: (ch, b) => {
            if (ch === channel.stdin && this.opts.stdin) this.text(ch, 'i', b);
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
          if (t === 'stdin' && this.opts.stdin) this.text(channel.stdin, 'i', b);
          else if (t === 'resize') this.resizeLines(b);
        },
      });
      this.cluster = new SpdyStreams({
        opened: () => {},
        data: (id, b) => {
          const t = typeOf(id);
          if (t === 'stdout') this.text(channel.stdout, 'o', b);
          else if (t === 'stderr') this.text(channel.stderr, 'o', b);
        },
      });
    });
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
    this.guard(() => {
      for (const [ch, d] of this.decoders) {
        const tail = d.decode();
        if (tail) this.line(ch === channel.stdin ? 'i' : 'o', tail);
      }
    });
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
    this.pending = [];
    this.pendingBytes = 0;
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

  private text(ch: number, kind: 'o' | 'i', bytes: Buffer): void {
    let d = this.decoders.get(ch);
    if (!d) this.decoders.set(ch, (d = new TextDecoder('utf-8')));
    const s = d.decode(bytes, { stream: true });
    if (s) this.line(kind, s);
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
      this.line('r', `${w}x${h}`);
  }

  private line(kind: 'o' | 'i' | 'r', data: string): void {
    if (this.failed) return;
    const t = ((this.now() - this.started) / 1000).toFixed(6);
    const b = Buffer.from(`[${t}, ${JSON.stringify(kind)}, ${JSON.stringify(data)}]\n`);
    this.pending.push(b);
    this.pendingBytes += b.length;
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
    if (this.writing || this.pendingBytes === 0 || this.failed) return;
    const data = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.writing = 1;
    let write: Promise<void>;
    try {
      write = this.writer.append(++this.seq, data);
    } catch (err) {
      write = Promise.reject(err as Error); // a store that throws at once fails the same way
    }
    write.then(
      () => {
        this.writing = 0;
        if (this.ended || this.pendingBytes >= this.chunkBytes) this.flush();
        if (this.writing === 0 && this.idle) this.idle();
      },
      (err: unknown) => {
        this.writing = 0;
        this.fail(`the recording store failed: ${(err as Error).message}`);
        if (this.idle) this.idle();
      },
    );
  }
}
