-- Scale-out: every proxy replica registers itself and the tunnels it holds,
-- so any replica can find the one holding a cluster's tunnel (peer
-- forwarding) and cluster health is measured from live tunnels. Rows of a
-- replica that stops heart-beating are deleted by the others (stale expiry);
-- its tunnels go with it (ON DELETE CASCADE).

CREATE TABLE replicas (
  id           text PRIMARY KEY,
  -- host:port of the replica's peer listener (mTLS, replica certificates).
  peer_address text NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  -- Set on SIGTERM: the replica finishes what it has and takes nothing new.
  draining     boolean NOT NULL DEFAULT false
);

CREATE INDEX replicas_heartbeat_idx ON replicas (heartbeat_at);

CREATE TABLE replica_tunnels (
  tunnel_id     text PRIMARY KEY,
  replica_id    text NOT NULL REFERENCES replicas(id) ON DELETE CASCADE,
  cluster       text NOT NULL,
  agent_id      text NOT NULL,
  agent_version text NOT NULL,
  since         timestamptz NOT NULL
);

CREATE INDEX replica_tunnels_cluster_idx ON replica_tunnels (cluster);
