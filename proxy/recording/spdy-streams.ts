/**
 * Reads one direction of a SPDY/3.1 session (kubectl's older exec/attach
 * transport) for the recording: which stream carries what (the `streamtype`
 * header of each SYN_STREAM: stdin, stdout, stderr, error, resize) and the
 * payload of every DATA frame, handed on piece by piece as it passes.
 *
 * Header blocks of one direction share one zlib context, so the compressed
 * blocks are kept (at most `maxHeaderBytes`) and inflated again together,
 * with the SPDY dictionary and an output limit (a zlib bomb is a garble, not
 * a gigabyte), each time a stream is opened. kubectl opens at most five
 * streams per session; a session that opens more than `maxStreams` is not
 * one the recorder follows. Anything malformed is a `ProtocolGarbled` throw.
 */
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import { spdyDictionary } from '../forward/end-status.js';
import { ProtocolGarbled } from './ws-channels.js';

const maxHeaderBytes = 64 * 1024;
const maxInflated = 256 * 1024;
const maxStreams = 64;

export interface SpdyEvents {
  /** A stream was opened with these headers (names lower-case). */
  opened(id: number, headers: ReadonlyMap<string, string>): void;
  /** DATA frame payload on stream `id` (a piece; more may follow). */
  data(id: number, bytes: Buffer): void;
}

/** SPDY control frame types whose body holds a header block, and where it starts. */
const headerBlockAt: Record<number, number> = { 1: 10, 2: 4, 8: 4 };

export class SpdyStreams {
  private readonly head = Buffer.alloc(8);
  private headLen = 0;
  private rest = 0;
  /** The stream of the DATA frame under way; undefined for a control frame. */
  private dataStream: number | undefined;
  /** The control frame under way whose body is collected (SYN_STREAM, SYN_REPLY, HEADERS). */
  private collect: { type: number; parts: Buffer[] } | undefined;
  private readonly blocks: Buffer[] = [];
  private blockBytes = 0;
  private streams = 0;

  constructor(private readonly on: SpdyEvents) {}

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.rest > 0) {
        const n = Math.min(this.rest, chunk.length - i);
        const piece = chunk.subarray(i, i + n);
        i += n;
        this.rest -= n;
        if (this.dataStream !== undefined) this.on.data(this.dataStream, piece);
        else if (this.collect) this.collect.parts.push(Buffer.from(piece));
        if (this.rest === 0) this.frameDone();
        continue;
      }
      this.head[this.headLen++] = chunk[i++]!;
      if (this.headLen < 8) continue;
      this.headLen = 0;
      this.headerDone();
    }
  }

  private headerDone(): void {
    const h = this.head;
    this.rest = (h[5]! << 16) | (h[6]! << 8) | h[7]!;
    this.dataStream = undefined;
    this.collect = undefined;
    if (h[0]! & 0x80) {
      const version = h.readUInt16BE(0) & 0x7fff;
      const type = h.readUInt16BE(2);
      if (version !== 3 || type < 1 || type > 9 || type === 5)
        throw new ProtocolGarbled(`a SPDY control frame of version ${version}, type ${type}`);
      if (headerBlockAt[type] !== undefined) {
        if (this.blockBytes + this.rest > maxHeaderBytes)
          throw new ProtocolGarbled('SPDY header blocks larger than the recorder follows');
        this.collect = { type, parts: [] };
      }
    } else {
      this.dataStream = h.readUInt32BE(0) & 0x7fffffff;
    }
    if (this.rest === 0) this.frameDone();
  }

  private frameDone(): void {
    const c = this.collect;
    this.collect = undefined;
    if (!c) return;
    const body = Buffer.concat(c.parts);
    const at = headerBlockAt[c.type]!;
    if (body.length < at) throw new ProtocolGarbled('a SPDY header frame too short');
    this.blocks.push(body.subarray(at));
    this.blockBytes += body.length;
    const headers = this.inflateLast();
    if (c.type !== 1) return;
    if (++this.streams > maxStreams)
      throw new ProtocolGarbled('more SPDY streams than the recorder follows');
    this.on.opened(body.readUInt32BE(0) & 0x7fffffff, headers);
  }

  /** Every header block so far, inflated together; the last one's headers. */
  private inflateLast(): Map<string, string> {
    let text: Buffer;
    try {
      text = inflateSync(Buffer.concat(this.blocks), {
        dictionary: spdyDictionary,
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
        maxOutputLength: maxInflated,
      });
    } catch (err) {
      throw new ProtocolGarbled(
        `a SPDY header block that does not inflate (${(err as Error).message})`,
      );
    }
    let at = 0;
    let last = new Map<string, string>();
    const u32 = () => {
      if (at + 4 > text.length) throw new ProtocolGarbled('a truncated SPDY header block');
      const v = text.readUInt32BE(at);
      at += 4;
      return v;
    };
    const str = () => {
      const n = u32();
      if (at + n > text.length) throw new ProtocolGarbled('a truncated SPDY header block');
      const s = text.toString('latin1', at, at + n);
      at += n;
      return s;
    };
    for (let b = 0; b < this.blocks.length; b++) {
      const pairs = u32();
      if (pairs > 1024) throw new ProtocolGarbled('a SPDY header block with too many headers');
      last = new Map();
      for (let p = 0; p < pairs; p++) {
        const name = str().toLowerCase();
        last.set(name, str());
      }
    }
    return last;
  }
}
