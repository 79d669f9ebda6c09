/**
 * The P6 bench client's frame reader (bench/ws.ts): however the byte stream
 * is cut into chunks (TLS records and socket reads cut it anywhere, headers
 * included), the bulk channel's bytes are counted exactly and every other
 * message arrives whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  FrameReader,
  acceptKey,
  channelFrame,
  clientFrame,
  closeFrame,
  opBinary,
} from '../../bench/ws.js';

function read(
  stream: Buffer,
  cuts: number[],
): { bulk: number; messages: [number, string][]; close?: number } {
  const out: { bulk: number; messages: [number, string][]; close?: number } = {
    bulk: 0,
    messages: [],
  };
  const reader = new FrameReader(1, {
    onData: (ch, n) => {
      assert.equal(ch, 1);
      out.bulk += n;
    },
    onMessage: (ch, p) => out.messages.push([ch, p.toString()]),
    onClose: (code) => (out.close = code),
  });
  let at = 0;
  for (const c of [...new Set(cuts)].sort((a, b) => a - b)) {
    reader.push(stream.subarray(at, c));
    at = c;
  }
  reader.push(stream.subarray(at));
  return out;
}

test('Sec-WebSocket-Accept of the RFC 6455 example key', () => {
  assert.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

test('frames of every length encoding, cut anywhere, are read exactly', () => {
  // 7-bit, 16-bit and 64-bit lengths (125 / 126 / 65536 bytes of payload).
  const sizes = [0, 1, 124, 125, 126, 4000, 65535, 65536, 70000];
  const parts = sizes.map((n) => channelFrame(1, Buffer.alloc(n, 7)));
  const status = '{"metadata":{},"status":"Success"}';
  const stream = Buffer.concat([
    channelFrame(0, Buffer.from([0x90, 0x1f])),
    ...parts,
    channelFrame(3, Buffer.from(status)),
    closeFrame(1000),
  ]);
  const want = sizes.reduce((a, b) => a + b, 0);
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: stream.length }), { maxLength: 40 }), (cuts) => {
      const r = read(stream, cuts);
      assert.equal(r.bulk, want);
      assert.deepEqual(r.messages, [
        [0, Buffer.from([0x90, 0x1f]).toString()],
        [3, status],
      ]);
      assert.equal(r.close, 1000);
    }),
    { numRuns: 300 },
  );
  // One byte at a time: every header straddles chunks.
  const r = read(
    stream,
    Array.from({ length: stream.length }, (_, i) => i),
  );
  assert.equal(r.bulk, want);
  assert.equal(r.close, 1000);
});

test('a masked frame from the server is refused', () => {
  const reader = new FrameReader(1, {});
  assert.throws(() => reader.push(clientFrame(opBinary, Buffer.from([1, 2, 3]))), /masked/);
});
