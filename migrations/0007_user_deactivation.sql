-- A user's deactivation is policy: every replica reloads its snapshot, denies
-- the user, and pushes empty grants to the agents, which delete the user's
-- just-in-time account on each cluster.
CREATE TRIGGER users_active_notify AFTER UPDATE OF active ON users
  FOR EACH STATEMENT EXECUTE FUNCTION kg_notify_policy();
