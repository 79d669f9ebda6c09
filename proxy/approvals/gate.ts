/**
 * Stage 4b of the request path: the approval gate. Runs after authorize, on
 * requests RBAC already allows. A request a gate policy names (cluster
 * labels, namespaces, resources, verbs) runs only with an approval for
 * exactly it — same user, cluster, method, path, query and body:
 *
 * - approved and within its window → spent (once) and forwarded;
 * - otherwise → 403 Status naming the pending approval (opened now, with a
 *   diff of the change for the approver, or the one already open).
 *
 * Only gated requests are buffered (bounded): the gate must hash the body
 * before anything reaches the cluster, and then forwards those same bytes.
 */
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { RequestInfo } from '../authz/request-info.js';
import type { ClusterRef } from '../authz/types.js';
import type { RequestContext } from '../context.js';
import type { Pool } from '../db/pool.js';
import type { AnyRequest } from '../forward/forward.js';
import { readBody, type ReadBounds } from '../http/read-body.js';
import type { TunnelRegistry } from '../tunnel/registry.js';
import { proxyMetrics } from '../metrics.js';
import { openAction, openApproval, returnApproval, spendApproval } from './actions.js';
import { bodySha256, requestFingerprint } from './fingerprint.js';
import type { Notice } from './notify.js';
import { listPolicies } from './policies.js';
import type { GatePolicy } from './policy-spec.js';
import { GateIndex } from './policy-match.js';
import { previewDiff } from './preview.js';
import type { ActionSpec, RequestRow } from './records.js';

export interface GateDeps {
  pool: Pool;
  registry: TunnelRegistry;
  publicUrl: string;
  /** Largest body a gated request may have (it is held in memory). */
  maxBody: number;
  notice: (r: RequestRow) => Notice;
  queued: () => void;
  /** Expire what is due for this exact request (own transaction, audited, notified). */
  sweep: (fingerprint: string) => Promise<unknown>;
  log: Logger;
}

/** What the rest of the pipeline does with a request the gate let through. */
export interface GatePass {
  /** The body as read (forward sends these bytes); undefined when not gated. */
  body?: Buffer;
  /**
   * An approval was spent: call with the cluster's status before passing it
   * on. A refusal that changed nothing (4xx other than 401/403) gives the
   * approval back, so the same request can be sent again once fixed.
   */
  settle?: (status: number) => void;
  /** An approval was spent but the request never left kubegate: give it back. */
  notSent?: () => void;
}

/**
 * Whether the cluster's answer means the approved change did not happen
 * and may be tried again: a 4xx says the apiserver refused it before
 * changing anything (400 bad request, 404 no such object or namespace,
 * 409 conflict, 410, 412, 415, 422 invalid, 429 throttled). 401 and 403
 * are the cluster's own authorization refusing it: that is not retried on
 * this approval (the two layers disagreeing is for an admin to look at).
 * 2xx ran; 5xx and no answer at all may have run, so the approval stays spent.
 */
export function givesBack(status: number): boolean {
  return status >= 400 && status < 500 && status !== 401 && status !== 403;
}

const cacheMs = 10_000;
/** How old the last read may be when the database cannot answer. */
const staleCacheMs = 60_000;
/** The answer for a request no gate names: shared, so the common case allocates nothing. */
const notGated: GatePass = Object.freeze({});

function describe(info: RequestInfo, cluster: string): string {
  const obj = `${info.resource}${info.subresource ? `/${info.subresource}` : ''}${info.name ? ` "${info.name}"` : ''}`;
  return `${info.verb} ${obj}${info.namespace ? ` in namespace ${info.namespace}` : ''} on cluster ${cluster}`;
}

export class ApprovalGate {
  private cache: { at: number; index: GateIndex } | undefined;

  constructor(private readonly deps: GateDeps) {}

  /** Gate policies changed somewhere (NOTIFY): reload on next use. */
  invalidate(): void {
    this.cache = undefined;
  }

  private async policies(): Promise<GateIndex> {
    if (this.cache && Date.now() - this.cache.at < cacheMs) return this.cache.index;
    // Fails closed: a database error is a 503 here, never "not gated" — unless
    // the policies read last are still the current ones (no change was
    // announced since; the policy store, asked just before, vouches that this
    // replica is current), in which case they are used while the database
    // cannot answer.
    let policies: GatePolicy[];
    try {
      policies = (await listPolicies(this.deps.pool, 'gate')).map((p) => p.policy as GatePolicy);
    } catch (err) {
      if (this.cache && Date.now() - this.cache.at < staleCacheMs) return this.cache.index;
      throw err;
    }
    const index = new GateIndex(policies);
    this.cache = { at: Date.now(), index };
    return index;
  }

  /**
   * Let the request through (returning its body if it was read) or throw
   * the 403 that names its approval. `readBody` false for upgrades, which
   * have no body.
   */
  async check(
    ctx: RequestContext,
    req: AnyRequest,
    cluster: ClusterRef,
    opts: { readBody: boolean; bodyRead?: (b: Buffer) => void; bounds?: ReadBounds },
  ): Promise<GatePass> {
    const info = ctx.info!;
    const route = ctx.route!;
    let index: GateIndex;
    try {
      index = await this.policies();
    } catch (err) {
      proxyMetrics.approvals.gateDecision(cluster.name, 'refused');
      throw err;
    }
    const gates = index.match(cluster, info, route.rawQuery);
    if (gates.length === 0) return notGated;
    try {
      return await this.gated(ctx, req, cluster, opts, gates);
    } catch (err) {
      const pending = ctx.annotations?.['kubegate.dev/approval'] === 'pending';
      proxyMetrics.approvals.gateDecision(cluster.name, pending ? 'pending' : 'refused');
      throw err;
    }
  }

