/**
 * Ending an open stream because its access ended (token revoked, access
 * removed, user deactivated, token or grant expired; proxy/open-requests.ts)
 * so that the client prints why, as it would for the apiserver's own errors:
 *
 * - a watch gets a last event `{"type":"ERROR","object":<Status 401>}` in
 *   its own encoding (JSON lines, or the apiserver's length-prefixed
 *   protobuf), written between two events, and then a clean end;
 * - an exec/attach WebSocket (v4/v5.channel.k8s.io) gets the Status on its
 *   error channel (3) and a normal close frame; other WebSockets (the
 *   port-forward tunnel) a close frame with the reason.
 *
 * Bytes from the cluster are only ever passed on up to the end of the frame
 * already in flight (never a new one), and a frame that does not complete
 * soon ends the stream hard, as before.
 */
import { constants as zlibConstants, inflateSync } from 'node:zlib';
import { kubeStatus, type KubeStatus } from '../../common/errors.js';

/** Why an open request is ended. */
export interface EndReason {
  /** What happened, for the log and (when `refused`) for the client. */
  message: string;
  /**
   * The client's access ended: tell it with an Unauthorized Status. False:
   * the proxy is going away and the client should just retry elsewhere.
   */
  refused: boolean;
  /** The Status to tell the client (default: 401 Unauthorized with `message`). */
  status?: KubeStatus;
}

/** How long a frame half passed on may take to complete before the stream is cut instead. */
export const frameGraceMs = 250;

export function endStatus(reason: EndReason): KubeStatus {
  return reason.status ?? kubeStatus(401, 'Unauthorized', reason.message);
}

/**
 * Finds frame boundaries in a byte stream. `scan` walks `chunk` and returns
 * how many of its bytes to pass on: all of them, or with `stop`, only those
 * up to the first boundary (0 when the stream is at one already).
 */
export interface FrameScanner {
  atBoundary(): boolean;
  scan(chunk: Buffer, stop: boolean): number;
}

/** JSON watch events, one per line (the apiserver's JSON stream framing). */
export class JsonLines implements FrameScanner {
  private boundary = true;
  atBoundary(): boolean {
    return this.boundary;
  }
  scan(chunk: Buffer, stop: boolean): number {
    if (!chunk.length) return 0;
    if (stop) {
      if (this.boundary) return 0;
      const nl = chunk.indexOf(0x0a);
      if (nl < 0) return chunk.length;
      this.boundary = true;
      return nl + 1;
    }
    this.boundary = chunk[chunk.length - 1] === 0x0a;
    return chunk.length;
  }
}

/**
 * Frames made of a header (whose length the first bytes tell) and a body
 * (whose length the header tells): length-prefixed protobuf, WebSocket.
 */
abstract class HeaderFrames implements FrameScanner {
  private header: number[] = [];
  private body = 0;
  /** Total header length once enough of it is known. */
  protected abstract headerLength(h: number[]): number | undefined;
  protected abstract bodyLength(h: number[]): number;
  atBoundary(): boolean {
    return this.header.length === 0 && this.body === 0;
  }
  scan(chunk: Buffer, stop: boolean): number {
    let i = 0;
    while (i < chunk.length) {
      if (stop && this.atBoundary()) return i;
      if (this.body > 0) {
        const n = Math.min(this.body, chunk.length - i);
        this.body -= n;
        i += n;
        continue;
      }
      this.header.push(chunk[i++]!);
      const len = this.headerLength(this.header);
      if (len !== undefined && this.header.length === len) {
        this.body = this.bodyLength(this.header);
        this.header = [];
      }
    }
    return i;
  }
}

/** The apiserver's protobuf watch framing: a 4-byte big-endian length, then the event. */
export class LengthPrefixed extends HeaderFrames {
  protected headerLength(): number {
    return 4;
  }
  protected bodyLength(h: number[]): number {
    return Buffer.from(h).readUInt32BE(0);
  }
}

/** WebSocket frames (RFC 6455 §5.2), either direction. */
export class WebSocketFrames extends HeaderFrames {
  protected headerLength(h: number[]): number | undefined {
    if (h.length < 2) return undefined;
    const len7 = h[1]! & 0x7f;
    const mask = h[1]! & 0x80 ? 4 : 0;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + mask;
  }
  protected bodyLength(h: number[]): number {
    const len7 = h[1]! & 0x7f;
    const b = Buffer.from(h);
    if (len7 === 126) return b.readUInt16BE(2);
    if (len7 === 127) return Number(b.readBigUInt64BE(2));
    return len7;
  }
}

/** The watch encodings kubegate can write an ERROR event in. */
export type WatchEncoding = 'json' | 'protobuf';

export function watchEncoding(contentType: string | undefined): WatchEncoding | undefined {
  const t = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (t === 'application/json') return 'json';
  if (t === 'application/vnd.kubernetes.protobuf') return 'protobuf';
  return undefined;
}

