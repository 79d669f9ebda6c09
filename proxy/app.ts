/**
 * Wiring: config → database → CAs → stores → listeners. Everything the proxy
 * runs is created here and closed by the returned handle, so `main.ts` only
 * deals with the process (signals, exit codes).
 */
import type { IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Logger } from '../common/log.js';
import { parseHostPort } from '../common/config.js';
import { enrollAddressOf, recordingS3Settings, type ProxyConfig } from './config.js';
import { createPool, type Pool } from './db/pool.js';
import { DbHealth } from './db/health.js';
import { SourceBudget } from './authn/source-budget.js';
import { migrate } from './db/migrate.js';
import { parseMasterKey } from './pki/master-key.js';
import { loadCas, type Cas } from './pki/ca-store.js';
import { TokenStore } from './authn/token-store.js';
import { ClusterStore } from './clusters/cluster-store.js';
import { TunnelRegistry } from './tunnel/registry.js';
import { TunnelHealth } from './tunnel/health.js';
import { BodyBudget } from './forward/body-budget.js';
import { createEnrollServer } from './tunnel/enroll-server.js';
import { createRenewServer } from './tunnel/renew-server.js';
import { startTunnelListener, type TunnelListener } from './tunnel/listener.js';
import { startEnrollListener } from './tunnel/enroll-listener.js';
import { startFront, type Front } from './front/server.js';
import { createKubeHandler, createUpgradeHandler, readAs } from './pipeline.js';
import { createTerminalUpgrade, isTerminalTarget, terminalRoutes } from './console/terminal.js';
import { PolicyStore } from './authz/policy-store.js';
import { OpenRequests, endReasons, endStaleGrants } from './open-requests.js';
import { createIdentityHandler } from './identity/handler.js';
import { askAgent, GrantSync } from './jit/grant-sync.js';
import { adminApiRoutes } from './api/router.js';
import { startMetricsServer } from '../common/metrics-server.js';
import { proxyMetrics } from './metrics.js';
import { AuditLog } from './audit/audit-log.js';
import { auditRoutes } from './audit/api.js';
import { createRestApi } from './http/openapi.js';
import { loadPolicyFile } from './audit/policy.js';
import { defaultSpoolDir } from './audit/spool-dir.js';
import { startApprovals } from './approvals/wiring.js';
import { runbooksRoutes } from './runbooks/api.js';
import { RunbookRunner } from './runbooks/runner.js';
import { namespacesRoutes } from './namespaces/api.js';
import { NamespaceReconciler } from './namespaces/reconciler.js';
import { startScaleOut, type ScaleOut } from './ha/scale-out.js';
import { consoleAssets } from './console/assets.js';
import { serveAsset } from './console/static.js';
import { sessionOrBearer } from './console/caller.js';
import { consoleRoutes } from './console/api.js';
import { clusterHealth } from './ha/cluster-health.js';
import { closeTunnelsOnRevocation } from './tunnel/revocation.js';
import { PgRecordingStorage } from './recording/pg-storage.js';
import { RecordingSweeper } from './recording/retention.js';
import { S3RecordingStorage, s3Client } from './recording/s3-storage.js';
import { PolicyCache, type Mode } from './recording/policy.js';
import { SessionRecorder } from './recording/recorder.js';
import { recordingRoutes } from './recording/api.js';
import { RecordingAccess } from './recording/access.js';

export interface ProxyApp {
  front: Front;
  tunnel: TunnelListener;
  registry: TunnelRegistry;
  pool: Pool;
  cas: Cas;
  policy: PolicyStore;
  audit: AuditLog;
  scaleOut: ScaleOut;
  close(): Promise<void>;
}

