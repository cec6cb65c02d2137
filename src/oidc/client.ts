/**
 * The relying-party side of OIDC, on openid-client: discovery (started at boot, retried until it
 * succeeds, checked against the configured issuer), the authorization URL with PKCE S256 + state +
 * nonce, the code exchange, refresh, userinfo, RFC 8693 token exchange and the RP-initiated logout URL.
 *
 * What can go wrong is kept in three kinds, because each asks for something else: the IdP is
 * unreachable (retry later, keep sessions), it says no (the user signs in again), or our configuration
 * does not match it (an operator must act: the log names what was expected and what was found).
 */
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import type { Claims } from '../authn/claims.js';
import { DEFAULT_SCOPES } from '../config/schema.js';
import type { Logger } from '../log.js';
import { diagnoseDiscovery, type DiscoveryProblem } from './discovery.js';
import { ACCESS_TOKEN_TYPE, exchangeErrorOf, failureOfStatus, TOKEN_EXCHANGE_GRANT, type ExchangeGrantResult, type ExchangeTarget } from '../token-exchange/contract.js';

export interface OidcSettings {
  readonly issuer: string;
  readonly clientId: string;
  /** Absent for a public client (PKCE only). */
  readonly clientSecret: string | undefined;
  /** As configured; undefined: DEFAULT_SCOPES minus those the IdP does not list. */
  readonly scopes: readonly string[] | undefined;
  /**
   * A redirect_uri that is a path ("/oauth2/callback"), sent to the IdP as written in the authorization
   * request and in the code exchange; undefined: each login uses its absolute callback URL.
   */
  readonly relativeRedirectUri: string | undefined;
  readonly timeoutMs: number;
  /** Extra authorization request parameters (e.g. prompt). */
  readonly extraAuthParams: Readonly<Record<string, string>>;
  /** An absolute post_logout_redirect_uri known at start-up (checked against the IdP then), if any. */
  readonly postLogoutRedirectUri: string | undefined;
}

/** What one login needs to know about the request it starts from. */
export interface LoginUrls {
  /** The redirect_uri of this login (absolute, or the relative one as configured). */
  readonly redirectUri: string;
  /** Replaces discovery's authorization_endpoint for browsers (absolute URL). */
  readonly authorizationEndpoint: string | undefined;
  /** An offline grant for an offlineToken route: scope `openid offline_access` only, with the user's consent asked again. */
  readonly offline?: boolean | undefined;
}

/** What a token endpoint answered, the ID token already validated by openid-client. */
export interface TokenSet {
  readonly idToken: string;
  readonly idClaims: Claims;
  readonly accessToken: string | undefined;
  readonly refreshToken: string | undefined;
  /** When the ID token expires (ms since epoch), or, for a refresh without a new ID token, the access token. */
  readonly expiresAt: number;
}

export type RefreshOutcome =
  | ({ readonly kind: 'ok' } & TokenSet)
  | { readonly kind: 'rejected'; readonly error: string; readonly description: string }
  | { readonly kind: 'unavailable'; readonly error: string; readonly description: string };

/** The IdP could not be reached (or answered garbage): retry later, do not end the session. */
export class IdpUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IdpUnavailableError';
  }
}

