/**
 * The last word of a stream ended early (proxy/forward/end-status.ts): frame
 * boundaries found across any chunking, and the ERROR event, WebSocket and
 * SPDY endings encoded as the clients decode them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { constants as zc, createDeflate, deflateSync } from 'node:zlib';
import {
  JsonLines,
  LengthPrefixed,
  SpdyClientStreams,
  spdyDictionary,
  spdyEnd,
  WebSocketFrames,
  watchEncoding,
  watchErrorEvent,
  webSocketEnd,
  type FrameScanner,
} from '../../proxy/forward/end-status.js';
import { kubeStatus } from '../../common/errors.js';

const status = kubeStatus(401, 'Unauthorized', 'token revoked: because');

/** Feed `stream` in chunks of `size`; ask to stop at byte `stopAt`; return what was passed on. */
function passOn(s: FrameScanner, stream: Buffer, size: number, stopAt: number): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < stream.length; i += size) {
    const chunk = stream.subarray(i, i + size);
    const stop = i >= stopAt;
    const n = s.scan(chunk, stop);
    out.push(chunk.subarray(0, n));
    if (stop && s.atBoundary()) break;
  }
  return Buffer.concat(out);
}

function wsFrame(payload: Buffer, masked = false): Buffer {
  const n = payload.length;
  const len =
    n < 126
      ? Buffer.from([n | (masked ? 0x80 : 0)])
      : n < 65536
        ? Buffer.from([126 | (masked ? 0x80 : 0), n >> 8, n & 0xff])
        : Buffer.concat([Buffer.from([127 | (masked ? 0x80 : 0)]), u64(n)]);
  return Buffer.concat([
    Buffer.from([0x82]),
    len,
    masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0),
    payload,
  ]);
}
function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}
function prefixed(payload: Buffer): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(payload.length);
  return Buffer.concat([b, payload]);
}

test('each framing stops exactly at the end of the frame in flight, whatever the chunking', () => {
  const events = [
    '{"type":"ADDED","object":{"a":1}}\n',
    '{"type":"MODIFIED","object":{"b":"x\\ny"}}\n',
  ];
  const cases: { name: string; make: () => FrameScanner; frames: Buffer[] }[] = [
    { name: 'json', make: () => new JsonLines(), frames: events.map((e) => Buffer.from(e)) },
    {
      name: 'protobuf',
      make: () => new LengthPrefixed(),
      frames: [
        Buffer.alloc(3, 1),
        Buffer.alloc(300, 2),
        Buffer.alloc(0),
        Buffer.alloc(70000, 3),
      ].map(prefixed),
    },
    {
      name: 'websocket',
      make: () => new WebSocketFrames(),
      frames: [
        wsFrame(Buffer.alloc(5, 1)),
        wsFrame(Buffer.alloc(200, 2), true),
        wsFrame(Buffer.alloc(70000, 3)),
        wsFrame(Buffer.alloc(0)),
      ],
    },
  ];
  for (const c of cases) {
    const stream = Buffer.concat(c.frames);
    const ends = c.frames.map((_, i) => Buffer.concat(c.frames.slice(0, i + 1)).length);
    for (const size of [1, 2, 3, 7, 64, 1000, stream.length]) {
      for (const stopAt of [0, 1, ends[0]! - 1, ends[0]!, ends[0]! + 1, ends[1]! + 2]) {
        const got = passOn(c.make(), stream, size, stopAt);
        // What was passed on ends at a frame boundary, at or after the chunk where stopping began.
        assert.ok(
          ends.includes(got.length) || got.length === 0,
          `${c.name} size ${size} stop ${stopAt}: ${got.length}`,
        );
        assert.ok(stream.subarray(0, got.length).equals(got));
        const chunkStart = Math.ceil(stopAt / size) * size;
        const firstEnd = [0, ...ends].find((e) => e >= chunkStart) ?? stream.length;
        assert.equal(got.length, firstEnd, `${c.name} size ${size} stop ${stopAt}`);
      }
    }
  }
});

