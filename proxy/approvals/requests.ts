/**
 * Approval requests: ask for access, list and read (requester, approver and
 * admin views), approve, deny, withdraw. Every change is one transaction
 * with its audit event and its notifications; an approved access request
 * creates its binding in that same transaction, so the binding's NOTIFY
 * updates every replica and the agents' JIT accounts at once.
 */
import { KgError, invalid } from '../../common/errors.js';
import { recordAdminEvent } from '../audit/admin-events.js';
import type { Pool } from '../db/pool.js';
import { validateBindingSpec } from '../rbac/binding-spec.js';
import { insertBinding } from '../rbac/bindings.js';
import type { Page } from '../rbac/records.js';
import { roleUsable } from '../rbac/roles.js';
import { inTransaction, query, type Queryable } from '../db/query.js';
import { recordChange } from '../rbac/changes.js';
import { proxyMetrics } from '../metrics.js';
import { countExpired, expireDue } from './expiry.js';
import { sweepOnce } from './housekeeping.js';
import { clusterLabels, governing } from './governing.js';
import { listRequests } from './listing.js';
import { enqueue, type Notice, type NotifyEvent } from './notify.js';
import { listPolicies } from './policies.js';
import { clusterChoice, type AccessPolicy, type ApprovalPolicy } from './policy-spec.js';
import { accessCovers, mayDecide, outcome, samePerson } from './policy-match.js';
import {
  approvalView,
  requesterOf,
  summaryOf,
  votesOf,
  type AccessSpec,
  type ApprovalView,
  type DecisionRow,
  type RequestRow,
  type Actor,
  type ListFilter,
} from './records.js';

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const maxReason = 1000;
const dns1123Label = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function reasonOf(raw: unknown, required: boolean, problems: string[]): string {
  if (raw === undefined || raw === null || raw === '') {
    if (required)
      problems.push('reason: say why (it is shown to approvers and kept in the audit log)');
    return '';
  }
  if (typeof raw !== 'string' || raw.length > maxReason) {
    problems.push(`reason: must be a string of at most ${maxReason} characters`);
    return '';
  }
  return raw;
}

/** `15m`, `2h` or seconds. */
function durationOf(raw: unknown, problems: string[]): number {
  const m = typeof raw === 'string' ? /^(\d+)(s|m|h|d)$/.exec(raw) : undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86400 } as const;
  const sec =
    typeof raw === 'number' ? raw : m ? Number(m[1]) * unit[m[2] as keyof typeof unit] : NaN;
  if (!Number.isInteger(sec) || sec < 10 || sec > 30 * 86400) {
    problems.push('duration: must be a duration such as "15m" or "8h" (10s to 30d)');
    return 0;
  }
  return sec;
}

export class ApprovalRequests {
  constructor(
    private readonly pool: Pool,
    private readonly publicUrl: string,
    /** Called after a commit that queued notifications. */
    private readonly queued: () => void = () => undefined,
  ) {}

  notice(r: RequestRow, event: NotifyEvent, actor?: string, reason = r.reason): Notice {
    return {
      event,
      id: r.id,
      kind: r.kind,
      status: r.status,
      requester: `${r.requester_kind}:${r.requester}`,
      summary: summaryOf(r),
      reason,
      ...(actor ? { actor } : {}),
      url: `${this.publicUrl}/api/v1/approvals/${r.id}`,
      at: new Date().toISOString(),
    };
  }

  private async view(db: Queryable, r: RequestRow): Promise<ApprovalView> {
    const d = await query<DecisionRow>(
      db,
      'SELECT * FROM approval_decisions WHERE request_id = $1 ORDER BY at',
      [r.id],
    );
    return approvalView(r, d, this.publicUrl);
  }

