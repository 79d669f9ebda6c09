/**
 * Agent wiring: config → apiserver access → identity → tunnels. With
 * several workers (KUBEGATE_WORKERS, agent/main.ts) the primary keeps what
 * must be one per agent — its identity and the just-in-time accounts
 * (`startAgentState`) — and each worker runs the tunnels and the request
 * path (`startAgent` with `shared`).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import * as k8s from '@kubernetes/client-node';
import { KgError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { parseHostPort } from '../common/config.js';
import { version } from '../common/version.js';
import { readCaFile, type AgentConfig } from './config.js';
import { kubeConfigFor } from './kube-client.js';
import { IdentityManager } from './enroll/identity.js';
import { Upstream } from './forward/forward.js';
import { TunnelClient } from './tunnel/tunnel-client.js';
import { TunnelSpread } from './tunnel/tunnel-spread.js';
import { JitManager, type JitAccess } from './jit/jit-manager.js';
import type { AgentIdentity } from './enroll/store.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { agentMetrics } from './metrics.js';
import { loadCeiling } from './jit/ceiling.js';
import { kubeJson } from './namespaces/kube-json.js';
import { NamespaceReconciler } from './namespaces/reconcile.js';

export interface AgentApp {
  tunnels: TunnelClient[];
  close(): Promise<void>;
}

/** What one agent keeps once, however many processes carry its tunnels. */
export interface AgentShared {
  identity: { current(): AgentIdentity };
  jit: JitAccess | undefined;
}

export interface AgentState {
  identity: IdentityManager;
  jit: JitManager | undefined;
  stop(): void;
}

function apiserverAccess(config: AgentConfig) {
  if (!config.apiserverUrl) {
    throw new KgError(
      'KG_ERR_CONFIG',
      'KUBEGATE_APISERVER_URL is not set and this is not a pod (no KUBERNETES_SERVICE_HOST)',
    );
  }
  const kc = kubeConfigFor({
    server: config.apiserverUrl,
    caFile: config.apiserverCaFile,
    tokenFile: config.apiserverTokenFile,
  });
  return { kc, core: kc.makeApiClient(k8s.CoreV1Api), apiserverUrl: config.apiserverUrl };
}

/** The agent's identity (enrolled, renewed) and its just-in-time accounts. */
export async function startAgentState(config: AgentConfig, log: Logger): Promise<AgentState> {
  const { kc, core } = apiserverAccess(config);
  const proxyCaPem = readCaFile('proxyCaFile', config.proxyCaFile);
  const serverName = config.tunnelServerName ?? parseHostPort(config.tunnelAddress).host;
  const identity = new IdentityManager({
    cluster: config.cluster,
    enrollAddress: config.enrollAddress,
    enrollServerName: config.enrollServerName ?? parseHostPort(config.enrollAddress).host,
    tunnelAddress: config.tunnelAddress,
    tunnelServerName: serverName,
    proxyCaPem,
    bootstrapTokenFile: config.bootstrapTokenFile,
    namespace: config.namespace,
    secretName: config.identitySecret,
    core,
    log: log.child({ part: 'identity' }),
  });
  await identity.init();

  const jit =
    config.forwardMode === 'jit'
      ? new JitManager({
          core,
          rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
          namespace: config.namespace,
          idleMs: config.jitIdle,
          tokenSeconds: config.jitTokenSeconds,
          ceiling: config.jitCeilingFile ? loadCeiling(config.jitCeilingFile) : undefined,
          log: log.child({ part: 'jit' }),
        })
      : undefined;
  jit?.startCleanup(config.jitCleanupInterval);
  return {
    identity,
    jit,
    stop: () => {
      identity.stop();
      jit?.stop();
    },
  };
}

/**
 * Tunnels and the request path. `shared`: the identity and JIT accounts a
 * primary keeps for this worker; absent, this process keeps its own.
 */
export async function startAgent(
  config: AgentConfig,
  log: Logger,
  shared?: AgentShared,
): Promise<AgentApp> {
  const { kc, apiserverUrl } = apiserverAccess(config);
  const caPem = readCaFile('apiserverCaFile', config.apiserverCaFile);
  const proxyCaPem = readCaFile('proxyCaFile', config.proxyCaFile);
  const serverName = config.tunnelServerName ?? parseHostPort(config.tunnelAddress).host;
  const own = shared ? undefined : await startAgentState(config, log);
  const identity = shared?.identity ?? own!.identity;
  const jit = shared ? shared.jit : own!.jit;
  // In both modes the agent keeps managed namespaces as itself (its own RBAC, fenced in JIT mode).
  const namespaces = new NamespaceReconciler({
    kube: kubeJson(kc),
    agentNamespace: config.namespace,
    log: log.child({ part: 'namespaces' }),
  });
  const upstream = new Upstream({
    apiserverUrl,
    caPem,
    tokenFile: config.apiserverTokenFile,
    jit,
    log: log.child({ part: 'upstream' }),
  });
  const agentId = `${process.env.POD_NAME ?? hostname()}-${randomBytes(3).toString('hex')}`;
  // Tunnels spread over distinct replicas and move off draining ones (tunnel-spread.ts).
  const spread = new TunnelSpread(
    config.tunnels,
    (i, hooks) =>
      new TunnelClient(i, {
        cluster: config.cluster,
        agentId,
        agentVersion: version,
        tunnelAddress: config.tunnelAddress,
        serverName,
        proxyCaPem,
        identity: () => identity.current(),
        onStream: (stream, headers) => upstream.handle(stream, headers),
        jit,
        namespaces,
        reconnectBaseMs: config.reconnectBase,
        reconnectMaxMs: config.reconnectMax,
        ...hooks,
        log: log.child({ part: 'tunnel' }),
      }),
    config.rebalanceInterval,
    log.child({ part: 'tunnel' }),
  );
  const tunnels = spread.tunnels;
  // A worker's scrape says its tunnels; the primary's says the identity and accounts.
  agentMetrics.setSources(
    own
      ? {
          tunnels,
          certificateNotAfter: () => identity.current().notAfter,
          jit: own.jit ? () => own.jit!.stats : undefined,
        }
      : { tunnels },
  );
  const m = config.metricsListen ? parseHostPort(config.metricsListen) : undefined;
  const metricsServer = m
    ? await startMetricsServer(m.host, m.port, agentMetrics.registry)
    : undefined;
  spread.start();
  log.info(
    { cluster: config.cluster, tunnels: tunnels.length, proxy: config.tunnelAddress },
    'kubegate agent started',
  );
  return {
    tunnels,
    close: async () => {
      own?.stop();
      spread.stop();
      await upstream.close();
      await metricsServer?.close();
    },
  };
}