test('watch encodings: JSON and protobuf are written, others are not', () => {
  assert.equal(watchEncoding('application/json'), 'json');
  assert.equal(watchEncoding('application/json;as=Table;v=v1;g=meta.k8s.io'), 'json');
  assert.equal(watchEncoding('application/vnd.kubernetes.protobuf;stream=watch'), 'protobuf');
  assert.equal(watchEncoding('application/cbor-seq'), undefined);
  assert.equal(watchEncoding(undefined), undefined);
  const json = watchErrorEvent('json', status).toString();
  assert.ok(json.endsWith('}\n'));
  assert.deepEqual(JSON.parse(json), { type: 'ERROR', object: status });
});

/** Length-delimited fields of a protobuf message (varints as numbers). */
function fields(b: Buffer): Map<number, (Buffer | number)[]> {
  const out = new Map<number, (Buffer | number)[]>();
  let i = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const x = b[i++]!;
      v += (x & 0x7f) * 2 ** shift;
      if (!(x & 0x80)) return v;
      shift += 7;
    }
  };
  while (i < b.length) {
    const key = varint();
    const list = out.get(key >> 3) ?? [];
    out.set(key >> 3, list);
    if ((key & 7) === 0) list.push(varint());
    else {
      const len = varint();
      list.push(b.subarray(i, i + len));
      i += len;
    }
  }
  return out;
}

test('a protobuf ERROR event: a length-prefixed WatchEvent whose object is a k8s Status', () => {
  const frame = watchErrorEvent('protobuf', status);
  assert.equal(frame.readUInt32BE(0), frame.length - 4);
  const event = fields(frame.subarray(4));
  assert.equal(String(event.get(1)![0]), 'ERROR');
  const raw = fields(event.get(2)![0] as Buffer).get(1)![0] as Buffer;
  assert.deepEqual([...raw.subarray(0, 4)], [0x6b, 0x38, 0x73, 0]);
  const unknown = fields(raw.subarray(4));
  const typeMeta = fields(unknown.get(1)![0] as Buffer);
  assert.equal(String(typeMeta.get(1)![0]), 'v1');
  assert.equal(String(typeMeta.get(2)![0]), 'Status');
  const s = fields(unknown.get(2)![0] as Buffer);
  assert.equal(String(s.get(2)![0]), 'Failure');
  assert.equal(String(s.get(3)![0]), status.message);
  assert.equal(String(s.get(4)![0]), 'Unauthorized');
  assert.equal(s.get(6)![0], 401);
});

test('WebSocket: the Status on the error channel and a normal close; else a 1008 close with the reason', () => {
  for (const p of ['v5.channel.k8s.io', 'v4.channel.k8s.io']) {
    const b = webSocketEnd(p, status);
    assert.equal(b[0], 0x82); // FIN, binary
    const [at, len] = b[1]! === 126 ? [4, b.readUInt16BE(2)] : [2, b[1]!];
    assert.equal(b[at], 3, 'channel 3: errors');
    assert.deepEqual(JSON.parse(b.subarray(at + 1, at + len).toString()), status);
    assert.deepEqual([...b.subarray(at + len)], [0x88, 2, 0x03, 0xe8], 'close 1000');
  }
  const b64 = webSocketEnd('v4.base64.channel.k8s.io', status);
  assert.equal(b64[0], 0x81);
  assert.equal(b64.subarray(4, 5).toString(), '3');
  const other = webSocketEnd(
    'portforward.k8s.io',
    kubeStatus(401, 'Unauthorized', 'x'.repeat(300)),
  );
  assert.equal(other[0], 0x88);
  assert.equal(other[1], 125, 'a control frame carries at most 125 bytes');
  assert.equal(other.readUInt16BE(2), 1008);
});

test('the SPDY/3 header dictionary is the one the protocol defines', () => {
  assert.equal(spdyDictionary.length, 1423);
  assert.equal(
    createHash('sha256').update(spdyDictionary).digest('hex'),
    '51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02',
  );
});

