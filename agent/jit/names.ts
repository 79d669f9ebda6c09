/**
 * Names and labels of everything the agent creates for just-in-time access.
 * All of it carries `app.kubernetes.io/managed-by: kubegate`; nothing without
 * that label is ever changed or deleted.
 */
import { createHash } from 'node:crypto';

export const managedBy = { 'app.kubernetes.io/managed-by': 'kubegate' } as const;
export const userLabel = 'kubegate.dev/user';
export const roleLabel = 'kubegate.dev/role';
export const userAnnotation = 'kubegate.dev/user-name';
export const lastUsedAnnotation = 'kubegate.dev/last-used';

/** A short, stable key for a user name (label-safe). */
export function userKey(user: string): string {
  return createHash('sha256').update(user).digest('hex').slice(0, 16);
}

export function serviceAccountName(user: string): string {
  return `kg-u-${userKey(user)}`;
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

/** Binding name for one (user, role) pair; RoleBindings reuse it in each namespace. */
export function bindingName(user: string, roleRef: string): string {
  return `kg-u-${userKey(user)}-${roleHash(roleRef)}`;
}
