-- Central audit log (proxy/audit/). One row per
-- audit.k8s.io/v1 Event stage; the whole event is kept as jsonb, and the
-- fields the API filters on are columns. Partitioned by day (UTC) on the
-- request's received time, so every stage of one request lands in the same
-- partition and retention drops whole partitions.

CREATE TABLE audit_events (
  received_at timestamptz NOT NULL,
  audit_id    uuid NOT NULL,
  stage       text NOT NULL,
  stage_at    timestamptz NOT NULL,
  inserted_at timestamptz NOT NULL DEFAULT now(),
  source      text NOT NULL,
  level       text NOT NULL,
  verb        text NOT NULL,
  username    text NOT NULL,
  user_kind   text NOT NULL,
  groups      text[] NOT NULL,
  cluster     text NOT NULL,
  namespace   text NOT NULL,
  api_group   text NOT NULL,
  resource    text NOT NULL,
  subresource text NOT NULL,
  name        text NOT NULL,
  code        integer,
  decision    text NOT NULL,
  replica     text NOT NULL,
  event       jsonb NOT NULL,
  -- A replayed event (spool after an outage) carries the same three values,
  -- so ON CONFLICT DO NOTHING makes replays idempotent.
  PRIMARY KEY (received_at, audit_id, stage)
) PARTITION BY RANGE (received_at);

CREATE INDEX audit_events_audit_id ON audit_events (audit_id);
CREATE INDEX audit_events_user ON audit_events (username, received_at DESC);
CREATE INDEX audit_events_cluster ON audit_events (cluster, namespace, received_at DESC);
CREATE INDEX audit_events_resource ON audit_events (resource, verb, received_at DESC);
CREATE INDEX audit_events_groups ON audit_events USING gin (groups);
CREATE INDEX audit_events_refused ON audit_events (decision, received_at DESC)
  WHERE decision <> 'allow';

