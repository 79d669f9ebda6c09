-- Recordings in S3-compatible object storage (issue #21): the metadata stays
-- in `recordings` (search, REST and CLI read it unchanged); a recording kept
-- in an object store names its object and carries its data key, sealed with
-- the master key (proxy/recording/s3-storage.ts, proxy/recording/envelope.ts).
-- Rows written before this migration, and every row of a proxy that keeps
-- recordings in PostgreSQL, say `postgres` and have their chunks in
-- `recording_chunks`.
ALTER TABLE recordings
  ADD COLUMN storage text NOT NULL DEFAULT 'postgres' CHECK (storage IN ('postgres', 's3')),
  ADD COLUMN object_key text,
  ADD COLUMN data_key text,
  ADD CONSTRAINT recordings_object CHECK (
    storage = 'postgres' OR status = 'unrecorded' OR (object_key IS NOT NULL AND data_key IS NOT NULL));

-- The retention sweep (proxy/recording/retention.ts) looks for sessions that
-- ended before the cut-off, and for recordings still open on a replica that
-- is gone.
CREATE INDEX recordings_ended ON recordings ((coalesce(ended_at, started_at)))
  WHERE status <> 'recording';
CREATE INDEX recordings_open ON recordings (replica) WHERE status = 'recording';
