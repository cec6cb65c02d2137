/**
 * Bearer JWT verification for several issuers (the IdP's ID tokens, the in-cluster Kubernetes
 * service-account issuer, others). The token's `iss` picks the issuer; its `alg` must be on that
 * issuer's allow-list (never the token's own choice); keys come from the issuer's JWKS only
 * (`jku`, `x5u` and embedded `jwk` headers are refused). Results are cached by the token (cache.ts
 * CredentialCache): verified identities until `exp` (at most one JWKS max-age), definite failures for a
 * minute. A first-seen token is verified synchronously once jose has selected its key (sync-verify.ts).
 *
 * Opaque tokens (not a JWT) go to the one issuer whose RFC 7662 introspection takes them
 * (introspection.ts); an issuer with introspection `jwt: always` has its verified JWTs introspected too.
 * Those answers share the cache: active ones until min(exp, introspection.cacheFor), inactive ones for
 * introspection.inactiveCacheFor; an unreachable IdP (503) is never cached here.
 */
import { decodeProtectedHeader, jwtVerify, type JWTClaimVerificationOptions, type JWTVerifyGetKey } from 'jose';
import { CredentialCache, digestOf } from '../cache.js';
import { buildIdentity, type Identity, type IdentityFailure, type IdentityMapping } from './identity.js';
import type { IntrospectionExpectations, Introspector } from './introspection.js';
import { KeysUnavailableError, type KeySet, type KeySource } from './jwks.js';
import type { Claims } from './claims.js';
import { decodedPart, verifySync } from './sync-verify.js';

export type TokenFailure =
  | 'malformed_token'
  | 'token_too_large'
  | 'unknown_issuer'
  | 'disallowed_algorithm'
  | 'disallowed_header'
  | 'unknown_key'
  | 'bad_signature'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'wrong_audience'
  | 'missing_claim'
  | 'invalid_token'
  /** The issuer's introspection answered `active: false` (revoked, expired, unknown to it). */
  | 'token_inactive'
  | IdentityFailure;

/** A dependency of bearer verification is down: the issuer's keys, or its introspection endpoint. */
export type BearerUnavailable = 'jwks_unavailable' | 'introspection_unavailable';

export type BearerResult =
  | { readonly kind: 'identity'; readonly identity: Identity }
  | { readonly kind: 'invalid'; readonly reason: TokenFailure; readonly issuer?: string }
  | { readonly kind: 'unavailable'; readonly reason: BearerUnavailable };

export type VerifiedClaims =
  | { readonly kind: 'ok'; readonly claims: Claims }
  | { readonly kind: 'invalid'; readonly reason: TokenFailure }
  | { readonly kind: 'unavailable' };

export interface TrustedIssuer {
  readonly issuer: string;
  /** A token is for us when its `aud` holds one of these… */
  readonly audiences: readonly string[];
  /** …or its `azp` (the client it was issued to) is one of these. */
  readonly authorizedParties: readonly string[];
  readonly algorithms: readonly string[];
  readonly keys: KeySource;
  readonly mapping: IdentityMapping;
  /** RFC 7662 introspection of this issuer's tokens (opaque ones and/or its JWTs), when configured. */
  readonly introspection?: Introspector | undefined;
}

export interface BearerOptions {
  readonly clockSkewMs: number;
  readonly maxTokenBytes: number;
  readonly cacheMaxEntries: number;
  /** Upper bound on how long a verified token is answered from cache (keys may be withdrawn). */
  readonly maxCacheMs: number;
}

/** Compact JWS: three base64url parts (the signature may be empty only to be refused below). */
/** What a logout token must carry besides iss (OIDC Back-Channel Logout 1.0 §2.4). */
const LOGOUT_TOKEN_CLAIMS = ['iat', 'jti'] as const;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const FAILURE_CACHE_MS = 60_000;
const INTROSPECTION_UNAVAILABLE: BearerResult = { kind: 'unavailable', reason: 'introspection_unavailable' };
const JWKS_UNAVAILABLE: BearerResult = { kind: 'unavailable', reason: 'jwks_unavailable' };
const TOO_LARGE: BearerResult = { kind: 'invalid', reason: 'token_too_large' };
const MALFORMED: BearerResult & VerifiedClaims = { kind: 'invalid', reason: 'malformed_token' };
const WRONG_AUDIENCE: VerifiedClaims = { kind: 'invalid', reason: 'wrong_audience' };
/** An unknown issuer is named in the answer and the log (an operator's first clue), within reason. */
const MAX_NAMED_ISSUER = 256;

/** A compact JWS, by shape only (an opaque access token is not). */
export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token);
}

