/**
 * Where recordings are kept, behind a small interface so an object store
 * can be added beside PostgreSQL (a later slice: S3, one object per session,
 * multipart). A recording is its metadata and a sequence of chunks; the
 * first chunk is the asciicast header, written when the recording opens, so
 * a store that cannot take chunks refuses the session before it starts.
 */

export const recordingStatuses = ['recording', 'complete', 'incomplete', 'unrecorded'] as const;
export type RecordingStatus = (typeof recordingStatuses)[number];

export type SessionKind = 'exec' | 'attach' | 'portforward';

/** Which session a recording is of: its request and where it went. */
export interface SessionTarget {
  auditId: string;
  kind: SessionKind;
  cluster: string;
  namespace: string;
  pod: string;
  container: string;
  command: string[];
}

/** What is known of a session when it opens. */
export interface RecordingMeta extends SessionTarget {
  user: string;
  userKind: 'user' | 'robot';
  groups: string[];
  /** The policy mode that applied (off is never recorded). */
  mode: 'best-effort' | 'required';
  /** The name of the policy that decided, or '' for the default. */
  policy: string;
  stdin: boolean;
  replica: string;
  startedAt: Date;
}

export interface RecordingEnd {
  status: Exclude<RecordingStatus, 'recording'>;
  /** Why a recording is incomplete or unrecorded. */
  reason: string;
  bytesIn: number;
  bytesOut: number;
  endedAt: Date;
}

/** One open recording. */
export interface RecordingWriter {
  readonly id: string;
  /** Store chunk `seq` (1, 2, …; 0 is the header). Rejects when the store failed. */
  append(seq: number, data: Buffer): Promise<void>;
  /** Record how the session ended. */
  close(end: RecordingEnd): Promise<void>;
}

export interface RecordingStorage {
  /** Open a recording: its metadata and `header` (chunk 0) are stored, or this rejects. */
  open(meta: RecordingMeta, header: Buffer): Promise<RecordingWriter>;
  /** Note a session that runs unrecorded (best effort); rejects when even that cannot be stored. */
  unrecorded(meta: RecordingMeta, reason: string): Promise<string>;
  /** A recording's chunks in order, for download. */
  chunks(id: string): AsyncIterable<Buffer>;
}
