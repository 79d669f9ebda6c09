/**
 * Session recording into S3-compatible object storage, end to end: a proxy
 * with KUBEGATE_RECORDING_STORAGE=s3 against a real S3 server (versitygw,
 * test/support/s3.ts), real kubectl into a Pod on a kwok node. An exec -i
 * whose output is larger than a multipart part is recorded into one object
 * and downloaded through REST byte for byte; the object in the bucket is
 * ciphertext; an altered object's download fails with a clear error. With
 * the S3 server stopped: a required policy refuses the exec, naming the
 * reason; best effort runs it and its audit event says unrecorded; the
 * server back, new sessions are recorded again. The proxy never logs the S3
 * credentials.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { kubectl } from '../support/kubectl.js';
import { until } from '../support/http.js';
import {
  castEvents,
  completeEvent,
  sameText,
  startRecordingStack,
  type RecordingStack,
} from '../support/recordings.js';
import { startS3, type S3Server } from '../support/s3.js';

const NS = 'rec-s3';
const transports = [
  { name: 'WebSocket', env: {} },
  { name: 'SPDY', env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' } },
];

let s3: S3Server;
let f: RecordingStack;

async function objectKeyOf(id: string): Promise<string> {
  const [row] = await f.stack.sql<{ storage: string; object_key: string }>(
    'SELECT storage, object_key FROM recordings WHERE id = $1',
    [id],
  );
  assert.equal(row?.storage, 's3');
  return row.object_key;
}

describe('session recording into S3-compatible storage', { timeout: 600_000 }, () => {
  before(async () => {
    s3 = await startS3();
    f = await startRecordingStack(NS, s3.env);
  });
  after(async () => {
    await f?.stack.stop();
    await s3?.close();
  });

  test('exec -i with more output than a multipart part: one object in the bucket, downloaded byte for byte', async () => {
    const marker = 'big-s3';
    const input = Array.from({ length: 500 }, (_, i) => `line ${i} ünïcödé €`).join('\n') + '\n';
    const r = await kubectl(
      [
        '-n',
        NS,
        'exec',
        '-i',
        f.pod,
        '--',
        'sh',
        '-c',
        // The typed lines back, then about 8 MiB of base64 (random, so nothing compresses it).
        `while IFS= read -r l; do printf 'got:%s\\n' "$l"; done; head -c 6000000 /dev/urandom | base64; echo ${marker}-end`,
      ],
      { ...f.dora, input, timeoutMs: 120_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.length > 8_000_000, `${r.stdout.length} bytes of output`);
    const rec = await f.recordingOf(marker);
    assert.equal(rec.status, 'complete', rec.reason);
    const cast = await f.api(f.tokens.auditor, `/api/v1/recordings/${rec.id}/cast`);
    assert.equal(cast.status, 200, cast.body.slice(0, 500));
    sameText(castEvents(cast.body).o, r.stdout, 'the output replays byte for byte, in order');
    const key = await objectKeyOf(rec.id);
    assert.match(key, new RegExp(`^recordings/\\d{4}/\\d{2}/\\d{2}/${rec.id}\\.cast\\.enc$`));
    const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
    assert.match(String(head.ETag), /-\d+"?$/, `uploaded in parts (ETag ${head.ETag})`);
    // What the bucket holds is ciphertext.
    const raw = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const bytes = Buffer.from(await raw.Body!.transformToByteArray());
    for (const needle of ['got:line 1', `${marker}-end`, '"version"'])
      assert.equal(bytes.includes(Buffer.from(needle)), false, `"${needle}" is not in the object`);
    // The exec's audit event names its recording.
    const audit = await completeEvent(f.stack, rec.auditId);
    assert.equal(audit.annotations?.['kubegate.dev/recording'], rec.id);
  });

  test('an altered object: the download fails with a clear error, never garbage', async () => {
    const r = await kubectl(['-n', NS, 'exec', f.pod, '--', 'echo', 'tamper-me'], {
      ...f.dora,
      timeoutMs: 30_000,
    });
    assert.equal(r.code, 0, r.stderr);
    const rec = await f.recordingOf('tamper-me');
    const file = join(s3.dataDir, s3.bucket, await objectKeyOf(rec.id));
    const original = readFileSync(file);
    const altered = Buffer.from(original);
    altered[20]! ^= 0x40;
    writeFileSync(file, altered);
    try {
      const bad = await f.api(f.tokens.auditor, `/api/v1/recordings/${rec.id}/cast`);
      assert.equal(bad.status, 500, bad.body);
      assert.match(bad.body, /failed its integrity check/);
      assert.doesNotMatch(bad.body, /tamper-me/);
    } finally {
      writeFileSync(file, original);
    }
    const good = await f.api(f.tokens.auditor, `/api/v1/recordings/${rec.id}/cast`);
    assert.equal(castEvents(good.body).o, 'tamper-me\n');
  });

  test('S3 server stopped: required refuses the exec, naming why; best effort runs it unrecorded; back: recorded again', async () => {
    const required = { name: 's3-required', namespaces: [NS], mode: 'required' };
    const create = () => f.api(f.tokens.admin, '/api/v1/recording-policies', 'POST', required);
    assert.equal((await create()).status, 201);
    await s3.stop();
    try {
      for (const tr of transports) {
        const r = await kubectl(['-n', NS, 'exec', f.pod, '--', 'echo', 's3-refused-run'], {
          ...f.dora,
          env: tr.env,
          timeoutMs: 30_000,
        });
        assert.notEqual(r.code, 0, `${tr.name}: the exec must not run`);
        assert.doesNotMatch(r.stdout, /s3-refused-run/);
        assert.match(
          r.stderr,
          /session recording is required .*the recording could not be started: the recording store failed \(the S3 bucket "kg-recordings" at http:\/\/127\.0\.0\.1:\d+ cannot be reached/,
          `${tr.name}: ${r.stderr}`,
        );
      }
      let refused: { event: { annotations: Record<string, string> }; code: number }[] = [];
      await until(
        async () => {
          refused = await f.stack.sql(
            `SELECT event, code FROM audit_events WHERE subresource = 'exec' AND stage = 'ResponseComplete'
               AND event->'annotations'->>'kubegate.dev/command' LIKE '%s3-refused-run%'`,
          );
          return refused.length >= transports.length;
        },
        10_000,
        'the refused sessions in the audit log',
      );
      for (const row of refused) {
        assert.equal(row.code, 503);
        assert.equal(row.event.annotations['kubegate.dev/recording'], 'unrecorded');
        assert.match(row.event.annotations['kubegate.dev/recording-reason']!, /cannot be reached/);
      }
      // Best effort: it runs, and the audit event says unrecorded, with the reason.
      assert.equal(
        (await f.api(f.tokens.admin, '/api/v1/recording-policies/s3-required', 'DELETE')).status,
        204,
      );
      const r = await kubectl(['-n', NS, 'exec', f.pod, '--', 'echo', 's3-best-effort-run'], {
        ...f.dora,
        timeoutMs: 30_000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, 's3-best-effort-run\n');
      const row = await f.recordingOf('s3-best-effort-run');
      assert.equal(row.status, 'unrecorded');
      const audit = await completeEvent(f.stack, row.auditId);
      assert.equal(audit.annotations?.['kubegate.dev/recording'], 'unrecorded');
      assert.match(audit.annotations?.['kubegate.dev/recording-reason'] ?? '', /cannot be reached/);
    } finally {
      await s3.start();
    }
    // The server is back: a required session is recorded again, into the bucket.
    assert.equal((await create()).status, 201);
    const again = await kubectl(['-n', NS, 'exec', f.pod, '--', 'echo', 's3-back-run'], {
      ...f.dora,
      timeoutMs: 30_000,
    });
    assert.equal(again.code, 0, again.stderr);
    const rec = await f.recordingOf('s3-back-run');
    assert.equal(rec.status, 'complete', rec.reason);
    await objectKeyOf(rec.id);
    const cast = await f.api(f.tokens.auditor, `/api/v1/recordings/${rec.id}/cast`);
    assert.equal(castEvents(cast.body).o, 's3-back-run\n');
  });

  test('the S3 credentials are never logged, nor kept in the audit log', async () => {
    // The proxy did talk to the server, and logged its failures above.
    assert.match(s3.output(), /PUT|POST/);
    assert.match(f.stack.proxy.output(), /session recording could not be opened/);
    for (const secret of [s3.secretAccessKey, s3.accessKeyId]) {
      assert.equal(f.stack.proxy.output().includes(secret), false, 'not in the proxy log');
      const [n] = await f.stack.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM audit_events WHERE event::text LIKE '%' || $1 || '%'`,
        [secret],
      );
      assert.equal(n!.n, 0, 'not in the audit log');
    }
  });
});
