/**
 * `GET /api/v1/clusters/{name}/jit-accounts`: the just-in-time accounts a
 * cluster's agent holds right now — which user, which ServiceAccount, which
 * bindings, last use and when idle clean-up will delete it. Read live from the
 * agent (which reads its cluster), so it shows what the cluster enforces, not
 * what the proxy believes. Never carries a token.
 */
import { KgError } from '../../common/errors.js';
import { jitAccountsPath, type JitAccountsReport } from '../../common/tunnel-protocol.js';
import { sendJson } from './json.js';
import type { RouteSpec } from '../http/routes.js';
import { admin, type ApiCall } from './types.js';
import { registered } from './clusters.js';

export const jitAccountRoutes: RouteSpec<ApiCall>[] = [
  {
    path: '/api/v1/clusters/{name}/jit-accounts',
    tag: 'clusters',
    methods: {
      GET: admin("The just-in-time accounts a cluster's agent holds now", async (call) => {
        const { key: name } = await registered(call);
        let report: JitAccountsReport | undefined;
        try {
          report = (await call.deps.askAgent?.(name, jitAccountsPath)) as
            JitAccountsReport | undefined;
        } catch (err) {
          throw new KgError(
            'KG_ERR_UPSTREAM',
            `the agent of cluster "${name}" could not list its accounts: ${(err as Error).message}`,
            { cause: err },
          );
        }
        if (!report)
          throw new KgError(
            'KG_ERR_CLUSTER_OFFLINE',
            `cluster "${name}" has no agent connected to this proxy replica; retry, or check the agent`,
          );
        sendJson(call, { cluster: name, ...report });
      }),
    },
  },
];
