-- Just-in-time approvals (issue #12; proxy/approvals/). Three things live here:
--   approval_policies   who may approve what: access requests (kind 'access')
--                       and approval-gated actions (kind 'gate')
--   approval_requests   one request for access, or one gated Kubernetes request,
--                       with its state; approval_decisions holds each approver's vote
--   approval_webhooks / approval_deliveries
--                       notification targets and a durable outbox, so a delivery
--                       survives a replica restart and is retried with back-off

CREATE TABLE approval_policies (
  name        text PRIMARY KEY CHECK (name ~ '^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$'),
  kind        text NOT NULL CHECK (kind IN ('access', 'gate')),
  -- The validated policy (proxy/approvals/policy-spec.ts).
  spec        jsonb NOT NULL,
  version     integer NOT NULL DEFAULT 1,
  created_by  text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE approval_requests (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  kind               text NOT NULL CHECK (kind IN ('access', 'action')),
  status             text NOT NULL CHECK (status IN
                       ('pending', 'approved', 'denied', 'withdrawn', 'expired', 'executed')),
  requester          text NOT NULL,
  requester_kind     text NOT NULL CHECK (requester_kind IN ('user', 'robot')),
  requester_groups   text[] NOT NULL DEFAULT '{}',
  reason             text NOT NULL DEFAULT '',
  -- access: {role, clusters, namespaces, durationSeconds}
  -- action: {cluster, method, verb, apiGroup, resource, ..., bodySha256}
  spec               jsonb NOT NULL,
  -- action: sha256 over who, where, what and the body (proxy/approvals/fingerprint.ts)
  fingerprint        text,
  cluster            text NOT NULL DEFAULT '',
  -- action: the change as the approver sees it (live object → result of the request)
  diff               text,
  created_at         timestamptz NOT NULL DEFAULT now(),
  -- a pending request expires unanswered at this time
  pending_until      timestamptz NOT NULL,
  decided_at         timestamptz,
  -- action: the approved request may run once until then
  executable_until   timestamptz,
  executed_at        timestamptz,
  binding_id         uuid,
  request_audit_id   uuid,
  execution_audit_id uuid
);
CREATE INDEX approval_requests_status ON approval_requests (status, created_at DESC);
CREATE INDEX approval_requests_requester ON approval_requests (requester, created_at DESC);
-- At most one open approval per exact gated request.
CREATE UNIQUE INDEX approval_requests_open_fingerprint ON approval_requests (fingerprint)
  WHERE kind = 'action' AND status IN ('pending', 'approved');

CREATE TABLE approval_decisions (
  request_id uuid NOT NULL REFERENCES approval_requests (id) ON DELETE CASCADE,
  approver   text NOT NULL,
  approver_kind text NOT NULL,
  groups     text[] NOT NULL DEFAULT '{}',
  decision   text NOT NULL CHECK (decision IN ('approve', 'deny')),
  reason     text NOT NULL DEFAULT '',
  at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (request_id, approver_kind, approver)
);

CREATE TABLE approval_webhooks (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  url         text NOT NULL CHECK (url ~ '^https?://'),
  format      text NOT NULL CHECK (format IN ('json', 'slack')),
  -- the HMAC key, sealed with the master key (AES-256-GCM, like CA keys)
  secret_sealed text NOT NULL,
  description text NOT NULL DEFAULT '',
  created_by  text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE approval_deliveries (
  id          bigserial PRIMARY KEY,
  webhook_id  uuid NOT NULL REFERENCES approval_webhooks (id) ON DELETE CASCADE,
  event       text NOT NULL,
  payload     jsonb NOT NULL,
  attempts    integer NOT NULL DEFAULT 0,
  next_at     timestamptz NOT NULL DEFAULT now(),
  last_error  text NOT NULL DEFAULT '',
  delivered_at timestamptz,
  given_up_at timestamptz,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX approval_deliveries_due ON approval_deliveries (next_at)
  WHERE delivered_at IS NULL AND given_up_at IS NULL;

-- Replicas cache gate policies; a change is announced so each reloads at once.
CREATE TRIGGER approval_policies_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
  ON approval_policies FOR EACH STATEMENT EXECUTE FUNCTION kg_notify_policy();
