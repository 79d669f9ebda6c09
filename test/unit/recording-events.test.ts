/**
 * The stored form of a recording (proxy/recording/events.ts): records as the
 * tap writes them become the same asciicast v2 however the store splits
 * them; recordings stored as asciicast lines pass through; a damaged
 * recording is refused, never turned into garbage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  CastEncoder,
  RecordingDamaged,
  recordHeader,
  recordKind,
  type RecordKind,
} from '../../proxy/recording/events.js';

const rec = (kind: RecordKind, ms: number, data: string | Buffer) => {
  const b = Buffer.from(data);
  return Buffer.concat([recordHeader(kind, ms, b.length), b]);
};

function encodeAll(chunks: Buffer[]): string {
  const enc = new CastEncoder();
  return Buffer.concat([...chunks.map((c) => enc.push(c)), enc.end()]).toString();
}

const header = Buffer.from('{"version":2,"width":80,"height":24}\n');

test('records become asciicast events in order: stdout and stderr as "o", stdin "i", resize "r"', () => {
  const body = Buffer.concat([
    rec(recordKind.stdout, 5, 'hello\r\n'),
    rec(recordKind.stdin, 1200, 'ls\r'),
    rec(recordKind.resize, 1500, '120x40'),
    rec(recordKind.stderr, 2001, 'oops "quoted" \u0007\n'),
  ]);
  const cast = encodeAll([header, body]);
  const lines = cast.trimEnd().split('\n');
  assert.equal(lines[0], header.toString().trimEnd());
  assert.deepEqual(
    lines.slice(1).map((l) => JSON.parse(l) as unknown),
    [
      [0.005, 'o', 'hello\r\n'],
      [1.2, 'i', 'ls\r'],
      [1.5, 'r', '120x40'],
      [2.001, 'o', 'oops "quoted" \u0007\n'],
    ],
  );
});

test('any split of the stored chunks gives the same text; a character cut between records stays whole', () => {
  const euro = Buffer.from('€ and ünïcödé and 🚀', 'utf8');
  // The rocket's four bytes split over two records of the same stream.
  const cut = euro.length - 2;
  const body = Buffer.concat([
    rec(recordKind.stdout, 10, euro.subarray(0, cut)),
    rec(recordKind.stderr, 11, 'err'),
    rec(recordKind.stdout, 12, euro.subarray(cut)),
  ]);
  const whole = encodeAll([header, body]);
  const text = whole
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((l) => (JSON.parse(l) as [number, string, string])[2])
    .join('');
  assert.equal(text, '€ and ünïcödé and err🚀');
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: body.length - 1 }), { maxLength: 8 }),
      (cuts) => {
        const at = [...new Set(cuts)].sort((a, b) => a - b);
        const pieces: Buffer[] = [header];
        let from = 0;
        for (const c of at) {
          pieces.push(body.subarray(from, c));
          from = c;
        }
        pieces.push(body.subarray(from));
        assert.equal(encodeAll(pieces), whole);
      },
    ),
  );
});

test('chunks stored as asciicast lines (recordings made before records) pass through unchanged', () => {
  const old = Buffer.from('[0.100000, "o", "before"]\n[0.200000, "o", "records"]\n');
  assert.equal(encodeAll([header, old]), header.toString() + old.toString());
});

test('a damaged recording is refused: an unknown record kind, a recording cut inside a record', () => {
  const bad = Buffer.concat([
    rec(recordKind.stdout, 1, 'ok'),
    Buffer.from([9, 0, 0, 0, 0, 0, 0, 0, 1, 0x41]),
  ]);
  assert.throws(() => new CastEncoder().push(bad), RecordingDamaged);
  const cut = rec(recordKind.stdout, 1, 'a longer piece of output').subarray(0, 15);
  const enc = new CastEncoder();
  assert.equal(enc.push(cut).length, 0);
  assert.throws(() => enc.end(), RecordingDamaged);
});

test('a record header claiming more than a record can hold is refused at once, not waited for in memory', () => {
  const enc = new CastEncoder();
  const head = recordHeader(recordKind.stdout, 1, 0xffffffff);
  assert.throws(() => enc.push(Buffer.concat([head, Buffer.alloc(1024)])), RecordingDamaged);
});
