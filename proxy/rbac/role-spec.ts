/**
 * Validation of a custom role as an admin writes it: the name (the
 * migration's CHECK, and never a built-in's), a description and the rules
 * (policy-rule.ts `validateRules`) — every problem at once.
 */
import { validateRules, type PolicyRule } from '../authz/policy-rule.js';
import { authenticatedBaseline, builtinRoles } from '../authz/builtin-roles.js';

export interface RoleSpec {
  name: string;
  description: string;
  rules: PolicyRule[];
}

export const maxDescriptionLength = 1000;

/** As `roles.name` CHECK in migrations/0002_rbac.sql. */
const roleName = /^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/;

const writable = ['name', 'description', 'rules'];
/** Fields we return; accepted and ignored on input so a GET → edit → PUT round trip works. */
const readOnly = ['builtin', 'version', 'createdBy', 'createdAt', 'updatedAt'];

/** Names reserved by code: the built-ins and the authenticated baseline. */
export function isBuiltinRoleName(name: string): boolean {
  return name === authenticatedBaseline.name || builtinRoles.some((r) => r.name === name);
}

/** Why `name` cannot be a custom role's name, or undefined when it can. */
export function roleNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || !roleName.test(name)) {
    return `name: ${JSON.stringify(name)} is not a valid role name (lowercase letters, digits, '-' and '.', at most 63, alphanumeric at both ends)`;
  }
  if (isBuiltinRoleName(name)) {
    return `name: "${name}" is a built-in role; choose another name for a custom role`;
  }
  return undefined;
}

/**
 * Check an untrusted role. On create the name comes from the body; on update
 * pass `pathName`: the body may repeat it but not change it.
 */
export function validateRoleSpec(
  raw: unknown,
  pathName?: string,
): { spec?: RoleSpec; problems: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { problems: ['the role must be a JSON object'] };
  }
  const body = raw as Record<string, unknown>;
  const problems: string[] = [];
  const unknown = Object.keys(body).filter((k) => !writable.includes(k) && !readOnly.includes(k));
  if (unknown.length > 0) {
    problems.push(
      `unknown field(s): ${unknown.join(', ')} (allowed: ${writable.join(', ')}; read-only and ignored: ${readOnly.join(', ')})`,
    );
  }
  let name = body.name;
  if (pathName !== undefined) {
    if (name !== undefined && name !== pathName) {
      problems.push(
        `name: ${JSON.stringify(name)} does not match the role being updated ("${pathName}"); roles cannot be renamed`,
      );
    }
    name = pathName;
  } else {
    const p = roleNameProblem(name);
    if (p) problems.push(p);
  }
  let description = '';
  if (body.description !== undefined && body.description !== null) {
    if (typeof body.description !== 'string') problems.push('description: must be a string');
    else if (body.description.length > maxDescriptionLength)
      problems.push(`description: must be at most ${maxDescriptionLength} characters`);
    else description = body.description;
  }
  const rules = validateRules(body.rules);
  problems.push(...rules.problems);
  if (problems.length > 0 || !rules.rules) return { problems };
  return { spec: { name: name as string, description, rules: rules.rules }, problems };
}
