/**
 * Recordings in an object store, attacked: nothing a user sends reaches an
 * object key (hostile namespaces, pods, containers and commands still give
 * `<prefix>/<yyyy>/<mm>/<dd>/<uuid>.cast.enc`); key parts that are not a
 * recording id or a clean prefix are refused; bad settings are refused with
 * a clear message that never echoes a secret; wrong credentials refuse the
 * session without the secret in the reason. Against a real S3 server
 * (versitygw) and a real PostgreSQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { createPool, type Pool } from '../../proxy/db/pool.js';
import { migrate } from '../../proxy/db/migrate.js';
import { loadProxyConfig, recordingS3Settings } from '../../proxy/config.js';
import { checkBucket, checkPrefix, objectKey } from '../../proxy/recording/object-key.js';
import { S3RecordingStorage, s3Client, type S3Settings } from '../../proxy/recording/s3-storage.js';
import type { RecordingMeta } from '../../proxy/recording/storage.js';
import { createDatabase, startPostgres, type PgServer } from '../support/postgres.js';
import { startS3, type S3Server } from '../support/s3.js';

let pg: PgServer;
let pool: Pool;
let s3: S3Server;

const baseEnv = {
  DATABASE_URL: 'postgres://x@127.0.0.1/x',
  KUBEGATE_MASTER_KEY: randomBytes(32).toString('base64'),
  KUBEGATE_PUBLIC_URL: 'https://kubegate.example',
  KUBEGATE_TUNNEL_ADDRESS: 'kubegate.example:8444',
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe('recording objects under attack', { timeout: 120_000 }, () => {
  before(async () => {
    pg = await startPostgres();
    pool = createPool({ url: await createDatabase(pg) });
    await migrate(pool);
    s3 = await startS3();
  });
  after(async () => {
    await pool?.end();
    await s3?.close();
    await pg?.stop();
  });

  const settings = (over: Partial<S3Settings> = {}): S3Settings => ({
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    region: 'us-east-1',
    prefix: 'sec',
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    forcePathStyle: true,
    ...over,
  });

  test('hostile session metadata never reaches the object key', async () => {
    const store = new S3RecordingStorage({
      pool,
      client: s3Client(settings()),
      settings: settings(),
      masterKey: randomBytes(32),
    });
    const hostile = [
      '../../etc/passwd',
      '..%2F..%2Fx',
      'a/../../b',
      '/abs',
      'x\u0000y',
      'ü'.repeat(300),
    ];
    const ids: string[] = [];
    for (const h of hostile) {
      const meta: RecordingMeta = {
        auditId: h,
        kind: 'exec',
        cluster: h,
        namespace: h,
        pod: h,
        container: h,
        command: [h, `--out=${h}`],
        user: h,
        userKind: 'user',
        groups: [h],
        mode: 'required',
        policy: '',
        stdin: false,
        replica: 'r1',
        startedAt: new Date(),
      };
      const w = await store.open(meta, Buffer.from('{}\n'));
      await w.append(1, Buffer.from(`[0.1, "o", ${JSON.stringify(h)}]\n`));
      await w.close({
        status: 'complete',
        reason: '',
        bytesIn: 0,
        bytesOut: 0,
        endedAt: new Date(),
      });
      ids.push(w.id);
    }
    const keys = files(join(s3.dataDir, s3.bucket))
      .map((p) => relative(join(s3.dataDir, s3.bucket), p))
      .filter((k) => !k.startsWith('.'));
    assert.equal(keys.length, hostile.length, keys.join('\n'));
    for (const k of keys)
      assert.match(
        k,
        /^sec\/\d{4}\/\d{2}\/\d{2}\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.cast\.enc$/,
      );
    assert.deepEqual(
      keys.map((k) => /([0-9a-f-]{36})\.cast\.enc$/.exec(k)![1]).sort(),
      [...ids].sort(),
    );
    // Nothing was written outside the bucket's directory (but the server's own lock files).
    assert.deepEqual(
      readdirSync(s3.dataDir).filter((n) => !n.startsWith('.vgw')),
      [s3.bucket],
    );
    // A NUL (which PostgreSQL text cannot hold) does not make a session unrecordable.
    const { rows } = await pool.query<{ command: string[] }>(
      'SELECT command FROM recordings WHERE id = $1',
      [ids[hostile.indexOf('x\u0000y')]],
    );
    assert.deepEqual(rows[0]!.command, ['x\uFFFDy', '--out=x\uFFFDy']);
  });

  test('only a recording id makes a key; only clean prefixes and bucket names are taken', () => {
    const at = new Date('2026-01-02T00:00:00Z');
    for (const id of [
      '../../x',
      '',
      `${randomUUID()}/../x`,
      randomUUID().toUpperCase(),
      'a'.repeat(36),
    ])
      assert.throws(() => objectKey('p', at, id), /a recording id is a UUID/);
    for (const p of [
      '/abs',
      'a/',
      'a//b',
      '..',
      'a/../b',
      './a',
      'a b',
      'a\u0000',
      'ü',
      'a\\b',
      'x'.repeat(300),
    ])
      assert.ok(checkPrefix(p), `prefix ${JSON.stringify(p)} is refused`);
    for (const p of ['', 'recordings', 'team-a/prod.eu_1'])
      assert.equal(checkPrefix(p), undefined, `prefix ${p} is taken`);
    for (const b of ['', 'ab', 'UPPER', '-x-', 'a..b', 'a/b', 'a_b', 'x'.repeat(64)])
      assert.ok(checkBucket(b), `bucket ${JSON.stringify(b)} is refused`);
    assert.throws(
      () => loadProxyConfig({ ...baseEnv, KUBEGATE_RECORDING_S3_PREFIX: '../up' }),
      /KUBEGATE_RECORDING_S3_PREFIX \(recordingS3Prefix\) must be path segments/,
    );
  });

  test('bad settings are refused clearly, and never echo a secret', () => {
    const secret = `s3cr3t-${randomBytes(8).toString('hex')}`;
    const cases: [NodeJS.ProcessEnv, RegExp][] = [
      [{ KUBEGATE_RECORDING_STORAGE: 'dynamo' }, /must be "postgres" or "s3", got "dynamo"/],
      [{ KUBEGATE_RECORDING_RETENTION: '5m' }, /must be at least 1h, or 0/],
      [{ KUBEGATE_RECORDING_RETENTION: 'forever' }, /must be a duration/],
      [{ KUBEGATE_RECORDING_S3_SSE: 'rot13' }, /must be "AES256", "aws:kms" or empty/],
      [{ KUBEGATE_RECORDING_S3_ENDPOINT: 'not a url' }, /must be an absolute URL/],
      [{ KUBEGATE_RECORDING_STORAGE: 's3' }, /KUBEGATE_RECORDING_S3_BUCKET .* is required/],
      [
        {
          KUBEGATE_RECORDING_STORAGE: 's3',
          KUBEGATE_RECORDING_S3_BUCKET: 'kg-rec',
          KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY: secret,
        },
        /ACCESS_KEY_ID and KUBEGATE_RECORDING_S3_SECRET_ACCESS_KEY go together/,
      ],
    ];
    for (const [env, message] of cases) {
      let err: Error | undefined;
      try {
        recordingS3Settings(loadProxyConfig({ ...baseEnv, ...env }));
      } catch (e) {
        err = e as Error;
      }
      assert.ok(err, `refused: ${JSON.stringify(env)}`);
      assert.match(err.message, message);
      assert.equal(err.message.includes(secret), false, 'the secret is not in the message');
    }
    assert.equal(recordingS3Settings(loadProxyConfig(baseEnv)), undefined, 'postgres by default');
  });

  test('wrong credentials refuse the recording; the reason names the failure, not the secret', async () => {
    const wrong = `wrong-${randomBytes(12).toString('hex')}`;
    const s = settings({ secretAccessKey: wrong });
    const store = new S3RecordingStorage({
      pool,
      client: s3Client(s),
      settings: s,
      masterKey: randomBytes(32),
    });
    const err = await store
      .open(
        {
          auditId: randomUUID(),
          kind: 'exec',
          cluster: 'dev',
          namespace: 'default',
          pod: 'p',
          container: '',
          command: [],
          user: 'mallory',
          userKind: 'user',
          groups: [],
          mode: 'required',
          policy: '',
          stdin: false,
          replica: 'r1',
          startedAt: new Date(),
        },
        Buffer.from('{}\n'),
      )
      .then(
        () => undefined,
        (e: Error) => e,
      );
    assert.ok(err, 'open was refused');
    assert.match(err.message, /cannot be reached: .*HTTP 403/);
    // An endpoint with a password in its URL: the reason names the origin only.
    const withUserinfo = settings({ endpoint: s3.endpoint.replace('//', `//user:${wrong}@`) });
    const named = await new S3RecordingStorage({
      pool,
      client: s3Client(settings()),
      settings: { ...withUserinfo, bucket: 'no-such-bucket' },
      masterKey: randomBytes(32),
    })
      .reachable()
      .then(
        () => '',
        (e: Error) => e.message,
      );
    assert.match(named, new RegExp(`at ${s3.endpoint.replaceAll('.', '\\.')} cannot be reached`));
    assert.equal(named.includes(wrong), false);
    assert.equal(err.message.includes(wrong), false);
    assert.equal(err.message.includes(s3.secretAccessKey), false);
  });
});
