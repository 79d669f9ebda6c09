/**
 * `/api/v1/clusters`: register (the response carries the bootstrap YAML
 * with its one-time token, shown once), list, get, change with a JSON merge
 * patch (labels, description, disabled) and delete; and
 * `POST /api/v1/clusters/NAME/revoke-agent`: revoke the cluster's agent
 * certificates (its tunnels close on every replica; it must enroll again
 * with a new bootstrap token).
 */
import { parseHostPort } from '../../common/config.js';
import { KgError } from '../../common/errors.js';
import { renderBootstrapYaml } from '../clusters/bootstrap-yaml.js';
import { agentHelmCommand } from '../clusters/helm-command.js';
import { sendCreated, sendJson } from './json.js';
import { checkQuery, pageParams } from './params.js';
import type { RouteSpec } from '../http/routes.js';
import { admin, jsonBody, type ApiCall } from './types.js';
import { deleteOne, findOne, updateOne } from './operations.js';
import { clusterHealth } from '../ha/cluster-health.js';
import { reEnrollHint, revokeAgent } from '../clusters/revoke.js';
import { requestOrigin } from '../audit/admin-events.js';

/** Replicas whose heartbeat is older than this do not count for health (proxy config). */
const staleAfter = (call: ApiCall) => call.deps.replicaStaleAfterMs ?? 10_000;

const collection = '/api/v1/clusters';
/** RFC 7396; plain JSON is accepted too, with the same merge semantics. */
const patchTypes = ['application/merge-patch+json', 'application/json'];

async function register(call: ApiCall) {
  checkQuery(call.query, []);
  const b = call.deps.bootstrap;
  const r = await call.store.createCluster(
    await call.readBody(),
    call.actor,
    b.bootstrapTokenTtlMs,
  );
  const bootstrapYaml = renderBootstrapYaml({
    cluster: r.cluster.name,
    token: r.bootstrapToken,
    tunnelAddress: b.tunnelAddress,
    tunnelServerName: parseHostPort(b.tunnelAddress).host,
    enrollAddress: b.enrollAddress,
    proxyCaPem: b.serverCaPem,
    image: b.agentImage,
  });
  // The same enrollment with the agent chart, for admins who install with Helm.
  const caFile = 'kubegate-proxy-ca.crt';
  const agentHelm = {
    command: agentHelmCommand({
      cluster: r.cluster.name,
      tunnelAddress: b.tunnelAddress,
      token: r.bootstrapToken,
      caFile,
    }),
    caFile,
    caPem: b.serverCaPem,
  };
  sendCreated(
    call,
    { ...r.cluster, bootstrapYaml, agentHelm, bootstrapExpiresAt: r.bootstrapExpiresAt },
    r.cluster.version,
    `${collection}/${r.cluster.name}`,
  );
}

/** POST …/revoke-agent: no body is read; one is refused so a typo'd call does not look accepted. */
async function revoke(call: ApiCall) {
  checkQuery(call.query, []);
  const declared = Number(call.req.headers['content-length'] ?? 0);
  if (declared > 0 || call.req.headers['transfer-encoding'])
    throw new KgError('KG_ERR_BAD_REQUEST', 'revoke-agent takes no request body');
  const r = await revokeAgent(call.deps.pool, call.params[0]!, {
    actor: call.actor,
    ...requestOrigin(call.req),
  });
  call.log.info(
    { actor: call.actor, cluster: r.cluster, certificates: r.revokedCertificates },
    'agent revoked',
  );
  sendJson(call, { ...r, next: reEnrollHint(r.cluster) });
}

/** The registered cluster `{name}` names, or 404. */
export const registered = (call: ApiCall) =>
  findOne(
    call,
    (name) => call.store.getCluster(name),
    (name) => new KgError('KG_ERR_CLUSTER_NOT_FOUND', `cluster "${name}" is not registered`),
  );

export const clusterRoutes: RouteSpec<ApiCall>[] = [
  {
    path: collection,
    tag: 'clusters',
    methods: {
      GET: admin(
        'Registered clusters with their fleet-wide health',
        async (call) => {
          const page = await call.store.listClusters(pageParams(call.query));
          const health = await clusterHealth(
            call.deps.pool,
            page.items.map((c) => c.name),
            staleAfter(call),
          );
          sendJson(call, {
            ...page,
            items: page.items.map((c) => ({ ...c, health: health.get(c.name) })),
          });
        },
        { query: ['limit', 'continue'] },
      ),
      POST: admin('Register a cluster: its record and the agent bootstrap (YAML, Helm)', register, {
        body: jsonBody,
        responses: { 201: 'the cluster with its one-time bootstrap' },
      }),
    },
  },
  {
    path: `${collection}/{name}`,
    tag: 'clusters',
    methods: {
      GET: admin('One cluster with its health', async (call) => {
        const { key: name, found: c } = await registered(call);
        const health = await clusterHealth(call.deps.pool, [name], staleAfter(call));
        sendJson(call, { ...c, health: health.get(name) }, c.version);
      }),
      PATCH: updateOne(
        "Change a cluster's labels or disable it (JSON merge patch, If-Match)",
        (call, name, patch, change) => call.store.updateCluster(name, patch, change),
        { types: patchTypes },
      ),
      DELETE: deleteOne('Deregister a cluster (If-Match)', (call, name, change) =>
        call.store.deleteCluster(name, change),
      ),
    },
  },
  {
    path: `${collection}/{name}/revoke-agent`,
    tag: 'clusters',
    methods: {
      POST: admin("Revoke the cluster's agent certificates (no body)", revoke),
    },
  },
];
