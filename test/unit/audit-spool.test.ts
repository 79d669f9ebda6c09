/**
 * The durable spool and strict mode's journal, on a real file system:
 * group-committed appends in order, segment rotation, a torn last line
 * ignored and a damaged line reported, segments sealed on reopen, intent
 * segments deleted once every request in them completed, orphans kept for
 * the next process, and the directory lock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Spool } from '../../proxy/audit/spool.js';
import { IntentJournal } from '../../proxy/audit/intents.js';
import { lockSpoolDir, defaultSpoolDir } from '../../proxy/audit/spool-dir.js';
import type { AuditEvent } from '../../proxy/audit/event.js';

const dir = () => mkdtempSync(join(tmpdir(), 'kg-spool-'));

test('concurrent appends are all durable, in order, and counted', async () => {
  const d = dir();
  const s = await Spool.open(d);
  assert.ok(s.isEmpty);
  const writes = Array.from({ length: 200 }, (_, i) => s.append(JSON.stringify({ i }) + '\n'));
  assert.equal(s.isEmpty, false, 'in flight is not empty');
  const seqs = await Promise.all(writes);
  assert.equal(new Set(seqs).size, 1);
  await s.seal();
  const [seg] = s.list();
  const { records, bad } = await s.read(seg!);
  assert.deepEqual(
    records,
    Array.from({ length: 200 }, (_, i) => ({ i })),
  );
  assert.equal(bad.length, 0);
  assert.equal(s.bytes, seg!.bytes);
  await s.remove(seg!.seq);
  assert.ok(s.isEmpty);
  assert.deepEqual(readdirSync(d), []);
});

test('segments rotate at their size; reopening seals what is there', async () => {
  const d = dir();
  const s = await Spool.open(d, 100);
  for (let i = 0; i < 10; i++) await s.append(JSON.stringify({ i, pad: 'x'.repeat(40) }) + '\n');
  assert.ok(s.list().length >= 4, `segments: ${s.list().length}`);
  const total = s.bytes;
  await s.close();
  const again = await Spool.open(d, 100);
  assert.equal(again.bytes, total);
  assert.equal(again.activeSeq, undefined);
  const before = again.list().map((x) => x.seq);
  const seq = await again.append('{"new":true}\n');
  assert.ok(seq > Math.max(...before), 'a reopened spool never appends to an old segment');
  const all: unknown[] = [];
  await again.seal();
  for (const seg of again.list()) all.push(...(await again.read(seg)).records);
  assert.equal(all.length, 11);
  assert.deepEqual(all.at(-1), { new: true });
});

test('a torn last line is ignored; a damaged line is reported', async () => {
  const d = dir();
  const s = await Spool.open(d);
  await s.append('{"a":1}\n');
  await s.seal();
  const seg = s.list()[0]!;
  appendFileSync(seg.path, 'garbage-not-json\n{"b":2}\n{"torn":');
  const again = await Spool.open(d);
  const { records, bad } = await again.read(again.list()[0]!);
  assert.deepEqual(records, [{ a: 1 }, { b: 2 }]);
  assert.deepEqual(bad, ['garbage-not-json']);
});

function intent(id = randomUUID()): AuditEvent {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: id,
    stage: 'RequestReceived',
    requestURI: '/api/v1/pods',
    verb: 'list',
    user: { username: 'u' },
    requestReceivedTimestamp: '2030-01-01T00:00:00.000000Z',
    stageTimestamp: '2030-01-01T00:00:00.000000Z',
    source: 'kube',
    cluster: 'c',
    replica: 'r',
    decision: 'allow',
    reason: '',
    durationMs: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
}

test('intents: sealed segments go once every request in them is done', async () => {
  const d = dir();
  const j = await IntentJournal.open(d, 600);
  const ids = Array.from({ length: 12 }, () => randomUUID());
  for (const id of ids) await j.write(intent(id));
  assert.equal(j.inFlight, 12);
  const segments = () => readdirSync(d).filter((n) => n.endsWith('.jsonl')).length;
  assert.ok(segments() > 2);
  for (const id of ids.slice(0, 11)) j.done(id);
  // Removal is asynchronous (unlink + directory fsync each): wait for it, boundedly.
  for (let i = 0; i < 100 && segments() > 1; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(segments(), 1, 'only the active segment, with the last pending intent, remains');
  j.done(ids[11]!);
  await j.close();
  assert.equal(segments(), 0);
});

test('intents: a completion that overtakes its own write still releases it', async () => {
  const d = dir();
  const j = await IntentJournal.open(d);
  const e = intent();
  const w = j.write(e);
  j.done(e.auditID);
  await w;
  assert.equal(j.inFlight, 0);
  await j.close();
  assert.equal(readdirSync(d).filter((n) => n.endsWith('.jsonl')).length, 0);
});

test('intents: a process that stops with requests in flight leaves orphans for the next', async () => {
  const d = dir();
  const j = await IntentJournal.open(d);
  const a = intent();
  const b = intent();
  await j.write(a);
  await j.write(b);
  j.done(a.auditID);
  await j.close();
  const next = await IntentJournal.open(d);
  assert.equal(next.orphans().length, 1);
  const { records } = await next.readOrphan(next.orphans()[0]!);
  assert.deepEqual(
    (records as AuditEvent[]).map((r) => r.auditID),
    [a.auditID, b.auditID],
    'the whole segment; the database decides which are missing',
  );
  await next.removeOrphan(next.orphans()[0]!);
  assert.equal(next.orphans().length, 0);
});

test('the spool directory lock: a live holder refuses, a dead one is taken over', () => {
  const d = dir();
  writeFileSync(join(d, 'lock'), String(process.ppid));
  assert.throws(() => lockSpoolDir(d), /in use by process/);
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  writeFileSync(join(d, 'lock'), dead.stdout.toString());
  const release = lockSpoolDir(d);
  release();
  assert.deepEqual(readdirSync(d), []);
  const a = defaultSpoolDir('postgres://u:secret@db/kg', '0.0.0.0:8443');
  assert.equal(
    a,
    defaultSpoolDir('postgres://u:other@db/kg', '0.0.0.0:8443'),
    'the password is not part of it',
  );
  assert.notEqual(a, defaultSpoolDir('postgres://u:secret@db/kg', '0.0.0.0:9443'));
  assert.ok(!a.includes('secret'));
});
