/**
 * Names and labels of everything the agent creates for just-in-time access.
 * All of it carries `app.kubernetes.io/managed-by: kubegate`; nothing without
 * that label is ever changed or deleted.
 *
 * The subject's kind is part of every name and label (issue #17 item 10): a
 * user `ci` gets `kg-u-<hash>`, a robot `ci` gets `kg-r-<hash>`, each hash
 * taken over the kind-qualified identity, so the two never share an account,
 * a binding or a token, whatever the names look like. Accounts made before
 * this (named `kg-u-<sha256(name)>`, no `kubegate.dev/kind` label) are
 * "legacy": the first idle clean-up after the upgrade deletes them with their
 * bindings, and the next request builds the account under the new name.
 */
import { createHash } from 'node:crypto';
import { identityKey, type SubjectKind } from '../../common/identity-key.js';

export const managedBy = { 'app.kubernetes.io/managed-by': 'kubegate' } as const;
export const userLabel = 'kubegate.dev/user';
/** `user`, `robot` or `runbook`; absent only on legacy accounts (see above). */
export const kindLabel = 'kubegate.dev/kind';
export const roleLabel = 'kubegate.dev/role';
export const userAnnotation = 'kubegate.dev/user-name';
export const lastUsedAnnotation = 'kubegate.dev/last-used';

/**
 * A short, stable, label-safe key for a subject (64 bits of SHA-256 over the
 * kind-qualified identity, domain-separated from the legacy `sha256(name)`).
 */
export function userKey(kind: SubjectKind, user: string): string {
  return createHash('sha256')
    .update(`kubegate-jit/v2\0${identityKey(kind, user)}`)
    .digest('hex')
    .slice(0, 16);
}

const kindLetter: Record<SubjectKind, string> = { user: 'u', robot: 'r', runbook: 'b' };

/** `kg-u-…` for people, `kg-r-…` for robots, `kg-b-…` for runbooks. */
export function serviceAccountName(kind: SubjectKind, user: string): string {
  return `kg-${kindLetter[kind]}-${userKey(kind, user)}`;
}

/** The labels of a subject's ServiceAccount and bindings. */
export function subjectLabels(kind: SubjectKind, user: string): Record<string, string> {
  return { ...managedBy, [userLabel]: userKey(kind, user), [kindLabel]: kind };
}

/** `edit@1a2b3c…` → `kubegate:edit:1a2b3c…` (content-addressed: same rules, same name). */
export function clusterRoleName(roleRef: string): string {
  const at = roleRef.lastIndexOf('@');
  const name = roleRef.slice(0, at).replace(/[^a-z0-9.-]/g, '-');
  return `kubegate:${name}:${roleRef.slice(at + 1)}`;
}

export function roleHash(roleRef: string): string {
  return roleRef.slice(roleRef.lastIndexOf('@') + 1);
}

/** Binding name for one (subject, role) pair; RoleBindings reuse it in each namespace. */
export function bindingName(kind: SubjectKind, user: string, roleRef: string): string {
  return `${serviceAccountName(kind, user)}-${roleHash(roleRef)}`;
}
