/**
 * Recordings in PostgreSQL (migrations/0011_recordings.sql): the embedded
 * default, so a development proxy needs nothing more. Each chunk is one row;
 * a download reads them back in order, a few at a time.
 */
import type { Pool } from '../db/pool.js';
import { randomUUID } from 'node:crypto';
import { inTransaction, query, type Queryable } from '../db/query.js';
import type {
  RecordingEnd,
  RecordingMeta,
  RecordingStatus,
  RecordingStorage,
  RecordingWriter,
} from './storage.js';

/** Where a recording's bytes go: PostgreSQL chunks, or an object (proxy/recording/s3-storage.ts). */
export interface StoredAs {
  storage: 'postgres' | 's3';
  objectKey?: string;
  /** The recording's data key, sealed with the master key (proxy/recording/envelope.ts). */
  dataKey?: string;
}

/** PostgreSQL text cannot hold NUL: a command argument with one is kept with U+FFFD in its place. */
const text = (s: string) => s.replaceAll('\0', '\uFFFD');

/** Insert a recording's row (id chosen by the caller, so an object can be named after it). */
export async function insertRecording(
  db: Queryable,
  id: string,
  m: RecordingMeta,
  status: RecordingStatus,
  reason: string,
  as: StoredAs = { storage: 'postgres' },
): Promise<void> {
  await query(
    db,
    `INSERT INTO recordings (id, audit_id, kind, cluster, namespace, pod, container, command,
        user_name, user_kind, user_groups, mode, policy, stdin_recorded, replica, status, reason,
        started_at, storage, object_key, data_key)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
        $19, $20, $21)`,
    [
      id,
      text(m.auditId),
      m.kind,
      text(m.cluster),
      text(m.namespace),
      text(m.pod),
      text(m.container),
      m.command.map(text),
      text(m.user),
      m.userKind,
      m.groups.map(text),
      m.mode,
      text(m.policy),
      m.stdin,
      text(m.replica),
      status,
      text(reason.slice(0, 1024)),
      m.startedAt,
      as.storage,
      as.objectKey ?? null,
      as.dataKey ?? null,
    ],
  );
}

/** Record how a session ended. */
export async function closeRecording(db: Queryable, id: string, end: RecordingEnd): Promise<void> {
  await query(
    db,
    `UPDATE recordings SET status = $2, reason = $3, bytes_in = $4, bytes_out = $5,
       ended_at = $6 WHERE id = $1`,
    [id, end.status, text(end.reason.slice(0, 1024)), end.bytesIn, end.bytesOut, end.endedAt],
  );
}

/** Chunks read per query on download. */
const readBatch = 16;

export class PgRecordingStorage implements RecordingStorage {
  constructor(private readonly pool: Pool) {}

  async open(meta: RecordingMeta, header: Buffer): Promise<RecordingWriter> {
    const id = randomUUID();
    await inTransaction(this.pool, async (c) => {
      await insertRecording(c, id, meta, 'recording', '');
      await query(c, `INSERT INTO recording_chunks (recording_id, seq, data) VALUES ($1, 0, $2)`, [
        id,
        header,
      ]);
    });
    const pool = this.pool;
    return {
      id,
      async append(seq: number, data: Buffer): Promise<void> {
        await query(
          pool,
          `INSERT INTO recording_chunks (recording_id, seq, data) VALUES ($1, $2, $3)`,
          [id, seq, data],
        );
      },
      close: (end: RecordingEnd) => closeRecording(pool, id, end),
    };
  }

  async unrecorded(meta: RecordingMeta, reason: string): Promise<string> {
    const id = randomUUID();
    await insertRecording(this.pool, id, meta, 'unrecorded', reason);
    return id;
  }

  async *chunks(id: string): AsyncIterable<Buffer> {
    let after = -1;
    for (;;) {
      const rows = await query<{ seq: number; data: Buffer }>(
        this.pool,
        `SELECT seq, data FROM recording_chunks WHERE recording_id = $1 AND seq > $2
          ORDER BY seq LIMIT ${readBatch}`,
        [id, after],
      );
      for (const r of rows) yield r.data;
      if (rows.length < readBatch) return;
      after = rows[rows.length - 1]!.seq;
    }
  }
}
