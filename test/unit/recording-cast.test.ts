/**
 * The console player's reading of a recording (proxy/console/ui/cast.ts),
 * without a browser: the module is browser code compiled by the UI's own
 * tsconfig (`make build` compiles both), and uses nothing Node lacks
 * (TextDecoder), so it is imported here from its compiled file.
 *
 * Lines split anywhere across pieces, multi-byte characters split across
 * pieces, broken lines skipped and counted, times that go back, the size cap,
 * absurd sizes, the idle limit, escape sequences split across events left out
 * of the searchable text, and a match's event.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';

interface CastEvent {
  t: number;
  type: string;
  data: string;
}
interface Cast {
  header: { width: number; height: number; idleTimeLimit: number | null };
  events: CastEvent[];
  skipped: number;
  truncated: boolean;
  bytes: number;
}
interface TextIndex {
  text: string;
  starts: number[];
  events: number[];
}
interface CastModule {
  CastReader: new () => { push(b: Uint8Array): boolean; finish(): Cast; bytes: number };
  CastError: new (m: string) => Error;
  maxCastBytes: number;
  parseSize(s: string): { cols: number; rows: number } | undefined;
  timeline(events: CastEvent[], cap: number | null): Float64Array;
  textIndex(events: CastEvent[]): TextIndex;
  findAll(i: TextIndex, q: string, max?: number): { start: number; end: number; event: number }[];
  clock(s: number): string;
}

// A path the compiler does not resolve: the browser module is not part of this program.
const modulePath = '../../proxy/console/ui/cast.js';
const cast = (await import(modulePath)) as CastModule;

function read(text: string | Buffer, pieces: number[] = []): Cast {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const r = new cast.CastReader();
  let at = 0;
  for (const n of pieces) {
    r.push(bytes.subarray(at, at + n));
    at += n;
  }
  r.push(bytes.subarray(at));
  return r.finish();
}

const header = JSON.stringify({ version: 2, width: 80, height: 24 });
const ev = (...e: unknown[]) => JSON.stringify(e);

describe('reading a recording', () => {
  test('the same events however the bytes are split, multi-byte characters included', () => {
    const text = [
      header,
      ev(0.5, 'o', 'héllo € 🚀\r\n'),
      ev(1, 'r', '100x30'),
      ev(1.5, 'i', 'typed'),
      ev(2, 'o', 'bye'),
      '',
    ].join('\n');
    const whole = read(text);
    assert.deepEqual(whole.header, { width: 80, height: 24, idleTimeLimit: null });
    assert.equal(whole.events.length, 4);
    assert.equal(whole.events[0]!.data, 'héllo € 🚀\r\n');
    assert.equal(whole.skipped, 0);
    assert.equal(whole.truncated, false);
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut += 3) {
      const split = read(bytes, [cut, 1, 2]);
      assert.deepEqual(split.events, whole.events, `split at ${cut}`);
    }
    // The last line needs no newline.
    assert.equal(read(text.trimEnd()).events.length, 4);
  });

  test('lines that are not events are skipped and counted; times never go back', () => {
    const c = read(
      [
        header,
        'not json',
        '[1,2',
        '{"a":1}',
        '["1","o","x"]',
        '[-1,"o","x"]',
        '[1e999,"o","x"]',
        '[1,"o",5]',
        '[1,"o"]',
        ev(3, 'o', 'three'),
        ev(2, 'o', 'two, written after three'),
        '',
        '   ',
      ].join('\n'),
    );
    assert.equal(c.skipped, 8);
    assert.deepEqual(
      c.events.map((e) => [e.t, e.data]),
      [
        [3, 'three'],
        [3, 'two, written after three'],
      ],
    );
  });

  test('the header: not JSON, not v2, no size are errors; sizes are bounded', () => {
    assert.throws(() => read('<html>\n'), /not an asciicast recording: its first line is not JSON/);
    assert.throws(() => read('{"version":1,"width":80,"height":24}\n'), /not an asciicast v2/);
    assert.throws(() => read('[2]\n'), /not an asciicast v2/);
    assert.throws(() => read('{"version":2}\n'), /does not say the terminal size/);
    assert.throws(() => read(''), /empty/);
    const big = read('{"version":2,"width":100000,"height":99999,"idle_time_limit":1.5}\n');
    assert.deepEqual(big.header, { width: 500, height: 200, idleTimeLimit: 1.5 });
    const small = read('{"version":2,"width":0.5,"height":1}\n');
    assert.deepEqual([small.header.width, small.header.height], [2, 1]);
    assert.deepEqual(cast.parseSize('120x40'), { cols: 120, rows: 40 });
    assert.deepEqual(cast.parseSize('999999x999999'), { cols: 500, rows: 200 });
    for (const bad of ['0x0', '80x0', '-1x5', 'abc', '80x', '1234567x2', ' 80x24'])
      assert.equal(cast.parseSize(bad), undefined, bad);
  });

  test('past the size cap the reader stops, says so, and drops the line it cut', () => {
    const line = ev(1, 'o', 'x'.repeat(1024 * 1024 - 20)) + '\n';
    const r = new cast.CastReader();
    assert.equal(r.push(Buffer.from(header + '\n')), true);
    const piece = Buffer.from(line);
    let pushes = 0;
    while (r.push(piece)) pushes++;
    const c = r.finish();
    assert.equal(c.truncated, true);
    assert.equal(c.bytes, cast.maxCastBytes);
    assert.equal(c.events.length, pushes, 'every whole line before the cap, not the cut one');
    assert.equal(r.push(piece), false, 'nothing more is taken');
  });
});

describe('the timeline and the text', () => {
  const events: CastEvent[] = [
    { t: 1, type: 'o', data: 'a' },
    { t: 11, type: 'o', data: 'b' },
    { t: 11.5, type: 'r', data: '90x30' },
    { t: 30, type: 'o', data: 'c' },
  ];

  test('pauses longer than the idle limit are cut to it', () => {
    assert.deepEqual([...cast.timeline(events, null)], [1, 11, 11.5, 30]);
    assert.deepEqual([...cast.timeline(events, 2)], [1, 3, 3.5, 5.5]);
    assert.deepEqual([...cast.timeline([], 2)], []);
  });

  test('escape sequences, even split across events, are left out of the text; the match names its event', () => {
    const out: CastEvent[] = [
      { t: 0, type: 'o', data: '\x1b[1;32mgre' },
      { t: 1, type: 'o', data: 'en\x1b[0m \x1b]0;a title\x07title-gone\r\n' },
      { t: 2, type: 'i', data: 'typed input is not output' },
      { t: 3, type: 'o', data: 'split \x1b[3' },
      {
        t: 4,
        type: 'o',
        data: '1mred\x1b]8;;https://x.example/\x1b\\link\x1b]8;;\x1b\\ \x1bP+q54\x1b\\dcs',
      },
      { t: 5, type: 'o', data: '\x1b(Bcharset \x1b7saved\x1b8 tab\there\x08\x07\r\nNEEDLE' },
    ];
    const idx = cast.textIndex(out);
    assert.equal(idx.text, 'green title-gone\nsplit redlink dcscharset saved tab here\nNEEDLE');
    assert.deepEqual(idx.events, [0, 1, 3, 4, 5]);
    const green = cast.findAll(idx, 'GREEN');
    assert.equal(green.length, 1);
    assert.equal(green[0]!.event, 1, 'the word is complete with its last letter, in event 1');
    assert.equal(cast.findAll(idx, 'red')[0]!.event, 4);
    assert.equal(cast.findAll(idx, 'needle')[0]!.event, 5);
    assert.deepEqual(cast.findAll(idx, 'typed input'), [], 'input is not searched');
    assert.deepEqual(cast.findAll(idx, 'a title'), [], 'a title sequence is not text');
    assert.deepEqual(cast.findAll(idx, ''), []);
    // Regular expression characters are text.
    assert.deepEqual(
      cast.findAll(cast.textIndex([{ t: 0, type: 'o', data: 'a.b a+b' }]), 'a+b').length,
      1,
    );
    assert.equal(
      cast.findAll(cast.textIndex([{ t: 0, type: 'o', data: 'x'.repeat(5000) }]), 'x', 10).length,
      10,
    );
  });

  test('the clock', () => {
    assert.equal(cast.clock(0), '0:00.0');
    assert.equal(cast.clock(59.96), '1:00.0');
    assert.equal(cast.clock(75.25), '1:15.3');
    assert.equal(cast.clock(3725), '1:02:05.0');
  });
});
