/**
 * The tunnel listener's admission (proxy/tunnel/admission.ts) over real TCP
 * sockets: a bounded number admitted, the rest waiting unread in arrival
 * order, bounded in count and in time; and the batched serial check
 * (proxy/tunnel/serial-check.ts): a check never reuses an answer read
 * before it asked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startAdmission, type Admission } from '../../proxy/tunnel/admission.js';
import { SerialCheck } from '../../proxy/tunnel/serial-check.js';
import { certKey } from '../../proxy/clusters/cluster-store.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(10);
  }
}

/** A client connection, and whether the server closed it. */
function dial(port: number): Promise<{ socket: Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = connect({ port, host: '127.0.0.1' }, () =>
      resolve({ socket, closed: () => closed }),
    );
    socket.on('error', () => undefined);
    socket.once('close', () => (closed = true));
    socket.once('error', reject);
  });
}

test('admission: at most maxActive admitted, the rest wait in arrival order, overflow is closed', async () => {
  const admitted: number[] = [];
  const raws = new Map<number, Socket>();
  const a: Admission = await startAdmission({
    host: '127.0.0.1',
    port: 0,
    maxActive: 2,
    maxWaiting: 2,
    maxWaitMs: 60_000,
    admit: (raw) => {
      admitted.push(raw.remotePort!);
      raws.set(raw.remotePort!, raw);
    },
  });
  const clients: Awaited<ReturnType<typeof dial>>[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      clients.push(await dial(a.port));
      // One at a time, so arrival order is the order of this loop.
      await until(`connection ${i} seen`, () => {
        const c = a.counts();
        return c.active + c.waiting === Math.min(i + 1, 4) || clients[i]!.closed();
      });
    }
    const port = (i: number) => clients[i]!.socket.localPort!;
    assert.deepEqual(admitted, [port(0), port(1)]);
    assert.deepEqual(a.counts(), { active: 2, waiting: 2 });
    await until('the fifth (over maxWaiting) closed', () => clients[4]!.closed());
    assert.ok(!clients[2]!.closed() && !clients[3]!.closed(), 'the waiting ones stay open');

    // A released slot goes to the first waiting; a closed admitted connection frees its slot too.
    a.release(raws.get(port(0))!);
    await until('third admitted', () => admitted.length === 3);
    assert.equal(admitted[2], port(2));
    raws.get(port(1))!.destroy();
    await until('fourth admitted', () => admitted.length === 4);
    assert.equal(admitted[3], port(3));
    assert.deepEqual(a.counts(), { active: 2, waiting: 0 });
  } finally {
    for (const c of clients) c.socket.destroy();
    for (const r of raws.values()) r.destroy();
    await a.close();
  }
});

test('admission: a connection that waited past maxWaitMs is closed, not admitted', async () => {
  const admitted: Socket[] = [];
  const a = await startAdmission({
    host: '127.0.0.1',
    port: 0,
    maxActive: 1,
    maxWaiting: 10,
    maxWaitMs: 300,
    admit: (raw) => void admitted.push(raw),
  });
  try {
    const first = await dial(a.port);
    await until('first admitted', () => admitted.length === 1);
    const late = await dial(a.port);
    await until('second waiting', () => a.counts().waiting === 1);
    // The slot stays taken: the sweep closes the waiting one once past its time.
    await until('second closed by the sweep', () => late.closed(), 5000);
    assert.equal(admitted.length, 1);
    assert.equal(a.counts().waiting, 0);
    // And a slot freed later does not admit it.
    a.release(admitted[0]!);
    await sleep(100);
    assert.equal(admitted.length, 1);
    first.socket.destroy();
  } finally {
    for (const r of admitted) r.destroy();
    await a.close();
  }
});

/** What the database would answer, held until `answer()` so queries overlap (named fake). */
class FakeCertStore {
  valid = new Set<string>();
  queries: { certs: { cluster: string; serial: string }[]; answer: () => void }[] = [];
  fail = false;

  agentCertsValid(certs: { cluster: string; serial: string }[]): Promise<Set<string>> {
    // The answer reflects the state when the query started, as a database snapshot does.
    const snapshot = new Set(
      [...this.valid].filter((k) => certs.some((c) => certKey(c.cluster, c.serial) === k)),
    );
    const fail = this.fail;
    return new Promise((resolve, reject) => {
      this.queries.push({
        certs,
        answer: () => (fail ? reject(new Error('database down')) : resolve(snapshot)),
      });
    });
  }
}

test('serial check: concurrent checks share one query; a check asked after a revocation sees it', async () => {
  const store = new FakeCertStore();
  store.valid.add(certKey('alpha', '01'));
  store.valid.add(certKey('beta', '02'));
  const check = new SerialCheck(store);

  const first = check.valid('alpha', '01');
  assert.equal(store.queries.length, 1, 'the first check queries at once');
  // While that query runs: the certificate is revoked, then checked again, with others.
  store.valid.delete(certKey('alpha', '01'));
  const again = check.valid('alpha', '01');
  const beta = check.valid('beta', '02');
  const unknown = check.valid('gamma', '03');
  assert.equal(store.queries.length, 1, 'no second query while one runs');
  store.queries[0]!.answer();
  assert.equal(await first, true, 'read before the revocation');
  await until('second query', () => store.queries.length === 2);
  assert.equal(store.queries[1]!.certs.length, 3, 'the three waiting checks share it');
  store.queries[1]!.answer();
  assert.equal(await again, false, 'asked after the revocation: refused');
  assert.equal(await beta, true);
  assert.equal(await unknown, false);

  // A failed query fails its checks (the listener refuses those tunnels), and the next one runs.
  store.fail = true;
  const down = check.valid('beta', '02');
  store.queries[2]!.answer();
  await assert.rejects(down, /database down/);
  store.fail = false;
  const up = check.valid('beta', '02');
  await until('fourth query', () => store.queries.length === 4);
  store.queries[3]!.answer();
  assert.equal(await up, true);
});
