/**
 * A browser session's claims: the ID token's, plus the verified access token's and userinfo's when
 * `oidc.claimsFrom` names them. Keycloak puts client roles (`resource_access`) in the access token
 * only; some IdPs put groups in userinfo only. Read at login and again at every refresh, so a role
 * granted at the IdP applies from the next refresh on.
 *
 * Conflicts: the first source in `claimsFrom` that has a claim wins (the ID token always comes first).
 * Protocol claims describe a token, not the person, and always come from the ID token.
 * The access token counts only when it is a JWT of the login issuer, signed with its keys, unexpired,
 * issued to our client (`aud` or `azp`) for the same `sub`; anything else is left out with a log line.
 */
import type { VerifiedClaims } from '../authn/bearer.js';
import { isForUs, looksLikeJwt } from '../authn/bearer.js';
import type { Claims } from '../authn/claims.js';
import { decodeJwt } from 'jose';
import type { ClaimSource } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { RefreshResult, TokenRefresher } from '../authn/session.js';
import type { SessionData } from '../session/store.js';
import { SPAN_NAMES, type EdgeOutcome } from '../tracing/contract.js';
import { traced } from '../tracing/edge.js';
import { IdpRejectedError, IdpUnavailableError, MIN_TOKEN_LIFETIME_MS, type OidcClient, type TokenSet } from './client.js';

/** Claims about the token rather than the person (RFC 7519 §4.1, OIDC Core §2, Keycloak's session_state). */
export const PROTOCOL_CLAIMS: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'azp', 'exp', 'iat', 'nbf', 'jti', 'auth_time', 'nonce', 'acr', 'amr', 'sid',
  'at_hash', 'c_hash', 's_hash', 'typ', 'scope', 'session_state', 'client_id',
]);

/**
 * The claims that `sources` (in precedence order, after the ID token) add to the ID token's: a claim
 * is taken from the first source that has it, unless the ID token has it or it is a protocol claim.
 */
export function addedClaims(idClaims: Claims, sources: readonly Claims[]): Claims {
  const added: Claims = {};
  for (const source of sources) {
    for (const [name, value] of Object.entries(source)) {
      if (PROTOCOL_CLAIMS.has(name) || name === '__proto__' || Object.hasOwn(idClaims, name) || Object.hasOwn(added, name)) continue;
      added[name] = value;
    }
  }
  return added;
}

/** The claims a session's identity is built from: the ID token's win over the added ones. */
export function sessionClaims(idClaims: Claims, added: Claims | undefined): Claims {
  return added === undefined || Object.keys(added).length === 0 ? idClaims : { ...added, ...idClaims };
}

/** What a login or a refresh leaves in the session. */
export interface SessionTokens {
  readonly idToken: string;
  readonly refreshToken: string | null;
  /** Claims of the other sources that the ID token lacks (sealed with the session). */
  readonly addedClaims: Claims;
  /** The earliest expiry of the tokens whose claims were used. */
  readonly expiresAt: number;
  /** Kept only with ClaimSourcesDeps.keepAccessToken: a rule exchanges it (upstreamToken). */
  readonly accessToken?: string | undefined;
}

export interface ClaimSourcesDeps {
  readonly claimsFrom: readonly ClaimSource[];
  readonly issuer: string;
  readonly clientId: string;
  /** Signature, issuer, algorithm and expiry of a token of the login issuer (no audience check). */
  verifyAccessToken(token: string): Promise<VerifiedClaims>;
  userInfo(accessToken: string, expectedSubject: string): Promise<Claims>;
  readonly logger: Logger;
  /** Keep the access token in the session (a rule exchanges it); off, sessions stay as small as they were. */
  readonly keepAccessToken?: boolean | undefined;
}

/**
 * The session material for a token response. Throws IdpUnavailableError when a source that is
 * configured cannot be read now (keys or userinfo unreachable: the claims would be incomplete, and
 * fewer roles than the user has is no way to fail), IdpRejectedError (from userInfo) when userinfo
 * refuses the token.
 */
export async function collectSessionTokens(tokens: TokenSet, previousRefreshToken: string | null, deps: ClaimSourcesDeps, now: number): Promise<SessionTokens> {
  const sources: Claims[] = [];
  let expiresAt = tokens.expiresAt;
  const subject = typeof tokens.idClaims.sub === 'string' ? tokens.idClaims.sub : '';
  for (const source of deps.claimsFrom) {
    if (source === 'access_token') {
      const claims = await accessTokenClaims(tokens.accessToken, subject, deps);
      if (claims !== null) {
        sources.push(claims);
        // Its roles last no longer than it does, but never less than MIN_TOKEN_LIFETIME_MS (as the ID token, client.ts):
        // a short-lived access token, or one just past its exp by our clock (within the skew), must not make every check refresh.
        if (typeof claims.exp === 'number') expiresAt = Math.min(expiresAt, Math.max(claims.exp * 1000, now + MIN_TOKEN_LIFETIME_MS));
      }
    } else if (source === 'userinfo') {
      if (tokens.accessToken === undefined) {
        deps.logger.warn('no access token to read userinfo with; its claims are not used', { issuer: deps.issuer });
        continue;
      }
      sources.push(await deps.userInfo(tokens.accessToken, subject));
    }
  }
  return {
    idToken: tokens.idToken,
    refreshToken: tokens.refreshToken ?? previousRefreshToken,
    addedClaims: addedClaims(tokens.idClaims, sources),
    expiresAt,
    ...(deps.keepAccessToken === true && tokens.accessToken !== undefined ? { accessToken: tokens.accessToken } : {}),
  };
}