  /** A user asks for a role on clusters and namespaces for a while. */
  async createAccess(who: Actor, raw: unknown): Promise<ApprovalView> {
    const body = (
      typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? raw : {}
    ) as Record<string, unknown>;
    const problems: string[] = [];
    for (const k of Object.keys(body))
      if (!['role', 'clusters', 'namespaces', 'duration', 'reason'].includes(k))
        problems.push(
          `${k}: unknown field (allowed: role, clusters, namespaces, duration, reason)`,
        );
    if (typeof body.role !== 'string' || body.role === '')
      problems.push('role: name the role you need');
    const clusters = clusterChoice(body.clusters, 'clusters', problems);
    const namespaces: string[] = [];
    if (body.namespaces !== undefined) {
      if (!Array.isArray(body.namespaces)) problems.push('namespaces: must be an array of names');
      else
        for (const n of body.namespaces as unknown[])
          if (typeof n === 'string' && dns1123Label.test(n)) namespaces.push(n);
          else problems.push(`namespaces: ${JSON.stringify(n)} is not a namespace name`);
    }
    const durationSeconds = durationOf(body.duration, problems);
    const reason = reasonOf(body.reason, true, problems);
    if (problems.length) throw invalid('access request', problems);
    const role = body.role as string;
    const ask = { role, clusters, namespaces: [...new Set(namespaces)], durationSeconds };

    const row = await inTransaction(this.pool, async (c) => {
      if (!(await roleUsable(c, role)))
        throw invalid('access request', [`role: "${role}" does not exist`]);
      const labels = await clusterLabels(c);
      const missing = (clusters.names ?? []).filter((n) => !labels.has(n));
      if (missing.length)
        throw invalid('access request', [`clusters.names: not registered: ${missing.join(', ')}`]);
      const covering = (await listPolicies(c, 'access'))
        .map((p) => p.policy as AccessPolicy)
        .filter((p) => accessCovers(p, ask, who, labels));
      if (!covering.length)
        throw new KgError(
          'KG_ERR_FORBIDDEN',
          `no approval policy lets anyone approve role "${role}" there for ${Math.round(durationSeconds / 60)} min; ask a kubegate admin (a shorter duration or fewer namespaces may be covered)`,
        );
      const spec: AccessSpec = { ...ask, policies: covering.map((p) => p.name) };
      const pendingFor = Math.min(...covering.map((p) => p.pendingFor));
      const { rows } = await c.query<RequestRow>(
        `INSERT INTO approval_requests (kind, status, requester, requester_kind, requester_groups,
                reason, spec, pending_until)
         VALUES ('access', 'pending', $1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING *`,
        [who.name, who.kind, who.groups, reason, JSON.stringify(spec), pendingFor],
      );
      const r = rows[0]!;
      await recordAdminEvent(c, {
        actor: who.actor,
        verb: 'create',
        resource: 'approvals',
        name: r.id,
        detail: { kind: 'access', spec, reason },
        sourceIp: who.sourceIp,
        userAgent: who.userAgent,
        annotations: { 'kubegate.dev/approval-id': r.id },
      });
      await enqueue(c, this.notice(r, 'approval.requested'));
      return r;
    });
    proxyMetrics.approvals.state('access', 'pending');
    this.queued();
    return this.view(this.pool, row);
  }

  /** Whether `who` may see `r`: the requester, an admin, or one entitled to decide it. */
  private async visible(db: Queryable, who: Actor, r: RequestRow): Promise<boolean> {
    if (who.admin || samePerson(who, requesterOf(r))) return true;
    return (await governing(db, r)).some((p) => mayDecide(p, who, requesterOf(r)));
  }

  /** Expire what is due now (its own transaction), so answers never show a stale state. */
  sweep(fingerprint?: string): Promise<number> {
    return sweepOnce(this.pool, (...a) => this.notice(...a), this.queued, fingerprint);
  }

  async get(who: Actor, id: string): Promise<ApprovalView> {
    await this.sweep();
    const r = await this.load(this.pool, who, id, false);
    return this.view(this.pool, r);
  }

  private async load(db: Queryable, who: Actor, id: string, lock: boolean): Promise<RequestRow> {
    const canonical = id.toLowerCase();
    const rows = uuid.test(canonical)
      ? await query<RequestRow>(
          db,
          `SELECT * FROM approval_requests WHERE id = $1 ${lock ? 'FOR UPDATE' : ''}`,
          [canonical],
        )
      : [];
    // Someone who may not see a request learns nothing, not even that it exists.
    if (!rows[0] || !(await this.visible(db, who, rows[0])))
      throw new KgError('KG_ERR_NOT_FOUND', `approval ${id} does not exist or is not yours to see`);
    return rows[0];
  }

