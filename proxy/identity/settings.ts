/**
 * The part of the proxy configuration identity uses, checked once at start-up
 * (the schema checks single fields; these rules span several). The redirect
 * URI and the kubeconfig server URL come from here only — never from `Host`
 * or `X-Forwarded-*` (docs/security.md, "OIDC").
 */
import { KgError } from '../../common/errors.js';

export interface IdentityConfig {
  publicUrl: string;
  adminGroups: readonly string[];
  /** Besides admins, who may watch session recordings (`/api/v1/me` says whether the caller may). */
  recordingViewerGroups?: readonly string[] | undefined;
  tokenTtl: number;
  tokenMaxTtl: number;
  robotTokenTtl: number;
  robotTokenMaxTtl: number;
  sessionMaxAge: number;
  /** Tokens minted through a sign-in end at most this long after it (default 12 h). */
  ssoTokenMaxAge?: number | undefined;
  /** How often a sign-in's groups are re-read with its refresh token (default 5 min). */
  oidcRefreshInterval?: number | undefined;
  /** Seals stored refresh tokens; without it none is kept (groups are then never refreshed). */
  masterKey?: string | undefined;
  oidcIssuerUrl?: string | undefined;
  oidcClientId?: string | undefined;
  oidcClientSecret?: string | undefined;
  oidcScopes: readonly string[];
  oidcRedirectUrl?: string | undefined;
  oidcUsernameClaim: string;
  oidcGroupsClaim: string;
  oidcGroupsOverage: string;
  oidcAllowInsecureIssuer: boolean;
}

export interface OidcSettings {
  issuer: URL;
  clientId: string;
  clientSecret: string | undefined;
  scopes: string[];
  redirectUrl: URL;
  allowInsecureIssuer: boolean;
}

export interface IdentitySettings {
  /** `https://kg.example.com` — cookies, Origin checks and kubeconfig servers use it. */
  publicUrl: string;
  publicOrigin: string;
  adminGroups: ReadonlySet<string>;
  recordingViewerGroups: ReadonlySet<string>;
  tokenTtlMs: number;
  tokenMaxTtlMs: number;
  robotTokenTtlMs: number;
  robotTokenMaxTtlMs: number;
  sessionMaxAgeMs: number;
  /** KUBEGATE_SSO_TOKEN_MAX_AGE: tokens minted through a sign-in end at most this long after it. */
  ssoTokenMaxAgeMs: number;
  /** KUBEGATE_OIDC_REFRESH_INTERVAL. */
  refreshIntervalMs: number;
  masterKey: string | undefined;
  usernameClaim: string;
  groupsClaim: string;
  overage: 'refuse' | 'no-groups';
  /** Undefined when single sign-on is not configured. */
  oidc: OidcSettings | undefined;
}

/** The path the provider sends the browser back to; the redirect URL must name it. */
export const callbackPath = '/auth/callback';

/** Validate and derive; throws one KG_ERR_CONFIG listing every problem. */
export function identitySettings(c: IdentityConfig): IdentitySettings {
  const problems: string[] = [];
  const publicUrl = new URL(c.publicUrl);
  if (publicUrl.protocol !== 'https:')
    problems.push(
      `KUBEGATE_PUBLIC_URL must be https (browser cookies are Secure); got ${c.publicUrl}`,
    );
  if (c.tokenTtl > c.tokenMaxTtl)
    problems.push('KUBEGATE_TOKEN_TTL (the default) must not exceed KUBEGATE_TOKEN_MAX_TTL');
  if (c.robotTokenTtl > c.robotTokenMaxTtl)
    problems.push('KUBEGATE_ROBOT_TOKEN_TTL must not exceed KUBEGATE_ROBOT_TOKEN_MAX_TTL');
  if (!(c.sessionMaxAge >= 1000)) problems.push('KUBEGATE_SESSION_MAX_AGE must be at least 1s');
  const ssoTokenMaxAge = c.ssoTokenMaxAge ?? 12 * 3_600_000;
  if (!(ssoTokenMaxAge >= 60_000)) problems.push('KUBEGATE_SSO_TOKEN_MAX_AGE must be at least 1m');
  const refreshInterval = c.oidcRefreshInterval ?? 5 * 60_000;
  if (!(refreshInterval >= 1000))
    problems.push('KUBEGATE_OIDC_REFRESH_INTERVAL must be at least 1s');

  let oidc: OidcSettings | undefined;
  if (c.oidcIssuerUrl) {
    const issuer = new URL(c.oidcIssuerUrl);
    if (issuer.protocol !== 'https:' && !c.oidcAllowInsecureIssuer)
      problems.push(
        `KUBEGATE_OIDC_ISSUER_URL must be https (got ${issuer.protocol}); only a loopback dev/test provider may use http, with KUBEGATE_OIDC_ALLOW_INSECURE_ISSUER=true`,
      );
    if (!c.oidcClientId) problems.push('KUBEGATE_OIDC_CLIENT_ID is required with an issuer URL');
    const redirectUrl = new URL(
      c.oidcRedirectUrl ?? `${c.publicUrl.replace(/\/+$/, '')}${callbackPath}`,
    );
    if (redirectUrl.origin !== publicUrl.origin || redirectUrl.pathname !== callbackPath)
      problems.push(
        `KUBEGATE_OIDC_REDIRECT_URL must be ${publicUrl.origin}${callbackPath} (same origin as KUBEGATE_PUBLIC_URL, so the session cookie reaches it); got ${redirectUrl.href}`,
      );
    if (redirectUrl.search || redirectUrl.hash)
      problems.push('KUBEGATE_OIDC_REDIRECT_URL must not have a query or fragment');
    if (!c.oidcScopes.includes('openid'))
      problems.push('KUBEGATE_OIDC_SCOPES must include "openid"');
    oidc = {
      issuer,
      clientId: c.oidcClientId ?? '',
      clientSecret: c.oidcClientSecret || undefined,
      scopes: [...c.oidcScopes],
      redirectUrl,
      allowInsecureIssuer: c.oidcAllowInsecureIssuer,
    };
  }
  if (problems.length) {
    throw new KgError(
      'KG_ERR_CONFIG',
      `invalid identity configuration:\n  - ${problems.join('\n  - ')}`,
      {
        details: { problems },
      },
    );
  }
  return {
    publicUrl: c.publicUrl.replace(/\/+$/, ''),
    publicOrigin: publicUrl.origin,
    adminGroups: new Set(c.adminGroups),
    recordingViewerGroups: new Set(c.recordingViewerGroups ?? []),
    tokenTtlMs: c.tokenTtl,
    tokenMaxTtlMs: c.tokenMaxTtl,
    robotTokenTtlMs: c.robotTokenTtl,
    robotTokenMaxTtlMs: c.robotTokenMaxTtl,
    sessionMaxAgeMs: c.sessionMaxAge,
    ssoTokenMaxAgeMs: ssoTokenMaxAge,
    refreshIntervalMs: refreshInterval,
    masterKey: c.masterKey,
    usernameClaim: c.oidcUsernameClaim,
    groupsClaim: c.oidcGroupsClaim,
    overage: c.oidcGroupsOverage === 'no-groups' ? 'no-groups' : 'refuse',
    oidc,
  };
}
