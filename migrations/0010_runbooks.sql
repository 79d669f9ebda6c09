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
  reason           text NOT NULL DEFAULT '',
  idempotency_key  text,
  request_hash     text NOT NULL,
  status           text NOT NULL,
  -- Fleet runs: the first `canary` targets (by position) run first, and the
  -- rest only once they all succeeded; at most `concurrency` run at once; a
  -- queued target whose cluster stays offline for `offline_wait` is reported so.
  canary           integer NOT NULL DEFAULT 0,
  concurrency      integer NOT NULL DEFAULT 5,
  offline_wait     integer NOT NULL DEFAULT 60,
  -- Set by a cancel while a target runs: it stops before its next step.
  cancel_reason    text,
  -- The approval request a run waits for (approval policies of kind runbook).
  approval_id      uuid,
  created_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);
CREATE INDEX runbook_runs_approval ON runbook_runs (approval_id) WHERE approval_id IS NOT NULL;
-- The same key from the same requester is the same run (a retried POST).
CREATE UNIQUE INDEX runbook_runs_idempotency
  ON runbook_runs (requester_kind, requester, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX runbook_runs_created ON runbook_runs (created_at DESC, id DESC);
CREATE INDEX runbook_runs_runbook ON runbook_runs (runbook, created_at DESC);

-- One cluster of a run. A replica works on a target while it holds the lease;
-- a lease that ran out with a step started and not finished is never resumed:
-- that step's outcome is unknown, and it is reported as such. Statuses:
-- preview (a dry run for the approvers) → awaiting-approval → held (behind
-- the canaries) or queued → running → succeeded | failed | unknown | offline
-- | cancelled.
CREATE TABLE runbook_run_targets (
  run_id       uuid NOT NULL REFERENCES runbook_runs(id) ON DELETE CASCADE,
  cluster      text NOT NULL,
  position     integer NOT NULL,
  status       text NOT NULL,
  queued_at    timestamptz,
  -- The approvers' dry run: [{index, name, status, message, diff}].
  preview      jsonb,
  message      text NOT NULL DEFAULT '',
  owner        text,
  lease_until  timestamptz,
  started_at   timestamptz,
  finished_at  timestamptz,
  PRIMARY KEY (run_id, cluster)
);
CREATE INDEX runbook_run_targets_open ON runbook_run_targets (cluster)
  WHERE status IN ('preview', 'queued', 'running');

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

-- A run waiting for approval follows its approval request, whichever way it
-- ends (a decision, expiry, withdrawal): approved queues it (canaries first),
-- anything else ends it with nothing run.
ALTER TABLE approval_policies DROP CONSTRAINT approval_policies_kind_check;
ALTER TABLE approval_policies ADD CONSTRAINT approval_policies_kind_check
  CHECK (kind IN ('access', 'gate', 'runbook'));
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_kind_check;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_kind_check
  CHECK (kind IN ('access', 'action', 'run'));

CREATE FUNCTION kg_runbook_follow_approval() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  run runbook_runs%ROWTYPE;
BEGIN
  IF NEW.kind <> 'run' OR NEW.status = OLD.status OR NEW.status = 'pending' THEN
    RETURN NULL;
  END IF;
  SELECT * INTO run FROM runbook_runs WHERE approval_id = NEW.id FOR UPDATE;
  IF NOT FOUND OR run.status <> 'awaiting-approval' THEN
    RETURN NULL;
  END IF;
  IF NEW.status = 'approved' THEN
    UPDATE runbook_runs SET status = 'queued' WHERE id = run.id;
    UPDATE runbook_run_targets
       SET status = CASE WHEN run.canary = 0 OR position < run.canary THEN 'queued' ELSE 'held' END,
           queued_at = now(), lease_until = NULL
     WHERE run_id = run.id AND status IN ('preview', 'awaiting-approval');
  ELSE
    UPDATE runbook_runs
       SET status = CASE NEW.status WHEN 'denied' THEN 'denied' WHEN 'expired' THEN 'expired'
                                    ELSE 'cancelled' END,
           finished_at = now()
     WHERE id = run.id;
    UPDATE runbook_run_targets
       SET status = 'cancelled', finished_at = now(), lease_until = NULL,
           message = 'not run: the approval request was ' || NEW.status
     WHERE run_id = run.id AND status IN ('preview', 'awaiting-approval');
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER approval_requests_runbook_runs AFTER UPDATE OF status ON approval_requests
  FOR EACH ROW EXECUTE FUNCTION kg_runbook_follow_approval();
