/**
 * The relying-party side of OIDC, on openid-client: discovery (lazy, single-flight, retried after a
 * failure), the authorization URL with PKCE S256 + state + nonce, the code exchange, refresh and the
 * RP-initiated logout URL. The IdP being unreachable is kept apart from the IdP saying no.
 */
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import type { Claims } from '../authn/claims.js';

export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  /** Absent for a public client (PKCE only). */
  readonly clientSecret: string | undefined;
  readonly scopes: readonly string[];
  readonly redirectUri: string;
  readonly timeoutMs: number;
  /** Extra authorization request parameters (e.g. prompt). */
  readonly extraAuthParams: Readonly<Record<string, string>>;
  /** Replaces discovery's authorization_endpoint for browsers (absolute URL). */
  readonly authorizationEndpoint: string | undefined;
}

export interface IssuedTokens {
  readonly idToken: string;
  readonly claims: Claims;
  readonly refreshToken: string | undefined;
  /** When the ID token expires (ms since epoch). */
  readonly expiresAt: number;
}

export type RefreshOutcome =
  | ({ readonly kind: 'ok' } & IssuedTokens)
  | { readonly kind: 'rejected'; readonly error: string }
  | { readonly kind: 'unavailable'; readonly error: string };

/** The IdP could not be reached (or answered garbage): retry later, do not end the session. */
export class IdpUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`identity provider unavailable: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'IdpUnavailableError';
  }
}

/** The IdP answered with an OAuth error (invalid_grant, access_denied, …) or a token failed checks. */
export class IdpRejectedError extends Error {
  constructor(readonly error: string, message: string) {
    super(message);
    this.name = 'IdpRejectedError';
  }
}

export interface LoginRequest {
  readonly url: string;
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

export class OidcClient {
  private configuration: oidc.Configuration | null = null;
  private discovering: Promise<oidc.Configuration> | null = null;

  constructor(private readonly settings: OidcSettings) {}

  private async config(): Promise<oidc.Configuration> {
    if (this.configuration) return this.configuration;
    this.discovering ??= this.discover().finally(() => {
      this.discovering = null;
    });
    return this.discovering;
  }

  private async discover(): Promise<oidc.Configuration> {
    const { issuer, clientId, clientSecret, timeoutMs } = this.settings;
    const insecure = issuer.startsWith('http:');
    try {
      this.configuration = await oidc.discovery(
        new URL(issuer),
        clientId,
        clientSecret === undefined ? { token_endpoint_auth_method: 'none' } : undefined,
        clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret),
        { timeout: Math.ceil(timeoutMs / 1000), execute: insecure ? [oidc.allowInsecureRequests] : [] },
      );
      return this.configuration;
    } catch (error) {
      throw new IdpUnavailableError(error);
    }
  }

  async startLogin(): Promise<LoginRequest> {
    const config = await this.config();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri,
      scope: this.settings.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...this.settings.extraAuthParams,
    });
    if (this.settings.authorizationEndpoint !== undefined) {
      const browserFacing = new URL(this.settings.authorizationEndpoint);
      browserFacing.search = url.search;
      return { url: browserFacing.href, state, nonce, codeVerifier };
    }
    return { url: url.href, state, nonce, codeVerifier };
  }

  /** Exchanges the code at the callback URL; validates state, nonce, PKCE, iss, aud, exp. */
  async finishLogin(callbackUrl: URL, expected: { state: string; nonce: string; codeVerifier: string }): Promise<IssuedTokens> {
    const config = await this.config();
    let response: oidc.TokenEndpointResponse;
    try {
      response = await oidc.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: expected.codeVerifier,
        expectedState: expected.state,
        expectedNonce: expected.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      throw classify(error);
    }
    return tokensFrom(response, undefined);
  }

  async refresh(refreshToken: string, previousIdToken: string): Promise<RefreshOutcome> {
    let config: oidc.Configuration;
    try {
      config = await this.config();
    } catch (error) {
      return { kind: 'unavailable', error: (error as Error).message };
    }
    try {
      const response = await oidc.refreshTokenGrant(config, refreshToken);
      return { kind: 'ok', ...tokensFrom(response, previousIdToken) };
    } catch (error) {
      const classified = classify(error);
      return classified instanceof IdpRejectedError
        ? { kind: 'rejected', error: classified.error }
        : { kind: 'unavailable', error: classified.message };
    }
  }

  /** The IdP's end-session URL, or null when it advertises none (or cannot be reached). */
  async endSessionUrl(idTokenHint: string | undefined, postLogoutRedirectUri: string): Promise<string | null> {
    let config: oidc.Configuration;
    try {
      config = await this.config();
    } catch {
      return null;
    }
    if (!config.serverMetadata().end_session_endpoint) return null;
    const params: Record<string, string> = { post_logout_redirect_uri: postLogoutRedirectUri, client_id: this.settings.clientId };
    if (idTokenHint) params.id_token_hint = idTokenHint;
    return oidc.buildEndSessionUrl(config, params).href;
  }
}

function tokensFrom(response: oidc.TokenEndpointResponse, previousIdToken: string | undefined): IssuedTokens {
  // A refresh response may omit the ID token (OIDC Core §12.2); then the previous one stands for the
  // identity, and the session lives as long as the new access token.
  const idToken = response.id_token ?? previousIdToken;
  if (idToken === undefined) throw new IdpRejectedError('missing_id_token', 'the token response has no ID token');
  const claims = decodeJwt(idToken) as Claims;
  const idTokenExpiry = typeof claims.exp === 'number' ? claims.exp * 1000 : 0;
  const expiresAt = response.id_token !== undefined
    ? idTokenExpiry
    : Date.now() + (typeof response.expires_in === 'number' ? response.expires_in * 1000 : 0);
  return { idToken, claims, refreshToken: response.refresh_token, expiresAt };
}

/** OAuth error responses and failed token checks are rejections; everything else is unavailability. */
function classify(error: unknown): IdpRejectedError | IdpUnavailableError {
  if (error instanceof IdpRejectedError || error instanceof IdpUnavailableError) return error;
  if (error instanceof oidc.ResponseBodyError) return new IdpRejectedError(error.error, error.error_description ?? error.error);
  if (error instanceof oidc.AuthorizationResponseError) return new IdpRejectedError(error.error, error.error_description ?? error.error);
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('OAUTH_') && code !== 'OAUTH_RESPONSE_IS_NOT_CONFORM' && code !== 'OAUTH_HTTP_REQUEST_FORBIDDEN') {
    return new IdpRejectedError(code.toLowerCase(), (error as Error).message);
  }
  return new IdpUnavailableError(error);
}
