/**
 * Admin actions in the audit log. Changes the RBAC store records in
 * `admin_changes` (clusters, roles, bindings) become audit events by a
 * trigger in the same transaction (migrations/0004_audit.sql). Every other
 * admin action — tokens, robots, users, logins, kubeconfig downloads — calls
 * `recordAdminEvent` with the client of its own transaction (or the pool when
 * it has none): the action and its record then commit together.
 */
import type { Queryable } from '../db/query.js';
import { redactBody } from './redact.js';

export interface AdminEventInput {
  /** `user:NAME`, `robot:NAME` or `cli:NAME`, as the admin change log names actors. */
  actor: string;
  /** What was done: create, update, delete, rotate, revoke, login, download… */
  verb: string;
  /** The plural kind acted on: tokens, robots, users, logins, kubeconfigs… */
  resource: string;
  /** The object's name or id; '' when there is none. */
  name?: string;
  /** Detail to keep (redacted: never put a token or secret here; hashes are fine). */
  detail?: unknown;
  sourceIp?: string;
  userAgent?: string;
  cluster?: string;
  /** The outcome: 200 when it happened; 401/403 for refusals worth recording (failed logins). */
  code?: number;
  annotations?: Record<string, string>;
}

/** Where an admin action came from, as the request path records it for kube requests. */
export function requestOrigin(req: {
  socket: { remoteAddress?: string | undefined };
  headers: { 'user-agent'?: string | undefined };
}): { sourceIp: string; userAgent: string } {
  return {
    sourceIp: req.socket.remoteAddress ?? '',
    userAgent: String(req.headers['user-agent'] ?? '').slice(0, 512),
  };
}

/** Record one admin action as an audit event, inside the caller's transaction. */
export async function recordAdminEvent(db: Queryable, e: AdminEventInput): Promise<void> {
  const detail =
    e.detail === undefined
      ? null
      : JSON.stringify(
          redactBody(e.detail, { apiGroup: 'kubegate.dev', resource: e.resource, subresource: '' }),
        );
  await db.query(
    `SELECT kg_audit_admin_event($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9, now(), $10::jsonb)`,
    [
      e.actor,
      e.verb,
      e.resource,
      e.name ?? '',
      detail,
      e.sourceIp ?? '',
      e.userAgent ?? '',
      e.cluster ?? '',
      e.code ?? 200,
      JSON.stringify(e.annotations ?? {}),
    ],
  );
}
