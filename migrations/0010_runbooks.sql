-- Runbooks (issue #20): versioned definitions admins write, and the runs
-- people and ticket systems ask for. The built-in catalogue lives in code
-- (proxy/runbooks/catalogue.ts); a stored runbook may not take one of its names.
CREATE TABLE runbooks (
  name        text PRIMARY KEY,
  version     integer NOT NULL,
  spec        jsonb NOT NULL,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Every version ever saved: a run names the version it ran, and shows it.
CREATE TABLE runbook_versions (
  name        text NOT NULL,
  version     integer NOT NULL,
  spec        jsonb NOT NULL,
  created_by  text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (name, version)
);

-- One request to run a runbook. `spec` is the definition as run (copied, so a
-- later edit never changes what a run did); `params` are the checked values.
CREATE TABLE runbook_runs (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  runbook          text NOT NULL,
  version          integer NOT NULL,
  spec             jsonb NOT NULL,
  params           jsonb NOT NULL,
  namespace        text NOT NULL DEFAULT '',
  dry_run          boolean NOT NULL DEFAULT false,
  requester        text NOT NULL,
  requester_kind   text NOT NULL,
  requester_groups text[] NOT NULL DEFAULT '{}',
  ticket           text NOT NULL DEFAULT '',
  idempotency_key  text,
  request_hash     text NOT NULL,
  status           text NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);
-- The same key from the same requester is the same run (a retried POST).
CREATE UNIQUE INDEX runbook_runs_idempotency
  ON runbook_runs (requester_kind, requester, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runbook_runs_created ON runbook_runs (created_at DESC, id DESC);
CREATE INDEX runbook_runs_runbook ON runbook_runs (runbook, created_at DESC);

-- One cluster of a run. A replica works on a target while it holds the lease;
-- a lease that ran out with a step started and not finished is never resumed:
-- that step's outcome is unknown, and it is reported as such.
CREATE TABLE runbook_run_targets (
  run_id       uuid NOT NULL REFERENCES runbook_runs(id) ON DELETE CASCADE,
  cluster      text NOT NULL,
  status       text NOT NULL,
  message      text NOT NULL DEFAULT '',
  owner        text,
  lease_until  timestamptz,
  started_at   timestamptz,
  finished_at  timestamptz,
  PRIMARY KEY (run_id, cluster)
);
CREATE INDEX runbook_run_targets_open ON runbook_run_targets (lease_until)
  WHERE status IN ('queued', 'running');

-- One step on one cluster: written `running` before its API call is sent, so
-- a step is never sent twice.
CREATE TABLE runbook_run_steps (
  run_id       uuid NOT NULL,
  cluster      text NOT NULL,
  index        integer NOT NULL,
  name         text NOT NULL,
  action       text NOT NULL,
  status       text NOT NULL,
  message      text NOT NULL DEFAULT '',
  diff         text,
  result       jsonb,
  started_at   timestamptz,
  finished_at  timestamptz,
  PRIMARY KEY (run_id, cluster, index),
  FOREIGN KEY (run_id, cluster) REFERENCES runbook_run_targets(run_id, cluster) ON DELETE CASCADE
);