async function accessTokenClaims(token: string | undefined, subject: string, deps: ClaimSourcesDeps): Promise<Claims | null> {
  if (token === undefined) return null;
  // Opaque access tokens (or JWTs of another issuer, e.g. an upstream IdP's) are not ours to read.
  if (!looksLikeJwt(token)) {
    deps.logger.debug('access token is not a JWT; its claims are not used');
    return null;
  }
  let issuer: unknown;
  try {
    issuer = decodeJwt(token).iss;
  } catch {
    return null;
  }
  if (issuer !== deps.issuer) {
    deps.logger.debug('access token is from another issuer; its claims are not used', { otherIssuer: String(issuer).slice(0, 256) });
    return null;
  }
  const verified = await deps.verifyAccessToken(token);
  if (verified.kind === 'unavailable') throw new IdpUnavailableError(`the keys of ${deps.issuer} cannot be fetched to verify the access token`);
  if (verified.kind === 'invalid') {
    deps.logger.warn('access token failed verification; its claims are not used', { reason: verified.reason });
    return null;
  }
  if (!isForUs(verified.claims, [deps.clientId], [deps.clientId])) {
    deps.logger.warn('access token was not issued to this client; its claims are not used', { clientId: deps.clientId });
    return null;
  }
  if (verified.claims.sub !== subject) {
    deps.logger.warn('access token is for another subject than the ID token; its claims are not used');
    return null;
  }
  return verified.claims;
}

/** Logins and refreshes at the IdP, each turned into what the session keeps. */
export class SessionTokenSource implements TokenRefresher {
  constructor(
    private readonly client: OidcClient,
    private readonly sources: ClaimSourcesDeps,
    private readonly now: () => number,
  ) {}

  /** The code exchange of a login callback. Throws IdpRejectedError / IdpUnavailableError. */
  async login(callbackUrl: URL, expected: { state: string; nonce: string; codeVerifier: string }): Promise<SessionTokens> {
    const tokens = await this.client.finishLogin(callbackUrl, expected, this.now());
    return collectSessionTokens(tokens, null, this.sources, this.now());
  }

  refresh(session: SessionData): Promise<RefreshResult> {
    // Traced (src/tracing): the IdP call and the claims it reads (userinfo, the access token's keys) in one span.
    return traced(SPAN_NAMES.sessionRefresh, {}, () => this.refreshAtIdp(session), describeRefresh);
  }

  private async refreshAtIdp(session: SessionData): Promise<RefreshResult> {
    if (session.refreshToken === null) return { kind: 'rejected', error: 'no_refresh_token', description: 'the session has no refresh token' };
    const outcome = await this.client.refresh(session.refreshToken, session.idToken, this.now());
    if (outcome.kind !== 'ok') return outcome;
    try {
      return { kind: 'ok', tokens: await collectSessionTokens(outcome, session.refreshToken, this.sources, this.now()) };
    } catch (error) {
      if (error instanceof IdpRejectedError) return { kind: 'rejected', error: error.error, description: error.message };
      // The IdP has already rotated the refresh token: dropping the new one would leave the session
      // with a spent token and end it at the next check. Keep the new tokens, without the claims that
      // could not be read (fail closed: rules on them do not match), and read them again soon.
      this.sources.logger.warn('claims could not be read after a refresh; the session keeps its new tokens without them until the next refresh', {
        error: error instanceof Error ? error.message : String(error),
      });
      return {
        kind: 'ok',
        partial: 'claims_unavailable',
        tokens: {
          idToken: outcome.idToken, refreshToken: outcome.refreshToken ?? session.refreshToken, addedClaims: {}, expiresAt: this.now() + MIN_TOKEN_LIFETIME_MS,
          ...(this.sources.keepAccessToken === true && outcome.accessToken !== undefined ? { accessToken: outcome.accessToken } : {}),
        },
      };
    }
  }
}

/** For the refresh span: the outcome and the IdP's error code (a metric label), never its description. */
function describeRefresh(result: RefreshResult): EdgeOutcome {
  if (result.kind === 'ok') return result.partial === undefined ? { result: 'ok' } : { result: 'ok', error: result.partial };
  return { result: result.kind, error: result.error, failed: result.kind === 'unavailable' };
}
