-- Central RBAC: custom roles, bindings and the record of every admin change.
-- Built-in roles (view, edit, admin, cluster-admin) live in code
-- (proxy/authz/builtin-roles.ts); a custom role may not take their names.

CREATE TABLE roles (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$'),
  description text NOT NULL DEFAULT '',
  rules       jsonb NOT NULL,
  version     integer NOT NULL DEFAULT 1,
  created_by  text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- subjects: [{"kind": "Group"|"User"|"Robot", "name": "…"}]
-- clusters by name (cluster_names) and/or label selector (cluster_selector,
-- a Kubernetes LabelSelector); namespaces empty = cluster-wide.
CREATE TABLE bindings (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  subjects         jsonb NOT NULL,
  role             text NOT NULL,
  cluster_names    text[] NOT NULL DEFAULT '{}',
  cluster_selector jsonb,
  namespaces       text[] NOT NULL DEFAULT '{}',
  expires_at       timestamptz,
  reason           text NOT NULL DEFAULT '',
  version          integer NOT NULL DEFAULT 1,
  created_by       text NOT NULL DEFAULT '',
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bindings_role ON bindings (role);

-- Who changed what, when, before and after (folded into the audit log later).
CREATE TABLE admin_changes (
  id     bigserial PRIMARY KEY,
  at     timestamptz NOT NULL DEFAULT now(),
  actor  text NOT NULL,
  action text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
  kind   text NOT NULL,
  name   text NOT NULL,
  before jsonb,
  after  jsonb
);
CREATE INDEX admin_changes_at ON admin_changes (at DESC);

-- Every replica LISTENs on kubegate_policy and reloads its snapshot when a
-- policy table changes: edits take effect everywhere within a second.
CREATE FUNCTION kg_notify_policy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('kubegate_policy', TG_TABLE_NAME);
  RETURN NULL;
END $$;

CREATE TRIGGER clusters_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON clusters
  FOR EACH STATEMENT EXECUTE FUNCTION kg_notify_policy();
CREATE TRIGGER roles_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON roles
  FOR EACH STATEMENT EXECUTE FUNCTION kg_notify_policy();
CREATE TRIGGER bindings_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON bindings
  FOR EACH STATEMENT EXECUTE FUNCTION kg_notify_policy();

-- A revoked or deleted token is announced by its hash, so every replica drops
-- it from its cache at once (and ends its open streams).
CREATE FUNCTION kg_notify_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('kubegate_tokens', OLD.hash);
  ELSIF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
    PERFORM pg_notify('kubegate_tokens', NEW.hash);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER api_tokens_notify AFTER UPDATE OR DELETE ON api_tokens
  FOR EACH ROW EXECUTE FUNCTION kg_notify_token();
