/**
 * Revoking a cluster's agent (`kubegate admin cluster revoke-agent NAME`,
 * `POST /api/v1/clusters/NAME/revoke-agent`, the console's "Revoke agent").
 * In one transaction: every certificate the cluster's agent holds is revoked
 * (reason `revoked`), every bootstrap token not yet spent is voided (so only
 * a token minted after the revocation can enroll the cluster again), the
 * revocation is recorded as an admin audit event, and the replicas are told
 * on `kubegate_agent_revoked`: each closes every tunnel of the cluster it
 * holds (tunnels opened with a certificate superseded by a renewal included)
 * as soon as the transaction commits.
 */
import { KgError } from '../../common/errors.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import type { Pool } from '../db/pool.js';
import { inTransaction } from '../db/query.js';

/** The channel every replica listens on (proxy/authz/policy-store.ts); the payload is the cluster name. */
export const agentRevokedChannel = 'kubegate_agent_revoked';

export interface AgentRevocation {
  cluster: string;
  /** Certificates revoked now (those already revoked or superseded are not counted). */
  revokedCertificates: number;
  /** Unspent bootstrap tokens voided now. */
  voidedBootstrapTokens: number;
  revokedAt: Date;
}

export interface RevokeOrigin {
  actor: string;
  sourceIp?: string;
  userAgent?: string;
}

export async function revokeAgent(
  pool: Pool,
  name: string,
  origin: RevokeOrigin,
): Promise<AgentRevocation> {
  return inTransaction(pool, async (c) => {
    const { rows } = await c.query<{ id: string; now: Date }>(
      'SELECT id, now() AS now FROM clusters WHERE name = $1 FOR UPDATE',
      [name],
    );
    const cluster = rows[0];
    if (!cluster)
      throw new KgError('KG_ERR_CLUSTER_NOT_FOUND', `cluster "${name}" is not registered`);
    const certs = await c.query<{ serial: string }>(
      `UPDATE agent_certs SET revoked_at = now(), revoke_reason = 'revoked'
        WHERE cluster_id = $1 AND revoked_at IS NULL RETURNING serial`,
      [cluster.id],
    );
    const tokens = await c.query(
      `UPDATE bootstrap_tokens SET expires_at = now()
        WHERE cluster_id = $1 AND used_at IS NULL AND expires_at > now()`,
      [cluster.id],
    );
    const out: AgentRevocation = {
      cluster: name,
      revokedCertificates: certs.rowCount ?? 0,
      voidedBootstrapTokens: tokens.rowCount ?? 0,
      revokedAt: cluster.now,
    };
    await recordAdminEvent(c, {
      actor: origin.actor,
      verb: 'revoke',
      resource: 'agentcertificates',
      name,
      cluster: name,
      detail: {
        serials: certs.rows.map((r) => r.serial),
        voidedBootstrapTokens: out.voidedBootstrapTokens,
      },
      sourceIp: origin.sourceIp ?? '',
      userAgent: origin.userAgent ?? '',
    });
    // Delivered at commit, to every replica's policy connection.
    await c.query('SELECT pg_notify($1, $2)', [agentRevokedChannel, name]);
    return out;
  });
}

/** The next step, said the same way by the CLI, the REST answer and the console. */
export function reEnrollHint(cluster: string): string {
  return `the agent of "${cluster}" can connect again only after it enrolls with a new bootstrap token: kubegate admin cluster bootstrap ${cluster} --out bootstrap.yaml, then on the cluster: kubectl delete secret -n kubegate-system kubegate-agent-identity; kubectl apply -f bootstrap.yaml; kubectl rollout restart -n kubegate-system deployment/kubegate-agent`;
}
