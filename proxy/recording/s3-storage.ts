/**
 * Recordings in S3-compatible object storage (KUBEGATE_RECORDING_STORAGE=s3):
 * one object per session, streamed as a multipart upload while the session
 * runs (@aws-sdk/lib-storage), encrypted with a data key of its own
 * (proxy/recording/envelope.ts). The metadata stays in PostgreSQL's
 * `recordings` table, so search, REST and the CLI read it unchanged; the row
 * names the object and holds the sealed data key.
 *
 * Memory per session is bounded: the upload holds at most `queueSize` parts
 * being sent and one being filled (5 MiB each by default), and the stream
 * into it at most `bufferBytes`; past that, `append` waits, so a slow store
 * makes the session's pending output grow until the recorder gives the
 * recording up (best effort) or ends the session (required).
 *
 * Object keys are `<prefix>/<yyyy>/<mm>/<dd>/<id>.cast.enc`
 * (proxy/recording/object-key.ts): the date the session started (UTC) and
 * the recording's id, a UUID made here. Nothing a user sends is in a key.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { KgError } from '../../common/errors.js';
import type { Pool } from '../db/pool.js';
import { query } from '../db/query.js';
import { newDataKey, openDataKey, SegmentOpener, SegmentSealer } from './envelope.js';
import { checkPrefix, objectKey } from './object-key.js';
import { closeRecording, insertRecording, PgRecordingStorage } from './pg-storage.js';
import type { RecordingEnd, RecordingMeta, RecordingStorage, RecordingWriter } from './storage.js';

export interface S3Settings {
  /** The endpoint URL of an S3-compatible service; unset: AWS S3 for `region`. */
  endpoint?: string | undefined;
  bucket: string;
  region: string;
  /** Key prefix (no leading or trailing slash; may be empty). */
  prefix: string;
  /** Static credentials; unset: the AWS SDK's default chain (environment, web identity, instance role…). */
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  forcePathStyle: boolean;
  /** Server-side encryption asked of the store, besides kubegate's own: AES256 or aws:kms. */
  sse?: string | undefined;
  sseKmsKeyId?: string | undefined;
}

export interface S3StorageOptions {
  pool: Pool;
  client: S3Client;
  settings: S3Settings;
  masterKey: Buffer;
  /** Multipart part size (at least 5 MiB, the S3 minimum; default 5 MiB). */
  partBytes?: number;
  /** Parts sent at once (default 2). */
  queueSize?: number;
  /** Bytes the stream into the upload holds before `append` waits (default 1 MiB). */
  bufferBytes?: number;
  /** How long `open` waits to learn whether the bucket answers (default 5 s). */
  reachTimeoutMs?: number;
}

const minPartBytes = 5 * 1024 * 1024;

