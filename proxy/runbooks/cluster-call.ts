/**
 * One Kubernetes API call a runbook run makes on a cluster: sent over the
 * cluster's tunnel as the runbook's own subject (kind `runbook`) with the
 * grants derived from its steps, so the agent runs it as the runbook's
 * just-in-time ServiceAccount — never as the person who asked. Each call is
 * one audit event (source `runbook`) carrying the run id, the step and who
 * asked, beside the run's record.
 */
import { randomUUID } from 'node:crypto';
import * as http2 from 'node:http2';
import {
  encodeGrants,
  encodeIdentity,
  hdrAuditId,
  hdrGrants,
  hdrIdentity,
  hdrRanAs,
  type TunnelGrant,
} from '../../common/tunnel-protocol.js';
import type { AuditLog } from '../audit/audit-log.js';
import { microTime, type AuditEvent } from '../audit/event.js';
import { requestInfo } from '../authz/request-info.js';
import { requestWhole } from '../tunnel/control-request.js';
import type { Tunnel } from '../tunnel/registry.js';
import type { ApiCall } from './render.js';

/** The most of an answer kept (object reads, logs): larger answers are cut and marked. */
export const maxAnswerBytes = 4 * 1024 * 1024;

export interface CallAnswer {
  status: number;
  body: Buffer;
  /** The body as JSON, when it is JSON. */
  json: unknown;
  truncated: boolean;
}

export interface RunIdentity {
  runbook: string;
  grants: TunnelGrant[];
  runId: string;
  step: number;
  requestedBy: string;
  ticket: string;
  cluster: string;
  replica: string;
}

/** The apiserver's words for a failed call (its Status message), or the start of its body. */
export function failureMessage(a: CallAnswer): string {
  const s = a.json as { message?: unknown } | undefined;
  if (s && typeof s.message === 'string') return `${a.status}: ${s.message}`;
  return `${a.status}: ${a.body.toString('utf8', 0, 300)}`;
}

export async function sendCall(
  tunnel: Tunnel,
  call: ApiCall,
  who: RunIdentity,
  audit: AuditLog,
  timeoutMs = 30_000,
): Promise<CallAnswer> {
  const auditId = randomUUID();
  const started = Date.now();
  const path = call.query ? `${call.path}?${call.query}` : call.path;
  const body = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
  const headers: http2.OutgoingHttpHeaders = {
    ':method': call.method,
    ':path': path,
    accept: 'application/json',
    'user-agent': 'kubegate-runbook',
    [hdrIdentity]: encodeIdentity({ user: who.runbook, groups: [], kind: 'runbook' }),
    [hdrGrants]: encodeGrants(who.grants),
    [hdrAuditId]: auditId,
  };
  if (body) {
    headers['content-type'] = call.contentType ?? 'application/json';
    headers['content-length'] = body.length;
  }
  let answer: CallAnswer = { status: 0, body: Buffer.alloc(0), json: undefined, truncated: false };
  let ranAs = '';
  let failure: Error | undefined;
  try {
    const a = await requestWhole(tunnel.session, headers, {
      ...(body ? { body } : {}),
      timeoutMs,
      what: `${call.method} ${call.path}`,
      maxBytes: maxAnswerBytes,
    });
    ranAs = String(a.headers[hdrRanAs] ?? '');
    answer = { status: a.status, body: a.body, json: undefined, truncated: a.truncated };
    if (!a.truncated) {
      try {
        answer.json = JSON.parse(a.body.toString('utf8'));
      } catch {
        // not JSON (pod logs): kept as text
      }
    }
  } catch (err) {
    failure = err as Error;
  }
  audit.record(auditEvent(call, who, auditId, started, answer, ranAs, body?.length ?? 0, failure));
  if (failure) throw failure;
  return answer;
}

function auditEvent(
  call: ApiCall,
  who: RunIdentity,
  auditId: string,
  started: number,
  answer: CallAnswer,
  ranAs: string,
  bytesIn: number,
  err: Error | undefined,
): AuditEvent {
  const info = requestInfo(call.method, call.path, call.query);
  const code = err ? 502 : answer.status;
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: auditId,
    stage: 'ResponseComplete',
    requestURI: call.query ? `${call.path}?${call.query}` : call.path,
    verb: info.verb,
    user: { username: who.runbook, groups: [], extra: { 'kubegate.dev/kind': ['runbook'] } },
    ...(ranAs ? { impersonatedUser: { username: ranAs } } : {}),
    sourceIPs: [],
    userAgent: 'kubegate-runbook',
    objectRef: {
      ...(info.resource ? { resource: info.resource } : {}),
      ...(info.namespace ? { namespace: info.namespace } : {}),
      ...(info.name ? { name: info.name } : {}),
      ...(info.apiGroup ? { apiGroup: info.apiGroup } : {}),
      ...(info.apiVersion ? { apiVersion: info.apiVersion } : {}),
      ...(info.subresource ? { subresource: info.subresource } : {}),
    },
    responseStatus: {
      metadata: {},
      code,
      status: code < 400 ? 'Success' : 'Failure',
      ...(err ? { message: err.message } : {}),
    },
    requestReceivedTimestamp: microTime(started),
    stageTimestamp: microTime(Date.now()),
    annotations: {
      'kubegate.dev/run-id': who.runId,
      'kubegate.dev/run-step': String(who.step),
      'kubegate.dev/requested-by': who.requestedBy,
      ...(who.ticket ? { 'kubegate.dev/ticket': who.ticket } : {}),
    },
    source: 'runbook',
    cluster: who.cluster,
    replica: who.replica,
    decision: code < 400 ? 'allow' : 'error',
    reason: `runbook ${JSON.stringify(who.runbook)}, run ${who.runId}, asked by ${who.requestedBy}`,
    durationMs: Date.now() - started,
    bytesIn,
    bytesOut: answer.body.length,
  };
}
