/**
 * How a session's events are stored, and how they become asciicast v2.
 *
 * While a session runs, the tap only copies bytes: each event is a 9-byte
 * record header (kind, milliseconds since the start, length) and the bytes
 * as they passed. Decoding UTF-8 and escaping JSON, which cost several times
 * more than the copy, happen when someone downloads or plays the recording,
 * not on the session's path (ADR 0028).
 *
 * A stored recording is its asciicast header line (chunk 0) and chunks of
 * whole records. A chunk that starts with `[` holds asciicast lines already
 * (recordings made before this format); it passes through unchanged.
 */

import { TextDecoder } from 'node:util';

export const recordKind = { stdout: 1, stderr: 2, stdin: 3, resize: 4 } as const;
export type RecordKind = (typeof recordKind)[keyof typeof recordKind];

export const recordHeaderBytes = 9;
/** The tap writes records of at most 64 KiB; anything much larger is damage. */
const maxRecordBytes = 16 * 1024 * 1024;

/** The header of one record: kind, milliseconds since the session started, payload length. */
export function recordHeader(kind: RecordKind, atMs: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(recordHeaderBytes);
  h[0] = kind;
  h.writeUInt32BE(Math.min(Math.max(0, Math.floor(atMs)), 0xffffffff), 1);
  h.writeUInt32BE(length, 5);
  return h;
}

export class RecordingDamaged extends Error {}

const castType: Record<number, 'o' | 'i' | 'r'> = { 1: 'o', 2: 'o', 3: 'i', 4: 'r' };

/**
 * Turns stored chunks into asciicast v2 text, chunk by chunk, however the
 * chunks split the records. stdout, stderr and stdin are each decoded as
 * one UTF-8 stream, so a character split between two records stays whole.
 */
export class CastEncoder {
  private carry: Buffer | undefined;
  private lastMs = 0;
  private readonly decoders = new Map<number, TextDecoder>();

  /** The asciicast text for `chunk` (possibly empty). Throws RecordingDamaged on a record it cannot read. */
  push(chunk: Buffer): Buffer {
    if (!this.carry && (chunk[0] === 0x5b || chunk[0] === 0x7b)) return chunk; // "[": lines; "{": the header
    const data = this.carry ? Buffer.concat([this.carry, chunk]) : chunk;
    this.carry = undefined;
    const lines: string[] = [];
    let at = 0;
    while (at + recordHeaderBytes <= data.length) {
      const kind = data[at]!;
      const type = castType[kind];
      if (!type) throw new RecordingDamaged(`a record of unknown kind ${kind}`);
      const ms = data.readUInt32BE(at + 1);
      const length = data.readUInt32BE(at + 5);
      if (length > maxRecordBytes) throw new RecordingDamaged(`a record of ${length} bytes`);
      const end = at + recordHeaderBytes + length;
      if (end > data.length) break;
      const bytes = data.subarray(at + recordHeaderBytes, end);
      at = end;
      this.lastMs = ms;
      let text: string;
      if (type === 'r') text = bytes.toString('latin1');
      else {
        let d = this.decoders.get(kind);
        if (!d) this.decoders.set(kind, (d = new TextDecoder('utf-8')));
        text = d.decode(bytes, { stream: true });
      }
      if (text) lines.push(line(ms, type, text));
    }
    if (at < data.length) this.carry = Buffer.from(data.subarray(at));
    return Buffer.from(lines.join(''));
  }

  /** What is left at the end: the tails of the UTF-8 streams. Throws RecordingDamaged on a cut record. */
  end(): Buffer {
    if (this.carry?.length) throw new RecordingDamaged('the recording ends inside a record');
    const lines: string[] = [];
    for (const [kind, d] of this.decoders) {
      const tail = d.decode();
      if (tail) lines.push(line(this.lastMs, castType[kind]!, tail));
    }
    return Buffer.from(lines.join(''));
  }
}

function line(ms: number, type: 'o' | 'i' | 'r', text: string): string {
  return `[${(ms / 1000).toFixed(3)}, "${type}", ${JSON.stringify(text)}]\n`;
}

/** A recording's stored chunks as asciicast v2. */
export async function* castOf(chunks: AsyncIterable<Buffer>): AsyncIterable<Buffer> {
  const enc = new CastEncoder();
  for await (const c of chunks) {
    const out = enc.push(c);
    if (out.length) yield out;
  }
  const tail = enc.end();
  if (tail.length) yield tail;
}