/** Our configuration does not match the IdP (wrong issuer spelling, wrong path): an operator must act. */
export class IdpMisconfiguredError extends IdpUnavailableError {
  constructor(message: string) {
    super(message);
    this.name = 'IdpMisconfiguredError';
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
  readonly redirectUri: string;
}

export type DiscoveryStatus =
  | { readonly state: 'pending' }
  | { readonly state: 'ready' }
  | { readonly state: 'failed'; readonly problem: DiscoveryProblem };

/** Discovery retries at boot: 1 s, 2 s, 4 s, … up to this. */
const MAX_RETRY_MS = 30_000;
/**
 * OAuth errors that say something about us, not the user's session (a rotated client secret, a client
 * no longer allowed to refresh): ending every session over them would log everyone out for an
 * operator's mistake, so they count as the IdP being unusable for now.
 */
const CLIENT_ERRORS = new Set(['invalid_client', 'unauthorized_client', 'unsupported_grant_type']);
/** OAuth errors of an IdP in trouble (RFC 6749 §4.1.2.1) or one asking us to slow down: retry later. */
const SERVER_ERRORS = new Set(['server_error', 'temporarily_unavailable', 'slow_down']);
/**
 * The only answers to a refresh that end a session: the refresh token is no longer good. Dex says
 * `invalid_request` for a refresh token it no longer has (another login replaced it). Anything else an
 * IdP or the response can do wrong is unavailability: the session is kept and the check answers 503.
 */
const SESSION_ENDED = new Set(['invalid_grant', 'invalid_request']);
/** The shortest time between two refreshes of one session, whatever the IdP says its tokens live. */
export const MIN_TOKEN_LIFETIME_MS = 30_000;

/** The least an offline grant needs: the ID token (whose user must be the session's) and the offline token. */
const OFFLINE_SCOPES = 'openid offline_access';

export class OidcClient {
  private configuration: oidc.Configuration | null = null;
  private discovering: Promise<oidc.Configuration> | null = null;
  private status: DiscoveryStatus = { state: 'pending' };
  private scopes: string;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly settings: OidcSettings,
    private readonly logger: Logger,
  ) {
    this.scopes = (settings.scopes ?? DEFAULT_SCOPES).join(' ');
  }

  /** Whether discovery has succeeded (readiness), and if not, why. */
  discoveryStatus(): DiscoveryStatus {
    return this.status;
  }

  /** Starts discovery now and retries it with back-off until it succeeds (or stop()). */
  start(): void {
    const attempt = (delayMs: number) => {
      this.config().catch(() => {
        if (this.stopped) return;
        this.retryTimer = setTimeout(() => attempt(Math.min(delayMs * 2, MAX_RETRY_MS)), delayMs);
        this.retryTimer.unref();
      });
    };
    attempt(1_000);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
  }

  private async config(): Promise<oidc.Configuration> {
    if (this.configuration) return this.configuration;
    this.discovering ??= this.discover().finally(() => {
      this.discovering = null;
    });
    return this.discovering;
  }

