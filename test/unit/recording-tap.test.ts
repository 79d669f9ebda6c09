/**
 * Session recording taps (proxy/recording/): WebSocket channel protocols and
 * SPDY/3.1 read as they pass, however the bytes are chunked, into asciicast
 * v2; hostile input never throws and never makes the tap hold more than a
 * frame header; a failing or slow store gives the recording up (best
 * effort) or ends the session (required).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { constants as zc, createDeflate, deflateSync } from 'node:zlib';
import { spdyDictionary } from '../../proxy/forward/end-status.js';
import { RecordingSession, type SessionOptions } from '../../proxy/recording/session.js';
import { CastEncoder } from '../../proxy/recording/events.js';
import type { RecordingEnd, RecordingWriter } from '../../proxy/recording/storage.js';
import { WebSocketChannels } from '../../proxy/recording/ws-channels.js';
import { SpdyStreams } from '../../proxy/recording/spdy-streams.js';

class MemoryWriter implements RecordingWriter {
  readonly id = '00000000-0000-4000-8000-000000000001';
  chunks: { seq: number; data: Buffer }[] = [];
  end?: RecordingEnd;
  constructor(private readonly behaviour: 'ok' | 'fail' | 'hang' | 'throw' = 'ok') {}
  append(seq: number, data: Buffer): Promise<void> {
    if (this.behaviour === 'fail')
      return Promise.reject(new Error('permission denied for table recording_chunks'));
    if (this.behaviour === 'hang') return new Promise(() => {});
    if (this.behaviour === 'throw') throw new Error('the store threw at once');
    this.chunks.push({ seq, data });
    return Promise.resolve();
  }
  close(end: RecordingEnd): Promise<void> {
    this.end = end;
    return Promise.resolve();
  }
  /** The recorded events, [type, data] (the time left out; consecutive "o" or "i" joined). */
  events(): [string, string][] {
    const out: [string, string][] = [];
    const enc = new CastEncoder();
    const cast = [...this.chunks.map((c) => enc.push(c.data)), enc.end()];
    for (const l of Buffer.concat(cast).toString().split('\n').filter(Boolean)) {
      const [t, type, text] = JSON.parse(l) as [number, string, string];
      assert.equal(typeof t, 'number');
      const last = out[out.length - 1];
      if (last && last[0] === type && type !== 'r') last[1] += text;
      else out.push([type, text]);
    }
    return out;
  }
}

function session(w: MemoryWriter, o: Partial<SessionOptions> = {}) {
  const failures: string[] = [];
  const s = new RecordingSession(w, {
    kind: 'exec',
    stdin: false,
    required: false,
    flushMs: 60_000,
    onFailure: (r) => failures.push(r),
    log: () => {},
    ...o,
  });
  return { s, failures };
}

function feed(into: (b: Buffer) => void, wire: Buffer, size: number): void {
  for (let i = 0; i < wire.length; i += size) into(wire.subarray(i, i + size));
}

/** One WebSocket frame; masked as a client sends it when `mask`. */
function wsFrame(
  opcode: number,
  payload: Buffer,
  opts: { fin?: boolean; mask?: boolean } = {},
): Buffer {
  const fin = opts.fin ?? true;
  const n = payload.length;
  const len =
    n < 126
      ? Buffer.from([n])
      : n < 65536
        ? Buffer.from([126, n >> 8, n & 0xff])
        : (() => {
            const b = Buffer.alloc(9);
            b[0] = 127;
            b.writeBigUInt64BE(BigInt(n), 1);
            return b;
          })();
  const head = Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode]), len]);
  if (!opts.mask) return Buffer.concat([head, payload]);
  head[1]! |= 0x80;
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]!));
  return Buffer.concat([head, key, masked]);
}

const ch = (c: number, s: string | Buffer) => Buffer.concat([Buffer.from([c]), Buffer.from(s)]);

async function settle(s: RecordingSession, status = 101): Promise<void> {
  s.end(status);
  await s.closed;
}

