/**
 * Envelope encryption of a recording kept in an object store
 * (docs/adr/0029-s3-recordings-aws-sdk-and-segmented-envelope.md).
 *
 * Each recording has a data key of its own (32 random bytes), sealed with the
 * master key (proxy/pki/master-key.ts, the recording id bound as associated
 * data) and kept in its `recordings` row; the object store sees only
 * ciphertext. The object is written while the session runs, so it is
 * encrypted in segments, each authenticated on its own (AES-256-GCM):
 *
 *   object  = magic "KGREC\0\0\x01"  segment*  (the last one marked final)
 *   segment = length (4 bytes, big-endian: the plaintext's, at most 1 MiB)
 *             ciphertext (length bytes)  tag (16 bytes)
 *   nonce   = the segment's index (11 bytes, big-endian) ‖ 0x01 final / 0x00 not
 *   AAD     = "kubegate-recording/1 " ‖ recording id ‖ length
 *
 * A segment altered, moved, dropped or taken from another recording fails its
 * tag; an object cut short ends without a final segment; bytes after the
 * final one are refused. The nonce never repeats: a key encrypts one object.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KgError } from '../../common/errors.js';
import { open, seal } from '../pki/master-key.js';

export const envelopeMagic = Buffer.from('KGREC\0\0\x01', 'latin1');
/** Largest plaintext in one segment; a reader refuses longer ones before reading them. */
export const maxSegmentBytes = 1024 * 1024;
const tagBytes = 16;
const lengthBytes = 4;

const keyAad = (id: string) => `recording:${id}`;

/** A fresh data key for a recording, and the same key sealed with the master key (for its row). */
export function newDataKey(masterKey: Buffer, id: string): { key: Buffer; sealed: string } {
  const key = randomBytes(32);
  return { key, sealed: seal(masterKey, keyAad(id), key.toString('base64')) };
}

/** The data key in a recording's row, unsealed with the master key. */
export function openDataKey(masterKey: Buffer, id: string, sealed: string): Buffer {
  const key = Buffer.from(open(masterKey, keyAad(id), sealed), 'base64');
  if (key.length !== 32)
    throw new KgError('KG_ERR_INTERNAL', `the data key of recording ${id} is malformed`);
  return key;
}

function nonce(index: number, final: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUIntBE(index, 5, 6); // indexes stay far below 2^48
  n[11] = final ? 1 : 0;
  return n;
}

function aad(id: string, length: number): Buffer {
  const len = Buffer.alloc(lengthBytes);
  len.writeUInt32BE(length);
  return Buffer.concat([Buffer.from(`kubegate-recording/1 ${id}`), len]);
}

/** Encrypts one recording's object, segment by segment, in order. */
export class SegmentSealer {
  private index = 0;
  private done = false;

  constructor(
    private readonly key: Buffer,
    private readonly id: string,
  ) {}

  /** The object's first bytes. */
  start(): Buffer {
    return envelopeMagic;
  }

  /** `data` as one or more segments (split at maxSegmentBytes); `final` marks the last. */
  seal(data: Buffer, final = false): Buffer[] {
    if (this.done) throw new Error('the recording object is already sealed');
    const out: Buffer[] = [];
    let at = 0;
    do {
      const piece = data.subarray(at, at + maxSegmentBytes);
      at += piece.length;
      const last = final && at >= data.length;
      const c = createCipheriv('aes-256-gcm', this.key, nonce(this.index++, last));
      c.setAAD(aad(this.id, piece.length));
      const len = Buffer.alloc(lengthBytes);
      len.writeUInt32BE(piece.length);
      out.push(len, c.update(piece), c.final(), c.getAuthTag());
    } while (at < data.length);
    this.done = final;
    return out;
  }
}

/** The error a damaged object raises: never garbage in place of the recording. */
function damaged(id: string, what: string): KgError {
  return new KgError(
    'KG_ERR_INTERNAL',
    `recording ${id} failed its integrity check: ${what} (the object in the store was altered, truncated or replaced)`,
  );
}

/**
 * Decrypts one recording's object as its bytes arrive; holds at most one
 * segment. Throws (a KgError naming the recording) on any damage.
 */
export class SegmentOpener {
  private buf = Buffer.alloc(0);
  /** Bytes received after `buf`, not yet joined to it (joined once a segment is whole). */
  private more: Buffer[] = [];
  private moreBytes = 0;
  /** Bytes the next step needs in `buf`. */
  private need = envelopeMagic.length;
  private index = 0;
  private started = false;
  private finished = false;

  constructor(
    private readonly key: Buffer,
    private readonly id: string,
  ) {}

  /** Feed the next bytes of the object; returns the plaintext of the segments they complete. */
  push(bytes: Buffer): Buffer[] {
    this.more.push(bytes);
    this.moreBytes += bytes.length;
    const out: Buffer[] = [];
    if (this.buf.length + this.moreBytes < this.need) return out;
    this.buf = Buffer.concat([this.buf, ...this.more]);
    this.more = [];
    this.moreBytes = 0;
    if (!this.started) {
      if (!this.buf.subarray(0, envelopeMagic.length).equals(envelopeMagic))
        throw damaged(this.id, 'it does not start as a kubegate recording object');
      this.started = true;
      this.buf = this.buf.subarray(envelopeMagic.length);
    }
    for (;;) {
      if (this.buf.length && this.finished)
        throw damaged(this.id, 'there are bytes after its final segment');
      if (this.buf.length < lengthBytes) {
        this.need = lengthBytes;
        break;
      }
      const length = this.buf.readUInt32BE(0);
      if (length > maxSegmentBytes)
        throw damaged(this.id, `segment ${this.index} claims ${length} bytes`);
      const whole = lengthBytes + length + tagBytes;
      if (this.buf.length < whole) {
        this.need = whole;
        break;
      }
      out.push(this.openSegment(this.buf.subarray(lengthBytes, whole), length));
      this.buf = this.buf.subarray(whole);
    }
    return out;
  }

  /** The object ended: throws unless it ended with its final segment. */
  end(): void {
    if (!this.started || !this.finished || this.buf.length || this.moreBytes)
      throw damaged(this.id, 'it ends before its final segment');
  }

  private openSegment(body: Buffer, length: number): Buffer {
    const ct = body.subarray(0, length);
    const tag = body.subarray(length);
    // The final flag is in the nonce: try "not final" first, then "final".
    for (const final of [false, true]) {
      try {
        const d = createDecipheriv('aes-256-gcm', this.key, nonce(this.index, final));
        d.setAAD(aad(this.id, length));
        d.setAuthTag(tag);
        const plain = Buffer.concat([d.update(ct), d.final()]);
        this.index++;
        this.finished = final;
        return plain;
      } catch {
        // the other flag, or damage
      }
    }
    throw damaged(this.id, `segment ${this.index} does not authenticate`);
  }
}