  /** One page of requests (see listing.ts); `view=all` is for admins. */
  async list(who: Actor, f: ListFilter): Promise<Page<ApprovalView>> {
    if (f.view === 'all' && !who.admin)
      throw new KgError(
        'KG_ERR_FORBIDDEN',
        'view=all is for kubegate admins; use view=mine or view=approvable',
      );
    await this.sweep();
    return listRequests(this.pool, this.publicUrl, who, f);
  }

  /** An approver says yes or no, with a reason. */
  async decide(
    who: Actor,
    id: string,
    decision: 'approve' | 'deny',
    raw: unknown,
  ): Promise<ApprovalView> {
    const problems: string[] = [];
    const reason = reasonOf(
      (raw as { reason?: unknown } | null)?.reason,
      decision === 'deny',
      problems,
    );
    if (problems.length) throw invalid('decision', problems);
    let expired: RequestRow[] = [];
    const row = await inTransaction(this.pool, async (c) => {
      expired = await expireDue(c, (...a) => this.notice(...a));
      const r = await this.load(c, who, id, true);
      if (r.status !== 'pending')
        throw new KgError(
          'KG_ERR_CONFLICT',
          `approval ${r.id} is ${r.status}; only a pending request can be decided`,
        );
      const requester = requesterOf(r);
      if (samePerson(who, requester))
        throw new KgError(
          'KG_ERR_FORBIDDEN',
          `you cannot ${decision} your own request ${r.id}: another approver must decide`,
        );
      const policies = await governing(c, r);
      if (!policies.some((p) => mayDecide(p, who, requester))) {
        const groups = [...new Set(policies.flatMap((p) => p.approvers.groups))];
        throw new KgError(
          'KG_ERR_FORBIDDEN',
          `${who.actor} may not decide approval ${r.id}: ${groups.length ? `approvers are members of ${groups.join(', ')}` : 'no policy governs it any more'}`,
        );
      }
      const ins = await c.query(
        `INSERT INTO approval_decisions (request_id, approver, approver_kind, groups, decision, reason)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
        [r.id, who.name, who.kind, who.groups, decision, reason],
      );
      if (!ins.rowCount)
        throw new KgError(
          'KG_ERR_CONFLICT',
          `you already decided approval ${r.id}; a second approver is needed`,
        );
      const votes = votesOf(
        (
          await c.query<DecisionRow>('SELECT * FROM approval_decisions WHERE request_id = $1', [
            r.id,
          ])
        ).rows,
      );
      const result = outcome(policies, votes, requester);
      let updated = r;
      if (result === 'denied') {
        updated = (
          await c.query<RequestRow>(
            `UPDATE approval_requests SET status = 'denied', decided_at = now() WHERE id = $1 RETURNING *`,
            [r.id],
          )
        ).rows[0]!;
      } else if (result === 'approved') {
        updated =
          r.kind === 'access'
            ? await this.grant(c, r, who)
            : await this.allowAction(c, r, policies);
      }
      await recordAdminEvent(c, {
        actor: who.actor,
        verb: decision,
        resource: 'approvals',
        name: r.id,
        detail: { decision, reason, status: updated.status, summary: summaryOf(r) },
        sourceIp: who.sourceIp,
        userAgent: who.userAgent,
        cluster: r.cluster,
        annotations: {
          'kubegate.dev/approval-id': r.id,
          ...(updated.binding_id ? { 'kubegate.dev/binding': updated.binding_id } : {}),
          ...(r.request_audit_id ? { 'kubegate.dev/request-audit-id': r.request_audit_id } : {}),
        },
      });
      const event: NotifyEvent =
        result === 'pending'
          ? 'approval.vote'
          : result === 'approved'
            ? 'approval.approved'
            : 'approval.denied';
      await enqueue(c, this.notice(updated, event, who.actor, reason));
      return updated;
    });
    countExpired(expired);
    this.queued();
    if (row.status !== 'pending') {
      const m = proxyMetrics.approvals;
      m.state(row.kind, row.status);
      if (row.status === 'approved' || row.status === 'denied')
        m.decided(row.kind, row.status, (Date.now() - row.created_at.getTime()) / 1000);
    }
    return this.view(this.pool, row);
  }

  /** Approved access: a binding for the requester that ends on time. */
  private async grant(c: Queryable, r: RequestRow, who: Actor): Promise<RequestRow> {
    const s = r.spec as AccessSpec;
    const { rows: now } = await c.query<{ t: Date }>('SELECT now() AS t');
    const expiresAt = new Date(now[0]!.t.getTime() + s.durationSeconds * 1000);
    const { spec, problems } = validateBindingSpec({
      subjects: [{ kind: r.requester_kind === 'robot' ? 'Robot' : 'User', name: r.requester }],
      role: s.role,
      clusters: s.clusters,
      namespaces: s.namespaces,
      expiresAt: expiresAt.toISOString(),
      reason: `approved access request ${r.id}: ${r.reason}`.slice(0, 1000),
    });
    if (!spec) throw invalid('binding for the approved request', problems);
    const bindingId = (await insertBinding(c, spec, who.actor)).id;
    await recordChange(c, who.actor, 'create', 'binding', bindingId, null, {
      id: bindingId,
      ...spec,
      approval: r.id,
    });
    return (
      await c.query<RequestRow>(
        `UPDATE approval_requests SET status = 'approved', decided_at = now(), binding_id = $2,
                spec = spec || jsonb_build_object('expiresAt', $3::text)
          WHERE id = $1 RETURNING *`,
        [r.id, bindingId, expiresAt.toISOString()],
      )
    ).rows[0]!;
  }

  /** Approved action: the identical request may run once within the shortest window. */
  private async allowAction(
    c: Queryable,
    r: RequestRow,
    policies: ApprovalPolicy[],
  ): Promise<RequestRow> {
    const window = Math.min(...policies.map((p) => (p.kind === 'gate' ? p.window : Infinity)));
    return (
      await c.query<RequestRow>(
        `UPDATE approval_requests SET status = 'approved', decided_at = now(),
                executable_until = now() + make_interval(secs => $2)
          WHERE id = $1 RETURNING *`,
        [r.id, Number.isFinite(window) ? window : 900],
      )
    ).rows[0]!;
  }

  /** The requester takes a pending request back. */
  async withdraw(who: Actor, id: string, raw: unknown): Promise<ApprovalView> {
    const problems: string[] = [];
    const reason = reasonOf((raw as { reason?: unknown } | null)?.reason, false, problems);
    if (problems.length) throw invalid('withdrawal', problems);
    let expired: RequestRow[] = [];
    const row = await inTransaction(this.pool, async (c) => {
      expired = await expireDue(c, (...a) => this.notice(...a));
      const r = await this.load(c, who, id, true);
      if (!samePerson(who, requesterOf(r)))
        throw new KgError('KG_ERR_FORBIDDEN', `only the requester may withdraw approval ${r.id}`);
      if (r.status !== 'pending' && !(r.kind === 'action' && r.status === 'approved'))
        throw new KgError(
          'KG_ERR_CONFLICT',
          `approval ${r.id} is ${r.status}; nothing to withdraw`,
        );
      const updated = (
        await c.query<RequestRow>(
          `UPDATE approval_requests SET status = 'withdrawn', decided_at = now() WHERE id = $1 RETURNING *`,
          [r.id],
        )
      ).rows[0]!;
      await recordAdminEvent(c, {
        actor: who.actor,
        verb: 'withdraw',
        resource: 'approvals',
        name: r.id,
        detail: { reason },
        sourceIp: who.sourceIp,
        userAgent: who.userAgent,
        annotations: { 'kubegate.dev/approval-id': r.id },
      });
      await enqueue(c, this.notice(updated, 'approval.withdrawn', who.actor, reason));
      return updated;
    });
    countExpired(expired);
    proxyMetrics.approvals.state(row.kind, 'withdrawn');
    this.queued();
    return this.view(this.pool, row);
  }
}
