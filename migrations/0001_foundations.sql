-- Foundations: clusters, the internal CAs, agent enrollment and bearer tokens.

CREATE TABLE clusters (
  id          bigserial PRIMARY KEY,
  name        text NOT NULL UNIQUE
              CHECK (name ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'),
  labels      jsonb NOT NULL DEFAULT '{}'::jsonb,
  description text NOT NULL DEFAULT '',
  disabled    boolean NOT NULL DEFAULT false,
  version     integer NOT NULL DEFAULT 1,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- CA private keys are encrypted with the master key (AES-256-GCM) before they
-- reach the database; a database dump alone cannot mint certificates.
CREATE TABLE ca_keys (
  name       text PRIMARY KEY,
  cert_pem   text NOT NULL,
  key_enc    text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One-time bootstrap tokens, stored hashed; used_at is set atomically on use.
CREATE TABLE bootstrap_tokens (
  hash       text PRIMARY KEY,
  cluster_id bigint NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  created_by text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Every agent certificate we issue, so a tunnel can be refused by serial.
CREATE TABLE agent_certs (
  serial     text PRIMARY KEY,
  cluster_id bigint NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
  not_after  timestamptz NOT NULL,
  revoked_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Bearer tokens (kubeconfig and robot tokens). Only the SHA-256 of the token
-- is stored; the token itself is shown once.
CREATE TABLE api_tokens (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  hash         text NOT NULL UNIQUE,
  subject      text NOT NULL,
  subject_kind text NOT NULL CHECK (subject_kind IN ('user', 'robot')),
  groups       text[] NOT NULL DEFAULT '{}',
  description  text NOT NULL DEFAULT '',
  created_by   text NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_tokens_subject ON api_tokens (subject_kind, subject);