export function watchScanner(enc: WatchEncoding): FrameScanner {
  return enc === 'json' ? new JsonLines() : new LengthPrefixed();
}

// --- protobuf, as k8s.io/apimachinery writes it -------------------------------

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** A length-delimited field (wire type 2). */
function field(n: number, value: Buffer | string): Buffer {
  const v = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([varint((n << 3) | 2), varint(v.length), v]);
}

/** metav1.Status {1 metadata, 2 status, 3 message, 4 reason, 6 code}, in its runtime.Unknown envelope. */
function protobufStatus(s: KubeStatus): Buffer {
  const status = Buffer.concat([
    field(1, Buffer.alloc(0)),
    field(2, s.status),
    field(3, s.message),
    field(4, s.reason),
    Buffer.concat([varint((6 << 3) | 0), varint(s.code)]),
  ]);
  const unknown = Buffer.concat([
    field(1, Buffer.concat([field(1, 'v1'), field(2, 'Status')])),
    field(2, status),
  ]);
  return Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), unknown]);
}

/** The last event of a watch: ERROR with the Status, framed as the stream is. */
export function watchErrorEvent(enc: WatchEncoding, s: KubeStatus): Buffer {
  if (enc === 'json') return Buffer.from(`${JSON.stringify({ type: 'ERROR', object: s })}\n`);
  // metav1.WatchEvent {1 type, 2 object: RawExtension {1 raw}}, length-prefixed.
  const event = Buffer.concat([field(1, 'ERROR'), field(2, field(1, protobufStatus(s)))]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(event.length);
  return Buffer.concat([len, event]);
}

// --- WebSocket ---------------------------------------------------------------

/** One unmasked frame, as a server sends it. */
function wsFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head =
    n < 126
      ? Buffer.from([0x80 | opcode, n])
      : n < 65536
        ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 0xff])
        : (() => {
            const h = Buffer.alloc(10);
            h[0] = 0x80 | opcode;
            h[1] = 127;
            h.writeBigUInt64BE(BigInt(n), 2);
            return h;
          })();
  return Buffer.concat([head, payload]);
}

function closeFrame(code: number, text: string): Buffer {
  let t = Buffer.from(text);
  if (t.length > 123) t = t.subarray(0, 123); // control frames carry at most 125 bytes
  const p = Buffer.alloc(2 + t.length);
  p.writeUInt16BE(code, 0);
  t.copy(p, 2);
  return wsFrame(0x8, p);
}

/**
 * What ends an upgraded WebSocket: for the exec/attach channel protocols
 * (v4 and later, whose error channel carries a Status) the Status on
 * channel 3 and a normal close (1000), which kubectl prints as the Status's
 * message; otherwise a policy-violation close (1008) giving the reason,
 * which the client's WebSocket library reports as is.
 */
export function webSocketEnd(subprotocol: string | undefined, s: KubeStatus): Buffer {
  const p = (subprotocol ?? '').trim().toLowerCase();
  const json = Buffer.from(JSON.stringify(s));
  if (p === 'v4.channel.k8s.io' || p === 'v5.channel.k8s.io') {
    return Buffer.concat([
      wsFrame(0x2, Buffer.concat([Buffer.from([3]), json])),
      closeFrame(1000, ''),
    ]);
  }
  if (p === 'v4.base64.channel.k8s.io') {
    return Buffer.concat([
      wsFrame(0x1, Buffer.from(`3${json.toString('base64')}`)),
      closeFrame(1000, ''),
    ]);
  }
  return closeFrame(1008, s.message);
}

// --- SPDY/3.1 (kubectl's other exec/attach/port-forward transport) -----------

/** SPDY frames: an 8-byte header whose last 3 bytes give the body's length. */
export class SpdyFrames extends HeaderFrames {
  protected headerLength(): number {
    return 8;
  }
  protected bodyLength(h: number[]): number {
    return (h[5]! << 16) | (h[6]! << 8) | h[7]!;
  }
}

/**
 * The SPDY/3 header-compression dictionary (the SPDY/3 draft, §2.6.10.1):
 * these words, each with a 4-byte length, then the string after them
 * (sha256 51d27341…f02, checked in test/unit/end-status.test.ts).
 */
export const spdyDictionary = Buffer.concat([
  ...[
    'options head post put delete trace accept accept-charset accept-encoding accept-language',
    'accept-ranges age allow authorization cache-control connection content-base',
    'content-encoding content-language content-length content-location content-md5',
    'content-range content-type date etag expect expires from host if-match',
    'if-modified-since if-none-match if-range if-unmodified-since last-modified location',
    'max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after',
    'server te trailer transfer-encoding upgrade user-agent vary via warning www-authenticate',
    'method get status 200_OK version HTTP/1.1 url public set-cookie keep-alive origin',
  ]
    .join(' ')
    .split(' ')
    .map((word) => {
      const w = word.replace('_', ' '); // "200 OK" is one word
      const len = Buffer.alloc(4);
      len.writeUInt32BE(w.length);
      return Buffer.concat([len, Buffer.from(w)]);
    }),
  Buffer.from(
    '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
      '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request' +
      '401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented' +
      '503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ' +
      'Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,' +
      'application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=' +
      'gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.',
  ),
]);