/** Failures that the same token will always produce again, so they are safe to remember. */
const CACHEABLE_FAILURES = new Set<TokenFailure>([
  'malformed_token', 'unknown_issuer', 'disallowed_algorithm', 'disallowed_header', 'bad_signature',
  'token_expired', 'wrong_audience', 'missing_claim', 'missing_user_id', 'unverified_email', 'invalid_user_id',
]);

export class BearerVerifier {
  private readonly byIssuer: Map<string, TrustedIssuer>;
  private readonly cache: CredentialCache<BearerResult>;
  /** The issuer that takes opaque (non-JWT) tokens, if any (config allows at most one). */
  private readonly opaque: TrustedIssuer | undefined;

  constructor(
    issuers: readonly TrustedIssuer[],
    private readonly options: BearerOptions,
    private readonly now: () => number = Date.now,
  ) {
    this.byIssuer = new Map(issuers.map((i) => [i.issuer, i]));
    this.opaque = issuers.find((i) => i.introspection?.settings.opaqueTokens === true);
    // A token is all of its Authorization header but "Bearer ": kept as it is.
    this.cache = new CredentialCache(options.cacheMaxEntries, false);
  }

  get cacheSize(): number {
    return this.cache.size;
  }

  /**
   * Synchronous when the token is cached (the hot path) and when a first-seen JWT's key is already known,
   * a promise otherwise.
   */
  verify(token: string): BearerResult | Promise<BearerResult> {
    if (token.length > this.options.maxTokenBytes) return TOO_LARGE;
    const cached = this.cache.get(token, this.now());
    if (cached !== undefined) return cached;
    if (!JWT_SHAPE.test(token)) {
      if (this.opaque !== undefined) return this.introspectOpaque(token, this.opaque);
      return this.remember(token, MALFORMED);
    }
    return this.verifyUncached(token);
  }

  private verifyUncached(token: string): BearerResult | Promise<BearerResult> {
    let unverified: Claims;
    try {
      unverified = decodedPart(token, 1) as Claims;
    } catch {
      // Three dot-separated base64url parts that are no JWT: an opaque token may happen to look like one.
      if (this.opaque !== undefined) return this.introspectOpaque(token, this.opaque);
      return this.remember(token, MALFORMED);
    }
    const issuer = typeof unverified.iss === 'string' ? this.byIssuer.get(unverified.iss) : undefined;
    if (issuer === undefined) {
      // Keycloak's iss follows the host name a token was fetched through: name what the token said.
      const named = typeof unverified.iss === 'string' ? printable(unverified.iss).slice(0, MAX_NAMED_ISSUER) : undefined;
      return this.remember(token, named === undefined ? { kind: 'invalid', reason: 'unknown_issuer' } : { kind: 'invalid', reason: 'unknown_issuer', issuer: named });
    }
    const verified = this.verifySigned(token, issuer, !issuer.mapping.audienceCheckedByRules, ['exp'], unverified);
    return verified instanceof Promise ? verified.then((v) => this.admit(token, issuer, v)) : this.admit(token, issuer, verified);
  }

  /** A verified (or refused) JWT of `issuer`: its identity, introspected first when the issuer says so. */
  private admit(token: string, issuer: TrustedIssuer, verified: VerifiedClaims): BearerResult | Promise<BearerResult> {
    if (verified.kind === 'unavailable') return JWKS_UNAVAILABLE;
    if (verified.kind === 'invalid') return this.remember(token, verified);
    const claims = verified.claims;
    const built = buildIdentity(claims, issuer.mapping, 'bearer');
    if (!built.ok) return this.remember(token, { kind: 'invalid', reason: built.reason });
    const result: BearerResult = { kind: 'identity', identity: built.identity };
    const expiresAt = Math.min((claims.exp as number) * 1000, this.now() + this.options.maxCacheMs);
    if (issuer.introspection?.settings.jwt === 'always') return this.introspectVerified(token, issuer.introspection, issuer, result, expiresAt);
    this.cache.set(token, result, expiresAt, true);
    return result;
  }

  /**
   * The signature says who issued it; only the issuer can say it was not revoked since. The JWT's own
   * audience was checked, so the answer's is not checked again; its claims are the JWT's.
   */
  private async introspectVerified(token: string, introspector: Introspector, issuer: TrustedIssuer, result: BearerResult, expiresAt: number): Promise<BearerResult> {
    const outcome = await introspector.introspect(token, digestOf(token), this.expectations(issuer, false));
    if (outcome.kind === 'unavailable') return INTROSPECTION_UNAVAILABLE;
    if (outcome.kind === 'inactive') return this.rememberFor(token, { kind: 'invalid', reason: outcome.reason }, introspector.settings.inactiveCacheForMs);
    this.cache.set(token, result, Math.min(expiresAt, this.now() + introspector.settings.cacheForMs), true);
    return result;
  }

