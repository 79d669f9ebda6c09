/**
 * The request path for `/k8s/<cluster>/…`, assembled in one place. Reading
 * this function tells a newcomer how a Kubernetes API request flows through
 * kubegate (architecture.md, "The request path").
 */
import type { Logger } from '../common/log.js';
import { KgError } from '../common/errors.js';
import { newContext } from './context.js';
import { routeKubeRequest } from './route/kube-path.js';
import { authenticate } from './authn/authenticate.js';
import type { TokenStore } from './authn/token-store.js';
import { forward, type AnyRequest } from './forward/forward.js';
import { respondError, type AnyResponse } from './http/respond-error.js';
import type { TunnelRegistry } from './tunnel/registry.js';

export interface PipelineDeps {
  tokens: TokenStore;
  registry: TunnelRegistry;
  maxRequestBody: number;
  log: Logger;
}

export function createKubeHandler(deps: PipelineDeps): (req: AnyRequest, res: AnyResponse) => void {
  return (req, res) => {
    const ctx = newContext(
      req.method ?? 'GET',
      req.url ?? '/',
      req.socket.remoteAddress ?? '',
      req.headers['user-agent'] ?? '',
      deps.log,
    );
    const run = async () => {
      // 1. route: cluster from the validated raw path
      ctx.route = routeKubeRequest(ctx.rawTarget);
      // 2. authenticate: bearer token → identity
      ctx.identity = await authenticate(deps.tokens, req.headers.authorization);
      // 6. forward: over a tunnel to the cluster's agent
      // No Retry-After here: client-go silently retries such a 503 up to ten
      // times, so kubectl would hang instead of saying the cluster is offline.
      const tunnel = deps.registry.pick(ctx.route.cluster);
      if (!tunnel) {
        throw new KgError(
          'KG_ERR_CLUSTER_OFFLINE',
          `cluster "${ctx.route.cluster}" is offline: no kubegate agent is connected for it (check the kubegate-agent Deployment in namespace kubegate-system of that cluster)`,
        );
      }
      await forward(ctx, req, res, tunnel, { maxRequestBody: deps.maxRequestBody });
      ctx.log.debug({ status: res.statusCode, ms: Date.now() - ctx.receivedAt }, 'request done');
    };
    run().catch((err: unknown) => respondError(res, err, ctx.rawTarget, ctx.log, ctx.auditId));
  };
}
