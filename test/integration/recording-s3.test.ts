/**
 * Recordings in S3-compatible object storage, against a real S3 server
 * (versitygw, test/support/s3.ts) and a real PostgreSQL: one object per
 * session, streamed as a multipart upload (a session past the part size is
 * stored whole, in several parts), encrypted (the raw object holds no
 * plaintext; an altered, truncated or swapped object fails its download
 * clearly), an unreachable bucket refuses `open`, a store lost mid-session
 * marks the recording incomplete, recordings kept in PostgreSQL stay readable,
 * and the retention sweep deletes what expired (rows, chunks and objects)
 * and marks recordings abandoned by a stopped replica incomplete.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { createLogger } from '../../common/log.js';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { PgRecordingStorage } from '../../proxy/recording/pg-storage.js';
import { S3RecordingStorage, s3Client } from '../../proxy/recording/s3-storage.js';
import { RecordingSweeper } from '../../proxy/recording/retention.js';
import type { RecordingMeta } from '../../proxy/recording/storage.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';
import { startS3, type S3Server } from '../support/s3.js';

const log = createLogger({ name: 'test', level: 'silent' });
const masterKey = randomBytes(32);
let pg: PgServer;
let pool: Pool;
let s3: S3Server;
let store: S3RecordingStorage;

function meta(over: Partial<RecordingMeta> = {}): RecordingMeta {
  return {
    auditId: randomUUID(),
    kind: 'exec',
    cluster: 'dev',
    namespace: 'default',
    pod: 'shell-0',
    container: 'app',
    command: ['sh'],
    user: 'dora',
    userKind: 'user',
    groups: ['dev'],
    mode: 'required',
    policy: '',
    stdin: false,
    replica: 'r1',
    startedAt: new Date(),
    ...over,
  };
}

const ended = (at = new Date()) =>
  ({ status: 'complete', reason: '', bytesIn: 1, bytesOut: 2, endedAt: at }) as const;

async function download(id: string, st: { chunks(id: string): AsyncIterable<Buffer> } = store) {
  const out: Buffer[] = [];
  for await (const c of st.chunks(id)) out.push(c);
  return Buffer.concat(out);
}

async function row(id: string) {
  const { rows } = await pool.query<{
    storage: string;
    status: string;
    reason: string;
    object_key: string | null;
    data_key: string | null;
  }>('SELECT storage, status, reason, object_key, data_key FROM recordings WHERE id = $1', [id]);
  return rows[0];
}

async function rawObject(key: string): Promise<Buffer> {
  const got = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

async function objectExists(key: string): Promise<boolean> {
  return s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key })).then(
    () => true,
    (err: { name?: string }) => {
      if (err.name === 'NotFound' || err.name === 'NoSuchKey') return false;
      throw err;
    },
  );
}

/** A recording with `parts` written and closed; returns its id and object key. */
async function record(parts: Buffer[], m = meta(), endAt = new Date()) {
  const w = await store.open(m, Buffer.from('{"version":2}\n'));
  let seq = 0;
  for (const p of parts) await w.append(++seq, p);
  await w.close(ended(endAt));
  const r = await row(w.id);
  return { id: w.id, key: r!.object_key! };
}

