/**
 * The audit.k8s.io/v1 Event schema as a strict decoder sees it: used by the
 * tests of every layer (recorder, database, API, webhook, end to end) and
 * available to anything that imports events from elsewhere.
 */
import {
  decisions,
  extensionFields,
  kubeEventFields,
  levels,
  stages,
  type AuditDecision,
  type Level,
  type Stage,
} from './event.js';

const objectRefFields = new Set([
  'resource',
  'namespace',
  'name',
  'uid',
  'apiGroup',
  'apiVersion',
  'resourceVersion',
  'subresource',
]);
const userInfoFields = new Set(['username', 'uid', 'groups', 'extra']);
const microTimePattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function userInfoProblems(u: unknown, at: string): string[] {
  if (typeof u !== 'object' || u === null) return [`${at} must be a UserInfo object`];
  const p: string[] = [];
  const o = u as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!userInfoFields.has(k)) p.push(`${at}.${k} is not a UserInfo field`);
  if (o.username !== undefined && typeof o.username !== 'string')
    p.push(`${at}.username must be a string`);
  if (
    o.groups !== undefined &&
    !(Array.isArray(o.groups) && o.groups.every((g) => typeof g === 'string'))
  )
    p.push(`${at}.groups must be a list of strings`);
  if (o.extra !== undefined) {
    const ok =
      typeof o.extra === 'object' &&
      o.extra !== null &&
      Object.values(o.extra).every(
        (v) => Array.isArray(v) && v.every((s) => typeof s === 'string'),
      );
    if (!ok) p.push(`${at}.extra must map strings to lists of strings`);
  }
  return p;
}

/**
 * Problems with `e` as an audit.k8s.io/v1 Event, as a strict decoder would
 * see them (unknown fields, wrong types, malformed MicroTime). With
 * `kubegateFields`, kubegate's own top-level fields are allowed and checked.
 */
export function kubeEventProblems(e: unknown, kubegateFields = false): string[] {
  if (typeof e !== 'object' || e === null) return ['an event must be an object'];
  const o = e as Record<string, unknown>;
  const p: string[] = [];
  const allowed = new Set<string>([...kubeEventFields, ...(kubegateFields ? extensionFields : [])]);
  for (const k of Object.keys(o)) if (!allowed.has(k)) p.push(`${k} is not an Event field`);
  if (o.kind !== 'Event') p.push('kind must be Event');
  if (o.apiVersion !== 'audit.k8s.io/v1') p.push('apiVersion must be audit.k8s.io/v1');
  if (!levels.includes(o.level as Level) && o.level !== 'None') p.push('level is not a Level');
  if (typeof o.auditID !== 'string' || !uuidPattern.test(o.auditID))
    p.push('auditID must be a UUID');
  if (!stages.includes(o.stage as Stage)) p.push('stage is not a Stage');
  for (const k of ['requestURI', 'verb'] as const)
    if (typeof o[k] !== 'string') p.push(`${k} must be a string`);
  p.push(...userInfoProblems(o.user, 'user'));
  if (o.impersonatedUser !== undefined)
    p.push(...userInfoProblems(o.impersonatedUser, 'impersonatedUser'));
  if (
    o.sourceIPs !== undefined &&
    !(Array.isArray(o.sourceIPs) && o.sourceIPs.every((s) => typeof s === 'string'))
  )
    p.push('sourceIPs must be a list of strings');
  if (o.userAgent !== undefined && typeof o.userAgent !== 'string')
    p.push('userAgent must be a string');
  if (o.objectRef !== undefined) {
    if (typeof o.objectRef !== 'object' || o.objectRef === null)
      p.push('objectRef must be an object');
    else
      for (const [k, v] of Object.entries(o.objectRef)) {
        if (!objectRefFields.has(k)) p.push(`objectRef.${k} is not an ObjectReference field`);
        else if (typeof v !== 'string') p.push(`objectRef.${k} must be a string`);
      }
  }
  if (o.responseStatus !== undefined) {
    const s = o.responseStatus as Record<string, unknown> | null;
    if (typeof s !== 'object' || s === null || !Number.isInteger(s.code))
      p.push('responseStatus must be a Status with an integer code');
  }
  for (const k of ['requestReceivedTimestamp', 'stageTimestamp'] as const)
    if (typeof o[k] !== 'string' || !microTimePattern.test(o[k]))
      p.push(`${k} must be a MicroTime`);
  if (o.annotations !== undefined) {
    const a = o.annotations as Record<string, unknown> | null;
    if (
      typeof a !== 'object' ||
      a === null ||
      !Object.values(a).every((v) => typeof v === 'string')
    )
      p.push('annotations must map strings to strings');
  }
  if (kubegateFields) {
    if (o.source !== 'kube' && o.source !== 'admin') p.push('source must be kube or admin');
    for (const k of ['cluster', 'replica', 'reason'] as const)
      if (typeof o[k] !== 'string') p.push(`${k} must be a string`);
    if (!decisions.includes(o.decision as AuditDecision)) p.push('decision is not a decision');
    for (const k of ['durationMs', 'bytesIn', 'bytesOut'] as const)
      if (typeof o[k] !== 'number' || (o[k] as number) < 0) p.push(`${k} must be a number ≥ 0`);
  }
  return p;
}
