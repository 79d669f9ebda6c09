-- Session recordings (issue #21): exec, attach and port-forward sessions
-- through kubegate. One row per session, and the recording itself as chunks
-- appended while the session runs (chunk 0 is the asciicast header, written
-- when the recording opens). proxy/recording/pg-storage.ts writes them.
CREATE TABLE recordings (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  audit_id        text NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('exec', 'attach', 'portforward')),
  cluster         text NOT NULL,
  namespace       text NOT NULL,
  pod             text NOT NULL,
  container       text NOT NULL DEFAULT '',
  command         text[] NOT NULL DEFAULT '{}',
  user_name       text NOT NULL,
  user_kind       text NOT NULL,
  user_groups     text[] NOT NULL DEFAULT '{}',
  mode            text NOT NULL CHECK (mode IN ('best-effort', 'required')),
  policy          text NOT NULL DEFAULT '',
  stdin_recorded  boolean NOT NULL,
  replica         text NOT NULL DEFAULT '',
  status          text NOT NULL
                  CHECK (status IN ('recording', 'complete', 'incomplete', 'unrecorded')),
  reason          text NOT NULL DEFAULT '',
  bytes_in        bigint NOT NULL DEFAULT 0,
  bytes_out       bigint NOT NULL DEFAULT 0,
  started_at      timestamptz NOT NULL,
  ended_at        timestamptz
);
CREATE INDEX recordings_started ON recordings (started_at DESC, id DESC);
CREATE INDEX recordings_user ON recordings (user_name, started_at DESC);
CREATE INDEX recordings_where ON recordings (cluster, namespace, pod, started_at DESC);
CREATE INDEX recordings_audit ON recordings (audit_id);

CREATE TABLE recording_chunks (
  recording_id  uuid NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
  seq           integer NOT NULL CHECK (seq >= 0),
  data          bytea NOT NULL,
  written_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (recording_id, seq)
);

-- Which sessions are recorded: per cluster (by name or label selector, or
-- every cluster) and namespace (none listed: every namespace). Where several
-- match, the strictest mode wins (required > best-effort > off).
CREATE TABLE recording_policies (
  name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  cluster_names text[] NOT NULL DEFAULT '{}',
  selector      jsonb,
  namespaces    text[] NOT NULL DEFAULT '{}',
  mode          text NOT NULL CHECK (mode IN ('off', 'best-effort', 'required')),
  record_stdin  boolean NOT NULL DEFAULT false,
  created_by    text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