/** An S3 client for the settings: short connect timeouts, so an unreachable store fails fast. */
export function s3Client(s: S3Settings): S3Client {
  return new S3Client({
    region: s.region,
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    forcePathStyle: s.forcePathStyle,
    ...(s.accessKeyId && s.secretAccessKey
      ? { credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } }
      : {}),
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 3000, requestTimeout: 60_000 },
    // The envelope authenticates every byte; checksums are asked for only where S3 requires them,
    // so S3-compatible stores without the newer checksum headers work too.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The message of an SDK error, never more (no request, no credentials). */
function why(err: unknown): string {
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  const msg = (e.message || e.name || 'unknown error').slice(0, 300);
  return status ? `${msg} (HTTP ${status})` : msg;
}

/** One object being written: the upload reads what `write` puts into its body. */
class ObjectUpload {
  private readonly body: PassThrough;
  private failure: Error | undefined;
  readonly done: Promise<void>;

  constructor(
    client: S3Client,
    params: ConstructorParameters<typeof Upload>[0]['params'],
    o: {
      partBytes: number;
      queueSize: number;
      bufferBytes: number;
    },
  ) {
    this.body = new PassThrough({ highWaterMark: o.bufferBytes });
    this.body.on('error', () => undefined); // destroyed below with the upload's error
    const upload = new Upload({
      client,
      params: { ...params, Body: this.body },
      partSize: o.partBytes,
      queueSize: o.queueSize,
      leavePartsOnError: false, // a failed upload is aborted: no orphan parts
    });
    this.done = upload.done().then(
      () => undefined,
      (err: unknown) => {
        this.failure = new Error(`the object store failed: ${why(err)}`);
        this.body.destroy(this.failure);
        throw this.failure;
      },
    );
    this.done.catch(() => undefined);
  }

  /** Write; resolves once the stream takes more, rejects when the upload failed. */
  async write(parts: Buffer[]): Promise<void> {
    if (this.failure) throw this.failure;
    let room = true;
    for (const p of parts) room = this.body.write(p) && room;
    if (!room)
      try {
        await once(this.body, 'drain');
      } catch {
        // The body ended under the upload: its failure says why.
        await this.done;
        throw new Error('the object store failed: the upload stopped reading');
      }
    if (this.failure) throw this.failure;
  }

  /** The last bytes; resolves when the object is complete in the store. */
  async finish(parts: Buffer[]): Promise<void> {
    if (this.failure) throw this.failure;
    this.body.end(Buffer.concat(parts));
    await this.done;
  }
}

export class S3RecordingStorage implements RecordingStorage {
  private readonly pg: PgRecordingStorage;
  private readonly s: S3Settings;

  constructor(private readonly o: S3StorageOptions) {
    this.pg = new PgRecordingStorage(o.pool);
    this.s = o.settings;
    const problem = checkPrefix(this.s.prefix);
    if (problem) throw new KgError('KG_ERR_CONFIG', `KUBEGATE_RECORDING_S3_PREFIX ${problem}`);
    if ((o.partBytes ?? minPartBytes) < minPartBytes)
      throw new KgError('KG_ERR_CONFIG', `the S3 part size must be at least ${minPartBytes} bytes`);
  }

  /** The bucket, and the endpoint's origin (never a user:password in the URL). */
  private where(): string {
    const at = this.s.endpoint ? URL.parse(this.s.endpoint)?.origin : undefined;
    return `bucket "${this.s.bucket}"${at ? ` at ${at}` : ''}`;
  }

  /** Resolves when the bucket answers; rejects naming why not. */
  async reachable(): Promise<void> {
    try {
      await this.o.client.send(new HeadBucketCommand({ Bucket: this.s.bucket }), {
        abortSignal: AbortSignal.timeout(this.o.reachTimeoutMs ?? 5000),
      });
    } catch (err) {
      throw new KgError(
        'KG_ERR_UNAVAILABLE',
        `the S3 ${this.where()} cannot be reached: ${why(err)}`,
        { cause: err },
      );
    }
  }

  async open(meta: RecordingMeta, header: Buffer): Promise<RecordingWriter> {
    await this.reachable();
    const id = randomUUID();
    const key = objectKey(this.s.prefix, meta.startedAt, id);
    const dataKey = newDataKey(this.o.masterKey, id);
    await insertRecording(this.o.pool, id, meta, 'recording', '', {
      storage: 's3',
      objectKey: key,
      dataKey: dataKey.sealed,
    });
    const sealer = new SegmentSealer(dataKey.key, id);
    const upload = new ObjectUpload(
      this.o.client,
      {
        Bucket: this.s.bucket,
        Key: key,
        ContentType: 'application/octet-stream',
        ...(this.s.sse ? { ServerSideEncryption: this.s.sse as ServerSideEncryption } : {}),
        ...(this.s.sseKmsKeyId ? { SSEKMSKeyId: this.s.sseKmsKeyId } : {}),
      },
      {
        partBytes: this.o.partBytes ?? minPartBytes,
        queueSize: this.o.queueSize ?? 2,
        bufferBytes: this.o.bufferBytes ?? 1024 * 1024,
      },
    );
    await upload.write([sealer.start(), ...sealer.seal(header)]);
    const pool = this.o.pool;
    return {
      id,
      append: (_seq: number, data: Buffer) => upload.write(sealer.seal(data)),
      async close(end: RecordingEnd): Promise<void> {
        let final = end;
        try {
          await upload.finish(sealer.seal(Buffer.alloc(0), true));
        } catch (err) {
          // Nothing of the session is in the store: say so, whatever the session's own end.
          if (end.status === 'complete' || end.status === 'incomplete')
            final = {
              ...end,
              status: 'incomplete',
              reason: `${end.reason ? `${end.reason}; ` : ''}${(err as Error).message}; the object was not stored`,
            };
        }
        await closeRecording(pool, id, final);
      },
    };
  }

  unrecorded(meta: RecordingMeta, reason: string): Promise<string> {
    return this.pg.unrecorded(meta, reason);
  }

  async *chunks(id: string): AsyncIterable<Buffer> {
    const [row] = await query<{
      storage: string;
      status: string;
      object_key: string | null;
      data_key: string | null;
    }>(this.o.pool, `SELECT storage, status, object_key, data_key FROM recordings WHERE id = $1`, [
      id,
    ]);
    if (!row) return;
    // Recordings made while the proxy kept them in PostgreSQL stay readable.
    if (row.storage === 'postgres') {
      yield* this.pg.chunks(id);
      return;
    }
    if (!row.object_key || !row.data_key) return; // unrecorded: nothing was kept
    if (row.status === 'recording')
      throw new KgError(
        'KG_ERR_CONFLICT',
        `recording ${id} is still being written to the object store; it can be downloaded once the session ends`,
      );
    const key = openDataKey(this.o.masterKey, id, row.data_key);
    let body: Readable;
    try {
      const got = await this.o.client.send(
        new GetObjectCommand({ Bucket: this.s.bucket, Key: row.object_key }),
      );
      body = got.Body as Readable;
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey')
        throw new KgError(
          'KG_ERR_NOT_FOUND',
          `the object of recording ${id} is not in the S3 ${this.where()}${row.status === 'incomplete' ? ' (the recording is incomplete: its reason says why)' : ''}`,
        );
      throw new KgError('KG_ERR_UPSTREAM', `the S3 ${this.where()} failed: ${why(err)}`, {
        cause: err,
      });
    }
    const opener = new SegmentOpener(key, id);
    try {
      for await (const bytes of body) for (const p of opener.push(bytes as Buffer)) yield p;
      opener.end();
    } finally {
      body.destroy();
    }
  }

  /** Delete objects (the retention sweep); a key already gone is not an error. */
  async deleteObjects(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += 1000) {
      const batch = keys.slice(i, i + 1000);
      const r = await this.o.client.send(
        new DeleteObjectsCommand({
          Bucket: this.s.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const failed = (r.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
      if (failed.length)
        throw new Error(
          `the S3 ${this.where()} did not delete ${failed.length} object(s): ${failed[0]!.Code ?? ''} ${failed[0]!.Message ?? ''}`.slice(
            0,
            300,
          ),
        );
    }
  }
}