/** SYN_STREAM frames as kubectl's SPDY client writes them: one zlib context, a sync flush per frame. */
async function synStreams(
  streams: { id: number; headers: Record<string, string> }[],
): Promise<Buffer> {
  const z = createDeflate({ dictionary: spdyDictionary });
  const out: Buffer[] = [];
  for (const s of streams) {
    const pairs = Object.entries(s.headers);
    const nv: Buffer[] = [u32(pairs.length)];
    for (const [k, v] of pairs)
      nv.push(u32(k.length), Buffer.from(k), u32(v.length), Buffer.from(v));
    const block = await new Promise<Buffer>((resolve) => {
      const got: Buffer[] = [];
      const on = (c: Buffer) => got.push(c);
      z.on('data', on);
      z.write(Buffer.concat(nv));
      z.flush(zc.Z_SYNC_FLUSH, () => {
        z.off('data', on);
        resolve(Buffer.concat(got));
      });
    });
    const body = Buffer.concat([u32(s.id), u32(0), Buffer.from([0, 0]), block]);
    const head = Buffer.from([0x80, 3, 0, 1, 0, 0, 0, 0]);
    head.writeUInt32BE(body.length, 4);
    out.push(head, body);
    // and some data on it, which is skipped
    const data = Buffer.alloc(8 + 5, 7);
    data.writeUInt32BE(s.id, 0);
    data.writeUInt32BE(5, 4);
    out.push(data);
  }
  z.close();
  return Buffer.concat(out);
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

test('SPDY: the error stream is found in the client half, however it is chunked, and gets the Status', async () => {
  const wire = await synStreams([
    { id: 1, headers: { streamtype: 'error' } },
    { id: 3, headers: { streamtype: 'stdin' } },
    { id: 5, headers: { streamtype: 'stdout' } },
    { id: 7, headers: { streamtype: 'resize' } },
  ]);
  for (const size of [1, 5, 100, wire.length]) {
    const t = new SpdyClientStreams();
    for (let i = 0; i < wire.length; i += size) t.feed(wire.subarray(i, i + size));
    assert.deepEqual(t.errorStreams(), [1], `chunks of ${size}`);
  }
  const end = spdyEnd([1], 'v4.channel.k8s.io', status);
  assert.equal(end.readUInt32BE(0), 1, 'a data frame on stream 1');
  assert.equal(end[4], 1, 'with FIN');
  const len = end.readUInt32BE(4) & 0xffffff;
  assert.deepEqual(JSON.parse(end.subarray(8, 8 + len).toString()), status);
  assert.deepEqual([...end.subarray(8 + len, 8 + len + 4)], [0x80, 3, 0, 7], 'then GOAWAY');
  assert.equal(
    spdyEnd([1], 'v3.channel.k8s.io', status).subarray(8).toString().startsWith(status.message),
    true,
  );
});

test('SPDY: client header blocks are inflated to at most 1 MiB when the session is ended (a zlib bomb holds nothing)', () => {
  // A block naming the error stream, padded with a 200 MiB header value: ~200 KiB deflated.
  const pad = Buffer.alloc(200 * 1024 * 1024, 0x61);
  const nv = Buffer.concat([
    u32(2),
    u32(10),
    Buffer.from('streamtype'),
    u32(5),
    Buffer.from('error'),
    u32(1),
    Buffer.from('x'),
    u32(pad.length),
    pad,
  ]);
  const block = deflateSync(nv, { dictionary: spdyDictionary, level: 9 });
  assert.ok(block.length < 256 * 1024, `block is ${block.length} bytes`);
  const body = Buffer.concat([u32(1), u32(0), Buffer.from([0, 0]), block]);
  const head = Buffer.from([0x80, 3, 0, 1, 0, 0, 0, 0]);
  head.writeUInt32BE(body.length & 0xffffff, 4);
  const t = new SpdyClientStreams();
  t.feed(Buffer.concat([head, body]));
  // Inflated whole, this would find stream 1 (and hold 200 MiB doing so).
  assert.deepEqual(t.errorStreams(), []);
});