describe('recordings in S3-compatible storage', { timeout: 300_000 }, () => {
  before(async () => {
    pg = await startPostgres();
    pool = createPool({ url: await createDatabase(pg) });
    await migrate(pool);
    s3 = await startS3();
    store = new S3RecordingStorage({
      pool,
      client: s3Client({
        endpoint: s3.endpoint,
        bucket: s3.bucket,
        region: 'us-east-1',
        prefix: 'rec/prod',
        accessKeyId: s3.accessKeyId,
        secretAccessKey: s3.secretAccessKey,
        forcePathStyle: true,
      }),
      settings: {
        endpoint: s3.endpoint,
        bucket: s3.bucket,
        region: 'us-east-1',
        prefix: 'rec/prod',
        forcePathStyle: true,
      },
      masterKey,
      reachTimeoutMs: 3000,
    });
  });
  after(async () => {
    await pool?.end();
    await s3?.close();
    await pg?.stop();
  });

  test('one object per session, under <prefix>/<yyyy>/<mm>/<dd>/<id>.cast.enc; downloaded as written', async () => {
    const startedAt = new Date('2026-03-04T05:06:07Z');
    const lines = ['[0.1, "o", "hello"]\n', '[0.2, "o", "ünïcödé €"]\n'].map((l) => Buffer.from(l));
    const { id, key } = await record(lines, meta({ startedAt }));
    assert.equal(key, `rec/prod/2026/03/04/${id}.cast.enc`);
    const r = await row(id);
    assert.equal(r!.storage, 's3');
    assert.equal(r!.status, 'complete');
    assert.match(r!.data_key!, /^v1:/, 'the data key is sealed by the master key');
    assert.equal((await download(id)).toString(), '{"version":2}\n' + lines.map(String).join(''));
    // Nothing of it lands in recording_chunks.
    const { rows } = await pool.query('SELECT 1 FROM recording_chunks WHERE recording_id = $1', [
      id,
    ]);
    assert.equal(rows.length, 0);
  });

  test('the object in the store is ciphertext: no plaintext, not even the header', async () => {
    const secret = 'PLAINTEXT-MARKER-hunter2';
    const { id, key } = await record([Buffer.from(`[0.1, "o", "${secret}"]\n`.repeat(50))]);
    const raw = await rawObject(key);
    assert.ok(raw.length > 50 * secret.length, 'the object holds the session');
    for (const needle of [secret, 'hunter2', '"version"', id])
      assert.equal(raw.includes(Buffer.from(needle)), false, `"${needle}" is not in the object`);
    // …and the file the server keeps on its disk is the same ciphertext.
    const onDisk = readFileSync(join(s3.dataDir, s3.bucket, key));
    assert.ok(onDisk.equals(raw));
    assert.ok((await download(id)).includes(Buffer.from(secret)));
  });

  test('a session larger than the part size is uploaded in parts, and downloads whole', async () => {
    // 12 MiB of output in 64 KiB chunks, as the recorder writes them: three 5 MiB parts.
    const chunk = (i: number) =>
      Buffer.from(`[${i}.0, "o", "${randomBytes(24_000).toString('base64')}"]\n`);
    const parts = Array.from({ length: 400 }, (_, i) => chunk(i));
    const total = parts.reduce((n, p) => n + p.length, 0);
    assert.ok(total > 12 * 1024 * 1024);
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const { id, key } = await record(parts);
    const ms = Date.now() - started;
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.match(String(head.ETag), /-\d+"?$/, `a multipart object (ETag ${head.ETag})`);
    const got = await download(id);
    assert.equal(got.length, 14 + total);
    assert.ok(got.subarray(14).equals(Buffer.concat(parts)), 'byte for byte');
    process.stderr.write(
      `# ${(total / 1048576).toFixed(1)} MiB recorded into S3 in ${ms} ms; RSS grew ${(rssGrowth / 1048576).toFixed(1)} MiB\n`,
    );
  });

  test('an altered, truncated or swapped object fails its download with a clear error', async () => {
    const body = [Buffer.from('[0.1, "o", "first"]\n'), Buffer.from('[0.2, "o", "second"]\n')];
    const a = await record(body);
    const b = await record(body);
    const file = join(s3.dataDir, s3.bucket, a.key);
    const original = readFileSync(file);
    const integrity = /recording [0-9a-f-]+ failed its integrity check/;
    try {
      // One bit flipped in the middle of the ciphertext.
      const flipped = Buffer.from(original);
      flipped[Math.floor(flipped.length / 2)]! ^= 1;
      writeFileSync(file, flipped);
      await assert.rejects(download(a.id), integrity);
      // Cut short after the first segments: the final one is missing.
      writeFileSync(file, original.subarray(0, original.length - 30));
      await assert.rejects(download(a.id), /ends before its final segment/);
      // Extra bytes after the final segment.
      writeFileSync(file, Buffer.concat([original, Buffer.from('tail')]));
      await assert.rejects(download(a.id), /bytes after its final segment/);
      // Another recording's object (same content, another key): refused.
      writeFileSync(file, readFileSync(join(s3.dataDir, s3.bucket, b.key)));
      await assert.rejects(download(a.id), integrity);
      // A segment claiming a huge length is refused before anything is read for it.
      const huge = Buffer.from(original);
      huge.writeUInt32BE(0x7fffffff, 8);
      writeFileSync(file, huge);
      await assert.rejects(download(a.id), /claims 2147483647 bytes/);
    } finally {
      writeFileSync(file, original);
    }
    assert.equal((await download(a.id)).toString(), '{"version":2}\n' + body.join(''));
    // The data key opens only with its own master key.
    const other = new S3RecordingStorage({
      pool,
      client: s3.client,
      settings: { bucket: s3.bucket, region: 'us-east-1', prefix: '', forcePathStyle: true },
      masterKey: randomBytes(32),
    });
    await assert.rejects(download(a.id, other), /master key does not match/);
  });

  test('the bucket unreachable: open rejects naming why; back: open works again', async () => {
    await s3.stop();
    try {
      await assert.rejects(
        store.open(meta(), Buffer.from('{}\n')),
        /the S3 bucket "kg-recordings" at http:\/\/127\.0\.0\.1:\d+ cannot be reached/,
      );
    } finally {
      await s3.start();
    }
    const { id } = await record([Buffer.from('[0.1, "o", "back"]\n')]);
    assert.match((await download(id)).toString(), /back/);
  });

  test('a missing bucket refuses open too', async () => {
    const missing = new S3RecordingStorage({
      pool,
      client: s3.client,
      settings: { bucket: 'no-such-bucket', region: 'us-east-1', prefix: '', forcePathStyle: true },
      masterKey,
    });
    await assert.rejects(
      missing.open(meta(), Buffer.from('{}\n')),
      /the S3 bucket "no-such-bucket" cannot be reached: .*404/,
    );
  });

  test('the store lost mid-session: append rejects once a part cannot be sent, and the recording is incomplete', async () => {
    const w = await store.open(meta(), Buffer.from('{"version":2}\n'));
    await w.append(1, Buffer.from('[0.1, "o", "before"]\n'));
    await s3.stop();
    try {
      const big = Buffer.alloc(256 * 1024, 'x');
      let failed: Error | undefined;
      for (let seq = 2; seq < 200 && !failed; seq++)
        await w.append(seq, big).catch((err: Error) => (failed = err));
      assert.ok(failed, 'append rejected');
      assert.match(failed.message, /the object store failed/);
      await w.close(ended());
    } finally {
      await s3.start();
    }
    const r = await row(w.id);
    assert.equal(r!.status, 'incomplete');
    assert.match(r!.reason, /the object store failed.*the object was not stored/);
    await assert.rejects(download(w.id), /is not in the S3 bucket.*incomplete/);
  });

  test('a short session whose store went away before its end: incomplete, not complete', async () => {
    const w = await store.open(meta(), Buffer.from('{"version":2}\n'));
    await w.append(1, Buffer.from('[0.1, "o", "short"]\n'));
    await s3.stop();
    try {
      await w.close(ended());
    } finally {
      await s3.start();
    }
    assert.equal((await row(w.id))!.status, 'incomplete');
  });

  test('recordings kept in PostgreSQL stay readable through the S3 store; still-open S3 ones say so', async () => {
    const pgStore = new PgRecordingStorage(pool);
    const w = await pgStore.open(meta(), Buffer.from('{"version":2}\n'));
    await w.append(1, Buffer.from('[0.1, "o", "in postgres"]\n'));
    await w.close(ended());
    assert.equal((await download(w.id)).toString(), '{"version":2}\n[0.1, "o", "in postgres"]\n');
    const open = await store.open(meta(), Buffer.from('{}\n'));
    await assert.rejects(download(open.id), /still being written/);
    await open.close(ended());
  });

  test('retention: expired recordings go (rows, chunks, objects), newer ones stay; abandoned ones are marked incomplete', async () => {
    const now = Date.now();
    const day = 86_400_000;
    const old = new Date(now - 40 * day);
    const pgStore = new PgRecordingStorage(pool);
    const oldS3 = await record([Buffer.from('[0.1, "o", "old"]\n')], meta({ startedAt: old }), old);
    const newS3 = await record([Buffer.from('[0.1, "o", "new"]\n')]);
    const w = await pgStore.open(meta({ startedAt: old }), Buffer.from('{}\n'));
    await w.append(1, Buffer.from('[0.1, "o", "old pg"]\n'));
    await w.close(ended(old));
    const oldUnrecorded = await pgStore.unrecorded(meta({ startedAt: old }), 'policy off');
    // Left open by a replica that is gone, and one open on a live replica.
    const abandoned = await store.open(
      meta({ replica: 'gone-replica', startedAt: new Date(now - 600_000) }),
      Buffer.from('{}\n'),
    );
    await pool.query(
      `INSERT INTO replicas (id, peer_address, started_at) VALUES ('live', 'x', $1)`,
      [new Date(now - 3_600_000)],
    );
    const live = await pgStore.open(
      meta({ replica: 'live', startedAt: new Date(now - 600_000) }),
      Buffer.from('{}\n'),
    );
    assert.ok(await objectExists(oldS3.key));

    const deleted: string[][] = [];
    const sweeper = (tag: string) =>
      new RecordingSweeper(pool, {
        retentionMs: 30 * day,
        replicaStaleMs: 5000,
        batch: 2,
        deleteObjects: async (keys) => {
          deleted.push(keys);
          await store.deleteObjects(keys);
        },
        log: log.child({ tag }),
      });
    // Two replicas sweep at once: one acts, the other finds the lock held.
    const [a, b] = await Promise.all([sweeper('a').run(now), sweeper('b').run(now)]);
    assert.equal(a.expired + b.expired, 3, JSON.stringify({ a, b }));
    assert.equal(a.objects + b.objects, 1);
    assert.equal(a.abandoned + b.abandoned, 1);
    assert.deepEqual(deleted, [[oldS3.key]]);

    const ids = (await pool.query<{ id: string }>('SELECT id FROM recordings')).rows.map(
      (r) => r.id,
    );
    for (const gone of [oldS3.id, w.id, oldUnrecorded]) assert.ok(!ids.includes(gone), gone);
    assert.ok(ids.includes(newS3.id));
    assert.equal(await objectExists(oldS3.key), false, 'the expired object is deleted');
    assert.equal(await objectExists(newS3.key), true, 'the newer object is kept');
    const chunks = await pool.query('SELECT 1 FROM recording_chunks WHERE recording_id = $1', [
      w.id,
    ]);
    assert.equal(chunks.rows.length, 0, 'the chunks went with their row');
    const ab = await row(abandoned.id);
    assert.equal(ab!.status, 'incomplete');
    assert.match(ab!.reason, /the replica recording it \(gone-replica\) stopped/);
    assert.equal((await row(live.id))!.status, 'recording', 'a live replica keeps its recording');
    // The sweep is in the audit log.
    const { rows: events } = await pool.query<{ verb: string }>(
      `SELECT verb FROM audit_events
        WHERE resource = 'recordings' AND username = 'kubegate:recording-retention' ORDER BY verb`,
    );
    assert.deepEqual(
      events.map((e) => e.verb),
      ['delete', 'delete', 'update'],
      JSON.stringify(events),
    );
    // A second sweep finds nothing more.
    assert.deepEqual(await sweeper('c').run(now), { expired: 0, objects: 0, abandoned: 0 });
    await live.close(ended());
    await abandoned.close(ended()).catch(() => undefined);
  });

  test('retention 0 keeps recordings; a store that cannot delete keeps the rows for the next sweep', async () => {
    const old = new Date(Date.now() - 400 * 86_400_000);
    const r = await record([Buffer.from('[0.1, "o", "kept"]\n')], meta({ startedAt: old }), old);
    const keep = new RecordingSweeper(pool, { retentionMs: 0, replicaStaleMs: 5000, log });
    assert.equal((await keep.run()).expired, 0);
    const failing = new RecordingSweeper(pool, {
      retentionMs: 86_400_000,
      replicaStaleMs: 5000,
      deleteObjects: () => Promise.reject(new Error('store down')),
      log,
    });
    await assert.rejects(failing.run(), /store down/);
    assert.ok(await row(r.id), 'the row is kept when its object could not be deleted');
    assert.ok(await objectExists(r.key));
    const ok = new RecordingSweeper(pool, {
      retentionMs: 86_400_000,
      replicaStaleMs: 5000,
      deleteObjects: (keys) => store.deleteObjects(keys),
      log,
    });
    assert.equal((await ok.run()).expired, 1);
    assert.equal(await objectExists(r.key), false);
  });
});
