/**
 * The few pieces of RFC 6455 the P6 row needs, written here rather than
 * taken from the `ws` package (only a transitive dependency, without
 * types): the handshake key, server frames (unmasked), client frames
 * (masked), and a reader that walks frames without copying their payload,
 * so the client counts bytes at memory speed and never limits the row.
 *
 * Kubernetes' channel protocols (`v5.channel.k8s.io` for exec,
 * `v4.channel.k8s.io` for port-forward) put one channel byte in front of
 * every binary message; the reader reports it.
 */
import { createHash, randomBytes } from 'node:crypto';

export const opText = 0x1;
export const opBinary = 0x2;
export const opClose = 0x8;
export const opPing = 0x9;
export const opPong = 0xa;

const guid = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key. */
export function acceptKey(key: string): string {
  return createHash('sha1')
    .update(key + guid)
    .digest('base64');
}

export const newKey = (): string => randomBytes(16).toString('base64');

function header(opcode: number, length: number, masked: boolean): Buffer {
  const maskBit = masked ? 0x80 : 0;
  let h: Buffer;
  if (length < 126) {
    h = Buffer.allocUnsafe(2);
    h[1] = maskBit | length;
  } else if (length < 65536) {
    h = Buffer.allocUnsafe(4);
    h[1] = maskBit | 126;
    h.writeUInt16BE(length, 2);
  } else {
    h = Buffer.allocUnsafe(10);
    h[1] = maskBit | 127;
    h.writeBigUInt64BE(BigInt(length), 2);
  }
  h[0] = 0x80 | opcode; // FIN: messages are never fragmented here
  return h;
}

/** One whole server frame (unmasked). */
export function serverFrame(opcode: number, payload: Buffer): Buffer {
  return Buffer.concat([header(opcode, payload.length, false), payload]);
}

/** A binary message on a Kubernetes channel: channel byte, then the data. */
export function channelFrame(channel: number, data: Buffer): Buffer {
  return serverFrame(opBinary, Buffer.concat([Buffer.from([channel]), data]));
}

/** A close frame with a status code (1000: normal closure). */
export function closeFrame(code = 1000, masked = false): Buffer {
  const body = Buffer.allocUnsafe(2);
  body.writeUInt16BE(code, 0);
  return masked ? clientFrame(opClose, body) : serverFrame(opClose, body);
}

/** One whole client frame: clients must mask (RFC 6455 §5.3). */
export function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = randomBytes(4);
  const body = Buffer.allocUnsafe(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ mask[i & 3]!;
  return Buffer.concat([header(opcode, payload.length, true), mask, body]);
}

export interface FrameEvents {
  /** Payload bytes of binary messages, by channel (the channel byte not counted). */
  onData?(channel: number, bytes: number): void;
  /** A whole small message (≤ 64 KiB) on a channel other than the bulk one. */
  onMessage?(channel: number, payload: Buffer): void;
  onClose?(code: number): void;
}

/**
 * Walks a stream of frames. Bulk payloads on `bulkChannel` are only
 * counted; every other message is collected whole (status, port headers).
 */
export class FrameReader {
  private head = Buffer.alloc(0);
  /** Payload bytes still to come in the current frame. */
  private left = 0;
  private opcode = 0;
  private masked = false;
  /** The current frame's channel, or -1 before its first payload byte. */
  private channel = -1;
  private collect: Buffer[] | undefined;
  closed = false;

  constructor(
    private readonly bulkChannel: number,
    private readonly on: FrameEvents,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.left > 0) {
        i = this.payload(chunk, i);
        continue;
      }
      // Need a complete header first; it may straddle chunks.
      const need = this.headerLength(chunk, i);
      if (need === 0) {
        this.head = Buffer.concat([this.head, chunk.subarray(i)]);
        return;
      }
      const h = this.head.length ? Buffer.concat([this.head, chunk.subarray(i)]) : chunk;
      const start = this.head.length ? 0 : i;
      const used = need - this.head.length;
      this.head = Buffer.alloc(0);
      this.startFrame(h, start);
      i += used;
      if (this.left === 0) this.endFrame();
    }
  }

  /** Total header length if it is all there (counting bytes kept from before), else 0. */
  private headerLength(chunk: Buffer, i: number): number {
    const avail = this.head.length + chunk.length - i;
    const at = (k: number) =>
      k < this.head.length ? this.head[k]! : chunk[i + k - this.head.length]!;
    if (avail < 2) return 0;
    const b1 = at(1);
    const len7 = b1 & 0x7f;
    const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (b1 & 0x80 ? 4 : 0);
    return avail >= need ? need : 0;
  }

  private startFrame(h: Buffer, at: number): void {
    this.opcode = h[at]! & 0x0f;
    this.masked = (h[at + 1]! & 0x80) !== 0;
    const len7 = h[at + 1]! & 0x7f;
    this.left =
      len7 === 126
        ? h.readUInt16BE(at + 2)
        : len7 === 127
          ? Number(h.readBigUInt64BE(at + 2))
          : len7;
    this.channel = this.opcode === opBinary ? -1 : -2;
    this.collect = undefined;
    if (this.masked) throw new Error('a server sent a masked frame (RFC 6455 §5.1)');
    if (this.opcode !== opBinary) this.collect = [];
  }

  private payload(chunk: Buffer, i: number): number {
    const n = Math.min(this.left, chunk.length - i);
    let from = i;
    if (this.channel === -1) {
      this.channel = chunk[i]!;
      from++;
      if (this.channel !== this.bulkChannel) this.collect = [];
    }
    if (this.collect) this.collect.push(chunk.subarray(from, i + n));
    else this.on.onData?.(this.channel, i + n - from);
    this.left -= n;
    if (this.left === 0) this.endFrame();
    return i + n;
  }

  private endFrame(): void {
    const body = this.collect ? Buffer.concat(this.collect) : undefined;
    this.collect = undefined;
    if (this.opcode === opClose) {
      this.closed = true;
      this.on.onClose?.(body && body.length >= 2 ? body.readUInt16BE(0) : 1005);
    } else if (this.opcode === opBinary && body) {
      this.on.onMessage?.(this.channel, body);
    } else if (this.opcode === opBinary && this.channel === -1) {
      this.on.onMessage?.(-1, Buffer.alloc(0));
    }
    this.channel = -1;
  }
}