  private async discover(): Promise<oidc.Configuration> {
    const { issuer, clientId, clientSecret, timeoutMs } = this.settings;
    let configuration: oidc.Configuration;
    try {
      configuration = await oidc.discovery(
        new URL(issuer),
        clientId,
        clientSecret === undefined ? { token_endpoint_auth_method: 'none' } : undefined,
        clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret),
        { timeout: Math.ceil(timeoutMs / 1000), execute: issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [] },
      );
    } catch (error) {
      // openid-client says "failed"; find out what exactly, in words an operator can act on.
      const problem = await diagnoseDiscovery(issuer, timeoutMs, error);
      if (this.status.state !== 'failed' || this.status.problem.message !== problem.message) {
        this.logger.error(problem.kind === 'misconfigured' ? 'oidc issuer misconfigured' : 'oidc issuer unreachable', {
          configuredIssuer: issuer,
          ...problem.fields,
          problem: problem.message,
        });
      }
      this.status = { state: 'failed', problem };
      throw problem.kind === 'misconfigured' ? new IdpMisconfiguredError(problem.message) : new IdpUnavailableError(problem.message, { cause: error });
    }
    this.adoptScopes(configuration.serverMetadata().scopes_supported);
    const relative = this.settings.relativeRedirectUri;
    if (relative !== undefined) {
      // openid-client names the callback's absolute URL as redirect_uri in the code exchange; an IdP that
      // registered the path only (Kubeflow's Dex, compared as strings) needs the exchange to name the
      // same string as the authorization request did.
      configuration[oidc.customFetch] = (url, options) => {
        const body = options.body;
        if (body instanceof URLSearchParams && body.get('grant_type') === 'authorization_code' && body.has('redirect_uri')) body.set('redirect_uri', relative);
        return fetch(url, options as RequestInit);
      };
    }
    this.configuration = configuration;
    this.status = { state: 'ready' };
    this.logger.info('oidc discovery ok', { issuer, scopes: this.scopes });
    void this.checkPostLogoutRedirect(configuration);
    return configuration;
  }

  /**
   * Keycloak has no "groups" scope and refuses a login that asks for it (invalid_scope). The default
   * scopes are optional wishes: leave out what the IdP does not list. Configured scopes are sent as
   * written (an IdP may accept scopes it does not list, such as Dex's cross-client scopes); a warning
   * names those it does not list.
   */
  private adoptScopes(supported: readonly string[] | undefined): void {
    if (!Array.isArray(supported)) return;
    if (this.settings.scopes === undefined) {
      const kept = DEFAULT_SCOPES.filter((scope) => scope === 'openid' || supported.includes(scope));
      const dropped = DEFAULT_SCOPES.filter((scope) => !kept.includes(scope));
      if (dropped.length > 0) this.logger.info('default scopes the IdP does not support are left out', { dropped, kept });
      this.scopes = kept.join(' ');
      return;
    }
    const unlisted = this.settings.scopes.filter((scope) => !supported.includes(scope));
    if (unlisted.length > 0) {
      this.logger.warn('oidc.scopes names scopes the IdP does not list in scopes_supported; it may refuse every login (invalid_scope)', { unlisted });
    }
  }

  /**
   * Keycloak answers an unregistered post_logout_redirect_uri with an error page and leaves its own
   * session alive, so a signed-out user would be signed in again at once. Asking once at start-up
   * (no session involved, nothing changes at the IdP) turns that into a log line an operator sees.
   */
  private async checkPostLogoutRedirect(configuration: oidc.Configuration): Promise<void> {
    const endpoint = configuration.serverMetadata().end_session_endpoint;
    const uri = this.settings.postLogoutRedirectUri;
    if (!endpoint || uri === undefined) return;
    try {
      const url = new URL(endpoint);
      url.searchParams.set('client_id', this.settings.clientId);
      url.searchParams.set('post_logout_redirect_uri', uri);
      const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(this.settings.timeoutMs) });
      await response.body?.cancel();
      if (response.status < 400) {
        this.logger.debug('the IdP accepts our post_logout_redirect_uri', { postLogoutRedirectUri: uri, status: response.status });
      } else if (response.status < 500) {
        this.logger.warn('the IdP refuses our post_logout_redirect_uri: sign-out will show its error page and leave the IdP session alive; register the URI for the client at the IdP', {
          postLogoutRedirectUri: uri,
          clientId: this.settings.clientId,
          status: response.status,
        });
      }
    } catch (error) {
      this.logger.debug('post-logout redirect check failed', { error });
    }
  }

  async startLogin(urls: LoginUrls): Promise<LoginRequest> {
    const config = await this.config();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: urls.redirectUri,
      scope: urls.offline === true ? OFFLINE_SCOPES : this.scopes,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
      ...this.settings.extraAuthParams,
      // A grant that outlives the session is asked for explicitly, every time.
      ...(urls.offline === true ? { prompt: 'consent' } : {}),
    });
    if (urls.authorizationEndpoint !== undefined) {
      const browserFacing = new URL(urls.authorizationEndpoint);
      browserFacing.search = url.search;
      return { url: browserFacing.href, state, nonce, codeVerifier, redirectUri: urls.redirectUri };
    }
    return { url: url.href, state, nonce, codeVerifier, redirectUri: urls.redirectUri };
  }

  /** Exchanges the code at the callback URL; validates state, nonce, PKCE, iss, aud, exp. */
  async finishLogin(callbackUrl: URL, expected: { state: string; nonce: string; codeVerifier: string }, now: number): Promise<TokenSet> {
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
      throw classify(error, 'login');
    }
    return tokenSetFrom(response, undefined, now);
  }

  async refresh(refreshToken: string, previousIdToken: string, now: number): Promise<RefreshOutcome> {
    let config: oidc.Configuration;
    try {
      config = await this.config();
    } catch (error) {
      return { kind: 'unavailable', error: error instanceof IdpMisconfiguredError ? 'misconfigured' : 'unreachable', description: (error as Error).message };
    }
    try {
      const response = await oidc.refreshTokenGrant(config, refreshToken);
      return { kind: 'ok', ...tokenSetFrom(response, previousIdToken, now) };
    } catch (error) {
      const classified = classify(error, 'refresh');
      if (classified instanceof IdpRejectedError) return { kind: 'rejected', error: classified.error, description: classified.message };
      return { kind: 'unavailable', error: unavailabilityOf(classified), description: classified.message };
    }
  }

  /**
   * RFC 8693 token exchange at the token endpoint, as this (confidential) client: `subjectToken`, an access
   * token that names this client in its audience (Keycloak's requirement), for one restricted to `target`.
   * Never throws: the answer is classified for the check (token-exchange/contract.ts).
   */
  async exchangeToken(subjectToken: string, target: ExchangeTarget, now: number): Promise<ExchangeGrantResult> {
    let config: oidc.Configuration;
    try {
      config = await this.config();
    } catch (error) {
      return { kind: 'unavailable', error: error instanceof IdpMisconfiguredError ? 'misconfigured' : 'unreachable' };
    }
    const parameters: Record<string, string> = {
      subject_token: subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      requested_token_type: ACCESS_TOKEN_TYPE,
      audience: target.audience,
    };
    if (target.scope !== null) parameters.scope = target.scope;
    try {
      const response = await oidc.genericGrantRequest(config, TOKEN_EXCHANGE_GRANT, parameters);
      const expiresAt = typeof response.expires_in === 'number' ? now + response.expires_in * 1000 : null;
      return { kind: 'ok', accessToken: response.access_token, expiresAt };
    } catch (error) {
      return exchangeFailureOf(error);
    }
  }

  /** The userinfo claims for an access token; `sub` must be the ID token's (OIDC Core §5.3.2). */
  async userInfo(accessToken: string, expectedSubject: string): Promise<Claims> {
    const config = await this.config();
    try {
      return (await oidc.fetchUserInfo(config, accessToken, expectedSubject)) as Claims;
    } catch (error) {
      throw classify(error, 'userinfo');
    }
  }

  /**
   * Ends a refresh token at the IdP, so no copy of the session (a stolen cookie) can be refreshed again:
   * with RFC 7009 revocation when discovery names an endpoint (Keycloak: also its offline sessions);
   * otherwise with one refresh whose answer is dropped, which spends the token at IdPs that rotate
   * refresh tokens (Dex) — `kept` when the answer shows the IdP does not rotate (nothing we can do).
   */
  async endRefreshToken(refreshToken: string): Promise<'revoked' | 'spent' | 'kept' | 'failed'> {
    let config: oidc.Configuration;
    try {
      config = await this.config();
    } catch {
      return 'failed';
    }
    try {
      if (config.serverMetadata().revocation_endpoint) {
        await oidc.tokenRevocation(config, refreshToken, { token_type_hint: 'refresh_token' });
        return 'revoked';
      }
      const response = await oidc.refreshTokenGrant(config, refreshToken);
      return response.refresh_token !== undefined && response.refresh_token !== refreshToken ? 'spent' : 'kept';
    } catch (error) {
      const classified = classify(error, 'refresh');
      // Already refused: the token was revoked or spent before (another sign-out, the IdP's own logout).
      if (classified instanceof IdpRejectedError) return 'spent';
      this.logger.warn('could not end the refresh token at the IdP on sign-out; copies of the session stay usable until session.maxAge', { error: classified.message });
      return 'failed';
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

function tokenSetFrom(response: oidc.TokenEndpointResponse, previousIdToken: string | undefined, now: number): TokenSet {
  // A refresh response may omit the ID token (OIDC Core §12.2); then the previous one stands for the
  // identity, and the tokens last as long as the new access token.
  const idToken = response.id_token ?? previousIdToken;
  if (idToken === undefined) throw new IdpRejectedError('missing_id_token', 'the token response has no ID token');
  const idClaims = decodeJwt(idToken) as Claims;
  const stated = response.id_token !== undefined
    ? (typeof idClaims.exp === 'number' ? idClaims.exp * 1000 : 0)
    : now + (typeof response.expires_in === 'number' ? response.expires_in * 1000 : 0);
  // An IdP that states no lifetime (or one already past by our clock) must not make every check refresh.
  return { idToken, idClaims, accessToken: response.access_token, refreshToken: response.refresh_token, expiresAt: Math.max(stated, now + MIN_TOKEN_LIFETIME_MS) };
}

type IdpCall = 'login' | 'refresh' | 'userinfo';

/**
 * What an IdP failure means. Rejections are for the user (sign in again); everything else keeps
 * sessions and is retried. At a refresh only "this refresh token is no longer good" rejects; at a
 * login the IdP's refusals and failed token checks do (the user starts again), except what is ours
 * (client authentication: a WWW-Authenticate challenge or a client error) or the IdP's trouble.
 */
export function classify(error: unknown, call: IdpCall): IdpRejectedError | IdpUnavailableError {
  if (error instanceof IdpRejectedError || error instanceof IdpUnavailableError) return error;
  if (error instanceof oidc.WWWAuthenticateChallengeError) {
    const challenge = error.cause[0];
    const code = typeof challenge?.parameters.error === 'string' ? challenge.parameters.error : 'invalid_client';
    if (call === 'userinfo' && error.status === 401 && code === 'invalid_token') return new IdpRejectedError(code, oneLine(challenge?.parameters.error_description ?? code));
    return new IdpMisconfiguredError(`the IdP refused this client (${error.status} ${code}): is the client secret right?`);
  }
  if (error instanceof oidc.ResponseBodyError) {
    const description = oneLine(error.error_description ?? error.error);
    if (CLIENT_ERRORS.has(error.error)) return new IdpMisconfiguredError(`the IdP refused this client: ${error.error}: ${description}`);
    if (SERVER_ERRORS.has(error.error) || error.status >= 500 || error.status === 429) return new IdpUnavailableError(`the IdP answered ${error.status} ${error.error}: ${description}`);
    if (call === 'refresh' && !SESSION_ENDED.has(error.error)) return new IdpUnavailableError(`the IdP answered ${error.status} ${error.error} to a refresh: ${description}`);
    return new IdpRejectedError(error.error, description);
  }
  if (error instanceof oidc.AuthorizationResponseError) return new IdpRejectedError(error.error, oneLine(error.error_description ?? error.error));
  const code = (error as { code?: unknown }).code;
  // openid-client's own checks of a response (ID token claims, shape): at a login the user starts again;
  // at a refresh the IdP sent us something broken, which is no reason to end the user's session.
  if (call !== 'refresh' && typeof code === 'string' && code.startsWith('OAUTH_') && code !== 'OAUTH_RESPONSE_IS_NOT_CONFORM' && code !== 'OAUTH_RESPONSE_IS_NOT_JSON' && code !== 'OAUTH_HTTP_REQUEST_FORBIDDEN') {
    return new IdpRejectedError(code.toLowerCase(), oneLine((error as Error).message));
  }
  return new IdpUnavailableError(`identity provider unavailable: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

/** A failed exchange, for the check: the IdP's refusals → refused (403), its trouble and ours → unavailable (503). */
export function exchangeFailureOf(error: unknown): Exclude<ExchangeGrantResult, { kind: 'ok' }> {
  if (error instanceof oidc.WWWAuthenticateChallengeError) {
    const code = error.cause[0]?.parameters.error;
    return failureOfStatus(error.status, typeof code === 'string' ? code : 'invalid_client');
  }
  if (error instanceof oidc.ResponseBodyError) return failureOfStatus(error.status, error.error);
  // Connection errors, timeouts, 5xx without an OAuth body, answers that are no token response: labelled as a refresh's would be.
  return { kind: 'unavailable', error: exchangeErrorOf(unavailabilityOf(new IdpUnavailableError('token exchange failed', { cause: error }))) };
}

/** A bounded metric label for why the IdP could not be used. */
function unavailabilityOf(error: IdpUnavailableError): string {
  if (error instanceof IdpMisconfiguredError) return 'misconfigured';
  const cause = error.cause as { name?: string; code?: string; cause?: { status?: unknown } } | undefined;
  // openid-client reports its own timeout (oidc.timeout) as a ClientError with code OAUTH_TIMEOUT: not a bad answer.
  if (cause?.name === 'TimeoutError' || cause?.name === 'AbortError' || cause?.code === 'OAUTH_TIMEOUT') return 'timeout';
  // openid-client keeps the Response of a non-OAuth answer as its cause: a 5xx or 429 is the IdP in trouble.
  const status = typeof cause?.cause?.status === 'number' ? cause.cause.status : 0;
  if (status >= 500 || status === 429) return 'server_error';
  if (typeof cause?.code === 'string' && cause.code.startsWith('OAUTH_')) return 'bad_response';
  return error.message.startsWith('the IdP answered') ? 'server_error' : 'unreachable';
}

/** IdP texts go into logs and pages: one line, printable, bounded. */
function oneLine(text: string): string {
  return text.replace(/[^\x20-\x7e]+/g, ' ').trim().slice(0, 300);
}