  /** An opaque token: the issuer's introspection answer is the verification, its claims the identity's. */
  private async introspectOpaque(token: string, issuer: TrustedIssuer): Promise<BearerResult> {
    const introspector = issuer.introspection!;
    const outcome = await introspector.introspect(token, digestOf(token), this.expectations(issuer, !issuer.mapping.audienceCheckedByRules));
    if (outcome.kind === 'unavailable') return INTROSPECTION_UNAVAILABLE;
    const inactiveFor = introspector.settings.inactiveCacheForMs;
    if (outcome.kind === 'inactive') return this.rememberFor(token, { kind: 'invalid', reason: outcome.reason }, inactiveFor);
    const built = buildIdentity(outcome.claims, issuer.mapping, 'bearer');
    if (!built.ok) return this.rememberFor(token, { kind: 'invalid', reason: built.reason }, inactiveFor);
    const result: BearerResult = { kind: 'identity', identity: built.identity };
    // Never past the token's exp (when the answer has one), nor longer than cacheFor: a revocation at the
    // IdP is seen within cacheFor.
    const until = Math.min(outcome.expiresAt ?? Infinity, this.now() + introspector.settings.cacheForMs);
    this.cache.set(token, result, until, true);
    return result;
  }

  private expectations(issuer: TrustedIssuer, checkAudience: boolean): IntrospectionExpectations {
    return { issuer: issuer.issuer, audiences: issuer.audiences, authorizedParties: issuer.authorizedParties, checkAudience, clockSkewMs: this.options.clockSkewMs };
  }

  private rememberFor(token: string, result: BearerResult, ms: number): BearerResult {
    this.cache.set(token, result, this.now() + ms, false);
    return result;
  }

  /**
   * The claims of a token of `issuerName`, verified (issuer, algorithm, signature, exp) but without the
   * audience check, which the caller makes itself: a session's access token is checked against the
   * client it was issued to. Never cached.
   */
  verifiedClaims(token: string, issuerName: string): Promise<VerifiedClaims> {
    const issuer = this.byIssuer.get(issuerName);
    if (issuer === undefined || token.length > this.options.maxTokenBytes || !JWT_SHAPE.test(token)) {
      return Promise.resolve(MALFORMED);
    }
    return Promise.resolve(this.verifySigned(token, issuer, false));
  }

  /**
   * An OIDC Back-Channel Logout token of `issuerName` (§2.6): signature, issuer and algorithm as for any of
   * its tokens, `iat` and `jti` required, `exp` checked when present (the spec does not require it), an
   * explicit `typ` only as "logout+jwt" or "JWT". Audience, events, sid/sub and nonce are the caller's checks.
   */
  verifiedLogoutClaims(token: string, issuerName: string): Promise<VerifiedClaims> {
    const issuer = this.byIssuer.get(issuerName);
    if (issuer === undefined || token.length > this.options.maxTokenBytes || !JWT_SHAPE.test(token)) {
      return Promise.resolve({ kind: 'invalid', reason: 'malformed_token' });
    }
    let typ: unknown;
    try {
      typ = decodeProtectedHeader(token).typ;
    } catch {
      return Promise.resolve({ kind: 'invalid', reason: 'malformed_token' });
    }
    // logout+jwt is recommended, not required (§2.4): a plain JWT is taken too; the events claim and the
    // absent nonce already tell a logout token from an ID or access token. Any other type is refused.
    if (typ !== undefined && (typeof typ !== 'string' || !/^((application\/)?logout\+jwt|jwt)$/i.test(typ))) return Promise.resolve({ kind: 'invalid', reason: 'disallowed_header' });
    return Promise.resolve(this.verifySigned(token, issuer, false, LOGOUT_TOKEN_CLAIMS));
  }

