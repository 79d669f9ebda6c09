/**
 * `kubegate agent`: config → wiring → signals. The only place the agent
 * process exits. With KUBEGATE_WORKERS above 1 this process becomes the
 * primary (common/workers.ts): it enrolls and renews the identity and keeps
 * the just-in-time accounts (agent/jit/jit-ipc.ts), and its workers carry
 * the tunnels and requests.
 */
import type { Worker } from 'node:cluster';
import { createLogger, type Logger } from '../common/log.js';
import { isKgError } from '../common/errors.js';
import { configOrExit, parseHostPort } from '../common/config.js';
import { runPrimary, workerCount, workerIndex, workerReady } from '../common/workers.js';
import { loadAgentConfig, type AgentConfig } from './config.js';
import { startAgent, startAgentState, type AgentShared } from './app.js';
import { agentMetrics } from './metrics.js';
import { JitOverIpc, processChannel, serveJit } from './jit/jit-ipc.js';
import type { AgentIdentity } from './enroll/store.js';

export async function runAgent(): Promise<void> {
  const config = configOrExit(loadAgentConfig);
  const root = createLogger({ name: 'kubegate-agent', level: config.logLevel });
  const index = workerIndex();
  const workers = workerCount(config.workers);
  if (index === undefined && workers > 1) return runAgentPrimary(config, workers, root);
  const log = index === undefined ? root : root.child({ worker: index });
  const shared = index === undefined ? undefined : await sharedFromPrimary(config);
  const app = await startAgent(
    index === undefined ? config : { ...config, metricsListen: '' },
    log,
    shared,
  ).catch((err: unknown) => fatal(log, err));
  workerReady(agentMetrics.registry);
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

function fatal(log: Logger, err: unknown): never {
  log.fatal(
    { code: isKgError(err) ? err.code : undefined },
    isKgError(err) ? err.message : String(err),
  );
  process.exit(1);
}

interface IdentityMessage {
  kg: 'identity';
  certPem: string;
  keyPem: string;
  notAfter: string;
}

/** The primary: one identity and one set of JIT accounts for all workers. */
async function runAgentPrimary(config: AgentConfig, workers: number, log: Logger): Promise<void> {
  const state = await startAgentState(config, log).catch((err: unknown) => fatal(log, err));
  agentMetrics.setSources({
    certificateNotAfter: () => state.identity.current().notAfter,
    jit: state.jit ? () => state.jit!.stats : undefined,
  });
  const message = (): IdentityMessage => {
    const id = state.identity.current();
    return {
      kg: 'identity',
      certPem: id.certPem,
      keyPem: id.keyPem,
      notAfter: id.notAfter.toISOString(),
    };
  };
  const live = new Set<Worker>();
  // A renewed certificate goes to every worker; their next dials use it.
  state.identity.onChange(() => {
    for (const w of live) if (w.isConnected()) w.send(message());
  });
  const m = config.metricsListen ? parseHostPort(config.metricsListen) : undefined;
  await runPrimary({
    workers,
    log,
    metrics: m,
    registry: agentMetrics.registry,
    onFork: (w) => {
      live.add(w);
      w.once('exit', () => live.delete(w));
      // A worker asks once its listener is on (a message sent earlier could be lost).
      w.on('message', (q: { kg?: string }) => {
        if (q?.kg === 'identity?' && w.isConnected()) w.send(message());
      });
      if (state.jit) serveJit(state.jit, w, log.child({ part: 'jit' }));
    },
  });
}

/** A worker's identity and JIT accounts: the primary's, over IPC. */
async function sharedFromPrimary(config: AgentConfig): Promise<AgentShared> {
  let current: AgentIdentity | undefined;
  const first = new Promise<void>((resolve) => {
    processChannel.onMessage((m) => {
      const id = m as IdentityMessage;
      if (id?.kg !== 'identity') return;
      current = { certPem: id.certPem, keyPem: id.keyPem, notAfter: new Date(id.notAfter) };
      resolve();
    });
  });
  processChannel.send({ kg: 'identity?' });
  await first;
  return {
    identity: { current: () => current! },
    jit: config.forwardMode === 'jit' ? new JitOverIpc() : undefined,
  };
}
