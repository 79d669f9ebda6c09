import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lacks, peerRow, type PeerSamples } from '../../bench/rows/peer-remotedialer.js';

const spec = {
  id: 'P2-rd',
  what: `GET against remotedialer (${lacks.example})`,
  unit: 'req/s',
  cpuUnit: 'CPU µs/req',
};

const samples = (failed: PeerSamples['failed'] = {}): PeerSamples => ({
  who: ['kubegate', 'remotedialer', 'remotedialer-tls', 'nginx', 'direct'],
  rate: {
    kubegate: [2000, 3000, 2500],
    remotedialer: [1000, 1000, 1250],
    'remotedialer-tls': [4000, 3000, 5000],
    nginx: [12000, 13000, 14000],
    direct: [40000, 41000, 39000],
  },
  cpu: {
    kubegate: [170, 110],
    remotedialer: [560, 230],
    'remotedialer-tls': [90, 60],
    nginx: [46],
    direct: [],
  },
  conns: { kubegate: 0, remotedialer: 0.79, 'remotedialer-tls': 0, nginx: 0, direct: 0 },
  failed,
});

test('a peer row sets kubegate and nginx against each remotedialer shape, round by round', () => {
  const row = peerRow(spec, samples());
  assert.equal(row.id, 'P2-rd');
  assert.equal(row.what, spec.what);
  // kubegate / example per round: 2.0, 3.0, 2.0; / TLS: 0.5, 1.0, 0.5.
  assert.equal(
    row.result,
    "kubegate 200 (200–300)% of remotedialer's example, 50 (50–100)% of remotedialer with TLS; " +
      "nginx 2-hop 1200 (1120–1300)% of remotedialer's example, 300 (280–433)% of remotedialer with TLS",
  );
  assert.equal(row.verdict, 'info');
});

test('a peer row gives each target its rate, CPU per process and upstream connections', () => {
  const { absolute } = peerRow(spec, samples());
  assert.equal(
    absolute,
    "req/s: kubegate 2500, remotedialer's example 1000, remotedialer with TLS 4000, nginx 13000, direct 40000; " +
      "CPU µs/req: kubegate 280 (proxy 170 + agent 110), remotedialer's example 790 (server 560 + client 230), " +
      'remotedialer with TLS 150 (server 90 + client 60), nginx hops 46; ' +
      "new upstream TLS connections per request: kubegate 0.00, remotedialer's example 0.79, remotedialer with TLS 0.00, nginx 0.00",
  );
});

test('failed requests are named per target; only those of kubegate or a reference make an error', () => {
  const peer = peerRow(spec, samples({ remotedialer: 3 }));
  assert.match(peer.absolute, /; failed or short: remotedialer's example 3$/);
  assert.equal(peer.verdict, 'info');
  const ours = peerRow(spec, samples({ kubegate: 1, 'remotedialer-tls': 2 }));
  assert.match(ours.absolute, /; failed or short: kubegate 1, remotedialer with TLS 2$/);
  assert.equal(ours.verdict, 'error');
});