/** At most this many header bytes are kept per connection (a port-forward opens streams per connection). */
const maxSpdyHeaderBytes = 256 * 1024;
/** …and at most this many once inflated (a zlib bomb finds no error stream, and holds nothing). */
const maxSpdyInflated = 1024 * 1024;

/**
 * Follows the client's half of a SPDY session to learn which streams it
 * opened and their `streamtype` (kubectl opens an `error` stream first). The
 * header blocks share one zlib context, so they are kept (compressed) and
 * inflated together only when the session is ended early.
 */
export class SpdyClientStreams {
  /** The frame under way: its first bytes, and how many of it are still to come. */
  private head: number[] = [];
  private rest = 0;
  /** A SYN_STREAM being collected (undefined: skipping this frame). */
  private syn: Buffer[] | undefined;
  private readonly syns: { id: number; block: Buffer }[] = [];
  private kept = 0;

  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.rest > 0) {
        const n = Math.min(this.rest, chunk.length - i);
        this.syn?.push(chunk.subarray(i, i + n));
        this.rest -= n;
        i += n;
        if (this.rest === 0) this.frameDone();
        continue;
      }
      this.head.push(chunk[i++]!);
      if (this.head.length < 8) continue;
      const h = this.head;
      this.head = [];
      this.rest = (h[5]! << 16) | (h[6]! << 8) | h[7]!;
      // SYN_STREAM: control bit, version 3, type 1; kept while there is room.
      const isSyn = h[0] === 0x80 && h[1] === 3 && h[2] === 0 && h[3] === 1;
      this.syn = isSyn && this.kept + this.rest <= maxSpdyHeaderBytes ? [] : undefined;
      if (this.rest === 0) this.frameDone();
    }
  }

  private frameDone(): void {
    const body = this.syn && Buffer.concat(this.syn);
    this.syn = undefined;
    // stream id, associated stream id, priority and slot, then the header block.
    if (!body || body.length < 10) return;
    this.kept += body.length;
    this.syns.push({ id: body.readUInt32BE(0) & 0x7fffffff, block: body.subarray(10) });
  }

  /** The ids of the streams the client opened with `streamtype: error`. */
  errorStreams(): number[] {
    let text: Buffer;
    try {
      text = inflateSync(Buffer.concat(this.syns.map((s) => s.block)), {
        dictionary: spdyDictionary,
        finishFlush: zlibConstants.Z_SYNC_FLUSH,
        // 256 KiB of compressed headers could otherwise inflate to ~256 MiB here.
        maxOutputLength: maxSpdyInflated,
      });
    } catch {
      return [];
    }
    const ids: number[] = [];
    let at = 0;
    for (const syn of this.syns) {
      if (at + 4 > text.length) break;
      const pairs = text.readUInt32BE(at);
      at += 4;
      for (let p = 0; p < pairs && at + 4 <= text.length; p++) {
        const nameLen = text.readUInt32BE(at);
        const name = text.toString('latin1', at + 4, at + 4 + nameLen);
        at += 4 + nameLen;
        const valueLen = text.readUInt32BE(at);
        const value = text.toString('latin1', at + 4, at + 4 + valueLen);
        at += 4 + valueLen;
        if (name === 'streamtype' && value === 'error') ids.push(syn.id);
      }
    }
    return ids;
  }
}

/**
 * What ends an upgraded SPDY session: the Status (v4 and later: JSON; the
 * older protocols: its message) as the last data of each error stream,
 * which kubectl prints as it prints the apiserver's; then GOAWAY.
 */
export function spdyEnd(
  errorStreams: number[],
  protocol: string | undefined,
  s: KubeStatus,
): Buffer {
  const v4 = /^v[4-9]\./.test((protocol ?? '').trim());
  const payload = Buffer.from(v4 ? JSON.stringify(s) : s.message);
  const frames = errorStreams.map((id) => {
    const h = Buffer.alloc(8);
    h.writeUInt32BE(id & 0x7fffffff, 0);
    h.writeUInt32BE(payload.length & 0xffffff, 4);
    h[4] = 0x01; // FLAG_FIN
    return Buffer.concat([h, payload]);
  });
  // GOAWAY (type 7): last good stream id 0, status OK.
  const goaway = Buffer.from([0x80, 3, 0, 7, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([...frames, goaway]);
}
