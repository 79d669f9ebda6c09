-- Single sign-on sign-ins outlive the browser session they started: the
-- tokens a sign-in mints (kubeconfig downloads) are tied to it. Each row
-- bounds their life (expires_at = the provider's auth_time +
-- KUBEGATE_SSO_TOKEN_MAX_AGE) and, when the provider issued a refresh token,
-- keeps it (sealed with the master key, AES-256-GCM) so the user's groups are
-- re-read from the provider every KUBEGATE_OIDC_REFRESH_INTERVAL. A refused
-- refresh ends the sign-in: its tokens are revoked, its sessions deleted.
CREATE TABLE sso_signins (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id         uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  auth_time       timestamptz NOT NULL,
  expires_at      timestamptz NOT NULL,
  refresh_sealed  text,
  next_refresh_at timestamptz,
  refreshed_at    timestamptz,
  ended_at        timestamptz,
  ended_reason    text NOT NULL DEFAULT '',
  created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sso_signins_due ON sso_signins (next_refresh_at)
  WHERE ended_at IS NULL AND refresh_sealed IS NOT NULL;
CREATE INDEX sso_signins_user ON sso_signins (user_id);

ALTER TABLE sessions ADD COLUMN signin_id uuid REFERENCES sso_signins(id) ON DELETE SET NULL;
ALTER TABLE api_tokens ADD COLUMN signin_id uuid REFERENCES sso_signins(id) ON DELETE SET NULL;
CREATE INDEX api_tokens_signin ON api_tokens (signin_id) WHERE signin_id IS NOT NULL;

-- Groups re-read from the provider change a token's identity: announced by
-- the token's hash on kubegate_tokens, like a revocation, so every replica
-- drops its cached identity and ends the open requests made with the old one.
CREATE FUNCTION kg_notify_token_groups() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.groups IS DISTINCT FROM OLD.groups THEN
    PERFORM pg_notify('kubegate_tokens', NEW.hash);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER api_tokens_groups_notify AFTER UPDATE OF groups ON api_tokens
  FOR EACH ROW EXECUTE FUNCTION kg_notify_token_groups();
