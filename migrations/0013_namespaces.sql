-- Self-service namespaces (issue #22, proxy/namespaces/, docs/namespaces.md).
--
--   namespace_profiles   what an admin says every namespace of a kind gets
--   managed_namespaces   one row per namespace asked for, per cluster, kept
--                        after retirement as history
--   bindings             the owner's and members' access are ordinary central
--                        bindings, tied to their namespace (managed_namespace)
--                        so they go with it; the owner's is made when the
--                        cluster has the namespace, so its just-in-time
--                        RoleBinding has somewhere to go
CREATE TABLE namespace_profiles (
  name       text PRIMARY KEY CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  spec       jsonb NOT NULL,
  version    integer NOT NULL DEFAULT 1,
  updated_by text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE managed_namespaces (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  cluster            text NOT NULL,
  name               text NOT NULL CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  -- A profile in use cannot be deleted (no ON DELETE: the default refuses).
  profile            text NOT NULL REFERENCES namespace_profiles (name),
  owner              text NOT NULL,
  owner_kind         text NOT NULL CHECK (owner_kind IN ('user', 'robot')),
  -- awaiting-approval → provisioning → ready → retiring → retired;
  -- denied (the approval said no), failed (the cluster refused it for good).
  status             text NOT NULL CHECK (status IN ('awaiting-approval', 'provisioning', 'ready',
                       'failed', 'denied', 'retiring', 'retired')),
  message            text NOT NULL DEFAULT '',
  requested_by       text NOT NULL,
  reason             text NOT NULL DEFAULT '',
  -- The approval request creation waits for, and the one a retirement waits for.
  approval_id        uuid,
  retire_approval_id uuid,
  -- Corrections the reconcile made to objects someone changed on the cluster.
  drift              integer NOT NULL DEFAULT 0,
  created_at         timestamptz NOT NULL DEFAULT now(),
  ready_at           timestamptz,
  reconciled_at      timestamptz,
  ended_at           timestamptz
);
-- One live namespace of a name per cluster; ended ones are history.
CREATE UNIQUE INDEX managed_namespaces_live ON managed_namespaces (cluster, name)
  WHERE status NOT IN ('denied', 'failed', 'retired');
CREATE INDEX managed_namespaces_owner ON managed_namespaces (owner_kind, owner)
  WHERE status NOT IN ('denied', 'failed', 'retired');
CREATE INDEX managed_namespaces_work ON managed_namespaces (cluster)
  WHERE status IN ('provisioning', 'ready', 'retiring');

ALTER TABLE bindings
  ADD COLUMN managed_namespace uuid REFERENCES managed_namespaces (id) ON DELETE CASCADE,
  ADD COLUMN managed_as text CHECK (managed_as IN ('owner', 'member')),
  ADD CONSTRAINT bindings_managed CHECK ((managed_namespace IS NULL) = (managed_as IS NULL));
CREATE INDEX bindings_managed_namespace ON bindings (managed_namespace)
  WHERE managed_namespace IS NOT NULL;

-- One replica at a time reconciles a cluster's namespaces: the one holding
-- this lease (taken when it runs out, renewed by its holder).
CREATE TABLE namespace_reconcile_leases (
  cluster text PRIMARY KEY,
  holder  text NOT NULL,
  until   timestamptz NOT NULL
);

-- A namespace's approval requests are requests of kind 'namespace'; what
-- they govern follows them here, whichever way they end (a decision, expiry,
-- withdrawal): one rule for every path.
ALTER TABLE approval_requests DROP CONSTRAINT approval_requests_kind_check;
ALTER TABLE approval_requests ADD CONSTRAINT approval_requests_kind_check
  CHECK (kind IN ('access', 'action', 'run', 'namespace'));

CREATE FUNCTION kg_namespace_follow_approval() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.kind <> 'namespace' OR NEW.status = OLD.status OR NEW.status = 'pending' THEN
    RETURN NULL;
  END IF;
  IF NEW.status = 'approved' THEN
    UPDATE managed_namespaces SET status = 'provisioning', message = 'approved; being created'
     WHERE approval_id = NEW.id AND status = 'awaiting-approval';
    -- Access ends with the approval, before the cluster has deleted anything.
    DELETE FROM bindings WHERE managed_namespace IN
      (SELECT id FROM managed_namespaces WHERE retire_approval_id = NEW.id AND status = 'ready');
    UPDATE managed_namespaces SET status = 'retiring', message = 'approved; being deleted'
     WHERE retire_approval_id = NEW.id AND status = 'ready';
  ELSE
    UPDATE managed_namespaces
       SET status = 'denied', ended_at = now(),
           message = 'not created: the approval request was ' || NEW.status
     WHERE approval_id = NEW.id AND status = 'awaiting-approval';
    UPDATE managed_namespaces
       SET retire_approval_id = NULL,
           message = 'kept: the request to delete it was ' || NEW.status
     WHERE retire_approval_id = NEW.id AND status = 'ready';
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER approval_requests_namespaces AFTER UPDATE OF status ON approval_requests
  FOR EACH ROW EXECUTE FUNCTION kg_namespace_follow_approval();

-- Every replica hears about work at once (a namespace asked for, approved,
-- retired) and the one holding the cluster's tunnel acts on it.
CREATE FUNCTION kg_notify_namespaces() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('kubegate_namespaces', NEW.cluster);
  RETURN NULL;
END $$;

CREATE TRIGGER managed_namespaces_notify AFTER INSERT OR UPDATE OF status ON managed_namespaces
  FOR EACH ROW EXECUTE FUNCTION kg_notify_namespaces();
