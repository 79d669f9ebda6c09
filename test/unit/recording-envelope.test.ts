/**
 * The recording envelope (proxy/recording/envelope.ts): what is sealed opens
 * to the same bytes however the object arrives in pieces; every single-bit
 * change, every cut (even at a segment boundary), reordered or dropped
 * segments, another recording's id or key, and trailing bytes are refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import {
  maxSegmentBytes,
  newDataKey,
  openDataKey,
  SegmentOpener,
  SegmentSealer,
} from '../../proxy/recording/envelope.js';

const id = randomUUID();
const key = randomBytes(32);

/** Seal `chunks` as a recording would: the start, one seal per chunk, an empty final segment. */
function sealAll(chunks: Buffer[], k = key, rid = id): { object: Buffer; segments: Buffer[] } {
  const s = new SegmentSealer(k, rid);
  const segments = chunks.map((c) => Buffer.concat(s.seal(c)));
  segments.push(Buffer.concat(s.seal(Buffer.alloc(0), true)));
  return { object: Buffer.concat([s.start(), ...segments]), segments };
}

function openAll(object: Buffer, pieces: number[] = [object.length], k = key, rid = id): Buffer {
  const o = new SegmentOpener(k, rid);
  const out: Buffer[] = [];
  let at = 0;
  for (const n of pieces) {
    out.push(...o.push(object.subarray(at, at + n)));
    at += n;
  }
  if (at < object.length) out.push(...o.push(object.subarray(at)));
  o.end();
  return Buffer.concat(out);
}

test('opens to the same bytes, whatever pieces the object arrives in', () => {
  const chunks = [
    Buffer.from('{"version":2}\n'),
    randomBytes(70_000),
    Buffer.alloc(0),
    randomBytes(3),
  ];
  const { object } = sealAll(chunks);
  const plain = Buffer.concat(chunks);
  assert.ok(openAll(object).equals(plain));
  for (let trial = 0; trial < 50; trial++) {
    const pieces: number[] = [];
    for (let n = 0; n < object.length;) {
      const p = 1 + Math.floor(Math.random() * 9000);
      pieces.push(p);
      n += p;
    }
    assert.ok(openAll(object, pieces).equals(plain));
  }
  assert.ok(openAll(object, Array(object.length).fill(1)).equals(plain), 'byte by byte');
});

test('a chunk over the segment limit is split, and opens whole', () => {
  const big = randomBytes(maxSegmentBytes * 2 + 5);
  const { object } = sealAll([big]);
  assert.ok(openAll(object).equals(big));
});

test('every single-bit change is refused', () => {
  const { object } = sealAll([Buffer.from('abc'), Buffer.from('defgh')]);
  for (let i = 0; i < object.length; i++)
    for (const bit of [0x01, 0x80]) {
      const bad = Buffer.from(object);
      bad[i]! ^= bit;
      assert.throws(() => openAll(bad), /failed its integrity check/, `byte ${i} bit ${bit}`);
    }
});

test('cuts, reordering, dropped segments and trailing bytes are refused', () => {
  const { object, segments } = sealAll([
    Buffer.from('one'),
    Buffer.from('two'),
    Buffer.from('three'),
  ]);
  const start = object.subarray(0, 8);
  for (let n = 0; n < object.length; n++)
    assert.throws(
      () => openAll(object.subarray(0, n)),
      /failed its integrity check/,
      `cut at ${n}`,
    );
  const [a, b, c, fin] = segments as [Buffer, Buffer, Buffer, Buffer];
  for (const order of [[b, a, c, fin], [a, c, fin], [a, b, c], [a, b, c, fin, fin], [fin]])
    assert.throws(() => openAll(Buffer.concat([start, ...order])), /failed its integrity check/);
  assert.throws(
    () => openAll(Buffer.concat([object, Buffer.from([0])])),
    /after its final segment/,
  );
});

test("another recording's id or key does not open it; a data key opens only with its master key", () => {
  const { object } = sealAll([Buffer.from('secret')]);
  assert.throws(() => openAll(object, undefined, key, randomUUID()), /does not authenticate/);
  assert.throws(() => openAll(object, undefined, randomBytes(32)), /does not authenticate/);
  const master = randomBytes(32);
  const dk = newDataKey(master, id);
  assert.ok(openDataKey(master, id, dk.sealed).equals(dk.key));
  assert.throws(() => openDataKey(master, randomUUID(), dk.sealed), /master key does not match/);
  assert.throws(() => openDataKey(randomBytes(32), id, dk.sealed), /master key does not match/);
});

test('a segment claiming more than the limit is refused before its bytes arrive', () => {
  const { object } = sealAll([Buffer.from('x')]);
  const bad = Buffer.from(object.subarray(0, 12));
  bad.writeUInt32BE(maxSegmentBytes + 1, 8);
  const o = new SegmentOpener(key, id);
  assert.throws(() => o.push(bad), /claims 1048577 bytes/);
});

test('nothing is sealed after the final segment', () => {
  const s = new SegmentSealer(key, id);
  s.seal(Buffer.from('a'), true);
  assert.throws(() => s.seal(Buffer.from('b')), /already sealed/);
});
