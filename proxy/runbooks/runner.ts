/**
 * Runs runbooks. Every replica runs a `RunbookRunner`: it takes queued
 * targets (one cluster of a run) for the clusters it holds a tunnel to,
 * renders the steps from the definition and parameters the run recorded,
 * and sends each step's API calls as the runbook's own subject
 * (cluster-call.ts). Before it sends a step it writes the step `running`
 * (store.ts), so a step is never sent twice: if this replica stops
 * mid-step, the replica that takes the target over reports that step as
 * `unknown` instead of repeating it.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import { startPeriodic, type Periodic } from '../../common/periodic.js';
import { rolesPath, type TunnelGrant, type TunnelRoles } from '../../common/tunnel-protocol.js';
import type { AuditLog } from '../audit/audit-log.js';
import { objectDiff } from '../approvals/diff.js';
import type { Pool } from '../db/pool.js';
import { controlRequest } from '../tunnel/control-request.js';
import type { Tunnel, TunnelRegistry } from '../tunnel/registry.js';
import { failureMessage, sendCall, type CallAnswer, type RunIdentity } from './cluster-call.js';
import type { RunbookSpec } from './definition.js';
import { conditionMet, renderRun, type ApiCall, type RenderedStep } from './render.js';
import { derivedRules } from './rules.js';
import {
  claimTarget,
  expireOffline,
  finishTarget,
  renewLease,
  stepFinished,
  stepStarted,
  stepsSkipped,
  previewDone,
  type ClaimedTarget,
  type PreviewStep,
  type StepStatus,
} from './store.js';
import { setRunPreview } from '../approvals/run-approval.js';

export interface RunnerOptions {
  pool: Pool;
  registry: TunnelRegistry;
  audit: AuditLog;
  replicaId: string;
  /** For links in notifications. */
  publicUrl: string;
  log: Logger;
  /** A target's lease; renewed at a third of it while the replica works on it. */
  leaseMs?: number;
  /** Between two reads of an object a step waits on. */
  pollMs?: number;
  /** Targets worked on at once by this replica. */
  concurrency?: number;
}

interface StepOutcome {
  status: StepStatus;
  message: string;
  diff?: string;
  result?: unknown;
}

/** The most of a read or a log kept in a step's result. */
const maxResultChars = 64 * 1024;

/** `runbook-<name>@<hash of the rules>`: content-addressed, like the central roles. */
function roleRef(name: string, rules: unknown): string {
  const hash = createHash('sha256').update(JSON.stringify(rules)).digest('hex').slice(0, 12);
  return `${name}@${hash}`;
}

