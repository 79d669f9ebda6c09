-- Agent certificate lifecycle: why a certificate stopped being valid.
--   revoked     an admin revoked the cluster's agent (kubegate admin cluster
--               revoke-agent): its tunnels are closed on every replica and it
--               must enroll again with a new bootstrap token;
--   superseded  the agent renewed it: the new certificate replaces it, so it
--               can neither open a tunnel nor renew again.
ALTER TABLE agent_certs ADD COLUMN revoke_reason text
  CHECK (revoke_reason IN ('revoked', 'superseded'));
CREATE INDEX agent_certs_cluster ON agent_certs (cluster_id) WHERE revoked_at IS NULL;