-- The partition for one UTC day, created if missing. Replicas may race to
-- create the same one; the advisory lock makes the loser a no-op. SECURITY
-- DEFINER: the proxy's runtime role needs no CREATE privilege for this (and
-- on PostgreSQL 15+ the public schema grants none by default).
CREATE FUNCTION kg_audit_ensure_partition(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  part text := 'audit_events_p' || to_char(day, 'YYYYMMDD');
BEGIN
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  PERFORM pg_advisory_xact_lock(7346519004);
  IF to_regclass(part) IS NOT NULL THEN
    RETURN false;
  END IF;
  EXECUTE format(
    'CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
    part,
    day::timestamp AT TIME ZONE 'UTC',
    (day + 1)::timestamp AT TIME ZONE 'UTC');
  RETURN true;
END $$;

-- Drop the daily partitions whose whole day ended at or before `cutoff`;
-- returns their names. SECURITY DEFINER for the same reason as above.
CREATE FUNCTION kg_audit_drop_partitions(cutoff timestamptz) RETURNS SETOF text
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  part text;
BEGIN
  FOR part IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'audit_events'::regclass AND c.relname ~ '^audit_events_p[0-9]{8}$'
  LOOP
    IF (to_date(substr(part, 15), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= cutoff THEN
      EXECUTE format('DROP TABLE %I', part);
      RETURN NEXT part;
    END IF;
  END LOOP;
END $$;

-- Insert a batch of events (a jsonb array): one statement, duplicates
-- (same received time, audit ID and stage) skipped. Returns rows inserted.
CREATE FUNCTION kg_audit_insert(events jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  PERFORM kg_audit_ensure_partition(d)
     FROM (SELECT DISTINCT ((e->>'requestReceivedTimestamp')::timestamptz AT TIME ZONE 'UTC')::date AS d
             FROM jsonb_array_elements(events) e) days;
  INSERT INTO audit_events (received_at, audit_id, stage, stage_at, source, level, verb,
                            username, user_kind, groups, cluster, namespace, api_group,
                            resource, subresource, name, code, decision, replica, event)
  SELECT (e->>'requestReceivedTimestamp')::timestamptz,
         (e->>'auditID')::uuid,
         e->>'stage',
         (e->>'stageTimestamp')::timestamptz,
         coalesce(e->>'source', 'kube'),
         e->>'level',
         coalesce(e->>'verb', ''),
         coalesce(e->'user'->>'username', ''),
         coalesce(e->'user'->'extra'->'kubegate.dev/kind'->>0, ''),
         ARRAY(SELECT jsonb_array_elements_text(coalesce(e->'user'->'groups', '[]'))),
         coalesce(e->>'cluster', ''),
         coalesce(e->'objectRef'->>'namespace', ''),
         coalesce(e->'objectRef'->>'apiGroup', ''),
         coalesce(e->'objectRef'->>'resource', ''),
         coalesce(e->'objectRef'->>'subresource', ''),
         coalesce(e->'objectRef'->>'name', ''),
         (e->'responseStatus'->>'code')::integer,
         coalesce(e->>'decision', ''),
         coalesce(e->>'replica', ''),
         e
    FROM jsonb_array_elements(events) e
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

-- Strict mode: a RequestReceived record left by a proxy that died mid-request
-- is inserted only if no stage of that request reached the log.
CREATE FUNCTION kg_audit_insert_orphans(events jsonb) RETURNS integer
LANGUAGE sql AS $$
  SELECT kg_audit_insert(coalesce(jsonb_agg(jsonb_set(e, '{annotations}',
           coalesce(e->'annotations', '{}'::jsonb) || jsonb_build_object('kubegate.dev/incomplete',
             'the proxy stopped before this request completed; it was forwarded, its outcome is unknown'))),
         '[]'::jsonb))
    FROM jsonb_array_elements(events) e
   WHERE NOT EXISTS (
     SELECT 1 FROM audit_events a
      WHERE a.received_at = (e->>'requestReceivedTimestamp')::timestamptz
        AND a.audit_id = (e->>'auditID')::uuid);
$$;

CREATE FUNCTION kg_audit_micro(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
$$;

-- An admin action (clusters, roles, bindings, tokens, robots, users, logins,
-- kubeconfig downloads) as an audit event, in the caller's transaction: the
-- action and its record commit together or not at all. `actor` is
-- `user:NAME`, `robot:NAME` or `cli:NAME`; `resource` is plural (`bindings`).
CREATE FUNCTION kg_audit_admin_event(actor text, verb text, resource text, name text,
                                     detail jsonb DEFAULT NULL, source_ip text DEFAULT '',
                                     user_agent text DEFAULT '', cluster text DEFAULT '',
                                     code integer DEFAULT 200, at timestamptz DEFAULT now(),
                                     annotations jsonb DEFAULT '{}'::jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  kind text := CASE WHEN position(':' IN actor) > 0 THEN split_part(actor, ':', 1) ELSE '' END;
  uname text := CASE WHEN kind IN ('user', 'robot') THEN substr(actor, length(kind) + 2) ELSE actor END;
  e jsonb;
BEGIN
  e := jsonb_build_object(
    'kind', 'Event',
    'apiVersion', 'audit.k8s.io/v1',
    'level', CASE WHEN detail IS NULL THEN 'Metadata' ELSE 'RequestResponse' END,
    'auditID', gen_random_uuid(),
    'stage', 'ResponseComplete',
    'requestURI', '/api/v1/' || resource || CASE WHEN name = '' THEN '' ELSE '/' || name END,
    'verb', verb,
    'user', jsonb_build_object('username', uname,
                               'extra', jsonb_build_object('kubegate.dev/kind', jsonb_build_array(kind))),
    'sourceIPs', CASE WHEN source_ip = '' THEN '[]'::jsonb ELSE jsonb_build_array(source_ip) END,
    'userAgent', user_agent,
    'objectRef', jsonb_strip_nulls(jsonb_build_object('apiGroup', 'kubegate.dev', 'apiVersion', 'v1',
                                                      'resource', resource, 'name', nullif(name, ''))),
    'responseStatus', jsonb_build_object('metadata', '{}'::jsonb, 'code', code,
                                         'status', CASE WHEN code < 400 THEN 'Success' ELSE 'Failure' END),
    'requestReceivedTimestamp', kg_audit_micro(at),
    'stageTimestamp', kg_audit_micro(clock_timestamp()),
    'annotations', annotations,
    'source', 'admin',
    'cluster', cluster,
    'replica', '',
    'decision', CASE WHEN code IN (401, 403) THEN 'deny' WHEN code >= 400 THEN 'error' ELSE 'allow' END,
    'reason', 'admin action',
    'durationMs', 0,
    'bytesIn', 0,
    'bytesOut', 0);
  IF detail IS NOT NULL THEN
    e := e || jsonb_build_object('requestObject', detail);
  END IF;
  PERFORM kg_audit_insert(jsonb_build_array(e));
END $$;

-- Every admin_changes row (the RBAC store's change log) is also an audit
-- event, written in the same transaction as the change.
CREATE FUNCTION kg_audit_admin_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM kg_audit_admin_event(
    NEW.actor, NEW.action, NEW.kind || 's', NEW.name,
    jsonb_build_object('kind', 'AdminChange', 'apiVersion', 'kubegate.dev/v1',
                       'before', NEW.before, 'after', NEW.after),
    '', '', CASE WHEN NEW.kind = 'cluster' THEN NEW.name ELSE '' END, 200, NEW.at,
    jsonb_build_object('kubegate.dev/admin-change-id', NEW.id::text));
  RETURN NULL;
END $$;

CREATE TRIGGER admin_changes_audit AFTER INSERT ON admin_changes
  FOR EACH ROW EXECUTE FUNCTION kg_audit_admin_change();

-- Today's partition and a few ahead; the proxy keeps creating them ahead and
-- drops those past the retention (proxy/audit/partitions.ts).
SELECT kg_audit_ensure_partition((now() AT TIME ZONE 'UTC')::date + i) FROM generate_series(-1, 3) i;
