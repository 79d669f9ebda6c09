/**
 * Reads the Kubernetes channel protocols of an exec/attach WebSocket, one
 * direction at a time, for the recording: `channel.k8s.io`,
 * `v4.channel.k8s.io`, `v5.channel.k8s.io` (binary messages whose first
 * byte is the channel) and `base64.channel.k8s.io`,
 * `v4.base64.channel.k8s.io` (text messages whose first character is the
 * channel digit, the rest base64).
 *
 * It only reads: the bytes it is fed are never changed (a masked client
 * frame is unmasked into a copy). Payload is handed on piece by piece as it
 * arrives, so nothing is held beyond a frame header, three base64
 * characters and (for the resize channel) a small message. Anything that is
 * not well-formed WebSocket framing is a `ProtocolGarbled` throw, which the
 * session (session.ts) turns into "recording incomplete" — never into an
 * error on the data path.
 */

/** A frame or message the recorder cannot follow. */
export class ProtocolGarbled extends Error {}

/** Kubernetes exec/attach channels. */
export const channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4 } as const;

export interface ChannelEvents {
  /** Payload bytes of a message on `ch` (a piece; more may follow). */
  data(ch: number, bytes: Buffer): void;
  /** The message on `ch` is complete. */
  end(ch: number): void;
}

/** Largest payload length accepted (2^53 − 1: beyond it the length is not a safe number). */
const maxFrameLength = Number.MAX_SAFE_INTEGER;

export function isBase64Protocol(subprotocol: string): boolean {
  return /(^|\.)base64\.channel\.k8s\.io$/.test(subprotocol.trim().toLowerCase());
}

export class WebSocketChannels {
  private readonly head = Buffer.alloc(14);
  private headLen = 0;
  /** Payload bytes of the current frame still to come. */
  private rest = 0;
  private mask: Buffer | undefined;
  private maskAt = 0;
  private fin = false;
  private control = false;
  /** A data message is under way (its first frame was seen, its FIN frame not yet done). */
  private inMessage = false;
  /** The current message's channel, once its first payload byte has been read. */
  private ch: number | undefined;
  /** base64: characters not yet decoded (fewer than 4). */
  private carry = '';

  constructor(
    private readonly base64: boolean,
    private readonly on: ChannelEvents,
  ) {}

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.rest > 0) {
        const n = Math.min(this.rest, chunk.length - i);
        const piece = chunk.subarray(i, i + n);
        i += n;
        this.rest -= n;
        if (!this.control) this.payload(this.unmask(piece));
        if (this.rest === 0) this.frameDone();
        continue;
      }
      this.head[this.headLen++] = chunk[i++]!;
      const need = this.headerLength();
      if (need !== undefined && this.headLen === need) this.headerDone();
    }
  }

  private headerLength(): number | undefined {
    if (this.headLen < 2) return undefined;
    const len7 = this.head[1]! & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.head[1]! & 0x80 ? 4 : 0);
  }

  private headerDone(): void {
    const h = this.head;
    const len7 = h[1]! & 0x7f;
    const opcode = h[0]! & 0x0f;
    if (h[0]! & 0x70) throw new ProtocolGarbled('a WebSocket frame with reserved bits set');
    let length: number;
    if (len7 === 126) length = h.readUInt16BE(2);
    else if (len7 === 127) {
      const big = h.readBigUInt64BE(2);
      if (big > BigInt(maxFrameLength)) throw new ProtocolGarbled('a WebSocket frame too long');
      length = Number(big);
    } else length = len7;
    const maskAt = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0);
    this.mask = h[1]! & 0x80 ? Buffer.from(h.subarray(maskAt, maskAt + 4)) : undefined;
    this.maskAt = 0;
    this.headLen = 0;
    this.fin = (h[0]! & 0x80) !== 0;
    this.control = opcode >= 8;
    if (this.control) {
      if (opcode > 0xa || length > 125 || !this.fin)
        throw new ProtocolGarbled('a malformed WebSocket control frame');
    } else if (opcode === 0) {
      if (!this.inMessage) throw new ProtocolGarbled('a WebSocket continuation with no message');
    } else if (opcode === 1 || opcode === 2) {
      if (this.inMessage) throw new ProtocolGarbled('a new WebSocket message inside another');
      this.inMessage = true;
      this.ch = undefined;
      this.carry = '';
    } else throw new ProtocolGarbled(`a WebSocket frame with reserved opcode ${opcode}`);
    this.rest = length;
    if (length === 0) this.frameDone();
  }

  private unmask(piece: Buffer): Buffer {
    const m = this.mask;
    if (!m) return piece;
    const out = Buffer.allocUnsafe(piece.length);
    for (let j = 0; j < piece.length; j++) out[j] = piece[j]! ^ m[(this.maskAt + j) & 3]!;
    this.maskAt = (this.maskAt + piece.length) & 3;
    return out;
  }

  private payload(bytes: Buffer): void {
    if (!bytes.length) return;
    if (this.ch === undefined) {
      const first = bytes[0]!;
      if (this.base64) {
        if (first < 0x30 || first > 0x39)
          throw new ProtocolGarbled('a base64 channel message without its channel digit');
        this.ch = first - 0x30;
      } else this.ch = first;
      bytes = bytes.subarray(1);
      if (!bytes.length) return;
    }
    if (!this.base64) return this.on.data(this.ch, bytes);
    const text = this.carry + bytes.toString('latin1');
    const whole = text.length - (text.length % 4);
    this.carry = text.slice(whole);
    if (whole > 0) this.on.data(this.ch, Buffer.from(text.slice(0, whole), 'base64'));
  }

  private frameDone(): void {
    if (this.control || !this.fin) return;
    this.inMessage = false;
    if (this.ch === undefined) return; // an empty message (channel.k8s.io's opening frames)
    if (this.base64 && this.carry) this.on.data(this.ch, Buffer.from(this.carry, 'base64'));
    this.carry = '';
    this.on.end(this.ch);
    this.ch = undefined;
  }
}
