/**
 * Reading the groups claim of a signed-in user. Every shape a provider sends
 * is handled explicitly, and none of them means "allow by default":
 *
 *  - a JSON array of strings (Okta, Keycloak, Dex, oidc-provider);
 *  - a comma-separated string (some SAML-bridged and LDAP-backed providers);
 *  - no claim at all: no groups (only bindings naming the user apply) — the
 *    caller logs it, because it usually means a missing scope or mapper;
 *  - an overage marker: the provider had too many groups for the token and
 *    points elsewhere instead (Microsoft Entra ID: `_claim_names` /
 *    `_claim_sources` distributed claims, OIDC Core §5.6.2, or `hasgroups`
 *    — https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference#groups-overage-claim).
 *    We cannot see the real groups, so the caller refuses the sign-in unless
 *    an admin chose a fallback;
 *  - anything else (a number, an object, an array with non-strings) is
 *    invalid and refused.
 *
 * Names starting with `system:` are dropped: no IdP group may become a
 * Kubernetes system group.
 */

export type GroupsClaim =
  | { kind: 'groups'; groups: string[]; form: 'array' | 'string'; dropped: string[] }
  | { kind: 'missing' }
  | { kind: 'overage'; marker: '_claim_names' | 'hasgroups' }
  | { kind: 'invalid'; detail: string };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function overageMarker(
  claims: Record<string, unknown>,
  claim: string,
): '_claim_names' | 'hasgroups' | undefined {
  const names = claims._claim_names;
  if (isRecord(names) && (Object.hasOwn(names, claim) || Object.hasOwn(names, 'groups')))
    return '_claim_names';
  if (claims.hasgroups === true || claims.hasgroups === 'true') return 'hasgroups';
  return undefined;
}

function clean(
  names: string[],
  form: 'array' | 'string',
): Extract<GroupsClaim, { kind: 'groups' }> {
  const groups: string[] = [];
  const dropped: string[] = [];
  for (const raw of names) {
    const g = raw.trim();
    if (g === '') continue;
    if (g.startsWith('system:')) {
      dropped.push(g);
      continue;
    }
    if (!groups.includes(g)) groups.push(g);
  }
  return { kind: 'groups', groups, form, dropped };
}

/** Classify the groups claim named `claim` in the merged ID token / userinfo claims. */
export function readGroupsClaim(claims: Record<string, unknown>, claim: string): GroupsClaim {
  // An overage marker wins over a present claim: a partial list is not the user's groups.
  const marker = overageMarker(claims, claim);
  if (marker) return { kind: 'overage', marker };
  const value = claims[claim];
  if (value === undefined || value === null) return { kind: 'missing' };
  if (typeof value === 'string') return clean(value.split(','), 'string');
  if (Array.isArray(value)) {
    const bad = value.find((v) => typeof v !== 'string');
    if (bad !== undefined)
      return {
        kind: 'invalid',
        detail: `the "${claim}" claim is a list with a ${bad === null ? 'null' : typeof bad} in it; expected only strings`,
      };
    return clean(value as string[], 'array');
  }
  return {
    kind: 'invalid',
    detail: `the "${claim}" claim is a ${typeof value}; expected a list of strings or a comma-separated string`,
  };
}
