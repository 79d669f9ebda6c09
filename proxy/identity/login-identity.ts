/**
 * From the verified claims of a sign-in (ID token merged with userinfo) to
 * the kubegate identity recorded for the user: issuer and subject (the
 * stable key), the user name RBAC sees, email, display name and groups.
 * Every refusal says why in words an end user can act on.
 */
import type { Logger } from '../../common/log.js';
import { KgError } from '../../common/errors.js';
import { readGroupsClaim } from './groups.js';
import type { IdentitySettings } from './settings.js';

export interface LoginIdentity {
  issuer: string;
  subject: string;
  username: string;
  email: string;
  name: string;
  groups: string[];
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function refuse(message: string): KgError {
  return new KgError('KG_ERR_FORBIDDEN', `Sign-in refused: ${message}`);
}

export function loginIdentity(
  claims: Record<string, unknown>,
  s: Pick<IdentitySettings, 'usernameClaim' | 'groupsClaim' | 'overage'>,
  log: Logger,
): LoginIdentity {
  const issuer = text(claims.iss);
  const subject = text(claims.sub);
  if (!issuer || !subject) throw refuse('the identity provider sent no issuer or subject');
  const username = text(claims[s.usernameClaim]).trim();
  if (!username)
    throw refuse(
      `the identity provider sent no "${s.usernameClaim}" claim, which kubegate uses as your user name; ask your administrator to release it (scope or claim mapping)`,
    );
  if (username.startsWith('system:'))
    throw refuse(`the user name "${username}" is reserved for Kubernetes system identities`);
  // Kubernetes' own OIDC authenticator rule: an email user name must not be
  // one the provider says is unverified.
  if (s.usernameClaim === 'email' && claims.email_verified === false)
    throw refuse(`the identity provider says the email address ${username} is not verified`);

  const who = { user: username, subject };
  const g = readGroupsClaim(claims, s.groupsClaim);
  let groups: string[];
  switch (g.kind) {
    case 'groups':
      groups = g.groups;
      if (g.dropped.length)
        log.warn(
          { ...who, dropped: g.dropped },
          'dropped groups named system:* from the sign-in; an IdP group never becomes a Kubernetes system group',
        );
      break;
    case 'missing':
      groups = [];
      log.warn(
        { ...who, claim: s.groupsClaim },
        `the identity provider sent no "${s.groupsClaim}" claim: signing in with no groups (only bindings naming the user apply); check the provider's groups mapping and KUBEGATE_OIDC_SCOPES`,
      );
      break;
    case 'overage':
      if (s.overage !== 'no-groups') {
        log.warn(
          { ...who, marker: g.marker },
          'sign-in refused: groups overage (the provider sent a reference instead of the groups)',
        );
        throw refuse(
          'your identity provider reports too many groups to include in the sign-in token (groups overage), so kubegate cannot tell which groups you are in. Ask your administrator to limit the groups sent to kubegate (e.g. "groups assigned to the application") or to set KUBEGATE_OIDC_GROUPS_OVERAGE=no-groups',
        );
      }
      groups = [];
      log.warn(
        { ...who, marker: g.marker },
        'groups overage: signing in with no groups, as configured (KUBEGATE_OIDC_GROUPS_OVERAGE=no-groups)',
      );
      break;
    case 'invalid':
      log.warn({ ...who, detail: g.detail }, 'sign-in refused: unreadable groups claim');
      throw refuse(`${g.detail}. Ask your administrator to fix the groups claim mapping`);
  }
  return {
    issuer,
    subject,
    username,
    email: text(claims.email),
    name: text(claims.name),
    groups,
  };
}
