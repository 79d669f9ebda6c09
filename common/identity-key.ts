/**
 * One identity, one name: a kubegate subject is a (kind, name) pair, and a
 * robot `ci` and a user `ci` are different subjects (issue #17 item 10).
 * Everything that keys, names or labels something per subject — the proxy's
 * caches, the agent's just-in-time accounts and the identity it impersonates —
 * goes through these functions, so the kind can never be dropped in one place.
 */

/**
 * People and robots are the subjects of bindings; a runbook (issue #20) is
 * the subject its runs execute as on a cluster, never one a token can name.
 */
export const subjectKinds = ['user', 'robot', 'runbook'] as const;
export type SubjectKind = (typeof subjectKinds)[number];

export function isSubjectKind(v: unknown): v is SubjectKind {
  return (subjectKinds as readonly unknown[]).includes(v);
}

/** The in-memory key of a subject: `user:ci` and `robot:ci` never compare equal. */
export function identityKey(kind: SubjectKind, name: string): string {
  return `${kind}:${name}`;
}

/**
 * Prefix of the Kubernetes user name a robot is impersonated as (impersonation
 * mode). People keep their own names, as the cluster's RBAC knows them; a
 * robot is `kubegate:robot:<name>`, and the agent refuses a person whose name
 * starts with this prefix, so no person can be taken for a robot either.
 */
export const robotUserPrefix = 'kubegate:robot:';

/** Prefix of the Kubernetes user name a runbook is impersonated as; no person may claim it either. */
export const runbookUserPrefix = 'kubegate:runbook:';

/** The Kubernetes user name a subject is impersonated as. */
export function clusterUserName(kind: SubjectKind, name: string): string {
  if (kind === 'robot') return `${robotUserPrefix}${name}`;
  return kind === 'runbook' ? `${runbookUserPrefix}${name}` : name;
}