/** The role definitions and grants a runbook's subject gets for a run in `namespace`. */
export function runbookGrants(
  spec: RunbookSpec,
  namespace: string,
): { roles: TunnelRoles; grants: TunnelGrant[] } {
  const rules = derivedRules(spec);
  const roles: TunnelRoles = {};
  const grants: TunnelGrant[] = [];
  if (rules.namespaced.length && namespace) {
    const ref = roleRef(`runbook-${spec.name}`, rules.namespaced);
    roles[ref] = rules.namespaced;
    grants.push({ role: ref, namespaces: [namespace] });
  }
  if (rules.cluster.length) {
    const ref = roleRef(`runbook-${spec.name}-cluster`, rules.cluster);
    roles[ref] = rules.cluster;
    grants.push({ role: ref, namespaces: [] });
  }
  return { roles, grants };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RunbookRunner {
  private readonly leaseMs: number;
  private readonly pollMs: number;
  private readonly concurrency: number;
  private readonly working = new Set<Promise<void>>();
  private periodic: Periodic | undefined;
  private stopping = false;

  constructor(private readonly o: RunnerOptions) {
    this.leaseMs = o.leaseMs ?? 30_000;
    this.pollMs = o.pollMs ?? 1_000;
    this.concurrency = o.concurrency ?? 4;
  }

  start(): void {
    this.periodic = startPeriodic('runbook runner', 1_000, () => this.pass(), this.o.log);
  }

  /** A run was just created: look now rather than at the next tick. */
  kick(): void {
    void this.periodic?.tick();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.periodic?.stop();
    await Promise.allSettled([...this.working]);
  }

  private async pass(): Promise<void> {
    await expireOffline(this.o.pool, this.o.publicUrl);
    while (!this.stopping && this.working.size < this.concurrency) {
      const local = [...new Set(this.o.registry.tunnels().map((t) => t.cluster))];
      const t = await claimTarget(
        this.o.pool,
        this.o.replicaId,
        local,
        this.leaseMs,
        this.o.publicUrl,
      );
      if (!t) return;
      const p = this.work(t)
        .catch((err) =>
          this.o.log.error(
            { runId: t.runId, cluster: t.cluster, err: (err as Error).message },
            'runbook run failed in kubegate',
          ),
        )
        .finally(() => this.working.delete(p));
      this.working.add(p);
    }
  }

  private async work(t: ClaimedTarget): Promise<void> {
    const log = this.o.log.child({ runId: t.runId, cluster: t.cluster, runbook: t.spec.name });
    const finish = async (status: 'succeeded' | 'failed' | 'cancelled', message: string) => {
      await finishTarget(this.o.pool, t, status, message, this.o.publicUrl);
      log.info({ status }, 'runbook run finished on cluster');
    };
    const rendered = renderRun(t.spec, t.params, t.namespace || undefined, {
      now: new Date().toISOString(),
    });
    if (!rendered.steps) {
      const message = rendered.problems.join('; ');
      return t.mode === 'preview'
        ? this.previewed(t, [{ index: 0, name: 'render', status: 'failed', message }])
        : finish('failed', message);
    }
    const tunnel = this.o.registry.pick(t.cluster);
    // Before any step: a preview says why it has no diff; a run fails with nothing sent.
    const refuse = (message: string) =>
      t.mode === 'preview'
        ? this.previewed(t, [{ index: 0, name: 'preview', status: 'failed', message }])
        : finish('failed', message);
    if (!tunnel) return refuse('the cluster went offline before the run started');
    const { roles, grants } = runbookGrants(t.spec, t.namespace);
    const pushed = await controlRequest(
      tunnel.session,
      { ':method': 'POST', ':path': rolesPath, 'content-type': 'application/json' },
      { body: JSON.stringify(roles), timeoutMs: 15_000, what: 'runbook roles' },
    );
    if (pushed.status !== 200)
      return refuse(`the agent refused the runbook's role: ${pushed.body.toString()}`);

    let lost = false;
    let cancel: string | null = null;
    const keep = setInterval(() => {
      renewLease(this.o.pool, t, this.o.replicaId, this.leaseMs).then(
        (r) => {
          lost ||= r.lost;
          cancel = r.cancel;
        },
        () => undefined,
      );
    }, this.leaseMs / 3);
    const who = (index: number): RunIdentity => ({
      runbook: t.spec.name,
      grants,
      runId: t.runId,
      step: index,
      requestedBy: `${t.requesterKind}:${t.requester}`,
      ticket: t.ticket,
      cluster: t.cluster,
      replica: this.o.replicaId,
    });
    try {
      if (t.mode === 'preview') {
        const preview: PreviewStep[] = [];
        for (const step of rendered.steps) {
          if (lost || this.stopping) return;
          const o = await this.runStep(tunnel, step, who(step.index), true).catch(
            (err): StepOutcome => ({ status: 'failed', message: (err as Error).message }),
          );
          preview.push({
            index: step.index,
            name: step.name,
            status: o.status,
            message: o.message,
            ...(o.diff !== undefined ? { diff: o.diff } : {}),
          });
        }
        return await this.previewed(t, preview);
      }
      let failed: string | undefined;
      const steps = rendered.steps.slice(t.done);
      for (const [i, step] of steps.entries()) {
        if (lost || this.stopping) return; // another replica continues (or reports) from here
        if (cancel === null)
          cancel = (await renewLease(this.o.pool, t, this.o.replicaId, this.leaseMs)).cancel;
        if (cancel !== null) {
          await stepsSkipped(this.o.pool, t, steps.slice(i), `not run: ${cancel}`);
          return await finish('cancelled', cancel);
        }
        if (!(await stepStarted(this.o.pool, t, step))) return;
        const outcome = await this.runStep(tunnel, step, who(step.index), t.dryRun).catch(
          (err): StepOutcome => ({ status: 'failed', message: (err as Error).message }),
        );
        await stepFinished(this.o.pool, t, step.index, outcome);
        if (outcome.status === 'failed') {
          failed ??= `step ${step.index + 1} (${step.name}) failed: ${outcome.message}`;
          if (step.onFailure !== 'continue') {
            await stepsSkipped(
              this.o.pool,
              t,
              steps.slice(i + 1),
              'not run: an earlier step failed',
            );
            break;
          }
        }
      }
      await finish(failed ? 'failed' : 'succeeded', failed ?? '');
    } finally {
      clearInterval(keep);
    }
  }

  /** The approvers' dry run on this cluster is in; once every cluster's is, the approval shows it. */
  private async previewed(t: ClaimedTarget, preview: PreviewStep[]): Promise<void> {
    const diff = await previewDone(this.o.pool, t, preview);
    if (diff !== undefined && t.approvalId) await setRunPreview(this.o.pool, t.approvalId, diff);
  }

  /** One step: read the object, send the change, wait if asked, and say what changed. */
  private async runStep(
    tunnel: Tunnel,
    step: RenderedStep,
    who: RunIdentity,
    dryRun: boolean,
  ): Promise<StepOutcome> {
    const call = (c: ApiCall) => sendCall(tunnel, c, who, this.o.audit);
    const get = (path: string): ApiCall => ({ method: 'GET', path, query: '' });
    const resource = step.objectPath.split('/').at(-2) ?? '';
    let diff: string | undefined;
    let message = '';
    if (step.call) {
      const changesObject = step.action !== 'job';
      let before: unknown = null;
      if (changesObject) {
        const b = await call(get(step.objectPath));
        if (b.status === 200) before = b.json;
        else if (b.status !== 404) return { status: 'failed', message: failureMessage(b) };
      }
      const c = dryRun
        ? { ...step.call, query: [step.call.query, 'dryRun=All'].filter(Boolean).join('&') }
        : step.call;
      const a = await call(c);
      if (a.status >= 300) return { status: 'failed', message: failureMessage(a) };
      const after = step.action === 'delete' ? null : a.json;
      diff = objectDiff(before, after, resource);
      message = dryRun ? 'dry run: the apiserver accepted the change; nothing was changed' : 'done';
    }
    if (step.poll) {
      if (dryRun && step.call) return { status: 'succeeded', message, diff };
      const p = step.poll;
      const until = Date.now() + p.timeoutSeconds * 1000;
      for (;;) {
        const a = await call(p.call);
        if (a.status >= 300 && a.status !== 404)
          return { status: 'failed', message: failureMessage(a), diff };
        const state = a.status === 200 ? conditionMet(a.json, p.condition) : 'no';
        if (state === 'yes')
          return {
            status: 'succeeded',
            message: `${p.condition.type} is ${p.condition.status}`,
            diff,
          };
        if (state === 'failed')
          return { status: 'failed', message: `${p.condition.type} will not be reached`, diff };
        if (dryRun) return { status: 'succeeded', message: 'dry run: not waited for', diff };
        if (Date.now() >= until)
          return {
            status: 'failed',
            message: `${p.condition.type} was not ${p.condition.status} within ${p.timeoutSeconds} s`,
            diff,
          };
        await sleep(this.pollMs);
      }
    }
    if (step.read) {
      const a = await call(step.read);
      if (a.status >= 300) return { status: 'failed', message: failureMessage(a) };
      return { status: 'succeeded', message: 'read', result: resultOf(a) };
    }
    return { status: 'succeeded', message, diff };
  }
}

function resultOf(a: CallAnswer): unknown {
  if (a.json !== undefined && a.body.length <= maxResultChars) return a.json;
  const text = a.body.toString('utf8');
  return text.length > maxResultChars || a.truncated
    ? `${text.slice(0, maxResultChars)}\n… (cut at ${maxResultChars} characters)`
    : text;
}