test('WebSocket v5: stdout and stderr as "o", resizes as "r", stdin only when asked, fragments and any chunking', async () => {
  const euro = Buffer.from('€ ok\n'); // a UTF-8 character split across frames below
  const fromCluster = Buffer.concat([
    wsFrame(2, ch(1, 'hello\n')),
    wsFrame(2, ch(2, 'warn\n')),
    // one stdout message in three fragments, splitting the UTF-8 of €
    wsFrame(2, Buffer.concat([Buffer.from([1]), euro.subarray(0, 1)]), { fin: false }),
    wsFrame(0x9, Buffer.from('ping')), // a control frame between fragments
    wsFrame(0, euro.subarray(1, 2), { fin: false }),
    wsFrame(0, euro.subarray(2), { fin: true }),
    wsFrame(2, ch(3, '{"status":"Success"}')),
  ]);
  const fromClient = Buffer.concat([
    wsFrame(2, ch(4, '{"Width":120,"Height":40}'), { mask: true }),
    wsFrame(2, ch(0, 'secret\n'), { mask: true }),
  ]);
  for (const stdin of [false, true]) {
    for (const size of [1, 3, 7, 64, 100_000]) {
      const w = new MemoryWriter();
      const { s } = session(w, { stdin });
      s.switched('websocket', 'v5.channel.k8s.io');
      const clientCopy = Buffer.from(fromClient);
      const clusterCopy = Buffer.from(fromCluster);
      feed((b) => s.fromClient(b), fromClient, size);
      feed((b) => s.fromCluster(b), fromCluster, size);
      await settle(s);
      assert.ok(
        fromClient.equals(clientCopy) && fromCluster.equals(clusterCopy),
        'bytes untouched',
      );
      const expected: [string, string][] = [
        ['r', '120x40'],
        ...(stdin ? [['i', 'secret\n'] as [string, string]] : []),
      ];
      const ev = w.events();
      assert.deepEqual(
        ev.filter((e) => e[0] !== 'o'),
        expected,
        `size ${size}`,
      );
      assert.equal(
        ev
          .filter((e) => e[0] === 'o')
          .map((e) => e[1])
          .join(''),
        'hello\nwarn\n€ ok\n',
      );
      assert.equal(w.end?.status, 'complete');
      assert.equal(w.end?.bytesIn, fromClient.length);
      assert.equal(w.end?.bytesOut, fromCluster.length);
    }
  }
});

test('WebSocket base64 channel protocol: text frames decoded, however split', async () => {
  const msg = (c: number, s: string) => Buffer.from(`${c}${Buffer.from(s).toString('base64')}`);
  const fromCluster = Buffer.concat([wsFrame(1, msg(1, 'line one\n')), wsFrame(1, msg(2, 'oops'))]);
  for (const size of [1, 2, 5, 1000]) {
    const w = new MemoryWriter();
    const { s } = session(w);
    s.switched('websocket', 'v4.base64.channel.k8s.io');
    feed((b) => s.fromCluster(b), fromCluster, size);
    await settle(s);
    assert.equal(
      w
        .events()
        .map((e) => e[1])
        .join(''),
      'line one\noops',
    );
  }
});

