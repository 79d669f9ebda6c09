/**
 * The OpenID Connect relying party (openid-client v6): authorization code
 * flow with PKCE (S256), state and nonce, and `max_age` so a sign-in after
 * the maximum session age really re-authenticates at the provider
 * (OIDC Core §3.1.2.1; auth_time is then checked).
 *
 * Discovery is lazy — the proxy starts even while the provider is down — and
 * a failed discovery is retried at most once per cool-down, so a dead
 * provider is not hammered by every sign-in attempt. openid-client keeps the
 * provider's keys and refetches them on an unknown `kid` with its own
 * cool-down (key rotation).
 */
import * as client from 'openid-client';
import { KgError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { OidcSettings } from './settings.js';

/** What a sign-in in progress must remember until the callback. */
export interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
}

/** A short, log- and user-safe description of an openid-client failure. */
export function describeOidcError(err: unknown): string {
  if (err instanceof client.AuthorizationResponseError || err instanceof client.ResponseBodyError) {
    return err.error_description ? `${err.error}: ${err.error_description}` : err.error;
  }
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

function isNetworkError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return err.message === 'fetch failed' || err.name === 'TimeoutError' || err.name === 'AbortError';
}

export class OidcClient {
  private config: client.Configuration | undefined;
  private discovering: Promise<client.Configuration> | undefined;
  private failedAt = -Infinity;

  constructor(
    private readonly s: OidcSettings,
    private readonly log: Logger,
    private readonly coolDownMs = 5000,
  ) {}

  /** The provider's metadata and our client, discovered once. */
  async configuration(): Promise<client.Configuration> {
    if (this.config) return this.config;
    if (!this.discovering) {
      if (Date.now() - this.failedAt < this.coolDownMs) throw this.unreachable();
      this.discovering = client
        .discovery(
          this.s.issuer,
          this.s.clientId,
          { redirect_uris: [this.s.redirectUrl.href], response_types: ['code'] },
          this.s.clientSecret ? client.ClientSecretBasic(this.s.clientSecret) : client.None(),
          {
            timeout: 10,
            // Only a configured, explicitly allowed http:// issuer (loopback dev/test) gets this.
            execute: this.s.allowInsecureIssuer ? [client.allowInsecureRequests] : [],
          },
        )
        .then(
          (c) => {
            this.config = c;
            this.log.info({ issuer: this.s.issuer.href }, 'identity provider discovered');
            return c;
          },
          (err: unknown) => {
            this.failedAt = Date.now();
            this.log.warn(
              { issuer: this.s.issuer.href, err: describeOidcError(err) },
              'identity provider discovery failed',
            );
            throw this.unreachable(err);
          },
        )
        .finally(() => {
          this.discovering = undefined;
        });
    }
    return this.discovering;
  }

  private unreachable(cause?: unknown): KgError {
    return new KgError(
      'KG_ERR_UNAVAILABLE',
      'the identity provider cannot be reached right now; try signing in again shortly',
      { cause, retryAfter: Math.ceil(this.coolDownMs / 1000) },
    );
  }

  /** Start a sign-in: fresh state, nonce and PKCE verifier, and the provider URL to send the browser to. */
  async begin(maxAgeSeconds: number): Promise<{ url: URL; pending: PendingLogin }> {
    const config = await this.configuration();
    const pending: PendingLogin = {
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier: client.randomPKCECodeVerifier(),
    };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.s.redirectUrl.href,
      scope: this.s.scopes.join(' '),
      response_type: 'code',
      state: pending.state,
      nonce: pending.nonce,
      code_challenge: await client.calculatePKCECodeChallenge(pending.codeVerifier),
      code_challenge_method: 'S256',
      max_age: String(maxAgeSeconds),
    });
    return { url, pending };
  }

  /**
   * Finish a sign-in from the callback's query string: the authorization
   * response is checked (state, iss), the code is exchanged with the PKCE
   * verifier, the ID token verified (signature, issuer, audience, nonce,
   * auth_time within max_age) and userinfo read when the provider has it.
   * Returns the merged claims; ID token claims win over userinfo.
   */
  async finish(
    rawQuery: string,
    pending: PendingLogin,
    maxAgeSeconds: number,
  ): Promise<Record<string, unknown>> {
    return (await this.finishSignIn(rawQuery, pending, maxAgeSeconds)).claims;
  }

  /** `finish`, and the refresh token when the provider issued one (groups are re-read with it). */
  async finishSignIn(
    rawQuery: string,
    pending: PendingLogin,
    maxAgeSeconds: number,
  ): Promise<{ claims: Record<string, unknown>; refreshToken: string | undefined }> {
    const config = await this.configuration();
    // The URL the provider redirected to is the configured one, never one built
    // from Host or X-Forwarded-*; only the query comes from the request.
    const current = new URL(this.s.redirectUrl.href);
    current.search = rawQuery;
    try {
      const tokens = await client.authorizationCodeGrant(config, current, {
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        pkceCodeVerifier: pending.codeVerifier,
        maxAge: maxAgeSeconds,
        idTokenExpected: true,
      });
      const idClaims = tokens.claims();
      if (!idClaims) throw new Error('no ID token in the token response');
      let userinfo: Record<string, unknown> = {};
      if (config.serverMetadata().userinfo_endpoint && tokens.access_token) {
        userinfo = await client.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      }
      return { claims: { ...userinfo, ...idClaims }, refreshToken: tokens.refresh_token };
    } catch (err) {
      if (isNetworkError(err)) throw this.unreachable(err);
      const why = describeOidcError(err);
      this.log.info({ err: why }, 'sign-in failed at the code exchange or token checks');
      throw new KgError('KG_ERR_UNAUTHENTICATED', `Sign-in failed: ${why}. Please sign in again.`, {
        cause: err,
      });
    }
  }

  /**
   * Re-read the user's claims with a refresh token (OAuth 2.0 §6): the
   * refreshed ID token's claims, merged over userinfo as at sign-in, and the
   * refresh token to keep (a rotated one, or the same). `subject` is the
   * user's subject at sign-in; claims for anyone else are refused.
   * Outcomes: `refused` when the provider says the grant is dead
   * (invalid_grant: user removed or disabled, consent or session revoked) or
   * the answer names someone else; `unavailable` for anything that may pass
   * (network, provider errors): the caller retries.
   */
  async refresh(
    refreshToken: string,
    subject: string,
  ): Promise<
    | { outcome: 'ok'; claims: Record<string, unknown>; refreshToken: string }
    | { outcome: 'refused' | 'unavailable'; why: string }
  > {
    let config: client.Configuration;
    try {
      config = await this.configuration();
    } catch (err) {
      return { outcome: 'unavailable', why: describeOidcError(err) };
    }
    try {
      const tokens = await client.refreshTokenGrant(config, refreshToken);
      const idClaims = tokens.claims();
      let userinfo: Record<string, unknown> = {};
      if (config.serverMetadata().userinfo_endpoint && tokens.access_token)
        userinfo = await client.fetchUserInfo(
          config,
          tokens.access_token,
          idClaims?.sub ?? subject,
        );
      const claims: Record<string, unknown> = { ...userinfo, ...(idClaims ?? {}) };
      if (claims.sub !== subject)
        return { outcome: 'refused', why: 'the provider answered for another subject' };
      return { outcome: 'ok', claims, refreshToken: tokens.refresh_token ?? refreshToken };
    } catch (err) {
      const why = describeOidcError(err);
      if (err instanceof client.ResponseBodyError && err.error === 'invalid_grant')
        return { outcome: 'refused', why };
      return { outcome: 'unavailable', why };
    }
  }
}