  /**
   * Header checks, then the signature with the issuer's keys (one refetch for an unknown kid), then the
   * claims. Synchronous when the keys are at hand and jose has selected the token's key before.
   * `payload`: the token's payload, when the caller has decoded it already (the claims once it is verified).
   */
  private verifySigned(token: string, issuer: TrustedIssuer, checkAudience: boolean, requiredClaims: readonly string[] = ['exp'], payload?: Claims): VerifiedClaims | Promise<VerifiedClaims> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodedPart(token, 0);
    } catch {
      return MALFORMED;
    }
    if (typeof header.alg !== 'string' || !issuer.algorithms.includes(header.alg)) return { kind: 'invalid', reason: 'disallowed_algorithm' };
    if (header.jku !== undefined || header.x5u !== undefined || header.jwk !== undefined) return { kind: 'invalid', reason: 'disallowed_header' };
    const keys = issuer.keys.keys();
    if (!(keys instanceof Promise)) {
      const verified = this.verifySynchronously(token, header, issuer, keys, checkAudience, requiredClaims, payload);
      if (verified !== null) return verified;
    }
    return this.verifyWithJose(token, issuer, keys, checkAudience, requiredClaims);
  }

  /** sync-verify.ts: node:crypto for the signature, jose for the key selection, jwtVerify's claim checks; null: not this path. */
  private verifySynchronously(token: string, header: Record<string, unknown>, issuer: TrustedIssuer, keys: KeySet, checkAudience: boolean, requiredClaims: readonly string[], payload: Claims | undefined): VerifiedClaims | null {
    const joseAudience = checkAudience && issuer.authorizedParties.length === 0;
    const outcome = verifySync(token, header, keys.selected, {
      issuer: issuer.issuer,
      audiences: joseAudience ? issuer.audiences : null,
      requiredClaims,
      clockToleranceS: this.options.clockSkewMs / 1000,
      nowMs: this.now(),
    }, payload);
    if (outcome === null || outcome.kind === 'invalid') return outcome;
    if (checkAudience && !joseAudience && !isForUs(outcome.claims, issuer.audiences, issuer.authorizedParties)) return WRONG_AUDIENCE;
    return outcome;
  }

  private async verifyWithJose(token: string, issuer: TrustedIssuer, pending: KeySet | Promise<KeySet>, checkAudience: boolean, requiredClaims: readonly string[]): Promise<VerifiedClaims> {
    try {
      const keys = await pending;
      try {
        return { kind: 'ok', claims: await this.verifyWith(token, issuer, keys.getKey, checkAudience, requiredClaims) };
      } catch (error) {
        if (failureOf(error) !== 'unknown_key') throw error;
        const refreshed = await issuer.keys.refetchForUnknownKey();
        if (refreshed === null) throw error;
        return { kind: 'ok', claims: await this.verifyWith(token, issuer, refreshed.getKey, checkAudience, requiredClaims) };
      }
    } catch (error) {
      if (error instanceof KeysUnavailableError) return { kind: 'unavailable' };
      return { kind: 'invalid', reason: failureOf(error) };
    }
  }

  /** What jose checks of the claims; `audience`: jose checks a plain audience list itself. */
  private claimOptions(issuer: TrustedIssuer, audience: boolean, requiredClaims: readonly string[]): JWTClaimVerificationOptions {
    return {
      issuer: issuer.issuer,
      ...(audience ? { audience: issuer.audiences as string[] } : {}),
      clockTolerance: this.options.clockSkewMs / 1000,
      requiredClaims: [...requiredClaims],
      currentDate: new Date(this.now()),
    };
  }

  private async verifyWith(token: string, issuer: TrustedIssuer, getKey: JWTVerifyGetKey, checkAudience: boolean, requiredClaims: readonly string[]): Promise<Claims> {
    // jose checks a plain audience list itself; with authorized parties, "aud or azp" is checked here.
    const joseAudience = checkAudience && issuer.authorizedParties.length === 0;
    const { payload } = await jwtVerify(token, getKey, { ...this.claimOptions(issuer, joseAudience, requiredClaims), algorithms: issuer.algorithms as string[] });
    const claims = payload as Claims;
    if (checkAudience && !joseAudience && !isForUs(claims, issuer.audiences, issuer.authorizedParties)) throw new WrongAudienceError();
    return claims;
  }

  private remember(token: string, result: BearerResult): BearerResult {
    if (result.kind === 'invalid' && CACHEABLE_FAILURES.has(result.reason)) {
      this.cache.set(token, result, this.now() + FAILURE_CACHE_MS, false);
    }
    return result;
  }
}

class WrongAudienceError extends Error {}

/** `aud` holds one of `audiences`, or `azp` is one of `parties`. */
export function isForUs(claims: Claims, audiences: readonly string[], parties: readonly string[]): boolean {
  const aud = claims.aud;
  if (typeof aud === 'string' ? audiences.includes(aud) : Array.isArray(aud) && aud.some((a) => audiences.includes(a))) return true;
  return typeof claims.azp === 'string' && parties.includes(claims.azp);
}

/** Printable ASCII only: the value goes into a JSON answer and a log line. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}

/** Maps jose's error codes to our stable reasons. */
function failureOf(error: unknown): TokenFailure {
  if (error instanceof WrongAudienceError) return 'wrong_audience';
  const { code, claim } = (error ?? {}) as { code?: string; claim?: string };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return 'token_expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'aud') return 'wrong_audience';
      if (claim === 'nbf') return 'token_not_yet_valid';
      if (claim === 'exp') return 'missing_claim';
      return 'invalid_token';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'disallowed_algorithm';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'unknown_key';
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return 'malformed_token';
    default:
      return 'invalid_token';
  }
}
