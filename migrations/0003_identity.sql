-- Identity: people who signed in with the company IdP, their browser sessions,
-- sign-ins in progress, and robots (CI/CD and ArgoCD identities). Additive
-- only: api_tokens gains references to its owner and a rotation marker.

-- One row per person, keyed by the provider's (issuer, subject); `username`
-- is the name RBAC bindings and Kubernetes see (config oidcUsernameClaim).
-- Never deleted: deactivation keeps the record and ends all access.
CREATE TABLE users (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  issuer         text NOT NULL,
  subject        text NOT NULL,
  username       text NOT NULL UNIQUE,
  email          text NOT NULL DEFAULT '',
  name           text NOT NULL DEFAULT '',
  groups         text[] NOT NULL DEFAULT '{}',
  active         boolean NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL DEFAULT now(),
  last_login_at  timestamptz,
  deactivated_at timestamptz,
  deactivated_by text NOT NULL DEFAULT '',
  UNIQUE (issuer, subject)
);

-- Browser sessions. Only the SHA-256 of the random cookie value is stored;
-- expires_at is fixed at sign-in (max session age), never extended.
CREATE TABLE sessions (
  id_hash      text PRIMARY KEY,
  user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  csrf_token   text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  user_agent   text NOT NULL DEFAULT '',
  source_ip    text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

-- Sign-ins in progress: state, nonce and PKCE verifier, bound to the browser
-- by a cookie whose SHA-256 is the key. A row is consumed (deleted) by the
-- first callback that names it, so a callback can never be replayed.
CREATE TABLE oidc_logins (
  id_hash       text PRIMARY KEY,
  state         text NOT NULL,
  nonce         text NOT NULL,
  code_verifier text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz NOT NULL
);
CREATE INDEX oidc_logins_expires ON oidc_logins (expires_at);

-- Machine identities created by admins; the name is the RBAC Robot subject.
CREATE TABLE robots (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$'),
  groups      text[] NOT NULL DEFAULT '{}',
  description text NOT NULL DEFAULT '',
  active      boolean NOT NULL DEFAULT true,
  created_by  text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Who a token belongs to (tokens minted by the CLI have neither), and when a
-- robot token was superseded by a rotation: its expiry is then shortened to
-- the overlap, and once that passes it is revoked (which announces it on
-- kubegate_tokens, so open watches using it end on every replica).
ALTER TABLE api_tokens
  ADD COLUMN user_id uuid REFERENCES users(id) ON DELETE SET NULL,
  ADD COLUMN robot_id uuid REFERENCES robots(id) ON DELETE SET NULL,
  ADD COLUMN superseded_at timestamptz;
CREATE INDEX api_tokens_user ON api_tokens (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX api_tokens_robot ON api_tokens (robot_id) WHERE robot_id IS NOT NULL;
CREATE INDEX api_tokens_superseded ON api_tokens (expires_at)
  WHERE superseded_at IS NOT NULL AND revoked_at IS NULL;