export async function startProxy(config: ProxyConfig, log: Logger): Promise<ProxyApp> {
  // The policy connection's heartbeat tells whether PostgreSQL is answering;
  // while it is not, the pools refuse new work at once (proxy/db/health.ts).
  const dbHealth = new DbHealth();
  const pool = createPool({
    url: config.databaseUrl,
    applicationName: `kubegate-proxy ${config.replicaId}`,
    health: dbHealth,
  });
  // Token lookups get a small pool of their own: a flood of unauthenticated
  // requests can hold at most these connections, never the main pool.
  const authPool = createPool({
    url: config.databaseUrl,
    max: 4,
    statementTimeoutMs: 2000,
    connectTimeoutMs: 1000,
    applicationName: `kubegate-authn ${config.replicaId}`,
    health: dbHealth,
  });
  // Session recordings write chunks on a pool of their own: many long sessions
  // flushing every second can never take the connections requests need.
  const recordingPool = createPool({
    url: config.databaseUrl,
    max: 4,
    applicationName: `kubegate-recording ${config.replicaId}`,
    health: dbHealth,
  });
  let audit: AuditLog | undefined;
  let scaleOut: ScaleOut | undefined;
  try {
    if (config.migrateOnStart) {
      const r = await migrate(pool, undefined, (m) => log.info(m));
      if (r.applied.length) log.info({ applied: r.applied }, 'migrations applied');
    }
    const cas = await loadCas(pool, parseMasterKey(config.masterKey));
    const hosts = config.tlsHosts;
    const serving = await cas.server.issueKeyAndCert({
      commonName: hosts[0] ?? 'kubegate',
      usage: 'server',
      ttlMs: 30 * 86_400_000,
      dnsNames: hosts.filter((h) => !isIP(h)),
      ips: hosts.filter((h) => isIP(h)),
    });
    const frontCert = config.tlsCertFile
      ? readFileSync(config.tlsCertFile, 'utf8')
      : serving.certPem;
    const frontKey = config.tlsKeyFile ? readFileSync(config.tlsKeyFile, 'utf8') : serving.keyPem;

    const tokens = new TokenStore(pool, {
      lookupPool: authPool,
      cacheMs: config.tokenCacheTtl,
      staleMs: config.policyStaleAfter,
      health: dbHealth,
      sourceBudget: new SourceBudget({ burst: 60, perSecond: 10 }),
    });
    const clusters = new ClusterStore(pool);
    const registry = new TunnelRegistry();
    // Issue #17 items 5 and 7: dead tunnels noticed while requests wait; request bodies bounded.
    const health = new TunnelHealth(registry, {
      probeAfterMs: config.tunnelProbeAfter,
      timeoutMs: config.tunnelProbeTimeout,
      log: log.child({ part: 'tunnel' }),
      onProbe: (alive) => proxyMetrics.dataplane.probe(alive),
    });
    const bodies = new BodyBudget(config.bodyBufferPerIdentity, config.bodyBufferPerReplica);
    proxyMetrics.dataplane.setHeldSource(() => bodies.held());
    // Scale-out (proxy/ha/): replica registry, peer listener and forwarding, drain.
    const ha = (scaleOut = await startScaleOut({
      pool,
      serverCa: cas.server,
      registry,
      replicaId: config.replicaId,
      peerListen: config.peerListen,
      peerAddress: config.peerAddress,
      heartbeatMs: config.replicaHeartbeat,
      staleAfterMs: config.replicaStaleAfter,
      log,
      health,
    }));
    const open = new OpenRequests();
    const policy = new PolicyStore({
      pool,
      databaseUrl: config.databaseUrl,
      staleAfterMs: config.policyStaleAfter,
      health: dbHealth,
      log: log.child({ part: 'policy' }),
    });
    await policy.start();
    // Stale grants: open requests end when their token is revoked, their
    // binding removed or expired, or their token expires (open-requests.ts).
    const stopStaleGrants = endStaleGrants({
      open,
      policy,
      evictToken: (hash) => tokens.evict(hash),
      pool,
    });
    // JIT accounts follow the policy: push roles and grants to agents on every
    // change, and again when the next binding expires.
    const grantSync = new GrantSync(registry, () => policy.lastKnown(), log.child({ part: 'jit' }));
    let expiryTimer: NodeJS.Timeout | undefined;
    policy.onChange((state) => {
      void grantSync.policyChanged(state);
      clearTimeout(expiryTimer);
      const now = Date.now();
      const next = Math.min(
        ...state.snapshot.bindings
          .map((b) => b.expiresAt?.getTime() ?? Infinity)
          .filter((t) => t > now),
      );
      if (Number.isFinite(next)) {
        expiryTimer = setTimeout(
          () => void grantSync.policyChanged(state),
          Math.min(next - now + 50, 2 ** 31 - 1),
        );
        expiryTimer.unref();
      }
    });
    // A revoked agent, a disabled or deleted cluster: its tunnels close on every replica.
    closeTunnelsOnRevocation({ policy, registry, clusters, log: log.child({ part: 'tunnel' }) });
    const certIssue = {
      clusters,
      agentCa: cas.agent,
      certTtlMs: config.agentCertTtl,
      log: log.child({ part: 'enroll' }),
    };
    // First enrollment on its own port (no client certificate); renewal on the tunnel port.
    const enrollServer = createEnrollServer(certIssue);
    const renewServer = createRenewServer(certIssue);

    const servingPems = { certPem: serving.certPem, keyPem: serving.keyPem };
    const t = parseHostPort(config.tunnelListen);
    const tunnel = await startTunnelListener({
      ...t,
      ...servingPems,
      agentCaPem: cas.agent.certPem,
      clusters,
      registry,
      replicaId: config.replicaId,
      onTunnelReady: (t) => grantSync.tunnelReady(t),
      onTunnelUp: ha.tunnelUp,
      onTunnelDown: ha.tunnelDown,
      liveReplicas: () => ha.replicas.liveReplicas,
      onRenewal: renewServer.accept,
      log: log.child({ part: 'tunnel' }),
    });
    const e = parseHostPort(config.enrollListen);
    const enroll = await startEnrollListener({
      ...e,
      ...servingPems,
      enrollServer,
      log: log.child({ part: 'enroll' }),
    });
    // Before the front opens: a spool left by a previous run is replayed first.
    const auditLog = (audit = await AuditLog.open({
      pool,
      log,
      replica: config.replicaId,
      enabled: config.audit !== 'off',
      spoolDir: config.auditSpoolDir || defaultSpoolDir(config.databaseUrl, config.listen),
      spoolMaxBytes: config.auditSpoolMaxBytes,
      strict: config.auditStrict,
      retentionMs: config.auditRetention,
      policy: config.auditPolicyFile ? loadPolicyFile(config.auditPolicyFile) : undefined,
      webhookUrl: config.auditWebhookUrl || undefined,
      observe: (o, n) => proxyMetrics.observeAudit(o, n),
    }));
    const recordingAccess = new RecordingAccess(config.recordingViewerGroups, () =>
      policy.current(),
    );
    const identity = createIdentityHandler({
      config,
      pool,
      tokens,
      recordings: recordingAccess,
      caPem: config.tlsCertFile ? undefined : cas.server.certPem,
      loginBudget: new SourceBudget({ burst: 30, perSecond: 0.5 }),
      log: log.child({ part: 'identity' }),
    });
    // The web console: its JSON APIs take the browser session (with CSRF checks) as well as bearer tokens.
    const apiCaller = sessionOrBearer({ pool, tokens, settings: identity.settings });
    const assets = consoleAssets();
    if (assets.missing) log.error(assets.missing);
    if (assets.vendorMissing.length > 0)
      log.error(
        `the console's terminal files are not installed (${assets.vendorMissing.join(', ')}); run \`npm ci\``,
      );
    const consoleApiRoutes = consoleRoutes({
      resolveCaller: apiCaller,
      adminGroups: config.adminGroups,
      policy: () => policy.current(),
      // Fleet-wide, from the replica registry: every replica shows the same truth.
      health: (names) => clusterHealth(pool, names, config.replicaStaleAfter),
      log,
    });
    const auditApiRoutes = auditRoutes({
      pool,
      tokens,
      adminGroups: config.adminGroups,
      authenticate: apiCaller,
      log,
    });
    proxyMetrics.setSources({
      tunnels: registry,
      pool,
      isKnownCluster: (n) => policy.lastKnown()?.clusters.has(n) ?? false,
      knownClusters: () =>
        [...(policy.lastKnown()?.clusters.values() ?? [])]
          .filter((c) => !c.disabled)
          .map((c) => c.name),
      auditQueueEvents: () => auditLog.queued,
      auditSpoolBytes: () => auditLog.spoolBytes,
      auditSpoolLimitBytes: () => config.auditSpoolMaxBytes,
    });
    const m = config.metricsListen ? parseHostPort(config.metricsListen) : undefined;
    const metricsServer = m
      ? await startMetricsServer(m.host, m.port, proxyMetrics.registry)
      : undefined;
    // Session recording (proxy/recording/): exec, attach and port-forward, stored in
    // PostgreSQL or, with KUBEGATE_RECORDING_STORAGE=s3, in an S3-compatible object store.
    const s3 = recordingS3Settings(config);
    const objects = s3
      ? new S3RecordingStorage({
          pool: recordingPool,
          client: s3Client(s3),
          settings: s3,
          masterKey: parseMasterKey(config.masterKey),
        })
      : undefined;
    const recordingStorage = objects ?? new PgRecordingStorage(recordingPool);
    const sweeper = new RecordingSweeper(pool, {
      retentionMs: config.recordingRetention,
      replicaStaleMs: config.replicaStaleAfter,
      ...(objects ? { deleteObjects: (keys: string[]) => objects.deleteObjects(keys) } : {}),
      observe: (what, n) => proxyMetrics.observeRecordingsSwept(what, n),
      log: log.child({ part: 'recording' }),
    });
    sweeper.start();
    const recordingPolicies = new PolicyCache(pool);
    const recorder = new SessionRecorder({
      storage: recordingStorage,
      policies: recordingPolicies,
      defaultMode: config.recordingDefaultMode as Mode,
      replica: config.replicaId,
      log: log.child({ part: 'recording' }),
    });
    const pipelineDeps = {
      recorder,
      tokens,
      policy,
      registry,
      peers: ha.peers,
      open,
      maxRequestBody: config.maxRequestBody,
      audit: auditLog,
      log,
      bodies,
      bodyIdleMs: config.bodyIdleTimeout,
      health,
    };
    const f = parseHostPort(config.listen);
    let ready = true;
    // Just-in-time approvals: the gate (stage 4b), its REST API, webhooks.
    const approvals = startApprovals({
      pool,
      tokens,
      registry,
      settings: identity.settings,
      masterKey: parseMasterKey(config.masterKey),
      maxGatedBody: Math.min(config.maxRequestBody, 8 * 1024 * 1024),
      log,
    });
    policy.onChange(() => approvals.gate.invalidate());
    // Runbooks: runs are taken by the replica holding the cluster's tunnel.
    const runner = new RunbookRunner({
      pool,
      registry,
      audit: auditLog,
      replicaId: config.replicaId,
      leaseMs: config.runbookLease,
      publicUrl: identity.settings.publicUrl.replace(/\/+$/, ''),
      log: log.child({ part: 'runbooks' }),
    });
    runner.start();
    // Self-service namespaces: kept as their profiles say by the replica holding the tunnel.
    const namespaces = new NamespaceReconciler({
      pool,
      registry,
      replicaId: config.replicaId,
      periodMs: config.namespaceReconcile,
      log: log.child({ part: 'namespaces' }),
    });
    namespaces.start();
    // Every REST endpoint, from one route table: each feature exports its routes.
    const apiRoutes = [
      ...identity.routes,
      ...adminApiRoutes({
        pool,
        tokens,
        adminGroups: config.adminGroups,
        authenticate: apiCaller,
        log: log.child({ part: 'api' }),
        replicaStaleAfterMs: config.replicaStaleAfter,
        bootstrap: {
          tunnelAddress: config.tunnelAddress,
          enrollAddress: enrollAddressOf({ ...config, enrollListen: `${e.host}:${enroll.port}` }),
          serverCaPem: cas.server.certPem,
          bootstrapTokenTtlMs: config.bootstrapTokenTtl,
          agentImage: config.agentImage,
        },
        askAgent: (cluster, path) => askAgent(registry, cluster, path),
      }),
      ...consoleApiRoutes,
      ...terminalRoutes({
        resolveCaller: apiCaller,
        policy: () => policy.current(),
        health: (names) => clusterHealth(pool, names, config.replicaStaleAfter),
        readAs: (who, target) => readAs({ ...pipelineDeps, gate: approvals.gate }, who, target),
      }),
      ...auditApiRoutes,
      ...approvals.routes,
      ...recordingRoutes({
        pool,
        storage: recordingStorage,
        adminGroups: config.adminGroups,
        access: recordingAccess,
        authenticate: apiCaller,
        policiesChanged: () => recordingPolicies.invalidate(),
        log,
      }),
      ...runbooksRoutes({
        pool,
        tokens,
        settings: identity.settings,
        policy: () => policy.current(),
        changed: () => {
          runner.kick();
          approvals.notified();
        },
        log,
      }),
      ...namespacesRoutes({
        pool,
        tokens,
        settings: identity.settings,
        policy: () => policy.current(),
        changed: () => {
          namespaces.kick();
          approvals.notified();
        },
        log,
      }),
    ];
    const api = createRestApi(apiRoutes, log);
    const kubeUpgrade = createUpgradeHandler({ ...pipelineDeps, gate: approvals.gate });
    // The console's terminal: checked there, then the same exec upgrade as kubectl's.
    const terminal = createTerminalUpgrade({
      pool,
      tokens,
      settings: identity.settings,
      log: log.child({ part: 'terminal' }),
      kubeUpgrade,
    });
    const front = await startFront({
      host: f.host,
      port: f.port,
      certPem: frontCert,
      keyPem: frontKey,
      log: log.child({ part: 'front' }),
      kube: createKubeHandler({ ...pipelineDeps, gate: approvals.gate }),
      upgrade: (req, socket, head) =>
        isTerminalTarget(req.url)
          ? terminal(req as IncomingMessage, socket, head)
          : kubeUpgrade(req, socket, head),
      console: (req, res) => serveAsset(assets, req, res),
      identity: identity.pages,
      api,
      ready: () => ready,
    });
    const drainer = ha.drainer({
      front,
      tunnel,
      setUnready: () => (ready = false),
      deadlineMs: config.drainTimeout,
    });
    log.info(
      {
        front: `${f.host}:${front.port}`,
        tunnel: `${t.host}:${tunnel.port}`,
        enroll: `${e.host}:${enroll.port}`,
        peer: ha.peerAddress,
        replica: config.replicaId,
      },
      'kubegate proxy listening',
    );
    return {
      front,
      tunnel,
      registry,
      pool,
      cas,
      policy,
      audit: auditLog,
      scaleOut: ha,
      close: async () => {
        // Drain first: agents move, in-flight requests finish, watches end cleanly.
        await drainer.drain();
        ready = false;
        stopStaleGrants();
        sweeper.stop();
        clearTimeout(expiryTimer);
        // End open watches and streams now, so their audit events are written
        // before the audit log closes (clients re-watch on another replica).
        open.sweep(() => false, endReasons.shuttingDown());
        renewServer.close(); // an open renewal would hold the tunnel listener's close
        await Promise.all([
          tunnel.close(),
          enroll.close(),
          front.close(),
          policy.stop(),
          metricsServer?.close(),
          identity.close(),
          approvals.close(),
          runner.stop(),
          namespaces.stop(),
        ]);
        await ha.close();
        // The sessions just ended: their recordings are closed before the pools go.
        await recorder.settled(5000);
        await auditLog.close();
        dbHealth.stop();
        await Promise.all([pool.end(), authPool.end(), recordingPool.end()]);
      },
    };
  } catch (err) {
    await audit?.close().catch(() => undefined);
    await scaleOut?.close().catch(() => undefined);
    dbHealth.stop();
    await pool.end().catch(() => undefined);
    await authPool.end().catch(() => undefined);
    await recordingPool.end().catch(() => undefined);
    throw err;
  }
}
