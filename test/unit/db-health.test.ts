import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo } from 'node:net';
import { DbHealth, DatabaseUnresponsiveError } from '../../proxy/db/health.js';
import { createPool } from '../../proxy/db/pool.js';
import { Limiter, LimiterFullError } from '../../proxy/db/limiter.js';

test('a heartbeat outstanding past the threshold marks the database suspect; an answer clears it', async () => {
  const h = new DbHealth({ suspectAfterMs: 50 });
  const seen: boolean[] = [];
  h.onChange((s) => seen.push(s));
  h.probeSent();
  await sleep(20);
  assert.equal(h.suspect, false, 'not yet overdue');
  await sleep(80);
  assert.equal(h.suspect, true, 'overdue');
  h.answered();
  assert.equal(h.suspect, false);
  assert.deepEqual(seen, [true, false]);
  h.stop();
});

test('a probe that fails fast (refused) does not make the database suspect', async () => {
  const h = new DbHealth({ suspectAfterMs: 30 });
  h.probeSent();
  h.failed();
  await sleep(60);
  assert.equal(h.suspect, false);
  h.stop();
});

test('an answer already readable while the event loop was blocked is not judged a hang', async () => {
  // The answer arrives as socket I/O while the loop is blocked past the
  // threshold: when the loop resumes, the expired timer runs before the poll
  // phase reads the socket, so only a judgement deferred past I/O is fair.
  // The server answers, then the loop is blocked past the threshold (in the
  // same callback), so the answer is readable before the timer is judged.
  const server = createServer((s) =>
    s.on('data', () => {
      s.write('1');
      const until = Date.now() + 80;
      while (Date.now() < until);
    }),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const client = connect(port, '127.0.0.1');
  await once(client, 'connect');
  const h = new DbHealth({ suspectAfterMs: 30 });
  const seen: boolean[] = [];
  h.onChange((s) => seen.push(s));
  client.on('data', () => h.answered());
  h.probeSent();
  client.write('ping');
  await sleep(150);
  client.destroy();
  server.close();
  h.stop();
  assert.deepEqual(seen, [], 'never judged suspect');
});

test('onSuspect waiters are called once, and can be cancelled', async () => {
  const h = new DbHealth({ suspectAfterMs: 10 });
  let a = 0;
  let b = 0;
  h.onSuspect(() => a++);
  const cancel = h.onSuspect(() => b++);
  cancel();
  h.probeSent();
  await sleep(40);
  h.answered();
  h.probeSent();
  await sleep(40);
  assert.equal(a, 1);
  assert.equal(b, 0);
  h.stop();
});

test('a guarded pool refuses at once while suspect, without touching the network', async () => {
  const h = new DbHealth({ suspectAfterMs: 1 });
  h.markSuspect();
  // Port 9 on a TEST-NET address would hang a real connect: the guard must answer first.
  const pool = createPool({
    url: 'postgres://u:p@192.0.2.1:9/db',
    health: h,
    connectTimeoutMs: 5000,
  });
  const started = Date.now();
  await assert.rejects(pool.query('SELECT 1'), (e) => e instanceof DatabaseUnresponsiveError);
  await assert.rejects(pool.connect(), (e) => e instanceof DatabaseUnresponsiveError);
  assert.ok(Date.now() - started < 1000);
  await pool.end();
  h.stop();
});

test('the limiter runs at most max tasks, queues a bounded number and refuses the rest', async () => {
  const l = new Limiter(2, 1);
  let running = 0;
  let peak = 0;
  const release: (() => void)[] = [];
  const task = () =>
    l.run(async () => {
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((r) => release.push(r));
      running--;
    });
  const a = task();
  const b = task();
  const c = task();
  await assert.rejects(task(), (e) => e instanceof LimiterFullError);
  await sleep(5);
  assert.equal(l.active, 2);
  assert.equal(l.queued, 1);
  while (release.length) {
    release.shift()!();
    await sleep(5);
  }
  await Promise.all([a, b, c]);
  assert.equal(peak, 2);
  assert.equal(l.active, 0);
});