  /** A request gate policies matched: spend its approval, or refuse naming it. */
  private async gated(
    ctx: RequestContext,
    req: AnyRequest,
    cluster: ClusterRef,
    opts: { readBody: boolean; bodyRead?: (b: Buffer) => void; bounds?: ReadBounds },
    gates: readonly GatePolicy[],
  ): Promise<GatePass> {
    const info = ctx.info!;
    const route = ctx.route!;
    const identity = ctx.identity!;

    const body = opts.readBody
      ? await readBody(req, this.deps.maxBody, opts.bounds)
      : Buffer.alloc(0);
    opts.bodyRead?.(body);
    const contentType = String(req.headers['content-type'] ?? '');
    const bodyHash = bodySha256(body);
    const fingerprint = requestFingerprint({
      user: identity.user,
      userKind: identity.kind,
      cluster: cluster.name,
      method: ctx.method,
      kubePath: route.kubePath,
      rawQuery: route.rawQuery,
      contentType,
      bodySha256: bodyHash,
    });
    const notes: Record<string, string> = {
      'kubegate.dev/approval-policies': gates.map((g) => g.name).join(','),
      'kubegate.dev/body-sha256': bodyHash,
    };
    ctx.annotations = { ...ctx.annotations, ...notes };

    await this.deps.sweep(fingerprint);
    const spent = await spendApproval(this.deps.pool, fingerprint, ctx.auditId);
    if (spent) {
      ctx.annotations['kubegate.dev/approval-id'] = spent;
      ctx.annotations['kubegate.dev/approval'] = 'executed';
      ctx.log.info({ approval: spent }, 'approved gated request runs');
      proxyMetrics.approvals.gateDecision(cluster.name, 'allowed_once');
      proxyMetrics.approvals.state('action', 'executed');
      let settled = false;
      const giveBack = (why: string) => {
        if (settled) return;
        settled = true;
        // Set now, synchronously: the audit event is written when the response ends.
        ctx.annotations!['kubegate.dev/approval'] = 'returned';
        returnApproval(this.deps.pool, spent, ctx.auditId)
          .then((back) => {
            if (back) {
              proxyMetrics.approvals.gateDecision(cluster.name, 'returned');
              proxyMetrics.approvals.state('action', 'returned');
            }
            ctx.log.info({ approval: spent, returned: back, why }, 'approval given back');
          })
          .catch((err: unknown) =>
            ctx.log.warn({ err, approval: spent }, 'could not give the approval back'),
          );
      };
      return {
        body,
        settle: (status) => {
          if (givesBack(status)) giveBack(`the cluster answered ${status}`);
          else settled = true;
        },
        notSent: () => giveBack('the request never reached the cluster'),
      };
    }

    let open = await openApproval(this.deps.pool, fingerprint);
    if (!open) {
      const diff = await previewDiff(
        this.deps.registry.pick(cluster.name),
        ctx,
        req.rawHeaders,
        body,
      );
      const spec: ActionSpec = {
        cluster: cluster.name,
        method: ctx.method,
        verb: info.verb,
        apiGroup: info.apiGroup,
        apiVersion: info.apiVersion,
        resource: info.resource,
        subresource: info.subresource,
        namespace: info.namespace,
        name: info.name || objectName(body, contentType),
        path: route.kubePath,
        query: route.rawQuery,
        contentType,
        bodySha256: bodyHash,
        bodyBytes: body.length,
        policies: gates.map((g) => g.name),
      };
      const created = await openAction(
        this.deps.pool,
        {
          fingerprint,
          requester: {
            name: identity.user,
            kind: identity.kind,
            groups: identity.groups,
            actor: `${identity.kind}:${identity.user}`,
          },
          spec,
          pendingForSeconds: Math.min(...gates.map((g) => g.pendingFor)),
          diff,
          auditId: ctx.auditId,
          sourceIp: ctx.sourceIp,
          userAgent: ctx.userAgent,
        },
        this.deps.notice,
      );
      if (created.created) {
        proxyMetrics.approvals.state('action', 'pending');
        this.deps.queued();
      }
      open = { id: created.id, status: 'pending' };
    }
    ctx.annotations['kubegate.dev/approval-id'] = open.id;
    ctx.annotations['kubegate.dev/approval'] = 'pending';
    const approvers = [...new Set(gates.flatMap((g) => g.approvers.groups))].join(', ');
    const reason = `approval required by policy ${gates.map((g) => g.name).join(', ')}; approval ${open.id} is pending`;
    // The audit event records a refusal (decision deny), not an allowed request.
    ctx.decision = { allowed: false, reason };
    const window = Math.min(...gates.map((g) => g.window));
    throw new KgError(
      'KG_ERR_FORBIDDEN',
      `approval required: ${describe(info, cluster.name)} needs approval by a member of ${approvers}. ` +
        `Approval ${open.id} is pending: ${this.deps.publicUrl}/api/v1/approvals/${open.id} ` +
        `(or: kubegate request get ${open.id}). Once it is approved, send the identical request again ` +
        `within ${Math.round(window / 60)} min; it runs once, and any other change needs its own approval.`,
    );
  }
}

/** A create names its object in the body. */
function objectName(body: Buffer, contentType: string): string {
  if (!contentType.includes('json')) return '';
  try {
    const name = (JSON.parse(body.toString('utf8')) as { metadata?: { name?: unknown } }).metadata
      ?.name;
    return typeof name === 'string' ? name : '';
  } catch {
    return '';
  }
}
