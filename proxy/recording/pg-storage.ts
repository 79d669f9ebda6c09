/**
 * Recordings in PostgreSQL (migrations/0011_recordings.sql): the embedded
 * default, so a development proxy needs nothing more. Each chunk is one row;
 * a download reads them back in order, a few at a time.
 */
import type { Pool } from '../db/pool.js';
import { inTransaction, query } from '../db/query.js';
import type { RecordingEnd, RecordingMeta, RecordingStorage, RecordingWriter } from './storage.js';

const insertRecording = `INSERT INTO recordings (audit_id, kind, cluster, namespace, pod, container,
    command, user_name, user_kind, user_groups, mode, policy, stdin_recorded, replica, status,
    reason, started_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
  RETURNING id`;

function values(m: RecordingMeta, status: string, reason: string): unknown[] {
  return [
    m.auditId,
    m.kind,
    m.cluster,
    m.namespace,
    m.pod,
    m.container,
    m.command,
    m.user,
    m.userKind,
    m.groups,
    m.mode,
    m.policy,
    m.stdin,
    m.replica,
    status,
    reason,
    m.startedAt,
  ];
}

/** Chunks read per query on download. */
const readBatch = 16;

export class PgRecordingStorage implements RecordingStorage {
  constructor(private readonly pool: Pool) {}

  async open(meta: RecordingMeta, header: Buffer): Promise<RecordingWriter> {
    const id = await inTransaction(this.pool, async (c) => {
      const [row] = await query<{ id: string }>(c, insertRecording, values(meta, 'recording', ''));
      await query(c, `INSERT INTO recording_chunks (recording_id, seq, data) VALUES ($1, 0, $2)`, [
        row!.id,
        header,
      ]);
      return row!.id;
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
      async close(end: RecordingEnd): Promise<void> {
        await query(
          pool,
          `UPDATE recordings SET status = $2, reason = $3, bytes_in = $4, bytes_out = $5,
             ended_at = $6 WHERE id = $1`,
          [id, end.status, end.reason.slice(0, 1024), end.bytesIn, end.bytesOut, end.endedAt],
        );
      },
    };
  }

  async unrecorded(meta: RecordingMeta, reason: string): Promise<string> {
    const [row] = await query<{ id: string }>(
      this.pool,
      insertRecording,
      values(meta, 'unrecorded', reason.slice(0, 1024)),
    );
    return row!.id;
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