/** SPDY frames as kubectl's client writes them: SYN_STREAMs in one zlib context. */
async function spdySyn(streams: { id: number; type: string }[]): Promise<Buffer[]> {
  const z = createDeflate({ dictionary: spdyDictionary });
  const out: Buffer[] = [];
  for (const st of streams) {
    const nv = Buffer.concat([
      u32(1),
      u32('streamtype'.length),
      Buffer.from('streamtype'),
      u32(st.type.length),
      Buffer.from(st.type),
    ]);
    const block = await new Promise<Buffer>((resolve) => {
      const got: Buffer[] = [];
      const on = (c: Buffer) => got.push(c);
      z.on('data', on);
      z.write(nv);
      z.flush(zc.Z_SYNC_FLUSH, () => {
        z.off('data', on);
        resolve(Buffer.concat(got));
      });
    });
    out.push(control(1, Buffer.concat([u32(st.id), u32(0), Buffer.from([0, 0]), block])));
  }
  z.close();
  return out;
}
function control(type: number, body: Buffer): Buffer {
  const h = Buffer.from([0x80, 3, 0, type, 0, 0, 0, 0]);
  h.writeUInt32BE(body.length & 0xffffff, 4);
  h[4] = 0;
  return Buffer.concat([h, body]);
}
function data(id: number, payload: string | Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(id, 0);
  h.writeUInt32BE(Buffer.from(payload).length, 4);
  return Buffer.concat([h, Buffer.from(payload)]);
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

test('SPDY/3.1: stream types from the SYN_STREAM header blocks; stdout, stderr, resize, stdin', async () => {
  const syns = await spdySyn([
    { id: 1, type: 'error' },
    { id: 3, type: 'stdin' },
    { id: 5, type: 'stdout' },
    { id: 7, type: 'stderr' },
    { id: 9, type: 'resize' },
  ]);
  const fromClient = Buffer.concat([
    ...syns,
    data(9, '{"Width":100,"Height":30}\n{"Width":101,'),
    data(9, '"Height":31}\n'),
    data(3, 'typed\n'),
  ]);
  const ping = Buffer.from([0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
  const clusterWire = Buffer.concat([
    data(5, 'out 1\n'),
    ping,
    data(7, 'err 1\n'),
    data(1, ''),
    data(5, 'out 2\n'),
  ]);
  for (const stdin of [false, true]) {
    for (const size of [1, 9, 4096]) {
      const w = new MemoryWriter();
      const { s } = session(w, { stdin });
      s.switched('SPDY/3.1', 'v4.channel.k8s.io');
      feed((b) => s.fromClient(b), fromClient, size);
      feed((b) => s.fromCluster(b), clusterWire, size);
      await settle(s);
      assert.equal(w.end?.status, 'complete', w.end?.reason);
      assert.deepEqual(w.events(), [
        ['r', '100x30'],
        ['r', '101x31'],
        ...(stdin ? [['i', 'typed\n'] as [string, string]] : []),
        ['o', 'out 1\nerr 1\nout 2\n'],
      ]);
    }
  }
});

test('port-forward: byte counts only, no payload', async () => {
  const w = new MemoryWriter();
  const { s } = session(w, { kind: 'portforward', stdin: true });
  s.switched('websocket', 'v4.channel.k8s.io');
  s.fromClient(wsFrame(2, ch(0, 'GET / HTTP/1.1\r\n\r\n'), { mask: true }));
  s.fromCluster(wsFrame(2, ch(1, 'HTTP/1.1 200 OK\r\n\r\n')));
  await settle(s);
  assert.deepEqual(w.events(), []);
  assert.equal(w.end?.status, 'complete');
  assert.ok(w.end!.bytesIn > 0 && w.end!.bytesOut > 0);
});

test('hostile WebSocket input: huge declared lengths, reserved opcodes, stray continuations — no throw, recording incomplete', async () => {
  const cases: [string, Buffer][] = [
    ['2^63 length', Buffer.from([0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3])],
    ['reserved opcode', Buffer.from([0x83, 1, 1])],
    ['reserved bits', Buffer.from([0xc2, 1, 1])],
    ['continuation with no message', Buffer.from([0x80, 1, 1])],
    ['long control frame', Buffer.from([0x89, 126, 1, 0])],
    ['random', randomBytes(4096)],
  ];
  for (const [name, wire] of cases) {
    const w = new MemoryWriter();
    const { s, failures } = session(w, { required: true });
    s.switched('websocket', 'v5.channel.k8s.io');
    assert.doesNotThrow(() => feed((b) => s.fromCluster(b), wire, 3), name);
    assert.doesNotThrow(() => s.fromClient(randomBytes(100)), name);
    await settle(s);
    if (name !== 'random' || w.end?.status === 'incomplete') {
      assert.equal(w.end?.status, 'incomplete', name);
      assert.match(w.end!.reason, /could not be followed/, name);
      assert.equal(failures.length, 1, `${name}: a required session is ended`);
    }
  }
});

test('a frame declaring 2^50 bytes is followed without holding it: memory stays flat', async () => {
  const w = new MemoryWriter();
  const { s } = session(w, { chunkBytes: 64 * 1024 });
  s.switched('websocket', 'v5.channel.k8s.io');
  const head = Buffer.from([0x82, 127, 0, 0x04, 0, 0, 0, 0, 0, 0, 1]); // 2^50 bytes, stdout
  s.fromCluster(head);
  const piece = Buffer.alloc(1024 * 1024, 0x61);
  global.gc?.();
  const before = process.memoryUsage();
  for (let i = 0; i < 256; i++) {
    s.fromCluster(piece); // 256 MiB of output, a MiB per turn of the event loop
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setImmediate(r));
  global.gc?.();
  const after = process.memoryUsage();
  // The written chunks are kept by this test's writer; drop them and measure what the tap holds.
  const held = after.heapUsed + after.arrayBuffers - (before.heapUsed + before.arrayBuffers);
  const written = w.chunks.reduce((n, c) => n + c.data.length, 0);
  assert.ok(written > 255 * 1024 * 1024, 'the output was written out as it came');
  assert.ok(
    held - written < 64 * 1024 * 1024,
    `tap held ${held - written} bytes beyond what it wrote`,
  );
  w.chunks = [];
  await settle(s);
  assert.equal(w.end?.status, 'complete');
});

test('hostile SPDY input: garbage, truncated frames, a zlib bomb in a header block — no throw, incomplete', async () => {
  // 64 MiB of zeros deflates to ~64 KiB; as a header block it must not be inflated whole.
  const bomb = deflateSync(Buffer.alloc(60 * 1024 * 1024), {
    dictionary: spdyDictionary,
    level: 9,
  });
  assert.ok(bomb.length < 64 * 1024, `bomb is ${bomb.length} bytes`);
  const cases: [string, Buffer, RegExp][] = [
    [
      'zlib bomb',
      control(1, Buffer.concat([u32(1), u32(0), Buffer.from([0, 0]), bomb])),
      /does not inflate|larger than/,
    ],
    [
      'not zlib',
      control(1, Buffer.concat([u32(1), u32(0), Buffer.from([0, 0]), randomBytes(64)])),
      /does not inflate/,
    ],
    [
      'header count lies',
      control(
        1,
        Buffer.concat([
          u32(1),
          u32(0),
          Buffer.from([0, 0]),
          deflateSync(u32(1_000_000), { dictionary: spdyDictionary }),
        ]),
      ),
      /too many headers|truncated/,
    ],
    ['short SYN_STREAM', control(1, Buffer.from([0, 0, 0])), /too short/],
    ['version 2', Buffer.from([0x80, 2, 0, 1, 0, 0, 0, 0]), /version 2/],
    [
      'oversized header frame',
      Buffer.concat([Buffer.from([0x80, 3, 0, 1, 0, 0xff, 0xff, 0xff]), randomBytes(1000)]),
      /larger than/,
    ],
  ];
  for (const [name, wire, why] of cases) {
    const w = new MemoryWriter();
    const { s } = session(w);
    s.switched('SPDY/3.1', 'v4.channel.k8s.io');
    const before = process.memoryUsage().rss;
    assert.doesNotThrow(() => feed((b) => s.fromClient(b), wire, 1000), name);
    assert.ok(process.memoryUsage().rss - before < 128 * 1024 * 1024, `${name}: memory`);
    await settle(s);
    assert.equal(w.end?.status, 'incomplete', name);
    assert.match(w.end!.reason, why, name);
  }
  // Random bytes and a truncated frame: never a throw, whatever the tap concludes.
  for (let i = 0; i < 200; i++) {
    const w = new MemoryWriter();
    const { s } = session(w);
    s.switched('SPDY/3.1', 'v4.channel.k8s.io');
    assert.doesNotThrow(() => {
      s.fromClient(randomBytes(1 + (i % 97)));
      s.fromCluster(randomBytes(1 + (i % 61)));
    });
    await settle(s);
  }
});

test('the parsers alone throw only their ProtocolGarbled, never anything else, on random input', () => {
  for (let i = 0; i < 500; i++) {
    const b = randomBytes(1 + (i % 300));
    for (const p of [
      new WebSocketChannels(i % 2 === 0, { data: () => {}, end: () => {} }),
      new SpdyStreams({ opened: () => {}, data: () => {} }),
    ]) {
      try {
        p.feed(b);
      } catch (err) {
        assert.equal((err as Error).constructor.name, 'ProtocolGarbled');
      }
    }
  }
});

test('a store that fails: best effort marks the recording incomplete; required ends the session', async () => {
  for (const required of [false, true]) {
    const w = new MemoryWriter('fail');
    const { s, failures } = session(w, { required, chunkBytes: 16 });
    s.switched('websocket', 'v5.channel.k8s.io');
    s.fromCluster(wsFrame(2, ch(1, 'enough output to flush a chunk\n')));
    await new Promise((r) => setTimeout(r, 20)); // past the 10 ms that join output into one event
    s.fromCluster(wsFrame(2, ch(1, 'more\n'))); // ends the first event, written as a chunk
    await new Promise((r) => setImmediate(r));
    await settle(s);
    assert.equal(w.end?.status, 'incomplete');
    assert.match(w.end!.reason, /store failed: permission denied/);
    assert.equal(failures.length, required ? 1 : 0);
  }
});

test('a store that throws at once, even from the flush timer: no uncaught error, recording incomplete', async () => {
  const w = new MemoryWriter('throw');
  const { s } = session(w, { flushMs: 5 });
  s.switched('websocket', 'v5.channel.k8s.io');
  s.fromCluster(wsFrame(2, ch(1, 'a little output, flushed by the timer\n')));
  await new Promise((r) => setTimeout(r, 30));
  await settle(s);
  assert.equal(w.end?.status, 'incomplete');
  assert.match(w.end!.reason, /threw at once/);
});

test('a store slower than the session holds the cluster side: the recording is complete, memory bounded', async () => {
  // A store that takes a few milliseconds per write, whatever its size.
  class SlowWriter extends MemoryWriter {
    override append(seq: number, data: Buffer): Promise<void> {
      return new Promise((r) => setTimeout(r, 3)).then(() => super.append(seq, data));
    }
  }
  const w = new SlowWriter();
  const holdBytes = 256 * 1024;
  const { s, failures } = session(w, { required: true, chunkBytes: 16 * 1024, holdBytes });
  s.switched('websocket', 'v5.channel.k8s.io');
  const frame = wsFrame(2, ch(1, 'y'.repeat(32 * 1024 - 1)));
  const frames = 256; // 8 MiB
  let holds = 0;
  for (let i = 0; i < frames; i++) {
    s.fromCluster(frame);
    const wait = s.behind();
    if (wait) {
      holds++;
      await wait;
    }
  }
  await settle(s);
  assert.deepEqual(failures, []);
  assert.equal(w.end?.status, 'complete');
  const out = w.events().filter(([t]) => t === 'o');
  assert.equal(out.length, 1);
  assert.equal(out[0]![1].length, frames * (32 * 1024 - 1));
  assert.ok(holds > 0, 'the slow store held the session at least once');
  // No write carried more than the mark and the one frame that crossed it (as JSON lines).
  const biggest = Math.max(...w.chunks.map((c) => c.data.length));
  assert.ok(biggest <= holdBytes + 33 * 1024, `largest chunk ${biggest} bytes`);
});

test('a store that stops answering while it holds the session: given up after stallMs, the hold released', async () => {
  for (const required of [false, true]) {
    const w = new MemoryWriter('hang');
    const { s, failures } = session(w, {
      required,
      chunkBytes: 1024,
      holdBytes: 8 * 1024,
      stallMs: 50,
    });
    s.switched('websocket', 'v5.channel.k8s.io');
    let wait: Promise<void> | undefined;
    for (let i = 0; i < 100 && !wait; i++) {
      s.fromCluster(wsFrame(2, ch(1, 'z'.repeat(1000))));
      wait = s.behind();
    }
    assert.ok(wait, 'held once the mark was passed');
    await wait; // settles: the stall gives the recording up
    assert.match(s.failure ?? '', /completed no write for 0.05 s/);
    assert.equal(failures.length, required ? 1 : 0);
    assert.equal(s.behind(), undefined, 'a given-up recording holds nothing');
  }
});

test('an ended session releases a hold', async () => {
  const w = new MemoryWriter('hang');
  const { s } = session(w, { chunkBytes: 1024, holdBytes: 4096 });
  s.switched('websocket', 'v5.channel.k8s.io');
  let wait: Promise<void> | undefined;
  for (let i = 0; i < 100 && !wait; i++) {
    s.fromCluster(wsFrame(2, ch(1, 'q'.repeat(1000))));
    wait = s.behind();
  }
  assert.ok(wait);
  s.end(101);
  await wait;
});

test('bytes past the hard limit, which holding the cluster side cannot stop: the recording is given up', async () => {
  const w = new MemoryWriter('hang');
  const { s, failures } = session(w, {
    required: true,
    chunkBytes: 1024,
    maxPendingBytes: 64 * 1024,
  });
  s.switched('websocket', 'v5.channel.k8s.io');
  for (let i = 0; i < 1000; i++) s.fromCluster(wsFrame(2, ch(1, 'x'.repeat(500))));
  assert.equal(failures.length, 1);
  assert.match(failures[0]!, /fell behind/);
  assert.equal(s.failure !== undefined, true);
});

test('a refused upgrade leaves an unrecorded row, not a recording', async () => {
  const w = new MemoryWriter();
  const { s } = session(w);
  await settle(s, 403);
  assert.equal(w.end?.status, 'unrecorded');
  assert.match(w.end!.reason, /answered the upgrade 403/);
});
