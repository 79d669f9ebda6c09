import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  rdLacks,
  rdListRow,
  rdThroughputRow,
  type PeerSamples,
} from '../../bench/rows/peer-remotedialer.js';

const samples = (failed = 0): PeerSamples => ({
  rate: {
    kubegate: [2000, 3000, 2500],
    remotedialer: [1000, 1000, 1250],
    nginx: [12000, 13000, 14000],
    direct: [40000, 41000, 39000],
  },
  cpu: { kubegate: [170, 110], remotedialer: [560, 230], nginx: 46 },
  conns: { kubegate: 0, remotedialer: 0.79, nginx: 0, direct: 0 },
  failed,
});

test('the P2-rd row puts remotedialer beside kubegate, nginx and direct, saying what it lacks', () => {
  const row = rdThroughputRow(samples());
  assert.equal(row.id, 'P2-rd');
  assert.ok(row.what.includes(rdLacks), row.what);
  // Ratios round by round: 2.0, 3.0, 2.0 → median 200%, range 200–300%.
  assert.equal(
    row.result,
    'kubegate 200 (200–300)% of remotedialer; nginx 2-hop 1200 (1120–1300)%',
  );
  assert.match(
    row.absolute,
    /req\/s: kubegate 2500, remotedialer 1000, nginx 13000, direct 40000;/,
  );
  assert.match(
    row.absolute,
    /kubegate 280 \(proxy 170 \+ agent 110\), remotedialer 790 \(server 560 \+ client 230\), nginx hops 46/,
  );
  assert.match(row.absolute, /remotedialer 0\.79/);
  assert.equal(row.verdict, 'info');
  assert.equal(rdThroughputRow(samples(3)).verdict, 'error');
});

test('the P3-rd row gives MB/s and CPU per LIST of each peer', () => {
  const row = rdListRow(samples(1));
  assert.equal(row.id, 'P3-rd');
  assert.ok(row.what.includes(rdLacks));
  assert.match(
    row.absolute,
    /^MB\/s: kubegate 2500, remotedialer 1000, nginx 13000, direct 40000; CPU ms per LIST: kubegate 280/,
  );
  assert.match(row.absolute, /1 incomplete$/);
  assert.equal(row.verdict, 'error');
});
